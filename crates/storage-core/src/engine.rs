//! What a backend is: an [`Engine`] — its generic [`Tables`] plus its few native operations (the
//! webhook claim, the job queue). Every store's logic is written once, over `&dyn Engine`.
//!
//! [`Tables`] works on encoded rows (identity, index values, metadata, body text); the typed
//! [`crate::Table`] in front of it validates, seals, encodes and decodes, so every backend —
//! memory included — stores exactly the same bytes and refuses exactly the same input.

use crate::document::{RecordMeta, TableDef, Value};
use crate::query::{Filter, Position, Query, Scope};
use crate::stores::job_queue::JobRows;
use crate::stores::webhook::{WebhookEvents, WebhookOptions};
use crate::{DatabaseBackend, Result, Sealer, SharedClock, TenantId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::Arc;

/// One stored record as the engine returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its tenant.
    pub tenant: String,
    /// Its id.
    pub id: String,
    /// Its metadata.
    pub meta: RecordMeta,
    /// The values of its counter columns, in [`TableDef::counters`] order.
    pub counters: Vec<i64>,
    /// The stored body (JSON).
    pub body: String,
}

/// One record to write, encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct RowWrite {
    /// Its table.
    pub table: &'static TableDef,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its id.
    pub id: String,
    /// Its index values, in [`TableDef::indexes`] order (checked and normalised).
    pub indexes: Vec<Option<Value>>,
    /// When it expires (tables with [`TableDef::expires`]).
    pub expires_at: Option<DateTime<Utc>>,
    /// The body (JSON), checked against the limits.
    pub body: String,
    /// The searchable text (tables with [`TableDef::search`]): control characters replaced by
    /// spaces, at most [`crate::fts::MAX_SEARCH_TEXT_BYTES`].
    pub search: Option<String>,
}

/// How a write treats an existing record. An expired record counts as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Only if absent; otherwise `Conflict`.
    Insert,
    /// Insert or replace; a replaced record keeps `created_at` and gets the next version.
    Upsert,
    /// Only if present at this version; otherwise `NotFound` or `VersionMismatch`.
    Update {
        /// The version the caller read.
        expected: u64,
    },
}

/// One change of an atomic unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Writes a record.
    Write {
        /// The record.
        row: RowWrite,
        /// How.
        mode: WriteMode,
    },
    /// Deletes a record if it exists.
    Delete {
        /// Its table.
        table: &'static TableDef,
        /// Its id.
        id: String,
    },
}

impl Change {
    /// The table and id this change touches.
    pub fn target(&self) -> (&'static TableDef, &str) {
        match self {
            Self::Write { row, .. } => (row.table, &row.id),
            Self::Delete { table, id } => (table, id),
        }
    }
}

/// What one change of a unit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The record was written with this metadata.
    Written(RecordMeta),
    /// Whether a live record was deleted.
    Deleted(bool),
}

/// One page of rows and where the next page starts (`None` on the last page). A backend may
/// return fewer rows than asked and still a `next`, when it bounds the work of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowPage {
    /// The rows, in the list's order.
    pub rows: Vec<Row>,
    /// The position to continue after.
    pub next: Option<Position>,
}

impl RowPage {
    /// A page from up to `limit + 1` rows fetched in order, each with its position: the extra
    /// one only proves that a next page exists.
    pub fn from_overfetch(mut rows: Vec<(Row, Position)>, limit: u32) -> Self {
        let limit = limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|(_, position)| position.clone())
        } else {
            None
        };
        Self { rows: rows.into_iter().map(|(row, _)| row).collect(), next }
    }
}

/// One page of a full-text search: the best matches first, and how many match in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPage {
    /// The rows, best match first (ties by id).
    pub rows: Vec<Row>,
    /// How many live rows match the search and the filter.
    pub total: u64,
}

/// One increment of a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The counter's position among the table's indexes.
    pub column: usize,
    /// What to add (may be negative).
    pub by: i64,
    /// The counter before the step must be at or below this (for a positive step) or at or
    /// above it (for a negative one), so the result never passes the cap.
    pub limit: i64,
}

/// The outcome of an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incremented {
    /// The new value and the record's new metadata.
    To(i64, RecordMeta),
    /// The record is absent (or expired).
    Missing,
    /// The step would have passed the bound; nothing changed. The current value.
    Capped(i64),
}

