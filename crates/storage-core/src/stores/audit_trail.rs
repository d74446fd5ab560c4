//! Audit trails of gauntlet runs and their receipts: write-once compliance artifacts, one of
//! each per gauntlet run, with a checksum that every read verifies.
//!
//! Receipts are the receipt store's ([`crate::stores::receipt`]): this store's receipt calls are
//! a view of them as [`Artifact`]s, so a receipt saved here is the one the receipt store signs,
//! holds and retains, and its deletion is logged there.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::receipt::{Receipt, ReceiptQuery, ReceiptStore, Receipts};
use crate::table::Table;
use crate::token::hash_token;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// How long trails and receipts are kept unless configured (`ARAGORA_AUDIT_TRAIL_RETENTION_DAYS`).
pub const DEFAULT_RETENTION: TimeDelta = TimeDelta::days(365);

/// What a trail or receipt says about a gauntlet run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// The organisation.
    pub tenant: TenantId,
    /// The artifact's id.
    pub id: String,
    /// The gauntlet run it belongs to: one trail and one receipt per run.
    pub gauntlet_id: String,
    /// The verdict (`pass`, `fail`, `conditional`, ...).
    pub verdict: String,
    /// Confidence in the verdict, 0 to 1.
    pub confidence: f64,
    /// The receipt's risk level (trails have none).
    pub risk_level: Option<String>,
    /// Findings (trails).
    pub total_findings: u64,
    /// The run's duration in seconds (trails).
    pub duration_seconds: f64,
    /// The linked artifact: a trail's receipt, a receipt's trail. Set once.
    pub linked_id: Option<String>,
    /// The full artifact as the application produced it.
    pub data: Value,
    /// SHA-256 over everything but the link and metadata, computed at save and checked on every read.
    pub checksum: String,
    /// When saved (set by the store).
    pub saved_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When saved.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed (only linking changes one).
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Artifact {
    /// A new artifact; its checksum is computed when it is saved.
    pub fn new(tenant: TenantId, id: impl Into<String>, gauntlet_id: impl Into<String>, verdict: impl Into<String>, data: Value) -> Self {
        Self {
            tenant,
            id: id.into(),
            gauntlet_id: gauntlet_id.into(),
            verdict: verdict.into(),
            confidence: 0.0,
            risk_level: None,
            total_findings: 0,
            duration_seconds: 0.0,
            linked_id: None,
            data,
            checksum: String::new(),
            saved_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// The checksum of the artifact's content.
    pub fn compute_checksum(&self) -> String {
        let canonical = serde_json::json!([
            self.tenant.as_str(),
            self.id,
            self.gauntlet_id,
            self.verdict,
            self.confidence,
            self.risk_level,
            self.total_findings,
            self.duration_seconds,
            self.data,
            self.saved_at.timestamp_micros(),
        ]);
        hash_token(&canonical.to_string())
    }

    /// The artifact, if it still matches its checksum.
    fn check(self, backend: crate::DatabaseBackend) -> Result<Self> {
        if self.compute_checksum() == self.checksum {
            Ok(self)
        } else {
            Err(StorageError::corrupt(backend, format!("artifact `{}` no longer matches its checksum", self.id)))
        }
    }

    fn check_fields(&self) -> Result<()> {
        validate_id("id", &self.id)?;
        validate_id("gauntlet_id", &self.gauntlet_id)?;
        validate_id("verdict", &self.verdict)?;
        if let Some(risk) = &self.risk_level {
            validate_id("risk_level", risk)?;
        }
        if let Some(linked) = &self.linked_id {
            validate_id("linked_id", linked)?;
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(StorageError::invalid("confidence", format!("{} is outside 0 to 1", self.confidence)));
        }
        if !self.duration_seconds.is_finite() || self.duration_seconds < 0.0 {
            return Err(StorageError::invalid("duration_seconds", "must be a finite number of seconds, not negative"));
        }
        crate::limits::check_int("total_findings", i64::try_from(self.total_findings).unwrap_or(i64::MAX))
    }
}

macro_rules! artifact_document {
    ($name:ident, $table:literal, $entity:literal) => {
        /// An artifact stored in its own table.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Artifact);

        impl Document for $name {
            const TABLE: TableDef = TableDef {
                name: $table,
                entity: $entity,
                id_field: "id",
                indexes: &[
                    IndexSpec::text("gauntlet_id").unique(),
                    IndexSpec::text("verdict"),
                    IndexSpec::text("risk_level"),
                    IndexSpec::time("saved_at"),
                ],
                expires: false,
                sealed: false,
                search: false,
            };

            fn tenant(&self) -> &TenantId {
                &self.0.tenant
            }
            fn id(&self) -> String {
                self.0.id.clone()
            }
            fn meta(&self) -> crate::RecordMeta {
                crate::RecordMeta { version: self.0.version, created_at: self.0.created_at, updated_at: self.0.updated_at }
            }
            fn set_meta(&mut self, meta: crate::RecordMeta) {
                (self.0.version, self.0.created_at, self.0.updated_at) = (meta.version, meta.created_at, meta.updated_at);
            }
            fn index_values(&self) -> Vec<Option<IndexValue>> {
                vec![
                    Some(IndexValue::from(&self.0.gauntlet_id)),
                    Some(IndexValue::from(&self.0.verdict)),
                    self.0.risk_level.as_ref().map(IndexValue::from),
                    Some(IndexValue::Time(self.0.saved_at)),
                ]
            }
            fn validate(&self) -> Result<()> {
                self.0.check_fields()
            }
        }
    };
}

artifact_document!(TrailRecord, "audit_trails", "audit trail");

/// Which artifacts a list selects.
#[derive(Debug, Clone, Default)]
pub struct ArtifactQuery {
    /// Of this verdict.
    pub verdict: Option<String>,
    /// Of this risk level (receipts).
    pub risk_level: Option<String>,
}

/// Trails and receipts of gauntlet runs.
#[async_trait]
pub trait AuditTrailStore: Send + Sync + fmt::Debug {
    /// Saves a trail, once: `Conflict` if its id or its gauntlet run already has one.
    async fn save_trail(&self, trail: &Artifact) -> Result<Artifact>;
    /// The trail with this id; an error if it no longer matches its checksum.
    async fn get_trail(&self, tenant: &TenantId, trail_id: &str) -> Result<Option<Artifact>>;
    /// The trail of a gauntlet run.
    async fn get_trail_by_gauntlet(&self, tenant: &TenantId, gauntlet_id: &str) -> Result<Option<Artifact>>;
    /// One page of trails, newest first.
    async fn list_trails(&self, tenant: &TenantId, query: &ArtifactQuery, page: &PageRequest) -> Result<Page<Artifact>>;
    /// How many trails pass `query`.
    async fn count_trails(&self, tenant: &TenantId, query: &ArtifactQuery) -> Result<u64>;
    /// Links a trail to its receipt, once (`Conflict` if linked to another).
    async fn link_trail_to_receipt(&self, tenant: &TenantId, trail_id: &str, receipt_id: &str) -> Result<Artifact>;
    /// Saves a receipt, once.
    async fn save_receipt(&self, receipt: &Artifact) -> Result<Artifact>;
    /// The receipt with this id; an error if it no longer matches its checksum.
    async fn get_receipt(&self, tenant: &TenantId, receipt_id: &str) -> Result<Option<Artifact>>;
    /// The receipt of a gauntlet run.
    async fn get_receipt_by_gauntlet(&self, tenant: &TenantId, gauntlet_id: &str) -> Result<Option<Artifact>>;
    /// One page of receipts, newest first.
    async fn list_receipts(&self, tenant: &TenantId, query: &ArtifactQuery, page: &PageRequest) -> Result<Page<Artifact>>;
    /// How many receipts pass `query`.
    async fn count_receipts(&self, tenant: &TenantId, query: &ArtifactQuery) -> Result<u64>;
    /// Links a receipt to its trail, once.
    async fn link_receipt_to_trail(&self, tenant: &TenantId, receipt_id: &str, trail_id: &str) -> Result<Artifact>;
    /// Deletes the trails and receipts saved more than `retention` ago, in every tenant; how many.
    /// Receipts go as the receipt store deletes them: never one under legal hold, each logged.
    async fn cleanup_expired(&self, retention: TimeDelta) -> Result<u64>;
}

/// [`AuditTrailStore`] on any backend.
pub struct AuditTrails<B: ?Sized = dyn Engine> {
    trails: Table<TrailRecord>,
    receipts: Receipts<B>,
}

impl<B: ?Sized + 'static> crate::Store for AuditTrails<B> {
    fn on(engine: &dyn Engine) -> Self {
        Self { trails: engine.table(), receipts: Receipts::on(engine) }
    }
}

impl<B: ?Sized> Clone for AuditTrails<B> {
    fn clone(&self) -> Self {
        Self { trails: self.trails.clone(), receipts: self.receipts.clone() }
    }
}

impl<B: ?Sized> fmt::Debug for AuditTrails<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrails").field("trails", &self.trails).field("receipts", &self.receipts).finish()
    }
}

