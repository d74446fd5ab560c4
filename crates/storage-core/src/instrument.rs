//! Every engine operation, observed: a `tracing` span and metrics through the `metrics` facade.
//!
//! `Storage` wraps its engine with [`instrumented`], so every store's every call passes here once
//! per round trip it makes. Nothing secret is recorded: no values, no ids; tenants appear in spans
//! as a short hash, and as metric labels only when [`Instrumentation::tenant_labels`] asks.
//!
//! - span `storage` (target `aragora_storage`, level DEBUG) with `backend`, `store`, `op`, `tenant`
//!   (hash);
//! - counter `aragora_storage_operations_total{backend, store, op}`;
//! - counter `aragora_storage_errors_total{backend, store, op, kind}`;
//! - histogram `aragora_storage_operation_seconds{backend, store, op}`.

use crate::document::{TableDef, Value};
use crate::engine::{Applied, Change, Engine, EngineParts, Incremented, Row, RowPage, SearchPage, Step, Tables, with_parts};
use crate::query::{Filter, Position, Query, Scope};
use crate::stores::job_queue::{Enqueued, Grant, Job, JobFilter, JobRows, JobState, Settle};
use crate::stores::webhook::{ClaimOutcome, Delivery, EventState, WebhookEvents};
use crate::{DatabaseBackend, Result, StorageError, TenantId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

/// What the instrumentation records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Instrumentation {
    /// Adds a `tenant` label (the tenant id itself) to every metric. Off by default: tenant ids
    /// may name customers, and one label value per tenant multiplies the series.
    pub tenant_labels: bool,
}

/// `engine` with every operation of its tables, webhook events and jobs observed.
pub fn instrumented(engine: Arc<dyn Engine>, options: Instrumentation) -> Arc<dyn Engine> {
    let parts = engine.parts().clone();
    let observer = Observer { backend: engine.backend(), options };
    let parts = EngineParts {
        tables: Arc::new(Observed { inner: parts.tables, observer }),
        webhook_events: Arc::new(Observed { inner: parts.webhook_events, observer }),
        job_rows: Arc::new(Observed { inner: parts.job_rows, observer }),
        ..parts
    };
    with_parts(engine, parts)
}

/// A tenant id as spans show it: the first 8 bytes of its SHA-256, in hex.
struct TenantHash<'a>(Option<&'a str>);

impl fmt::Display for TenantHash<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(tenant) = self.0 else { return f.write_str("-") };
        let digest = ring::digest::digest(&ring::digest::SHA256, tenant.as_bytes());
        digest.as_ref().iter().take(8).try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[derive(Debug, Clone, Copy)]
struct Observer {
    backend: DatabaseBackend,
    options: Instrumentation,
}

impl Observer {
    async fn observe<T>(
        &self,
        store: &'static str,
        op: &'static str,
        tenant: Option<&str>,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let span = tracing::debug_span!(
            target: "aragora_storage",
            "storage",
            backend = self.backend.name(),
            store,
            op,
            tenant = %TenantHash(tenant),
        );
        let started = Instant::now();
        let outcome = work.instrument(span).await;
        let mut labels =
            vec![metrics::Label::new("backend", self.backend.name()), metrics::Label::new("store", store), metrics::Label::new("op", op)];
        if self.options.tenant_labels {
            labels.push(metrics::Label::new("tenant", tenant.unwrap_or("-").to_owned()));
        }
        metrics::counter!("aragora_storage_operations_total", labels.clone()).increment(1);
        metrics::histogram!("aragora_storage_operation_seconds", labels.clone()).record(started.elapsed().as_secs_f64());
        if let Err(e) = &outcome {
            labels.push(metrics::Label::new("kind", e.kind()));
            metrics::counter!("aragora_storage_errors_total", labels).increment(1);
        }
        outcome
    }
}

/// A part of an engine with an [`Observer`] in front.
struct Observed<P: ?Sized> {
    inner: Arc<P>,
    observer: Observer,
}

impl<P: ?Sized> fmt::Debug for Observed<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observed").field("backend", &self.observer.backend).finish_non_exhaustive()
    }
}

/// The store a unit writes to: its first change's table (units mostly write one store).
fn unit_store(changes: &[Change]) -> &'static str {
    changes.first().map_or("unit", |change| change.target().0.name)
}

const WEBHOOK_EVENTS: &str = "webhook_events";
const JOBS: &str = "jobs";

