//! The typed table every store uses: a backend's [`Tables`] behind the rules every store keeps.
//! Input is checked before a backend sees it, secrets are sealed and bodies encoded here (so every
//! backend, memory included, stores the same bytes), time comes from the injected clock, and lists
//! page with opaque keyset cursors.

use crate::document::{Body, Document, RecordMeta, SealedPart, Secrets, StoredBody, Unique, Value};
use crate::engine::{Applied, Change, Incremented, Row, RowWrite, Step, Tables, WriteMode};
use crate::limits::{MAX_INT, check_body, check_instant, check_int};
use crate::query::{Filter, Position, Query, Scope, check_value};
use crate::secret::SealContext;
use crate::{Cursor, DatabaseBackend, Page, PageRequest, Result, Sealer, Secret, SharedClock, StorageError, TenantId, validate_id};
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// The most changes one atomic unit may carry, and the most ids one `get_many` may name.
pub const MAX_BATCH: usize = 1_000;
/// The deepest a search pages: results past it are better found by a narrower query.
pub const MAX_SEARCH_OFFSET: u32 = 10_000;
/// How long [`Table::patch`] keeps retrying a record that others keep changing.
pub const PATCH_DEADLINE: Duration = Duration::from_secs(30);
/// The field name sealed secrets are bound to (they are sealed together, as one value).
const SECRETS_FIELD: &str = "*";

/// A [`Document`] table on one backend.
pub struct Table<D> {
    backend: DatabaseBackend,
    tables: Arc<dyn Tables>,
    sealer: Arc<dyn Sealer>,
    clock: SharedClock,
    _document: PhantomData<fn() -> D>,
}

impl<D> Clone for Table<D> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend,
            tables: Arc::clone(&self.tables),
            sealer: Arc::clone(&self.sealer),
            clock: Arc::clone(&self.clock),
            _document: PhantomData,
        }
    }
}

impl<D: Document> fmt::Debug for Table<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").field("table", &D::TABLE.name).field("backend", &self.backend).finish_non_exhaustive()
    }
}

fn corrupt(backend: DatabaseBackend, what: impl fmt::Display) -> StorageError {
    StorageError::corrupt(backend, what)
}

impl<D: Document> Table<D> {
    /// The table of `D` over a backend's `tables`.
    pub fn new(backend: DatabaseBackend, tables: Arc<dyn Tables>, sealer: Arc<dyn Sealer>, clock: SharedClock) -> Self {
        Self { backend, tables, sealer, clock, _document: PhantomData }
    }

    /// The backend this table is on.
    pub fn backend(&self) -> DatabaseBackend {
        self.backend
    }

    /// The clock this table stamps records with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The current instant, as stored (microseconds).
    pub fn now(&self) -> DateTime<Utc> {
        crate::clock::truncate_micros(self.clock.now())
    }

    fn context<'a>(tenant: &'a str, id: &'a str) -> SealContext<'a> {
        SealContext { store: D::TABLE.name, tenant, record_id: id, field: SECRETS_FIELD }
    }

    /// Checks and encodes a record for writing.
    fn encode(&self, doc: &D) -> Result<RowWrite> {
        let table = &D::TABLE;
        let id = doc.id();
        validate_id(table.id_field, &id)?;
        doc.validate()?;
        let mut indexes = doc.index_values();
        if indexes.len() != table.indexes.len() {
            return Err(StorageError::backend(
                self.backend,
                format!("{} gives {} index values for {} indexes", table.name, indexes.len(), table.indexes.len()),
            ));
        }
        for (spec, value) in table.indexes.iter().zip(indexes.iter_mut()) {
            if let Some(value) = value {
                check_value(table, spec.column, spec.kind, value)?;
            }
        }
        let expires_at = match (table.expires, doc.expires_at()) {
            (true, Some(at)) => Some(check_instant("expires_at", at)?),
            (_, None) => None,
            (false, Some(_)) => return Err(StorageError::backend(self.backend, format!("{} does not declare expiry", table.name))),
        };
        let secrets = doc.secrets();
        let sealed = if table.sealed {
            let clear: BTreeMap<&str, &str> = secrets.iter().map(|(name, value)| (name.as_str(), value.expose().as_str())).collect();
            let clear = serde_json::to_string(&clear).map_err(|e| StorageError::invalid("secrets", e))?;
            Some(self.sealer.seal(&Self::context(doc.tenant().as_str(), &id), &clear)?)
        } else if secrets.is_empty() {
            None
        } else {
            return Err(StorageError::backend(self.backend, format!("{} has secrets but does not declare them sealed", table.name)));
        };
        let body = serde_json::to_string(&Body { record: doc, sealed }).map_err(|e| StorageError::invalid("record", e))?;
        check_body(&body)?;
        let search = table.search.then(|| crate::fts::searchable(&doc.search_text()));
        Ok(RowWrite { table, tenant: doc.tenant().clone(), id, indexes, expires_at, body, search })
    }