crate::seed_constructors!(AuditTrails);

/// The operator retention names in the receipts' deletion log.
const RETENTION_OPERATOR: &str = "audit-trail-retention";

/// A receipt as an artifact.
fn artifact_of(receipt: Receipt) -> Artifact {
    Artifact {
        tenant: receipt.tenant,
        id: receipt.receipt_id,
        gauntlet_id: receipt.gauntlet_id,
        verdict: receipt.verdict,
        confidence: receipt.confidence,
        risk_level: Some(receipt.risk_level),
        total_findings: 0,
        duration_seconds: 0.0,
        linked_id: receipt.audit_trail_id,
        data: receipt.data,
        checksum: receipt.checksum,
        saved_at: receipt.issued_at.unwrap_or(receipt.created_at),
        version: receipt.version,
        created_at: receipt.created_at,
        updated_at: receipt.updated_at,
    }
}

fn receipts_query(query: &ArtifactQuery) -> ReceiptQuery {
    ReceiptQuery {
        verdict: query.verdict.clone(),
        risk_level: query.risk_level.clone(),
        direction: crate::Direction::Desc,
        ..ReceiptQuery::default()
    }
}

fn filter(query: &ArtifactQuery) -> Result<Filter> {
    let mut filter = Filter::all();
    for (column, value) in [("verdict", &query.verdict), ("risk_level", &query.risk_level)] {
        if let Some(value) = value {
            validate_id(column, value)?;
            filter = filter.eq(column, value.as_str());
        }
    }
    Ok(filter)
}

