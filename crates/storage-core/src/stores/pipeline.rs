//! Pipeline results (catalogue #46): the idea → goals → actions → orchestration runs of a tenant,
//! kept for history and resume.
//!
//! A run's status is derived from its stages on every save (an empty stage map is pending, not
//! vacuously complete), and its content is covered by a SHA-256 integrity hash that the store
//! sets on save and checks on every read: a result corrupted or edited behind the store is an
//! error (`Backend`, naming the result), never returned. The hash is not keyed — it catches damage and careless
//! edits, not someone who can write the table and recompute it (sign results with the receipt
//! store for that).

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::Table;
use crate::token::hash_token;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// The most stages a run may have.
pub const MAX_STAGES: usize = 64;

/// Where one stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Not started.
    Pending,
    /// Running.
    InProgress,
    /// Done.
    Complete,
    /// Failed.
    Failed,
}

/// Where a run stands, derived from its stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineStatus {
    /// No stage has started (or there are none yet).
    Pending,
    /// Some stages have started or finished, none failed.
    InProgress,
    /// Every stage is complete (and there is at least one).
    Complete,
    /// A stage failed.
    Failed,
}

impl PipelineStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Pending, Self::InProgress, Self::Complete, Self::Failed];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }

    /// The status of a run whose stages stand as `stages`: failed if any failed, complete if
    /// there are stages and all are complete, in progress if any started, else pending.
    pub fn of(stages: &BTreeMap<String, StageStatus>) -> Self {
        let any = |status| stages.values().any(|s| *s == status);
        if any(StageStatus::Failed) {
            Self::Failed
        } else if !stages.is_empty() && stages.values().all(|s| *s == StageStatus::Complete) {
            Self::Complete
        } else if any(StageStatus::Complete) || any(StageStatus::InProgress) {
            Self::InProgress
        } else {
            Self::Pending
        }
    }
}

