//! Provenance: the evidence behind a debate's claims, as a hash-linked chain of records in
//! sequence, and the citations that tie claims to evidence.
//!
//! A chain (one per debate) and all its records are written in one atomic unit, replacing the
//! debate's previous chain whole: no stale record of an earlier save survives. Each record's
//! `chain_hash` covers its content hash, the previous record's chain hash and its place, so
//! [`ProvenanceStore::verify_chain`] names the first record altered, removed or reordered.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::joined_id;
use crate::table::{Table, retry_contended};
use crate::token::hash_token;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

/// The most records a chain holds. A save is one atomic unit of at most
/// [`crate::table::MAX_BATCH`] (1,000) changes, and in the worst case it writes the chain and its
/// records, deletes the records of the chain of the same id that it drops, and deletes the
/// debate's earlier chain of another id with all its records: 1 + 330 + 330 + 1 + 330 = 992.
/// A longer chain is refused with `InvalidInput` naming `records`.
pub const MAX_CHAIN_RECORDS: usize = 330;
/// What the first record follows.
pub const GENESIS: &str = "genesis";
/// The longest evidence content, in bytes (lines allowed; kept in the body, never indexed).
pub const MAX_CONTENT_BYTES: usize = 32 * 1024;

/// A debate's provenance chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvenanceChain {
    /// The organisation.
    pub tenant: TenantId,
    /// The chain's id.
    pub chain_id: String,
    /// The debate: one chain per debate.
    pub debate_id: String,
    /// The first record's chain hash (set by the store).
    pub genesis_hash: Option<String>,
    /// The last record's chain hash (set by the store).
    pub head_hash: Option<String>,
    /// How many records (set by the store).
    pub record_count: u64,
    /// Anything else about the chain.
    pub data: Value,
    /// When saved (set by the store).
    pub saved_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first saved.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last saved.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for ProvenanceChain {
    const TABLE: TableDef = TableDef {
        name: "provenance_chains",
        entity: "provenance chain",
        id_field: "chain_id",
        indexes: &[IndexSpec::text("debate_id").unique(), IndexSpec::time("saved_at")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.chain_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.debate_id)), Some(IndexValue::Time(self.saved_at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("debate_id", &self.debate_id)
    }
}

/// A piece of evidence to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvidence {
    /// Its id, unique in its chain.
    pub record_id: String,
    /// Where it came from (`web`, `document`, `agent`, ...).
    pub source_type: String,
    /// Which one.
    pub source_id: String,
    /// The evidence.
    pub content: String,
    /// Its type (`text`, `json`, ...).
    pub content_type: String,
    /// When it was gathered.
    pub timestamp: DateTime<Utc>,
    /// The records it was derived from.
    pub parent_ids: Vec<String>,
    /// How it was derived (`original`, `summary`, ...).
    pub transformation: String,
    /// A note on it.
    pub note: Option<String>,
    /// How much it is trusted, 0 to 1.
    pub confidence: f64,
    /// Whether someone verified it.
    pub verified: bool,
    /// Who.
    pub verifier_id: Option<String>,
    /// Anything else.
    pub metadata: Map<String, Value>,
}

impl NewEvidence {
    /// Original evidence from a source.
    pub fn new(
        record_id: impl Into<String>,
        source_type: impl Into<String>,
        source_id: impl Into<String>,
        content: impl Into<String>,
        timestamp: DateTime<Utc>,
    ) -> Self {
        Self {
            record_id: record_id.into(),
            source_type: source_type.into(),
            source_id: source_id.into(),
            content: content.into(),
            content_type: "text".to_owned(),
            timestamp,
            parent_ids: Vec::new(),
            transformation: "original".to_owned(),
            note: None,
            confidence: 1.0,
            verified: false,
            verifier_id: None,
            metadata: Map::new(),
        }
    }