/// One kind of artifact: the same operations on trails and receipts.
async fn save<D: Document>(table: &Table<D>, artifact: &Artifact, wrap: fn(Artifact) -> D, unwrap: fn(D) -> Artifact) -> Result<Artifact> {
    let mut artifact = artifact.clone();
    artifact.linked_id = None;
    artifact.saved_at = table.now();
    artifact.checksum = artifact.compute_checksum();
    table.insert(&wrap(artifact)).await.map(unwrap)
}

async fn link<D: Document>(
    table: &Table<D>,
    tenant: &TenantId,
    id: &str,
    to: &str,
    field: fn(&mut D) -> &mut Option<String>,
    unwrap: fn(D) -> Artifact,
) -> Result<Artifact> {
    validate_id("linked_id", to)?;
    let linked = table
        .patch(tenant, id, |record| match field(record) {
            Some(existing) if existing != to => Err(StorageError::conflict(D::TABLE.entity, id, format!("already linked to `{existing}`"))),
            slot => {
                *slot = Some(to.to_owned());
                Ok(())
            }
        })
        .await?;
    unwrap(linked).check(table.backend())
}

impl<B: ?Sized> AuditTrails<B> {
    fn backend(&self) -> crate::DatabaseBackend {
        self.trails.backend()
    }
}

