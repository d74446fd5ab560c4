//! The generic engine on PostgreSQL: every document table, with the statements `storage-schema`
//! builds once per table and query shape. A single change is one statement (plus, for expiring
//! tables, the idempotent removal of the expired rows it collides with); an atomic unit is one
//! transaction.

use crate::BACKEND;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, AssertSqlSafe, Connection, PgConnection, Row as _, SqlSafeStr};
use std::sync::Arc;
use storage_core::{
    Applied, Change, Filter, Incremented, IndexKind, Position, Query, RecordMeta, Result, Row, RowPage, RowWrite, Scope, Search,
    SearchPage, Step, StorageError, TableDef, Tables, TenantId, Value, WriteMode,
};
use storage_router::ConnectionRouter;
use storage_schema::{Dialect, Param, Statement, Statements, column_of_index, pg_unique_violation, sqlx_error};

/// Every document table of one PostgreSQL database.
#[derive(Debug)]
pub struct PostgresTables {
    router: ConnectionRouter,
    statements: Arc<Statements>,
}

impl PostgresTables {
    pub(crate) fn new(router: ConnectionRouter) -> Self {
        Self { router, statements: Arc::new(Statements::new(Dialect::Postgres)) }
    }
}

fn bind_error(e: impl Into<storage_core::BoxError>) -> StorageError {
    StorageError::backend(BACKEND, e)
}

fn texts(values: Vec<Value>) -> Vec<String> {
    values.into_iter().filter_map(|v| if let Value::Text(t) = v { Some(t) } else { None }).collect()
}

/// A statement's parameters as sqlx binds them.
fn arguments(params: Vec<Param>) -> Result<PgArguments> {
    let mut args = PgArguments::default();
    for param in params {
        match param {
            Param::Text(text) => args.add(text),
            Param::Int(n) => args.add(n),
            Param::Time(at) => args.add(at),
            Param::Bool(b) => args.add(b),
            Param::Null(IndexKind::Text) => args.add(None::<String>),
            Param::Null(IndexKind::Int) => args.add(None::<i64>),
            Param::Null(IndexKind::Time) => args.add(None::<DateTime<Utc>>),
            Param::Null(IndexKind::Bool) => args.add(None::<bool>),
            Param::List(IndexKind::Text, values) => args.add(texts(values)),
            Param::List(IndexKind::Int, values) => {
                args.add(values.into_iter().filter_map(|v| if let Value::Int(n) = v { Some(n) } else { None }).collect::<Vec<_>>())
            }
            Param::List(IndexKind::Time, values) => {
                args.add(values.into_iter().filter_map(|v| if let Value::Time(t) = v { Some(t) } else { None }).collect::<Vec<_>>())
            }
            Param::List(IndexKind::Bool, values) => {
                args.add(values.into_iter().filter_map(|v| if let Value::Bool(b) = v { Some(b) } else { None }).collect::<Vec<_>>())
            }
        }
        .map_err(bind_error)?;
    }
    Ok(args)
}

/// A statement built from a table declaration (never from input), ready for sqlx.
fn prepared(statement: Statement) -> Result<sqlx::query::Query<'static, sqlx::Postgres, PgArguments>> {
    Ok(sqlx::query_with(AssertSqlSafe(statement.sql).into_sql_str(), arguments(statement.params)?))
}

async fn fetch_all(conn: &mut PgConnection, statement: Statement) -> std::result::Result<Vec<PgRow>, sqlx::Error> {
    let query = prepared(statement).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    query.fetch_all(conn).await
}

async fn fetch_optional(conn: &mut PgConnection, statement: Statement) -> std::result::Result<Option<PgRow>, sqlx::Error> {
    let query = prepared(statement).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    query.fetch_optional(conn).await
}