    fn validate(&self) -> Result<()> {
        validate_id("record_id", &self.record_id)?;
        validate_id("source_type", &self.source_type)?;
        validate_id("source_id", &self.source_id)?;
        validate_id("content_type", &self.content_type)?;
        validate_id("transformation", &self.transformation)?;
        crate::stores::marketplace::check_prose("content", &self.content, MAX_CONTENT_BYTES)?;
        crate::limits::check_instant("timestamp", self.timestamp)?;
        self.parent_ids.iter().try_for_each(|parent| validate_id("parent_ids", parent))?;
        if let Some(note) = &self.note {
            crate::stores::marketplace::check_prose("note", note, MAX_CONTENT_BYTES)?;
        }
        if let Some(verifier) = &self.verifier_id {
            validate_id("verifier_id", verifier)?;
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(StorageError::invalid("confidence", format!("{} is outside 0 to 1", self.confidence)));
        }
        Ok(())
    }
}

/// A recorded piece of evidence, in its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// The organisation.
    pub tenant: TenantId,
    /// Its chain.
    pub chain_id: String,
    /// Its place, from 0.
    pub seq: u64,
    /// The evidence.
    #[serde(flatten)]
    pub evidence: NewEvidence,
    /// SHA-256 over its content, content type and source.
    pub content_hash: String,
    /// The previous record's chain hash ([`GENESIS`] for the first).
    pub previous_hash: String,
    /// SHA-256 over its content hash, the previous chain hash, its place and timestamp.
    pub chain_hash: String,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When saved.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When saved.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl EvidenceRecord {
    /// The content hash the record should carry.
    pub fn compute_content_hash(&self) -> String {
        let e = &self.evidence;
        hash_token(&serde_json::to_string(&(&e.content, &e.content_type, &e.source_type, &e.source_id)).unwrap_or_default())
    }

    /// The chain hash the record should carry: over everything it says and what it follows.
    pub fn compute_chain_hash(&self) -> String {
        let e = &self.evidence;
        let canonical = (
            self.tenant.as_str(),
            &self.chain_id,
            self.seq,
            &e.record_id,
            &self.content_hash,
            &self.previous_hash,
            e.timestamp.timestamp_micros(),
            &e.parent_ids,
            &e.transformation,
            &e.note,
            e.confidence,
            e.verified,
            &e.verifier_id,
            &e.metadata,
        );
        hash_token(&serde_json::to_string(&canonical).unwrap_or_default())
    }
}

impl Document for EvidenceRecord {
    const TABLE: TableDef = TableDef {
        name: "provenance_records",
        entity: "evidence record",
        id_field: "record_id",
        indexes: &[
            IndexSpec::text("chain_id"),
            IndexSpec::int("position"),
            IndexSpec::text("source_type"),
            IndexSpec::text("source_id"),
            IndexSpec::bool("verified"),
            IndexSpec::time("timestamp"),
        ],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        joined_id(&self.chain_id, &self.evidence.record_id)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(&self.chain_id)),
            Some(crate::table::int_value(self.seq)),
            Some(IndexValue::from(&self.evidence.source_type)),
            Some(IndexValue::from(&self.evidence.source_id)),
            Some(IndexValue::Bool(self.evidence.verified)),
            Some(IndexValue::Time(self.evidence.timestamp)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("chain_id", &self.chain_id)?;
        self.evidence.validate()
    }
}

/// A claim's citation of a piece of evidence (one per claim and evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// The organisation.
    pub tenant: TenantId,
    /// The chain the evidence is in.
    pub chain_id: String,
    /// The claim.
    pub claim_id: String,
    /// The evidence.
    pub evidence_id: String,
    /// How relevant, 0 to 1.
    pub relevance: f64,
    /// `supports`, `contradicts`, ...
    pub support_type: String,
    /// The quoted text.
    pub citation_text: String,
    /// Anything else.
    pub metadata: Map<String, Value>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first saved.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last saved.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Citation {
    /// `claim_id` supported by `evidence_id` of `chain_id`.
    pub fn new(tenant: TenantId, chain_id: impl Into<String>, claim_id: impl Into<String>, evidence_id: impl Into<String>) -> Self {
        Self {
            tenant,
            chain_id: chain_id.into(),
            claim_id: claim_id.into(),
            evidence_id: evidence_id.into(),
            relevance: 1.0,
            support_type: "supports".to_owned(),
            citation_text: String::new(),
            metadata: Map::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

impl Document for Citation {
    const TABLE: TableDef = TableDef {
        name: "provenance_citations",
        entity: "citation",
        id_field: "citation_id",
        indexes: &[IndexSpec::text("chain_id"), IndexSpec::text("claim_id"), IndexSpec::text("evidence_id")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        joined_id(&self.claim_id, &self.evidence_id)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.chain_id)), Some(IndexValue::from(&self.claim_id)), Some(IndexValue::from(&self.evidence_id))]
    }
    fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("chain_id", &self.chain_id),
            ("claim_id", &self.claim_id),
            ("evidence_id", &self.evidence_id),
            ("support_type", &self.support_type),
        ] {
            validate_id(field, value)?;
        }
        crate::stores::marketplace::check_prose("citation_text", &self.citation_text, MAX_CONTENT_BYTES)?;
        if !(0.0..=1.0).contains(&self.relevance) {
            return Err(StorageError::invalid("relevance", format!("{} is outside 0 to 1", self.relevance)));
        }
        Ok(())
    }
}

