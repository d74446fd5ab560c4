//! Decision results: short-lived outcomes of decision-routing requests that clients poll for.
//!
//! Each result expires a fixed time after its last save — the engine's own expiry, so every read
//! stops seeing it at once and `purge_expired` removes it — and a tenant keeps at most a fixed
//! number: a save that adds a result evicts the tenant's least recently saved ones beyond the
//! cap (a re-save moves a result to the newest end). An evicted result is expired at the version
//! read, so concurrent evictors serialise on the oldest result and never evict below the cap.
//! There is no per-process cache or counter: every instance reads and counts the same rows, so
//! none serves a stale or evicted result.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The largest result, in bytes of JSON.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;
/// The longest TTL [`DecisionResults::with_options`] accepts, in days: a result is polled for,
/// not archived.
pub const MAX_TTL_DAYS: i64 = 3_650;
/// The longest error text, in bytes.
pub const MAX_ERROR_BYTES: usize = 16 * 1024;

/// How long results live and how many a tenant keeps. The application's configuration reads
/// them (`ARAGORA_DECISION_RETENTION_DAYS`, `ARAGORA_DECISION_MAX_ENTRIES`) and hands them to
/// [`DecisionResults::with_options`]; the store reads no environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionResultOptions {
    /// From save to expiry (1 day by default).
    pub ttl: TimeDelta,
    /// The most results a tenant keeps (10,000 by default).
    pub max_entries: u64,
}

impl Default for DecisionResultOptions {
    fn default() -> Self {
        Self { ttl: TimeDelta::days(1), max_entries: 10_000 }
    }
}

/// A decision result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionResult {
    /// The organisation.
    pub tenant: TenantId,
    /// The request it answers.
    pub request_id: String,
    /// Where the request stands (`pending`, `completed`, `failed`, ...).
    pub status: String,
    /// The outcome.
    pub result: Value,
    /// When the request completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// What went wrong.
    pub error: Option<String>,
    /// When it was saved (set by the store).
    pub saved_at: DateTime<Utc>,
    /// When it expires (set by the store: saved + TTL).
    pub expires_at: DateTime<Utc>,
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

impl DecisionResult {
    /// A result of `status` for `request_id`.
    pub fn new(tenant: TenantId, request_id: impl Into<String>, status: impl Into<String>, result: Value) -> Self {
        Self {
            tenant,
            request_id: request_id.into(),
            status: status.into(),
            result,
            completed_at: None,
            error: None,
            saved_at: DateTime::<Utc>::UNIX_EPOCH,
            expires_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

impl Document for DecisionResult {
    const TABLE: TableDef = TableDef {
        name: "decision_results",
        entity: "decision result",
        id_field: "request_id",
        indexes: &[IndexSpec::text("status"), IndexSpec::time("saved_at")],
        expires: true,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.request_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.status)), Some(IndexValue::Time(self.saved_at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("status", &self.status)?;
        crate::stores::approval_request::check_prose("error", self.error.as_deref(), MAX_ERROR_BYTES)?;
        let size = serde_json::to_string(&self.result).map_err(|e| StorageError::invalid("result", e))?.len();
        if size > MAX_RESULT_BYTES {
            return Err(StorageError::invalid("result", format!("{size} bytes of JSON; at most {MAX_RESULT_BYTES}")));
        }
        Ok(())
    }
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        Some(self.expires_at)
    }
}

/// Decision results.
#[async_trait]
pub trait DecisionResultStore: Send + Sync + fmt::Debug {
    /// Saves a result, or replaces the live one of the same request (keeping its `created_at`),
    /// live for the TTL from now. A save that adds a result then evicts the tenant's least
    /// recently saved results beyond the cap. `InvalidInput` (and nothing written) for a result
    /// over [`MAX_RESULT_BYTES`] of JSON or a bad status or error text.
    async fn save(&self, result: &DecisionResult) -> Result<DecisionResult>;
    /// The live result.
    async fn get(&self, tenant: &TenantId, request_id: &str) -> Result<Option<DecisionResult>>;
    /// The live result's status and completion time.
    async fn get_status(&self, tenant: &TenantId, request_id: &str) -> Result<Option<(String, Option<DateTime<Utc>>)>>;
    /// One page of live results, most recently saved first (`PageRequest::first(limit)` for the
    /// latest `limit`).
    async fn list_recent(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<DecisionResult>>;
    /// How many live results the tenant holds.
    async fn count(&self, tenant: &TenantId) -> Result<u64>;
    /// Deletes a result; whether a live one existed.
    async fn delete(&self, tenant: &TenantId, request_id: &str) -> Result<bool>;
    /// Evicts the tenant's least recently saved results beyond the cap (expired at once, hidden
    /// from every read, purged by [`Self::purge_expired`]); how many. `save` does this whenever
    /// it adds a result, so concurrent saves leave the tenant at its cap, neither over nor under
    /// it; call it after lowering the cap.
    async fn enforce_cap(&self, tenant: &TenantId) -> Result<u64>;
    /// Removes every expired result, in every tenant (a maintenance sweep; reads hide them
    /// already); how many.
    async fn purge_expired(&self) -> Result<u64>;
}

/// [`DecisionResultStore`] on any backend.
pub struct DecisionResults<B: ?Sized = dyn Engine> {
    results: Table<DecisionResult>,
    options: DecisionResultOptions,
    _backend: std::marker::PhantomData<fn(&B)>,
}

impl<B: ?Sized + 'static> crate::Store for DecisionResults<B> {
    fn on(engine: &dyn Engine) -> Self {
        Self { results: engine.table(), options: DecisionResultOptions::default(), _backend: std::marker::PhantomData }
    }
}

impl<B: ?Sized> Clone for DecisionResults<B> {
    fn clone(&self) -> Self {
        Self { results: self.results.clone(), options: self.options, _backend: std::marker::PhantomData }
    }
}

impl<B: ?Sized> fmt::Debug for DecisionResults<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionResults").field("results", &self.results).field("options", &self.options).finish_non_exhaustive()
    }
}