#[async_trait]
impl Tables for Observed<dyn Tables> {
    async fn get(&self, table: &'static TableDef, tenant: &TenantId, ids: &[String], now: DateTime<Utc>) -> Result<Vec<Row>> {
        self.observer.observe(table.name, "get", Some(tenant.as_str()), self.inner.get(table, tenant, ids, now)).await
    }
    async fn apply(&self, tenant: &TenantId, changes: Vec<Change>, now: DateTime<Utc>) -> Result<Vec<Applied>> {
        let store = unit_store(&changes);
        self.observer.observe(store, "apply", Some(tenant.as_str()), self.inner.apply(tenant, changes, now)).await
    }
    async fn list(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        query: &Query,
        after: Option<&Position>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<RowPage> {
        let tenant = scope.tenant().map(TenantId::as_str);
        self.observer.observe(table.name, "list", tenant, self.inner.list(table, scope, query, after, limit, now)).await
    }
    async fn count(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let tenant = scope.tenant().map(TenantId::as_str);
        self.observer.observe(table.name, "count", tenant, self.inner.count(table, scope, filter, now)).await
    }
    async fn delete_where(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let tenant = scope.tenant().map(TenantId::as_str);
        self.observer.observe(table.name, "delete_where", tenant, self.inner.delete_where(table, scope, filter, now)).await
    }
    async fn purge_expired(&self, table: &'static TableDef, now: DateTime<Utc>) -> Result<u64> {
        self.observer.observe(table.name, "purge_expired", None, self.inner.purge_expired(table, now)).await
    }
    async fn increment(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        id: &str,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<Incremented> {
        self.observer.observe(table.name, "increment", Some(tenant.as_str()), self.inner.increment(table, tenant, id, step, now)).await
    }
    async fn search(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        search: &crate::fts::Search,
        filter: &Filter,
        limit: u32,
        offset: u32,
        now: DateTime<Utc>,
    ) -> Result<SearchPage> {
        let work = self.inner.search(table, tenant, search, filter, limit, offset, now);
        self.observer.observe(table.name, "search", Some(tenant.as_str()), work).await
    }
    async fn find_unique(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        column: usize,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<(TenantId, String)>> {
        let tenant = scope.tenant().map(TenantId::as_str);
        self.observer.observe(table.name, "find_unique", tenant, self.inner.find_unique(table, scope, column, value, now)).await
    }
    async fn get_unique(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        column: usize,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<Row>> {
        let tenant = scope.tenant().map(TenantId::as_str);
        self.observer.observe(table.name, "get_unique", tenant, self.inner.get_unique(table, scope, column, value, now)).await
    }
}

#[async_trait]
impl WebhookEvents for Observed<dyn WebhookEvents> {
    async fn claim(
        &self,
        tenant: &TenantId,
        event_id: &str,
        token: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimOutcome>> {
        let work = self.inner.claim(tenant, event_id, token, now, lease_until);
        self.observer.observe(WEBHOOK_EVENTS, "claim", Some(tenant.as_str()), work).await
    }
    async fn finish(&self, tenant: &TenantId, event_id: &str, token: Uuid, delivery: &Delivery) -> Result<bool> {
        let work = self.inner.finish(tenant, event_id, token, delivery);
        self.observer.observe(WEBHOOK_EVENTS, "finish", Some(tenant.as_str()), work).await
    }
    async fn abandon(&self, tenant: &TenantId, event_id: &str, token: Uuid) -> Result<bool> {
        self.observer.observe(WEBHOOK_EVENTS, "abandon", Some(tenant.as_str()), self.inner.abandon(tenant, event_id, token)).await
    }
    async fn record(&self, tenant: &TenantId, delivery: &Delivery) -> Result<()> {
        self.observer.observe(WEBHOOK_EVENTS, "record", Some(tenant.as_str()), self.inner.record(tenant, delivery)).await
    }
    async fn state(&self, tenant: &TenantId, event_id: &str, now: DateTime<Utc>) -> Result<Option<EventState>> {
        self.observer.observe(WEBHOOK_EVENTS, "state", Some(tenant.as_str()), self.inner.state(tenant, event_id, now)).await
    }
    async fn purge(&self, now: DateTime<Utc>) -> Result<u64> {
        self.observer.observe(WEBHOOK_EVENTS, "purge", None, self.inner.purge(now)).await
    }
    async fn count(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<u64> {
        self.observer.observe(WEBHOOK_EVENTS, "count", Some(tenant.as_str()), self.inner.count(tenant, now)).await
    }
}

/// The tenant of a batch of jobs, when they share one.
fn jobs_tenant(jobs: &[Job]) -> Option<&str> {
    let first = jobs.first()?.tenant.as_str();
    jobs.iter().all(|job| job.tenant.as_str() == first).then_some(first)
}

#[async_trait]
impl JobRows for Observed<dyn JobRows> {
    async fn insert(&self, jobs: &[Job]) -> Result<Vec<Enqueued>> {
        self.observer.observe(JOBS, "insert", jobs_tenant(jobs), self.inner.insert(jobs)).await
    }
    async fn claim(&self, queue: &str, grant: &Grant, limit: u32) -> Result<Vec<Job>> {
        self.observer.observe(JOBS, "claim", None, self.inner.claim(queue, grant, limit)).await
    }
    async fn settle(&self, changes: &[Settle]) -> Result<Vec<bool>> {
        self.observer.observe(JOBS, "settle", None, self.inner.settle(changes)).await
    }
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Job>> {
        self.observer.observe(JOBS, "get", Some(tenant.as_str()), self.inner.get(tenant, id)).await
    }
    async fn list(&self, filter: &JobFilter, after: Option<&str>, limit: u32) -> Result<Vec<Job>> {
        self.observer.observe(JOBS, "list", None, self.inner.list(filter, after, limit)).await
    }
    async fn count(&self, filter: &JobFilter) -> Result<u64> {
        self.observer.observe(JOBS, "count", None, self.inner.count(filter)).await
    }
    async fn lapsed(&self, queue: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        self.observer.observe(JOBS, "lapsed", None, self.inner.lapsed(queue, now, limit)).await
    }
    async fn prune(&self, queue: &str, states: &[JobState], before: DateTime<Utc>, limit: u32) -> Result<u64> {
        self.observer.observe(JOBS, "prune", None, self.inner.prune(queue, states, before, limit)).await
    }
}

/// The kind of an error, as metrics label it.
impl StorageError {
    /// A stable snake_case name of the error's kind (`not_found`, `unavailable`, ...), for
    /// metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::VersionMismatch { .. } => "version_mismatch",
            Self::LeaseLost { .. } => "lease_lost",
            Self::InvalidInput { .. } => "invalid_input",
            Self::Unavailable { .. } => "unavailable",
            Self::Indeterminate { .. } => "indeterminate",
            Self::Timeout { .. } => "timeout",
            Self::Contended { .. } => "contended",
            Self::Crypto { .. } => "crypto",
            Self::Schema { .. } => "schema",
            Self::Config { .. } => "config",
            Self::NotSupported { .. } => "not_supported",
            Self::Backend { .. } => "backend",
        }
    }
}