async fn execute(conn: &mut PgConnection, statement: Statement) -> std::result::Result<u64, sqlx::Error> {
    let query = prepared(statement).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    Ok(query.execute(conn).await?.rows_affected())
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(row: &'r PgRow, index: usize) -> Result<T> {
    row.try_get(index).map_err(sqlx_error)
}

fn version(stored: i64) -> Result<u64> {
    u64::try_from(stored).map_err(|_| StorageError::corrupt(BACKEND, format!("version {stored}")))
}

/// A row of [`storage_schema::Statements::get`] / `list`.
fn decode_row(table: &TableDef, row: &PgRow) -> Result<Row> {
    let counters = table.counters().count();
    let mut values = Vec::with_capacity(counters);
    for i in 0..counters {
        values.push(get::<i64>(row, 5_usize.saturating_add(i))?);
    }
    Ok(Row {
        tenant: get(row, 0)?,
        id: get(row, 1)?,
        meta: RecordMeta { version: version(get(row, 2)?)?, created_at: get(row, 3)?, updated_at: get(row, 4)? },
        counters: values,
        body: get(row, 5_usize.saturating_add(counters))?,
    })
}

fn decode_key(kind: IndexKind, row: &PgRow, index: usize) -> Result<Value> {
    Ok(match kind {
        IndexKind::Text => Value::Text(get(row, index)?),
        IndexKind::Time => Value::Time(get(row, index)?),
        IndexKind::Int => Value::Int(get(row, index)?),
        IndexKind::Bool => Value::Bool(get(row, index)?),
    })
}

fn written(row: &PgRow, now: DateTime<Utc>) -> Result<RecordMeta> {
    Ok(RecordMeta { version: version(get(row, 0)?)?, created_at: get(row, 1)?, updated_at: now })
}

/// One write of a unit. On an expiring table the expired rows it would collide with (its id, its
/// unique values) are dropped first, so an expired record counts as absent — except for a write
/// alone (outside a transaction, where a failed statement aborts nothing): that one is tried
/// first, and the expired rows dropped only if it collides, so the common write costs one round
/// trip, not two. An upsert always drops first: over an expired row of its id it would otherwise
/// keep that row's `created_at` and version.
async fn write_row(
    conn: &mut PgConnection,
    statements: &Statements,
    row: RowWrite,
    mode: WriteMode,
    now: DateTime<Utc>,
    alone: bool,
) -> Result<Applied> {
    let Some(drop) = statements.drop_expired(&row, now) else { return write_once(conn, statements, &row, mode, now).await };
    if !alone || mode == WriteMode::Upsert {
        execute(conn, drop).await.map_err(sqlx_error)?;
        return write_once(conn, statements, &row, mode, now).await;
    }
    let first = write_once(conn, statements, &row, mode, now).await;
    if matches!(first, Err(StorageError::Conflict { .. })) && execute(conn, drop).await.map_err(sqlx_error)? > 0 {
        return write_once(conn, statements, &row, mode, now).await;
    }
    first
}

/// One write, as it is.
async fn write_once(
    conn: &mut PgConnection,
    statements: &Statements,
    row: &RowWrite,
    mode: WriteMode,
    now: DateTime<Utc>,
) -> Result<Applied> {
    let table = row.table;
    let unique = |e: sqlx::Error| match pg_unique_violation(&e).and_then(|index| column_of_index(table, &index)) {
        Some(column) => StorageError::conflict(table.entity, row.id.clone(), format!("`{column}` is already used")),
        None => sqlx_error(e),
    };
    let meta = match mode {
        WriteMode::Insert => {
            if execute(conn, statements.insert(row, now)).await.map_err(unique)? == 0 {
                return Err(StorageError::conflict(table.entity, row.id.clone(), "already exists"));
            }
            RecordMeta::new_at(now)
        }
        WriteMode::Upsert => {
            let stored = fetch_optional(conn, statements.upsert(row, now)).await.map_err(unique)?;
            written(&stored.ok_or_else(|| StorageError::backend(BACKEND, "an upsert returned nothing"))?, now)?
        }
        WriteMode::Update { expected } => {
            let expected_stored =
                i64::try_from(expected).map_err(|_| StorageError::invalid("version", format!("{expected} is out of range")))?;
            match fetch_optional(conn, statements.update(row, expected_stored, now)).await.map_err(unique)? {
                Some(stored) => written(&stored, now)?,
                None => {
                    let actual = fetch_optional(conn, statements.version(table, row.tenant.as_str(), &row.id)).await.map_err(sqlx_error)?;
                    return Err(match actual {
                        None => StorageError::not_found(table.entity, &row.id),
                        Some(actual) => StorageError::VersionMismatch {
                            entity: table.entity,
                            id: row.id.clone(),
                            expected,
                            actual: version(get(&actual, 0)?)?,
                        },
                    });
                }
            }
        }
    };
    Ok(Applied::Written(meta))
}

async fn apply_change(
    conn: &mut PgConnection,
    statements: &Statements,
    tenant: &TenantId,
    change: Change,
    now: DateTime<Utc>,
    alone: bool,
) -> Result<Applied> {
    match change {
        Change::Write { row, mode } => write_row(conn, statements, row, mode, now, alone).await,
        Change::Delete { table, id } => {
            let deleted = fetch_optional(conn, statements.delete(table, tenant.as_str(), &id, now)).await.map_err(sqlx_error)?;
            Ok(Applied::Deleted(deleted.map(|row| get::<bool>(&row, 0)).transpose()?.unwrap_or(false)))
        }
    }
}

/// The unit's changes in runs: consecutive plain inserts into one table without expiry (which one
/// multi-row statement can write) are one run, any other change a run of its own.
fn insert_runs(changes: &[Change]) -> impl Iterator<Item = &[Change]> {
    let batchable = |change: &Change| match change {
        Change::Write { row, mode: WriteMode::Insert } => (!row.table.expires).then_some(row.table.name),
        _ => None,
    };
    changes
        .chunk_by(move |a, b| batchable(a).is_some() && batchable(a) == batchable(b))
        .flat_map(|run| run.chunks(Statements::MAX_ROWS_PER_INSERT))
}

/// Runs a unit in one transaction → what each change did; with `batch`, each run of inserts is
/// one statement, and `None` says one of them did not insert every row (the transaction rolled
/// back).
async fn transaction(
    conn: &mut PgConnection,
    statements: &Statements,
    tenant: &TenantId,
    changes: Vec<Change>,
    now: DateTime<Utc>,
    batch: bool,
) -> Result<Option<Vec<Applied>>> {
    // Dropped without commit (an error below), the transaction rolls back.
    let mut tx = conn.begin().await.map_err(sqlx_error)?;
    let mut applied = Vec::with_capacity(changes.len());
    if batch {
        for run in insert_runs(&changes) {
            let rows: Vec<RowWrite> =
                run.iter().filter_map(|change| if let Change::Write { row, .. } = change { Some(row.clone()) } else { None }).collect();
            let statement = (run.len() > 1 && rows.len() == run.len()).then(|| statements.insert_many(&rows, now)).flatten();
            let Some(statement) = statement else {
                for change in run {
                    applied.push(apply_change(&mut tx, statements, tenant, change.clone(), now, false).await?);
                }
                continue;
            };
            // Fewer rows inserted than given means an id was taken (or given twice): the row-by-row
            // run names it.
            match fetch_all(&mut tx, statement).await {
                Ok(inserted) if inserted.len() == rows.len() => {}
                _ => return Ok(None),
            }
            applied.extend(rows.iter().map(|_| Applied::Written(RecordMeta::new_at(now))));
        }
    } else {
        for change in changes {
            applied.push(apply_change(&mut tx, statements, tenant, change, now, false).await?);
        }
    }
    tx.commit().await.map_err(sqlx_error)?;
    Ok(Some(applied))
}

impl PostgresTables {
    /// Every row `statement` returns, where the router sends reads.
    async fn read_all(&self, statement: Statement) -> Result<Vec<PgRow>> {
        self.router
            .read(|conn| {
                let statement = statement.clone();
                Box::pin(async move { fetch_all(conn, statement).await.map_err(sqlx_error) })
            })
            .await
    }

    /// The row `statement` returns, if any, where the router sends reads.
    async fn read_optional(&self, statement: Statement) -> Result<Option<PgRow>> {
        self.router
            .read(|conn| {
                let statement = statement.clone();
                Box::pin(async move { fetch_optional(conn, statement).await.map_err(sqlx_error) })
            })
            .await
    }
}

#[async_trait]
impl Tables for PostgresTables {
    async fn get(&self, table: &'static TableDef, tenant: &TenantId, ids: &[String], now: DateTime<Utc>) -> Result<Vec<Row>> {
        let rows = self.read_all(self.statements.get(table, tenant.as_str(), ids, now)).await?;
        rows.iter().map(|row| decode_row(table, row)).collect()
    }

    async fn apply(&self, tenant: &TenantId, changes: Vec<Change>, now: DateTime<Utc>) -> Result<Vec<Applied>> {
        let mut conn = self.router.write_connection().await?;
        if changes.len() == 1 {
            let mut applied = Vec::with_capacity(1);
            for change in changes {
                applied.push(apply_change(&mut conn, &self.statements, tenant, change, now, true).await?);
            }
            return Ok(applied);
        }
        if insert_runs(&changes).any(|run| run.len() > 1) {
            // A multi-row insert that fails cannot say which row failed; its transaction rolled
            // back whole, so the unit runs again row by row, for the precise error.
            if let Some(applied) = transaction(&mut conn, &self.statements, tenant, changes.clone(), now, true).await? {
                return Ok(applied);
            }
        }
        transaction(&mut conn, &self.statements, tenant, changes, now, false)
            .await?
            .ok_or_else(|| StorageError::backend(BACKEND, "a unit without batched inserts reported a batch failure"))
    }

    async fn get_unique(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        column: usize,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<Row>> {
        // One statement, not a lookup and a read: the unique index makes the filter a point query.
        let Some(spec) = table.indexes.get(column) else { return Ok(None) };
        let query = Query::new(Filter::all().eq(spec.column, value.clone()));
        Ok(self.list(table, scope, &query, None, 1, now).await?.rows.into_iter().next())
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
        let statement = self.statements.list(table, scope, query, after, limit.saturating_add(1), now);
        let rows = self.read_all(statement).await?;
        let key_at = 6_usize.saturating_add(table.counters().count());
        let all_tenants = matches!(scope, Scope::AllTenants);
        let order = query.order.column.and_then(|column| table.index(column));
        let positioned = rows
            .iter()
            .map(|row| {
                let decoded = decode_row(table, row)?;
                let key = order.map(|(_, spec)| decode_key(spec.kind, row, key_at)).transpose()?;
                let tenant = if all_tenants {
                    Some(TenantId::stored(decoded.tenant.clone()).map_err(|e| StorageError::corrupt(BACKEND, e))?)
                } else {
                    None
                };
                let position = Position { tenant, key, id: decoded.id.clone() };
                Ok((decoded, position))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RowPage::from_overfetch(positioned, limit))
    }

    async fn search(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        search: &Search,
        filter: &Filter,
        limit: u32,
        offset: u32,
        now: DateTime<Utc>,
    ) -> Result<SearchPage> {
        let page = self.statements.search(table, tenant, search, filter, Some((limit, offset)), now);
        let count = self.statements.search(table, tenant, search, filter, None, now);
        // Both on one connection: the total counts the state the page was read from.
        let (rows, count) = self
            .router
            .read(|conn| {
                let (page, count) = (page.clone(), count.clone());
                Box::pin(async move {
                    let rows = fetch_all(&mut *conn, page).await.map_err(sqlx_error)?;
                    Ok((rows, fetch_optional(conn, count).await.map_err(sqlx_error)?))
                })
            })
            .await?;
        let rows = rows.iter().map(|row| decode_row(table, row)).collect::<Result<Vec<_>>>()?;
        let total: i64 = count.map(|row| get(&row, 0)).transpose()?.unwrap_or(0);
        Ok(SearchPage { rows, total: u64::try_from(total).map_err(|e| StorageError::corrupt(BACKEND, e))? })
    }

    async fn count(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let row = self.read_optional(self.statements.count(table, scope, filter, now)).await?;
        let n: i64 = row.map(|row| get(&row, 0)).transpose()?.unwrap_or(0);
        u64::try_from(n).map_err(|e| StorageError::corrupt(BACKEND, e))
    }

    async fn delete_where(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.router.write_connection().await?;
        execute(&mut conn, self.statements.delete_where(table, scope, filter, now)).await.map_err(sqlx_error)
    }

    async fn purge_expired(&self, table: &'static TableDef, now: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.router.write_connection().await?;
        execute(&mut conn, self.statements.purge(table, now)).await.map_err(sqlx_error)
    }

    async fn increment(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        id: &str,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<Incremented> {
        let mut conn = self.router.write_connection().await?;
        let stepped =
            fetch_optional(&mut conn, self.statements.increment(table, tenant.as_str(), id, step, now)).await.map_err(sqlx_error)?;
        if let Some(row) = stepped {
            let meta = RecordMeta { version: version(get(&row, 1)?)?, created_at: get(&row, 2)?, updated_at: now };
            return Ok(Incremented::To(get(&row, 0)?, meta));
        }
        let current =
            fetch_optional(&mut conn, self.statements.counter(table, tenant.as_str(), id, step.column, now)).await.map_err(sqlx_error)?;
        Ok(match current {
            None => Incremented::Missing,
            Some(row) => Incremented::Capped(get(&row, 0)?),
        })
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
        let found = self.read_optional(self.statements.find_unique(table, tenant, column, value, now)).await?;
        found
            .map(|row| {
                Ok((TenantId::stored(get::<String>(&row, 0)?).map_err(|e| StorageError::corrupt(BACKEND, e))?, get::<String>(&row, 1)?))
            })
            .transpose()
    }
}