    /// Rebuilds a record from its row: metadata and counters from the columns, secrets opened.
    /// A body that names another tenant or id than its row, or lost its sealed part, is refused.
    fn decode(&self, row: Row) -> Result<D> {
        let table = &D::TABLE;
        let stored: StoredBody<D> =
            serde_json::from_str(&row.body).map_err(|e| corrupt(self.backend, format!("{} `{}`: {e}", table.entity, row.id)))?;
        let StoredBody { mut record, sealed } = stored;
        if record.tenant().as_str() != row.tenant || record.id() != row.id {
            return Err(corrupt(
                self.backend,
                format!("{} body for `{}`/`{}` names `{}`/`{}`", table.entity, row.tenant, row.id, record.tenant(), record.id()),
            ));
        }
        record.set_meta(row.meta);
        if row.counters.len() != table.counters().count() {
            return Err(corrupt(self.backend, format!("{} `{}` has {} counters", table.entity, row.id, row.counters.len())));
        }
        for ((_, spec), value) in table.counters().zip(row.counters) {
            record.set_counter(spec.column, value)?;
        }
        match (table.sealed, sealed) {
            (true, Some(sealed)) => {
                let clear = self.sealer.open(&Self::context(&row.tenant, &row.id), &sealed)?;
                let secrets: BTreeMap<String, String> = serde_json::from_str(clear.expose())
                    .map_err(|_| StorageError::crypto(format!("the sealed fields of {} `{}` do not decode", table.entity, row.id)))?;
                record.set_secrets(secrets.into_iter().map(|(name, value)| (name, Secret::new(value))).collect::<Secrets>())?;
            }
            (true, None) => {
                return Err(StorageError::crypto(format!(
                    "the sealed fields of {} `{}` are missing from its stored body",
                    table.entity, row.id
                )));
            }
            (false, None) => {}
            (false, Some(_)) => {
                return Err(corrupt(self.backend, format!("{} `{}` has sealed fields it does not declare", table.entity, row.id)));
            }
        }
        Ok(record)
    }

    fn stamped(doc: &D, meta: RecordMeta) -> D {
        let mut stored = doc.clone();
        stored.set_meta(meta);
        stored
    }

    async fn write(&self, doc: &D, mode: WriteMode) -> Result<D> {
        let row = self.encode(doc)?;
        let applied = self.tables.apply(doc.tenant(), vec![Change::Write { row, mode }], self.now()).await?;
        match applied.first() {
            Some(Applied::Written(meta)) => Ok(Self::stamped(doc, *meta)),
            other => Err(StorageError::backend(self.backend, format!("a write reported {other:?}"))),
        }
    }

    /// The body a backend stores for `doc` (benchmarks write it through the raw driver).
    #[doc(hidden)]
    pub fn encode_body(&self, doc: &D) -> Result<String> {
        self.encode(doc).map(|row| row.body)
    }

    /// Reads a record.
    pub async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<D>> {
        validate_id(D::TABLE.id_field, id)?;
        let rows = self.tables.get(&D::TABLE, tenant, &[id.to_owned()], self.now()).await?;
        rows.into_iter().next().map(|row| self.decode(row)).transpose()
    }

