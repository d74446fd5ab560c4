//! Decision results: short-lived outcomes of decision-routing requests that clients poll for.
//!
//! Each result expires a fixed time after it was saved (reads stop seeing it at once; a sweep
//! removes it) and a tenant keeps at most a fixed number, the oldest going first. There is no
//! per-process cache: every instance reads the same rows.

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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest result, in bytes of JSON.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;
/// The cap is checked after this many saves (per store handle): between checks a tenant may hold
/// up to this many results over its cap.
pub const CAP_CHECK_EVERY: u64 = 32;

/// How long results live and how many a tenant keeps (`ARAGORA_DECISION_RETENTION_DAYS`,
/// `ARAGORA_DECISION_MAX_ENTRIES` in the configuration).
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
        if let Some(error) = &self.error {
            crate::limits::check_text("error", error)?;
        }
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
    /// Saves (or replaces) a result, live for the TTL from now; the oldest results of the tenant
    /// go when it holds more than the cap.
    async fn save(&self, result: &DecisionResult) -> Result<DecisionResult>;
    /// The live result.
    async fn get(&self, tenant: &TenantId, request_id: &str) -> Result<Option<DecisionResult>>;
    /// The live result's status and completion time.
    async fn get_status(&self, tenant: &TenantId, request_id: &str) -> Result<Option<(String, Option<DateTime<Utc>>)>>;
    /// One page of live results, newest first.
    async fn list_recent(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<DecisionResult>>;
    /// How many live results the tenant holds.
    async fn count(&self, tenant: &TenantId) -> Result<u64>;
    /// Deletes a result; whether a live one existed.
    async fn delete(&self, tenant: &TenantId, request_id: &str) -> Result<bool>;
    /// Removes the tenant's oldest results beyond the cap; how many.
    async fn enforce_cap(&self, tenant: &TenantId) -> Result<u64>;
    /// Removes every expired result, in every tenant; how many.
    async fn purge_expired(&self) -> Result<u64>;
}

/// [`DecisionResultStore`] on any backend.
pub struct DecisionResults<B: ?Sized = dyn Engine> {
    results: Table<DecisionResult>,
    options: DecisionResultOptions,
    saves: Arc<AtomicU64>,
    _backend: std::marker::PhantomData<fn(&B)>,
}

impl<B: ?Sized + 'static> crate::Store for DecisionResults<B> {
    fn on(engine: &dyn Engine) -> Self {
        Self {
            results: engine.table(),
            options: DecisionResultOptions::default(),
            saves: Arc::default(),
            _backend: std::marker::PhantomData,
        }
    }
}

impl<B: ?Sized> Clone for DecisionResults<B> {
    fn clone(&self) -> Self {
        Self { results: self.results.clone(), options: self.options, saves: Arc::clone(&self.saves), _backend: std::marker::PhantomData }
    }
}

impl<B: ?Sized> fmt::Debug for DecisionResults<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionResults").field("results", &self.results).field("options", &self.options).finish_non_exhaustive()
    }
}

crate::seed_constructors!(DecisionResults);

impl<B: ?Sized> DecisionResults<B> {
    /// The same store with other options.
    pub fn with_options(mut self, options: DecisionResultOptions) -> Result<Self> {
        if options.ttl <= TimeDelta::zero() || options.max_entries == 0 {
            return Err(StorageError::invalid("options", "the TTL and the cap must be positive"));
        }
        self.options = options;
        Ok(self)
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
        if self.saves.fetch_add(1, Ordering::Relaxed).checked_rem(CAP_CHECK_EVERY) == Some(0) {
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
        let held = self.count(tenant).await?;
        let excess = held.saturating_sub(self.options.max_entries);
        let mut removed = 0u64;
        while removed < excess {
            let batch = u32::try_from(excess.saturating_sub(removed)).unwrap_or(u32::MAX).min(crate::MAX_PAGE_SIZE);
            let query = Query::new(Filter::all()).order(Order::asc("saved_at"));
            let oldest = self.results.list(Scope::Tenant(tenant), query, &PageRequest::first(batch)).await?;
            if oldest.items.is_empty() {
                break;
            }
            let mut unit = self.results.unit(tenant);
            for result in &oldest.items {
                unit.delete(&self.results, &result.request_id)?;
            }
            let gone = unit.commit().await?.iter().filter(|applied| matches!(applied, crate::Applied::Deleted(true))).count();
            removed = removed.saturating_add(u64::try_from(gone).unwrap_or(0));
            if gone == 0 {
                break;
            }
        }
        Ok(removed)
    }

    async fn purge_expired(&self) -> Result<u64> {
        self.results.purge_expired().await
    }
}