/// Where a chain broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRecord {
    /// The place of the first record that does not follow.
    pub seq: u64,
    /// What is wrong.
    pub reason: String,
}

/// What [`ProvenanceStore::verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerification {
    /// Records checked.
    pub checked: u64,
    /// The first broken record, if any.
    pub broken: Option<BrokenRecord>,
}

/// Which citations to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CitationsOf<'a> {
    /// Of a claim.
    Claim(&'a str),
    /// Of a piece of evidence.
    Evidence(&'a str),
    /// In a chain.
    Chain(&'a str),
}

/// Counts of a tenant's provenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProvenanceStats {
    /// Chains.
    pub chains: u64,
    /// Records.
    pub records: u64,
    /// Citations.
    pub citations: u64,
}

/// Provenance chains and citations.
#[async_trait]
pub trait ProvenanceStore: Send + Sync + fmt::Debug {
    /// Saves a debate's chain with its records (at most [`MAX_CHAIN_RECORDS`], ids unique), in
    /// one unit, replacing any earlier chain of the same id or debate whole (its records go;
    /// a replaced chain of another id loses its citations too). The chain as stored.
    async fn save_chain(
        &self,
        tenant: &TenantId,
        chain_id: &str,
        debate_id: &str,
        data: Value,
        records: Vec<NewEvidence>,
    ) -> Result<ProvenanceChain>;
    /// The chain and its records in sequence.
    async fn load_chain(&self, tenant: &TenantId, chain_id: &str) -> Result<Option<(ProvenanceChain, Vec<EvidenceRecord>)>>;
    /// The debate's chain and its records in sequence.
    async fn get_chain_by_debate(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<(ProvenanceChain, Vec<EvidenceRecord>)>>;
    /// Deletes a chain with its records and citations; whether it existed.
    async fn delete_chain(&self, tenant: &TenantId, chain_id: &str) -> Result<bool>;
    /// One page of chains, newest first.
    async fn list_chains(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ProvenanceChain>>;
    /// One record of a chain.
    async fn get_record(&self, tenant: &TenantId, chain_id: &str, record_id: &str) -> Result<Option<EvidenceRecord>>;
    /// A chain's records in sequence (none for a missing chain).
    async fn get_records_by_chain(&self, tenant: &TenantId, chain_id: &str) -> Result<Vec<EvidenceRecord>>;
    /// One page of records (of a source type, of a source, verified only), newest first.
    async fn search_records(
        &self,
        tenant: &TenantId,
        source_type: Option<&str>,
        source_id: Option<&str>,
        verified_only: bool,
        page: &PageRequest,
    ) -> Result<Page<EvidenceRecord>>;
    /// Saves (or replaces) a citation of evidence in an existing chain: `NotFound` for a missing
    /// chain or evidence. It is written at the chain's version, so a chain deleted or replaced
    /// meanwhile leaves no citation behind.
    async fn save_citation(&self, citation: &Citation) -> Result<Citation>;
    /// The citations of a claim, of a piece of evidence, or in a chain.
    async fn citations(&self, tenant: &TenantId, of: CitationsOf<'_>) -> Result<Vec<Citation>>;
    /// Recomputes the chain: the first record altered, removed, reordered or added, if any.
    /// `NotFound` for a missing chain.
    async fn verify_chain(&self, tenant: &TenantId, chain_id: &str) -> Result<ChainVerification>;
    /// Counts of the tenant's chains, records and citations.
    async fn get_stats(&self, tenant: &TenantId) -> Result<ProvenanceStats>;
}

/// [`ProvenanceStore`] on any backend.
pub struct Provenance<B: ?Sized = dyn Engine> {
    chains: Table<ProvenanceChain>,
    records: Table<EvidenceRecord>,
    citations: Table<Citation>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Provenance { chains, records, citations });

/// Links `evidence` into records of `chain_id`, in order.
fn link(tenant: &TenantId, chain_id: &str, evidence: Vec<NewEvidence>) -> Vec<EvidenceRecord> {
    let mut previous = GENESIS.to_owned();
    let mut records = Vec::with_capacity(evidence.len());
    for (seq, evidence) in (0u64..).zip(evidence) {
        let mut record = EvidenceRecord {
            tenant: tenant.clone(),
            chain_id: chain_id.to_owned(),
            seq,
            evidence,
            content_hash: String::new(),
            previous_hash: previous.clone(),
            chain_hash: String::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        record.content_hash = record.compute_content_hash();
        record.chain_hash = record.compute_chain_hash();
        previous.clone_from(&record.chain_hash);
        records.push(record);
    }
    records
}

fn of_chain(chain_id: &str) -> Filter {
    Filter::all().eq("chain_id", chain_id)
}

impl<B: ?Sized> Provenance<B> {
    async fn records_of(&self, tenant: &TenantId, chain_id: &str) -> Result<Vec<EvidenceRecord>> {
        self.records.list_all(Scope::Tenant(tenant), Query::new(of_chain(chain_id)).order(Order::asc("position"))).await
    }

    async fn with_records(
        &self,
        tenant: &TenantId,
        chain: Option<ProvenanceChain>,
    ) -> Result<Option<(ProvenanceChain, Vec<EvidenceRecord>)>> {
        match chain {
            Some(chain) => {
                let records = self.records_of(tenant, &chain.chain_id).await?;
                Ok(Some((chain, records)))
            }
            None => Ok(None),
        }
    }
}

#[async_trait]
impl<B: ?Sized> ProvenanceStore for Provenance<B> {
    async fn save_chain(
        &self,
        tenant: &TenantId,
        chain_id: &str,
        debate_id: &str,
        data: Value,
        records: Vec<NewEvidence>,
    ) -> Result<ProvenanceChain> {
        validate_id(ProvenanceChain::TABLE.id_field, chain_id)?;
        validate_id("debate_id", debate_id)?;
        if records.len() > MAX_CHAIN_RECORDS {
            return Err(StorageError::invalid("records", format!("{} records; a chain holds at most {MAX_CHAIN_RECORDS}", records.len())));
        }
        let mut ids = BTreeSet::new();
        for record in &records {
            record.validate()?;
            if !ids.insert(record.record_id.as_str()) {
                return Err(StorageError::invalid("record_id", format!("`{}` is given twice", record.record_id)));
            }
        }
        let linked = link(tenant, chain_id, records);
        let replaced = retry_contended(|| async {
            let same_id = self.chains.get(tenant, chain_id).await?;
            let same_debate = self.chains.get_by_unique(tenant, "debate_id", debate_id).await?.filter(|c| c.chain_id != chain_id);
            let now = self.chains.now();
            let chain = ProvenanceChain {
                tenant: tenant.clone(),
                chain_id: chain_id.to_owned(),
                debate_id: debate_id.to_owned(),
                genesis_hash: linked.first().map(|r| r.chain_hash.clone()),
                head_hash: linked.last().map(|r| r.chain_hash.clone()),
                record_count: u64::try_from(linked.len()).unwrap_or(u64::MAX),
                data: data.clone(),
                saved_at: now,
                version: same_id.as_ref().map_or(0, |c| c.version),
                created_at: same_id.as_ref().map_or(now, |c| c.created_at),
                updated_at: now,
            };
            let mut unit = self.chains.unit(tenant);
            if let Some(old) = &same_debate {
                unit.delete(&self.chains, &old.chain_id)?;
                for record in self.records_of(tenant, &old.chain_id).await? {
                    unit.delete(&self.records, &record.id())?;
                }
            }
            let new_ids: BTreeSet<String> = linked.iter().map(Document::id).collect();
            let mut stale = Vec::new();
            if same_id.is_some() {
                for record in self.records_of(tenant, chain_id).await?.into_iter().filter(|r| !new_ids.contains(&r.id())) {
                    unit.delete(&self.records, &record.id())?;
                    stale.push(record.evidence.record_id);
                }
            }
            if same_id.is_some() {
                unit.update(&self.chains, &chain)?
            } else {
                unit.insert(&self.chains, &chain)?
            }
            for record in &linked {
                unit.upsert(&self.records, record)?;
            }
            let applied = unit.commit().await.map_err(|e| match e {
                // Another save created the chain (or took the debate) first, or replaced the chain
                // read: read again.
                StorageError::Conflict { entity, id, .. } | StorageError::NotFound { entity, id }
                    if entity == ProvenanceChain::TABLE.entity =>
                {
                    StorageError::VersionMismatch { entity, id, expected: 0, actual: 1 }
                }
                other => other,
            })?;
            // The chain's write is the unit's first (the deletes before it report `Deleted`).
            let mut stored = chain;
            if let Some(crate::Applied::Written(meta)) = applied.iter().find(|a| matches!(a, crate::Applied::Written(_))) {
                stored.set_meta(*meta);
            }
            Ok((stored, same_debate.map(|c| c.chain_id), stale))
        })
        .await?;
        // Citations are not bounded in number, so they cannot join the unit: those of evidence
        // that is gone follow it. A citation written meanwhile saw the new chain (it is written
        // at the chain's version) and so cites evidence that exists.
        let (stored, old_chain, stale) = replaced;
        if let Some(old) = old_chain {
            // The replaced chain's records went in the unit; a re-save of it that raced the unit
            // may have added others, which follow unless a chain of that id exists again.
            if self.chains.get(tenant, &old).await?.is_none() {
                self.records.delete_where(Scope::Tenant(tenant), of_chain(&old)).await?;
                self.citations.delete_where(Scope::Tenant(tenant), of_chain(&old)).await?;
            }
        }
        if !stale.is_empty() {
            self.citations.delete_where(Scope::Tenant(tenant), of_chain(chain_id).one_of("evidence_id", stale)).await?;
        }
        Ok(stored)
    }

    async fn load_chain(&self, tenant: &TenantId, chain_id: &str) -> Result<Option<(ProvenanceChain, Vec<EvidenceRecord>)>> {
        let chain = self.chains.get(tenant, chain_id).await?;
        self.with_records(tenant, chain).await
    }

    async fn get_chain_by_debate(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<(ProvenanceChain, Vec<EvidenceRecord>)>> {
        validate_id("debate_id", debate_id)?;
        let chain = self.chains.get_by_unique(tenant, "debate_id", debate_id).await?;
        self.with_records(tenant, chain).await
    }

    async fn delete_chain(&self, tenant: &TenantId, chain_id: &str) -> Result<bool> {
        // The chain goes first: records or citations left by an interruption belong to no chain,
        // and a new chain of this id replaces its records whole.
        let existed = self.chains.delete(tenant, chain_id).await?;
        self.records.delete_where(Scope::Tenant(tenant), of_chain(chain_id)).await?;
        self.citations.delete_where(Scope::Tenant(tenant), of_chain(chain_id)).await?;
        Ok(existed)
    }

    async fn list_chains(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ProvenanceChain>> {
        self.chains.list(Scope::Tenant(tenant), Query::new(Filter::all()).order(Order::desc("saved_at")), page).await
    }

    async fn get_record(&self, tenant: &TenantId, chain_id: &str, record_id: &str) -> Result<Option<EvidenceRecord>> {
        validate_id("chain_id", chain_id)?;
        validate_id("record_id", record_id)?;
        self.records.get(tenant, &joined_id(chain_id, record_id)).await
    }

    async fn get_records_by_chain(&self, tenant: &TenantId, chain_id: &str) -> Result<Vec<EvidenceRecord>> {
        validate_id("chain_id", chain_id)?;
        self.records_of(tenant, chain_id).await
    }

    async fn search_records(
        &self,
        tenant: &TenantId,
        source_type: Option<&str>,
        source_id: Option<&str>,
        verified_only: bool,
        page: &PageRequest,
    ) -> Result<Page<EvidenceRecord>> {
        let mut filter = Filter::all();
        for (column, value) in [("source_type", source_type), ("source_id", source_id)] {
            if let Some(value) = value {
                validate_id(column, value)?;
                filter = filter.eq(column, value);
            }
        }
        if verified_only {
            filter = filter.eq("verified", true);
        }
        self.records.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("timestamp")), page).await
    }

    async fn save_citation(&self, citation: &Citation) -> Result<Citation> {
        citation.validate()?;
        let tenant = &citation.tenant;
        retry_contended(|| async {
            let Some(chain) = self.chains.get(tenant, &citation.chain_id).await? else {
                return Err(StorageError::not_found(ProvenanceChain::TABLE.entity, &citation.chain_id));
            };
            let evidence = joined_id(&citation.chain_id, &citation.evidence_id);
            if self.records.get(tenant, &evidence).await?.is_none() {
                return Err(StorageError::not_found(EvidenceRecord::TABLE.entity, &citation.evidence_id));
            }
            // Rewriting the chain at the version read makes a concurrent delete or re-save of the
            // chain and this citation exclude each other.
            let mut unit = self.chains.unit(tenant);
            unit.update(&self.chains, &chain)?;
            unit.upsert(&self.citations, citation)?;
            let applied = unit.commit().await.map_err(|e| match e {
                StorageError::NotFound { entity, id } if entity == ProvenanceChain::TABLE.entity => {
                    StorageError::VersionMismatch { entity, id, expected: chain.version, actual: 0 }
                }
                other => other,
            })?;
            let mut stored = citation.clone();
            if let Some(crate::Applied::Written(meta)) = applied.get(1) {
                stored.set_meta(*meta);
            }
            Ok(stored)
        })
        .await
    }

    async fn citations(&self, tenant: &TenantId, of: CitationsOf<'_>) -> Result<Vec<Citation>> {
        let (column, value) = match of {
            CitationsOf::Claim(claim) => ("claim_id", claim),
            CitationsOf::Evidence(evidence) => ("evidence_id", evidence),
            CitationsOf::Chain(chain) => ("chain_id", chain),
        };
        validate_id(column, value)?;
        self.citations.list_all(Scope::Tenant(tenant), Query::new(Filter::all().eq(column, value))).await
    }

    async fn verify_chain(&self, tenant: &TenantId, chain_id: &str) -> Result<ChainVerification> {
        let Some(chain) = self.chains.get(tenant, chain_id).await? else {
            return Err(StorageError::not_found(ProvenanceChain::TABLE.entity, chain_id));
        };
        let broken = |checked: u64, seq: u64, reason: &str| {
            Ok(ChainVerification { checked, broken: Some(BrokenRecord { seq, reason: reason.to_owned() }) })
        };
        let mut previous = GENESIS.to_owned();
        let mut checked = 0u64;
        for record in self.records_of(tenant, chain_id).await? {
            if record.seq != checked {
                return broken(checked, checked, "the record in this place is missing");
            }
            if record.compute_content_hash() != record.content_hash {
                return broken(checked, record.seq, "its content does not match its content hash");
            }
            if record.previous_hash != previous {
                return broken(checked, record.seq, "it does not follow the record before it");
            }
            if record.compute_chain_hash() != record.chain_hash {
                return broken(checked, record.seq, "it does not match its chain hash");
            }
            previous = record.chain_hash;
            checked = checked.saturating_add(1);
        }
        if checked != chain.record_count || chain.head_hash.as_deref().unwrap_or(GENESIS) != previous {
            return broken(checked, checked, "the chain does not end where it says");
        }
        Ok(ChainVerification { checked, broken: None })
    }

    async fn get_stats(&self, tenant: &TenantId) -> Result<ProvenanceStats> {
        let scope = Scope::Tenant(tenant);
        Ok(ProvenanceStats {
            chains: self.chains.count(scope, Filter::all()).await?,
            records: self.records.count(scope, Filter::all()).await?,
            citations: self.citations.count(scope, Filter::all()).await?,
        })
    }
}