/// A backend's storage of [`crate::Document`] tables, on encoded rows. Implementations trust
/// their arguments: [`crate::Table`] checks them first. Every read takes `now` and hides expired
/// records; every write treats an expired record as absent.
#[async_trait]
pub trait Tables: Send + Sync + fmt::Debug {
    /// The live records among `ids` in `tenant`, in any order.
    async fn get(&self, table: &'static TableDef, tenant: &TenantId, ids: &[String], now: DateTime<Utc>) -> Result<Vec<Row>>;
    /// Applies every change or none (one transaction, one script, one critical section): the
    /// first change that cannot apply fails the unit with its error.
    async fn apply(&self, tenant: &TenantId, changes: Vec<Change>, now: DateTime<Utc>) -> Result<Vec<Applied>>;
    /// Up to `limit` live rows passing the query, after `after`, in the query's order.
    async fn list(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        query: &Query,
        after: Option<&Position>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<RowPage>;
    /// How many live rows pass `filter`.
    async fn count(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64>;
    /// Deletes the live rows passing `filter`; how many.
    async fn delete_where(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64>;
    /// Deletes every expired row of every tenant; how many.
    async fn purge_expired(&self, table: &'static TableDef, now: DateTime<Utc>) -> Result<u64>;
    /// Applies `step` to a counter of a live record, in place.
    async fn increment(&self, table: &'static TableDef, tenant: &TenantId, id: &str, step: Step, now: DateTime<Utc>)
    -> Result<Incremented>;
    /// The live rows of `tenant` passing `filter` whose search text holds every phrase of
    /// `search`, best first (ranked as each backend documents), `limit` of them after skipping
    /// `offset`, with the number of all matches.
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        search: &crate::fts::Search,
        filter: &Filter,
        limit: u32,
        offset: u32,
        now: DateTime<Utc>,
    ) -> Result<SearchPage>;
    /// The tenant and id of the live record whose unique index `column` (a position) has
    /// `value`: in `scope`'s tenant, or across tenants for a global index.
    async fn find_unique(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        column: usize,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<(TenantId, String)>>;
    /// The live record whose unique index `column` (a position) had `value`, in `scope`'s tenant
    /// or across tenants for a global index: by default [`Tables::find_unique`] then
    /// [`Tables::get`] (cheap in process; the caller checks the value still holds), in one round
    /// trip on a backend that has one per call.
    async fn get_unique(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        column: usize,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<Row>> {
        let Some((found, id)) = self.find_unique(table, scope, column, value, now).await? else { return Ok(None) };
        if scope.tenant().is_some_and(|tenant| tenant != &found) {
            return Ok(None);
        }
        Ok(self.get(table, &found, &[id], now).await?.pop())
    }
}

/// What a backend hands its stores: its generic tables, its native operations, the sealer, the
/// clock and the webhook settings.
#[derive(Debug, Clone)]
pub struct EngineParts {
    /// The generic tables.
    pub tables: Arc<dyn Tables>,
    /// Webhook events, natively.
    pub webhook_events: Arc<dyn WebhookEvents>,
    /// Jobs, natively.
    pub job_rows: Arc<dyn JobRows>,
    /// Seals secret fields before they are stored.
    pub sealer: Arc<dyn Sealer>,
    /// The clock every record is stamped with.
    pub clock: SharedClock,
    /// Webhook retention.
    pub webhook: WebhookOptions,
}

/// A backend: which one it is, its parts, and how it closes.
#[async_trait]
pub trait Engine: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> DatabaseBackend;
    /// What its stores are built from.
    fn parts(&self) -> &EngineParts;
    /// Closes the connections; later calls fail with `Unavailable`.
    async fn close(&self);

    /// Whether the backend answers, how fast, and how busy its connections are. By default one
    /// timed read; backends add their pools, replicas and roles.
    async fn health(&self) -> crate::health::Health {
        crate::health::probe(self.backend(), self.parts().tables.as_ref(), &self.parts().clock).await
    }

    /// The generic tables.
    fn tables(&self) -> Arc<dyn Tables> {
        Arc::clone(&self.parts().tables)
    }
    /// Seals secret fields before they are stored.
    fn sealer(&self) -> Arc<dyn Sealer> {
        Arc::clone(&self.parts().sealer)
    }
    /// The clock every record is stamped with.
    fn clock(&self) -> SharedClock {
        Arc::clone(&self.parts().clock)
    }
    /// Webhook events, natively.
    fn webhook_events(&self) -> Arc<dyn WebhookEvents> {
        Arc::clone(&self.parts().webhook_events)
    }
    /// Jobs, natively.
    fn job_rows(&self) -> Arc<dyn JobRows> {
        Arc::clone(&self.parts().job_rows)
    }
    /// Webhook retention.
    fn webhook_options(&self) -> WebhookOptions {
        self.parts().webhook
    }
}

impl dyn Engine + '_ {
    /// The typed table of `D` on this engine.
    pub fn table<D: crate::Document>(&self) -> crate::Table<D> {
        crate::Table::new(self.backend(), self.tables(), self.sealer(), self.clock())
    }
}

/// A store built on an engine: its logic is written once, for every backend.
pub trait Store: Sized + Send + Sync + 'static {
    /// The store on `engine`.
    fn on(engine: &dyn Engine) -> Self;
}

/// A backend that opens from one argument (a path, a URL): what the seed's per-backend store
/// names do (`SQLiteIntegrationStore::open("/path")`).
#[async_trait]
pub trait OpenEngine: Engine + Sized {
    /// What it opens: a path, a URL.
    type Target: Send;
    /// Opens it with the settings of the environment.
    async fn open_engine(target: Self::Target) -> Result<Self>;
}

/// `engine` with other parts: the same data and connections, another sealer or instrumented
/// tables. Closing it closes `engine`.
pub fn with_parts(engine: Arc<dyn Engine>, parts: EngineParts) -> Arc<dyn Engine> {
    Arc::new(Reparted { inner: engine, parts })
}

/// `engine` sealing with `sealer`: the same data under another key ring (key rotation, tests
/// that write under one ring and read under another).
pub fn with_sealer(engine: Arc<dyn Engine>, sealer: Arc<dyn Sealer>) -> Arc<dyn Engine> {
    let parts = EngineParts { sealer, ..engine.parts().clone() };
    with_parts(engine, parts)
}

#[derive(Debug)]
struct Reparted {
    inner: Arc<dyn Engine>,
    parts: EngineParts,
}

#[async_trait]
impl Engine for Reparted {
    fn backend(&self) -> DatabaseBackend {
        self.inner.backend()
    }
    fn parts(&self) -> &EngineParts {
        &self.parts
    }
    async fn close(&self) {
        self.inner.close().await;
    }
    async fn health(&self) -> crate::health::Health {
        self.inner.health().await
    }
}