/// A pipeline run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineResult {
    /// The organisation.
    pub tenant: TenantId,
    /// The run.
    pub pipeline_id: String,
    /// Derived from `stage_status` by the store.
    pub status: PipelineStatus,
    /// Each stage's status.
    pub stage_status: BTreeMap<String, StageStatus>,
    /// The ideas stage's output.
    pub ideas: Option<Value>,
    /// The goals stage's output.
    pub goals: Option<Value>,
    /// The actions stage's output.
    pub actions: Option<Value>,
    /// The orchestration stage's output.
    pub orchestration: Option<Value>,
    /// The stage transitions, in order.
    pub transitions: Vec<Value>,
    /// How many provenance records back it.
    pub provenance_count: u64,
    /// Its decision receipt.
    pub receipt: Option<Value>,
    /// Its execution record.
    pub execution: Option<Value>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// SHA-256 over the content (everything above), set by the store and checked on every read.
    pub integrity_hash: String,
    /// When first saved (the store's clock); lists go newest first by it.
    pub started_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first saved; kept by every save.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last saved.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl PipelineResult {
    /// An empty, pending result of run `pipeline_id`.
    pub fn new(tenant: TenantId, pipeline_id: impl Into<String>) -> Self {
        Self {
            tenant,
            pipeline_id: pipeline_id.into(),
            status: PipelineStatus::Pending,
            stage_status: BTreeMap::new(),
            ideas: None,
            goals: None,
            actions: None,
            orchestration: None,
            transitions: Vec::new(),
            provenance_count: 0,
            receipt: None,
            execution: None,
            duration_ms: 0,
            integrity_hash: String::new(),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// The hash of its content: the tenant, the id, the stages, every output, the transitions,
    /// the counts and the duration (the status follows from the stages).
    pub fn compute_integrity_hash(&self) -> String {
        let content = (
            self.tenant.as_str(),
            &self.pipeline_id,
            &self.stage_status,
            (&self.ideas, &self.goals, &self.actions, &self.orchestration),
            &self.transitions,
            self.provenance_count,
            (&self.receipt, &self.execution),
            self.duration_ms,
        );
        hash_token(&serde_json::to_string(&content).unwrap_or_default())
    }

    /// Whether its content matches its hash and its status its stages.
    pub fn is_intact(&self) -> bool {
        self.integrity_hash == self.compute_integrity_hash() && self.status == PipelineStatus::of(&self.stage_status)
    }

    fn checked(self, backend: crate::DatabaseBackend) -> Result<Self> {
        if self.is_intact() {
            Ok(self)
        } else {
            Err(StorageError::corrupt(backend, format!("pipeline result `{}` no longer matches its integrity hash", self.pipeline_id)))
        }
    }
}

impl Document for PipelineResult {
    const TABLE: TableDef = TableDef {
        name: "pipeline_results",
        entity: "pipeline result",
        id_field: "pipeline_id",
        indexes: &[IndexSpec::text("status"), IndexSpec::time("started_at")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.pipeline_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(self.status.as_str())), Some(IndexValue::Time(self.started_at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("pipeline_id", &self.pipeline_id)?;
        if self.stage_status.len() > MAX_STAGES {
            return Err(StorageError::invalid("stage_status", format!("{} stages; at most {MAX_STAGES}", self.stage_status.len())));
        }
        self.stage_status.keys().try_for_each(|stage| validate_id("stage_status", stage))?;
        for (field, n) in [("provenance_count", self.provenance_count), ("duration_ms", self.duration_ms)] {
            crate::limits::check_int(field, i64::try_from(n).unwrap_or(i64::MAX))?;
        }
        Ok(())
    }
}

/// Pipeline results, per tenant.
#[async_trait]
pub trait PipelineStore: Send + Sync + fmt::Debug {
    /// Saves a run's result, replacing an earlier one (its `started_at` and `created_at` kept);
    /// the store derives the status and sets the integrity hash.
    async fn save(&self, result: &PipelineResult) -> Result<PipelineResult>;
    /// The run's result; an error if it no longer matches its integrity hash.
    async fn get(&self, tenant: &TenantId, pipeline_id: &str) -> Result<Option<PipelineResult>>;
    /// One page of results (of a status, or all), newest first; an error if one of the page no
    /// longer matches its integrity hash (the page is refused whole, naming that result).
    async fn list_pipelines(&self, tenant: &TenantId, status: Option<PipelineStatus>, page: &PageRequest) -> Result<Page<PipelineResult>>;
    /// Deletes a run's result; whether it existed.
    async fn delete(&self, tenant: &TenantId, pipeline_id: &str) -> Result<bool>;
    /// How many results (of a status, or all).
    async fn count(&self, tenant: &TenantId, status: Option<PipelineStatus>) -> Result<u64>;
}

/// [`PipelineStore`] on any backend.
pub struct PipelineResults<B: ?Sized = dyn Engine> {
    results: Table<PipelineResult>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(PipelineResults { results });

fn status_filter(status: Option<PipelineStatus>) -> Filter {
    status.map_or_else(Filter::all, |status| Filter::all().eq("status", status.as_str()))
}

#[async_trait]
impl<B: ?Sized> PipelineStore for PipelineResults<B> {
    async fn save(&self, result: &PipelineResult) -> Result<PipelineResult> {
        let mut fresh = result.clone();
        fresh.status = PipelineStatus::of(&fresh.stage_status);
        fresh.integrity_hash = fresh.compute_integrity_hash();
        fresh.started_at = self.results.now();
        fresh.validate()?;
        let replace = |stored: &mut PipelineResult| {
            let started_at = stored.started_at;
            *stored = PipelineResult { started_at, version: stored.version, created_at: stored.created_at, ..fresh.clone() };
            Ok(())
        };
        for _ in 0..2 {
            match self.results.patch(&fresh.tenant, &fresh.pipeline_id, replace).await {
                Err(StorageError::NotFound { .. }) => match self.results.insert(&fresh).await {
                    // Saved concurrently: replace that one instead, keeping its start.
                    Err(StorageError::Conflict { .. }) => continue,
                    other => return other,
                },
                other => return other,
            }
        }
        Err(StorageError::conflict(PipelineResult::TABLE.entity, fresh.pipeline_id.clone(), "saved concurrently; try again"))
    }

    async fn get(&self, tenant: &TenantId, pipeline_id: &str) -> Result<Option<PipelineResult>> {
        let backend = self.results.backend();
        self.results.get(tenant, pipeline_id).await?.map(|result| result.checked(backend)).transpose()
    }

    async fn list_pipelines(&self, tenant: &TenantId, status: Option<PipelineStatus>, page: &PageRequest) -> Result<Page<PipelineResult>> {
        let query = Query::new(status_filter(status)).order(Order::desc("started_at"));
        let page = self.results.list(Scope::Tenant(tenant), query, page).await?;
        let backend = self.results.backend();
        let items = page.items.into_iter().map(|result| result.checked(backend)).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next: page.next })
    }

    async fn delete(&self, tenant: &TenantId, pipeline_id: &str) -> Result<bool> {
        self.results.delete(tenant, pipeline_id).await
    }

    async fn count(&self, tenant: &TenantId, status: Option<PipelineStatus>) -> Result<u64> {
        self.results.count(Scope::Tenant(tenant), status_filter(status)).await
    }
}