crate::seed_constructors!(DecisionResults);

impl<B: ?Sized> DecisionResults<B> {
    /// The same store with other options; `InvalidInput` naming `ttl` for one that is not
    /// positive or over [`MAX_TTL_DAYS`], naming `max_entries` for a cap of 0.
    pub fn with_options(mut self, options: DecisionResultOptions) -> Result<Self> {
        let longest = TimeDelta::try_days(MAX_TTL_DAYS).unwrap_or(TimeDelta::MAX);
        if options.ttl <= TimeDelta::zero() || options.ttl > longest {
            return Err(StorageError::invalid("ttl", format!("{} is not within 0 (excluded) and {MAX_TTL_DAYS} days", options.ttl)));
        }
        if options.max_entries == 0 {
            return Err(StorageError::invalid("max_entries", "a tenant must be allowed at least one result"));
        }
        self.options = options;
        Ok(self)
    }

    /// The options this store runs with.
    pub fn options(&self) -> DecisionResultOptions {
        self.options
    }
}

impl<B: ?Sized> DecisionResults<B> {
    /// One attempt at evicting up to `at_most` of the tenant's least recently saved results
    /// beyond the cap; how many. `VersionMismatch` (retried) when another evictor got in between.
    ///
    /// The oldest results are read first and counted after, and each is expired at the version
    /// read (emptied, hidden from every read at once, purged by `purge_expired`) rather than
    /// deleted. Any evictor that committed after this read has expired the oldest result, which
    /// this unit changes too, so the unit fails and the attempt starts again from a fresh count:
    /// racing evictors never each remove the same excess, and a tenant is never evicted below
    /// its cap by a count that others' evictions had made stale.
    async fn evict_oldest(&self, tenant: &TenantId, at_most: u32) -> Result<u64> {
        let now = self.results.now();
        let query = Query::new(Filter::all()).order(Order::asc("saved_at"));
        let oldest = self.results.list(Scope::Tenant(tenant), query, &PageRequest::first(at_most)).await?;
        let excess = self.count(tenant).await?.saturating_sub(self.options.max_entries);
        let take = usize::try_from(excess).unwrap_or(usize::MAX).min(oldest.items.len());
        let mut unit = self.results.unit(tenant);
        for victim in oldest.items.iter().take(take) {
            let mut evicted = victim.clone();
            (evicted.expires_at, evicted.result, evicted.error) = (now, Value::Null, None);
            unit.update(&self.results, &evicted)?;
        }
        unit.commit().await.map_err(|e| match e {
            // Expired or deleted since it was read: as good as changed by another writer.
            StorageError::NotFound { entity, id } => StorageError::VersionMismatch { entity, id, expected: 0, actual: 0 },
            other => other,
        })?;
        Ok(u64::try_from(take).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl<B: ?Sized> DecisionResultStore for DecisionResults<B> {
    async fn save(&self, result: &DecisionResult) -> Result<DecisionResult> {
        let now = self.results.now();
        let mut result = result.clone();
        result.saved_at = now;
        result.expires_at = crate::limits::add("ttl", now, self.options.ttl)?;
        let saved = self.results.upsert(&result).await?;
        // A replace leaves the count as it was: only a save that added a result (the first
        // version of a live record) can take the tenant over its cap. The last of concurrent
        // savers counts every result they added.
        if saved.version == 1 {
            self.enforce_cap(&result.tenant).await?;
        }
        Ok(saved)
    }

    async fn get(&self, tenant: &TenantId, request_id: &str) -> Result<Option<DecisionResult>> {
        self.results.get(tenant, request_id).await
    }

    async fn get_status(&self, tenant: &TenantId, request_id: &str) -> Result<Option<(String, Option<DateTime<Utc>>)>> {
        Ok(self.results.get(tenant, request_id).await?.map(|r| (r.status, r.completed_at)))
    }

    async fn list_recent(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<DecisionResult>> {
        self.results.list(Scope::Tenant(tenant), Query::new(Filter::all()).order(Order::desc("saved_at")), page).await
    }

    async fn count(&self, tenant: &TenantId) -> Result<u64> {
        self.results.count(Scope::Tenant(tenant), Filter::all()).await
    }

    async fn delete(&self, tenant: &TenantId, request_id: &str) -> Result<bool> {
        self.results.delete(tenant, request_id).await
    }

    async fn enforce_cap(&self, tenant: &TenantId) -> Result<u64> {
        let mut removed = 0u64;
        loop {
            let excess = self.count(tenant).await?.saturating_sub(self.options.max_entries);
            if excess == 0 {
                return Ok(removed);
            }
            let batch = u32::try_from(excess).unwrap_or(u32::MAX).min(crate::MAX_PAGE_SIZE);
            let evicted = crate::table::retry_contended(|| self.evict_oldest(tenant, batch)).await?;
            removed = removed.saturating_add(evicted);
            // Results added since are their savers' to evict; only an excess larger than one
            // page takes another round.
            if evicted < u64::from(batch) || u64::from(batch) >= excess {
                return Ok(removed);
            }
        }
    }

    async fn purge_expired(&self) -> Result<u64> {
        self.results.purge_expired().await
    }
}