#[async_trait]
impl<B: ?Sized> AuditTrailStore for AuditTrails<B> {
    async fn save_trail(&self, trail: &Artifact) -> Result<Artifact> {
        save(&self.trails, trail, TrailRecord, |r| r.0).await
    }
    async fn get_trail(&self, tenant: &TenantId, trail_id: &str) -> Result<Option<Artifact>> {
        self.trails.get(tenant, trail_id).await?.map(|r| r.0.check(self.backend())).transpose()
    }
    async fn get_trail_by_gauntlet(&self, tenant: &TenantId, gauntlet_id: &str) -> Result<Option<Artifact>> {
        self.trails.get_by_unique(tenant, "gauntlet_id", gauntlet_id).await?.map(|r| r.0.check(self.backend())).transpose()
    }
    async fn list_trails(&self, tenant: &TenantId, query: &ArtifactQuery, page: &PageRequest) -> Result<Page<Artifact>> {
        let page = self.trails.list(Scope::Tenant(tenant), Query::new(filter(query)?).order(Order::desc("saved_at")), page).await?;
        Ok(Page { items: page.items.into_iter().map(|r| r.0.check(self.backend())).collect::<Result<_>>()?, next: page.next })
    }
    async fn count_trails(&self, tenant: &TenantId, query: &ArtifactQuery) -> Result<u64> {
        self.trails.count(Scope::Tenant(tenant), filter(query)?).await
    }
    async fn link_trail_to_receipt(&self, tenant: &TenantId, trail_id: &str, receipt_id: &str) -> Result<Artifact> {
        link(&self.trails, tenant, trail_id, receipt_id, |r| &mut r.0.linked_id, |r| r.0).await
    }
    async fn save_receipt(&self, receipt: &Artifact) -> Result<Artifact> {
        receipt.check_fields()?;
        let mut stored = Receipt::new(receipt.tenant.clone(), &receipt.id, &receipt.gauntlet_id, &receipt.verdict, receipt.data.clone());
        stored.confidence = receipt.confidence;
        if let Some(risk) = &receipt.risk_level {
            stored.risk_level.clone_from(risk);
        }
        self.receipts.save(&stored).await.map(artifact_of)
    }
    async fn get_receipt(&self, tenant: &TenantId, receipt_id: &str) -> Result<Option<Artifact>> {
        Ok(self.receipts.get(tenant, receipt_id).await?.map(artifact_of))
    }
    async fn get_receipt_by_gauntlet(&self, tenant: &TenantId, gauntlet_id: &str) -> Result<Option<Artifact>> {
        Ok(self.receipts.get_by_gauntlet(tenant, gauntlet_id).await?.map(artifact_of))
    }
    async fn list_receipts(&self, tenant: &TenantId, query: &ArtifactQuery, page: &PageRequest) -> Result<Page<Artifact>> {
        let page = self.receipts.list(tenant, &receipts_query(query), page).await?;
        Ok(Page { items: page.items.into_iter().map(artifact_of).collect(), next: page.next })
    }
    async fn count_receipts(&self, tenant: &TenantId, query: &ArtifactQuery) -> Result<u64> {
        self.receipts.count(tenant, &receipts_query(query)).await
    }
    async fn link_receipt_to_trail(&self, tenant: &TenantId, receipt_id: &str, trail_id: &str) -> Result<Artifact> {
        self.receipts.link_trail(tenant, receipt_id, trail_id).await.map(artifact_of)
    }
    async fn cleanup_expired(&self, retention: TimeDelta) -> Result<u64> {
        if retention < TimeDelta::zero() {
            return Err(StorageError::invalid("retention", "must not be negative"));
        }
        let cutoff = crate::limits::sub("retention", self.trails.now(), retention)?;
        let old = || Filter::all().lt("saved_at", cutoff);
        let trails = self.trails.delete_where(Scope::AllTenants, old()).await?;
        let receipts = self.receipts.delete_issued_before(cutoff, RETENTION_OPERATOR).await?;
        Ok(trails.saturating_add(receipts))
    }
}