    /// Reads several records of one tenant in one round trip; the ones that exist, in the order
    /// of `ids` (a repeated id once).
    pub async fn get_many(&self, tenant: &TenantId, ids: &[&str]) -> Result<Vec<D>> {
        if ids.len() > MAX_BATCH {
            return Err(StorageError::invalid("ids", format!("{} ids; at most {MAX_BATCH} per call", ids.len())));
        }
        let mut wanted: Vec<String> = Vec::with_capacity(ids.len());
        for id in ids {
            validate_id(D::TABLE.id_field, id)?;
            if !wanted.iter().any(|w| w == id) {
                wanted.push((*id).to_owned());
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.tables.get(&D::TABLE, tenant, &wanted, self.now()).await?;
        let mut found: BTreeMap<String, Row> = rows.into_iter().map(|row| (row.id.clone(), row)).collect();
        wanted.iter().filter_map(|id| found.remove(id)).map(|row| self.decode(row)).collect()
    }

    /// Creates a record; [`StorageError::Conflict`] if its id (or a unique index value) is taken.
    pub async fn insert(&self, doc: &D) -> Result<D> {
        self.write(doc, WriteMode::Insert).await
    }

    /// Creates or replaces a record, keeping `created_at`.
    pub async fn upsert(&self, doc: &D) -> Result<D> {
        self.write(doc, WriteMode::Upsert).await
    }

    /// Replaces a record if it still has the version `doc` was read at.
    pub async fn update(&self, doc: &D) -> Result<D> {
        self.write(doc, WriteMode::Update { expected: doc.meta().version }).await
    }

    /// Deletes a record; whether it existed.
    pub async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        validate_id(D::TABLE.id_field, id)?;
        let change = Change::Delete { table: &D::TABLE, id: id.to_owned() };
        let applied = self.tables.apply(tenant, vec![change], self.now()).await?;
        Ok(matches!(applied.first(), Some(Applied::Deleted(true))))
    }

    /// Applies `change` to the current record and writes it back atomically: if another writer
    /// got in between, the change is re-applied to the newer record, after a short randomised
    /// pause that grows with contention. No update is lost, and contention delays a caller (for
    /// up to [`PATCH_DEADLINE`]) rather than failing it.
    pub async fn patch(&self, tenant: &TenantId, id: &str, change: impl Fn(&mut D) -> Result<()> + Send + Sync) -> Result<D> {
        retry_contended(|| async {
            let Some(mut doc) = self.get(tenant, id).await? else {
                return Err(StorageError::not_found(D::TABLE.entity, id));
            };
            change(&mut doc)?;
            self.update(&doc).await
        })
        .await
    }

    fn position(&self, scope: Scope<'_>, query: &Query, page: &PageRequest) -> Result<Option<Position>> {
        let all_tenants = matches!(scope, Scope::AllTenants);
        page.cursor().map(|cursor| Position::decode(cursor.as_str(), &D::TABLE, &query.order, all_tenants)).transpose()
    }

    /// One page of the records passing `query` in `scope`, in the query's order.
    pub async fn list(&self, scope: Scope<'_>, query: Query, page: &PageRequest) -> Result<Page<D>> {
        let query = query.checked(&D::TABLE)?;
        let limit = page.limit()?;
        let after = self.position(scope, &query, page)?;
        let rows = self.tables.list(&D::TABLE, scope, &query, after.as_ref(), limit, self.now()).await?;
        let items = rows.rows.into_iter().map(|row| self.decode(row)).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next: rows.next.map(|position| Cursor::from_string(position.encode(&query.order))) })
    }

    /// Every record passing `query` in `scope`, read page by page: for sets that are small by
    /// nature (a user's linked providers, a debate's decisions).
    pub async fn list_all(&self, scope: Scope<'_>, query: Query) -> Result<Vec<D>> {
        let mut request = PageRequest::first(crate::MAX_PAGE_SIZE);
        let mut all = Vec::new();
        loop {
            let page = self.list(scope, query.clone(), &request).await?;
            all.extend(page.items);
            match request.next(page.next.as_ref()) {
                Some(next) => request = next,
                None => return Ok(all),
            }
        }
    }

    /// How many records pass `filter` in `scope`.
    pub async fn count(&self, scope: Scope<'_>, filter: Filter) -> Result<u64> {
        let filter = filter.checked(&D::TABLE)?;
        self.tables.count(&D::TABLE, scope, &filter, self.now()).await
    }

    /// Deletes the records passing `filter` in `scope`; how many.
    pub async fn delete_where(&self, scope: Scope<'_>, filter: Filter) -> Result<u64> {
        let filter = filter.checked(&D::TABLE)?;
        self.tables.delete_where(&D::TABLE, scope, &filter, self.now()).await
    }

    /// Deletes every expired record, in every tenant; how many.
    pub async fn purge_expired(&self) -> Result<u64> {
        if !D::TABLE.expires {
            return Ok(0);
        }
        self.tables.purge_expired(&D::TABLE, self.now()).await
    }

    /// Adds `by` to the counter `column` without reading the record first; the new value. With
    /// `cap`, the counter never passes it (at most `cap` for a positive step, at least `cap` for
    /// a negative one): a step that would is refused with `Conflict` and changes nothing.
    pub async fn increment(&self, tenant: &TenantId, id: &str, column: &'static str, by: i64, cap: Option<i64>) -> Result<i64> {
        validate_id(D::TABLE.id_field, id)?;
        let (position, spec) = D::TABLE.require_index(column)?;
        if !spec.counter {
            return Err(StorageError::invalid(column, format!("is not a counter of {}", D::TABLE.name)));
        }
        check_int("by", by)?;
        let cap = cap.unwrap_or(if by >= 0 { MAX_INT } else { -MAX_INT });
        check_int("cap", cap)?;
        // Both within ±2^53, so the difference cannot overflow.
        let limit = cap.checked_sub(by).ok_or_else(|| StorageError::invalid("by", "out of range"))?;
        match self.tables.increment(&D::TABLE, tenant, id, Step { column: position, by, limit }, self.now()).await? {
            Incremented::To(value, _) => Ok(value),
            Incremented::Missing => Err(StorageError::not_found(D::TABLE.entity, id)),
            Incremented::Capped(value) => {
                Err(StorageError::conflict(D::TABLE.entity, id, format!("`{column}` is {value}; adding {by} would pass {cap}")))
            }
        }
    }

    fn unique_column(column: &'static str, value: impl Into<Value>) -> Result<(usize, Unique, Value)> {
        let (position, spec) = D::TABLE.require_index(column)?;
        let mut value = value.into();
        check_value(&D::TABLE, column, spec.kind, &mut value)?;
        Ok((position, spec.unique, value))
    }

    /// The record a unique lookup found, if it still carries `value` in `column` (a position):
    /// it may have changed between a lookup and a read.
    fn still_holding(&self, row: Option<Row>, position: usize, value: &Value) -> Result<Option<D>> {
        let doc = row.map(|row| self.decode(row)).transpose()?;
        Ok(doc.filter(|doc| doc.index_values().get(position).and_then(Option::as_ref) == Some(value)))
    }

    /// The record of `tenant` whose unique index `column` has `value`.
    pub async fn get_by_unique(&self, tenant: &TenantId, column: &'static str, value: impl Into<Value>) -> Result<Option<D>> {
        let (position, unique, value) = Self::unique_column(column, value)?;
        if unique == Unique::No {
            return Err(StorageError::invalid(column, format!("is not a unique index of {}", D::TABLE.name)));
        }
        let row = self.tables.get_unique(&D::TABLE, Scope::Tenant(tenant), position, &value, self.now()).await?;
        self.still_holding(row, position, &value)
    }

    /// The tenant and id of the record whose globally unique index `column` has `value`: the
    /// lookup that does not know the tenant (a token digest, an external id, an email at login).
    pub async fn locate(&self, column: &'static str, value: impl Into<Value>) -> Result<Option<(TenantId, String)>> {
        let (position, unique, value) = Self::unique_column(column, value)?;
        if unique != Unique::Global {
            return Err(StorageError::invalid(column, format!("is not a global unique index of {}", D::TABLE.name)));
        }
        self.tables.find_unique(&D::TABLE, Scope::AllTenants, position, &value, self.now()).await
    }

    /// The record whose globally unique index `column` has `value`, whichever its tenant.
    pub async fn find_global(&self, column: &'static str, value: impl Into<Value>) -> Result<Option<D>> {
        let (position, unique, value) = Self::unique_column(column, value)?;
        if unique != Unique::Global {
            return Err(StorageError::invalid(column, format!("is not a global unique index of {}", D::TABLE.name)));
        }
        let row = self.tables.get_unique(&D::TABLE, Scope::AllTenants, position, &value, self.now()).await?;
        self.still_holding(row, position, &value)
    }

    /// The records of `tenant` passing `filter` whose searchable text
    /// ([`Document::search_text`]) holds every term of `query` as a phrase — whatever the query
    /// holds, it is never a syntax error — best first (ranked as `docs/backends.md` says per
    /// backend), `limit` of them after the first `offset`, and how many match in all. A query
    /// without a word finds nothing.
    pub async fn search(&self, tenant: &TenantId, query: &str, filter: Filter, limit: u32, offset: u32) -> Result<(Vec<D>, u64)> {
        if !D::TABLE.search {
            return Err(StorageError::invalid("search", format!("{} is not searchable", D::TABLE.name)));
        }
        let filter = filter.checked(&D::TABLE)?;
        let limit = PageRequest::first(limit).limit()?;
        if offset > MAX_SEARCH_OFFSET {
            return Err(StorageError::invalid("offset", format!("{offset}; a search pages at most {MAX_SEARCH_OFFSET} results deep")));
        }
        let Some(search) = crate::fts::Search::new(query) else { return Ok((Vec::new(), 0)) };
        let found = self.tables.search(&D::TABLE, tenant, &search, &filter, limit, offset, self.now()).await?;
        let items = found.rows.into_iter().map(|row| self.decode(row)).collect::<Result<Vec<_>>>()?;
        Ok((items, found.total))
    }

    /// The id of the key that sealed `row`'s secrets (`None`: nothing sealed, or a sealer
    /// without key ids).
    pub(crate) fn sealed_by(&self, row: &Row) -> Result<Option<String>> {
        let part: SealedPart =
            serde_json::from_str(&row.body).map_err(|e| corrupt(self.backend, format!("{} `{}`: {e}", D::TABLE.entity, row.id)))?;
        match part.sealed {
            Some(sealed) => self.sealer.key_of(&sealed),
            None => Ok(None),
        }
    }

    /// Re-seals, under the sealer's current key, those of `rows` sealed with another: each at the
    /// version it was read at, one unit per tenant. A record changed meanwhile is read again and
    /// re-sealed only if it still needs it (a writer seals with the current key already), one
    /// deleted meanwhile is skipped: nothing written concurrently is overwritten. How many it
    /// re-sealed.
    pub(crate) async fn reseal(&self, rows: Vec<Row>, key: &str) -> Result<u64> {
        let mut by_tenant: BTreeMap<String, Vec<D>> = BTreeMap::new();
        for row in rows {
            if self.sealed_by(&row)?.as_deref() != Some(key) {
                let tenant = row.tenant.clone();
                by_tenant.entry(tenant).or_default().push(self.decode(row)?);
            }
        }
        let mut resealed = 0u64;
        for (tenant, docs) in by_tenant {
            let tenant = TenantId::stored(tenant)?;
            let mut unit = self.unit(&tenant);
            for doc in &docs {
                unit.update(self, doc)?;
            }
            match unit.commit().await {
                Ok(applied) => resealed = resealed.saturating_add(applied.len() as u64),
                // Someone changed or deleted one of them, or the unit collided with writers
                // (a deadlock): one at a time instead.
                Err(StorageError::VersionMismatch { .. } | StorageError::NotFound { .. } | StorageError::Contended { .. }) => {
                    for doc in &docs {
                        if self.reseal_one(&tenant, &doc.id(), key).await? {
                            resealed = resealed.saturating_add(1);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(resealed)
    }

    /// Re-seals one record under `key` if it still needs it, retrying while others change it.
    async fn reseal_one(&self, tenant: &TenantId, id: &str, key: &str) -> Result<bool> {
        retry_contended(|| async {
            let Some(row) = self.tables.get(&D::TABLE, tenant, &[id.to_owned()], self.now()).await?.pop() else { return Ok(false) };
            if self.sealed_by(&row)?.as_deref() == Some(key) {
                return Ok(false);
            }
            match self.update(&self.decode(row)?).await {
                Ok(_) => Ok(true),
                Err(StorageError::NotFound { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// An atomic unit of `tenant`, starting with no change.
    pub fn unit(&self, tenant: &TenantId) -> Unit {
        Unit {
            backend: self.backend,
            tables: Arc::clone(&self.tables),
            clock: Arc::clone(&self.clock),
            tenant: tenant.clone(),
            changes: Vec::new(),
        }
    }
}

/// Changes to records of one tenant, in any tables of one backend, applied all or none.
#[derive(Debug)]
pub struct Unit {
    backend: DatabaseBackend,
    tables: Arc<dyn Tables>,
    clock: SharedClock,
    tenant: TenantId,
    changes: Vec<Change>,
}

impl Unit {
    fn push<D: Document>(&mut self, table: &Table<D>, change: Change) -> Result<()> {
        if !Arc::ptr_eq(&self.tables, &table.tables) {
            return Err(StorageError::invalid("unit", "every table of a unit must come from the same backend"));
        }
        let (def, id) = change.target();
        if self.changes.iter().any(|c| c.target() == (def, id)) {
            return Err(StorageError::invalid("unit", format!("{} `{id}` is changed twice in one unit", def.entity)));
        }
        if self.changes.len() >= MAX_BATCH {
            return Err(StorageError::invalid("unit", format!("at most {MAX_BATCH} changes per unit")));
        }
        self.changes.push(change);
        Ok(())
    }

    fn write<D: Document>(&mut self, table: &Table<D>, doc: &D, mode: WriteMode) -> Result<()> {
        if doc.tenant() != &self.tenant {
            return Err(StorageError::invalid("unit", format!("a unit of `{}` cannot write a record of `{}`", self.tenant, doc.tenant())));
        }
        let row = table.encode(doc)?;
        self.push(table, Change::Write { row, mode })
    }

    /// Adds the creation of `doc`.
    pub fn insert<D: Document>(&mut self, table: &Table<D>, doc: &D) -> Result<()> {
        self.write(table, doc, WriteMode::Insert)
    }
    /// Adds the creation or replacement of `doc`.
    pub fn upsert<D: Document>(&mut self, table: &Table<D>, doc: &D) -> Result<()> {
        self.write(table, doc, WriteMode::Upsert)
    }
    /// Adds the replacement of `doc` at the version it was read at.
    pub fn update<D: Document>(&mut self, table: &Table<D>, doc: &D) -> Result<()> {
        self.write(table, doc, WriteMode::Update { expected: doc.meta().version })
    }
    /// Adds the deletion of record `id` of `table`.
    pub fn delete<D: Document>(&mut self, table: &Table<D>, id: &str) -> Result<()> {
        validate_id(D::TABLE.id_field, id)?;
        self.push(table, Change::Delete { table: &D::TABLE, id: id.to_owned() })
    }

    /// Applies every change or none; what each did, in order.
    pub async fn commit(self) -> Result<Vec<Applied>> {
        if self.changes.is_empty() {
            return Ok(Vec::new());
        }
        let count = self.changes.len();
        let applied = self.tables.apply(&self.tenant, self.changes, crate::clock::truncate_micros(self.clock.now())).await?;
        if applied.len() != count {
            return Err(StorageError::backend(self.backend, format!("a unit of {count} changes reported {}", applied.len())));
        }
        Ok(applied)
    }
}

/// Runs `attempt` (a read, then writes checked against the versions read) again whenever another
/// writer got in between ([`StorageError::VersionMismatch`]), after a short randomised pause that
/// grows with contention, for up to [`PATCH_DEADLINE`]: contention delays a caller, it does not
/// fail it. After the deadline the mismatch becomes a `Conflict`.
pub async fn retry_contended<T, F, Fut>(attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let backoff = ExponentialBuilder::new()
        .with_jitter()
        .with_min_delay(Duration::from_micros(200))
        .with_max_delay(Duration::from_millis(50))
        .without_max_times()
        .with_total_delay(Some(PATCH_DEADLINE));
    attempt.retry(backoff).when(|e| matches!(e, StorageError::VersionMismatch { .. })).await.map_err(|e| match e {
        StorageError::VersionMismatch { entity, id, .. } => {
            StorageError::conflict(entity, id, format!("still changed by others after {} s of retries", PATCH_DEADLINE.as_secs()))
        }
        other => other,
    })
}

/// A `u64` field as an integer index value; one too large becomes a value the checks refuse.
pub fn int_value(value: u64) -> Value {
    Value::Int(i64::try_from(value).unwrap_or(i64::MAX))
}
