//! The generic engine on SQLite: every document table, with the statements `storage-schema`
//! builds once per table and query shape. Reads run on a reader connection in place (scans off
//! the async worker); writes, including a whole atomic unit, are one job in the group commit.

use crate::connection::{Readers, Writer};
use crate::{BACKEND, instant};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use std::sync::Arc;
use storage_core::{
    Applied, Change, Filter, Incremented, IndexKind, Position, Query, RecordMeta, Result, Row, RowPage, RowWrite, Scope, Search,
    SearchPage, Step, StorageError, TableDef, Tables, TenantId, Unique, Value, WriteMode,
};
use storage_schema::{Dialect, Param, Statement, Statements, sqlite_error, sqlite_unique_violation};

/// Every document table of one SQLite database.
#[derive(Debug)]
pub struct SqliteTables {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
    statements: Arc<Statements>,
}

impl SqliteTables {
    pub(crate) fn new(writer: Arc<Writer>, readers: Arc<Readers>) -> Self {
        Self { writer, readers, statements: Arc::new(Statements::new(Dialect::Sqlite)) }
    }
}

/// A parameter as rusqlite binds it. `IN` lists travel as one JSON array (`json_each`).
fn sql_value(param: Param) -> SqlValue {
    match param {
        Param::Text(text) => SqlValue::Text(text),
        Param::Int(n) => SqlValue::Integer(n),
        Param::Time(at) => SqlValue::Integer(at.timestamp_micros()),
        Param::Bool(b) => SqlValue::Integer(i64::from(b)),
        Param::Null(_) => SqlValue::Null,
        Param::List(_, values) => {
            let items: Vec<serde_json::Value> = values
                .into_iter()
                .map(|value| match value {
                    Value::Text(text) => serde_json::Value::String(text),
                    Value::Int(n) => serde_json::Value::from(n),
                    Value::Time(at) => serde_json::Value::from(at.timestamp_micros()),
                    Value::Bool(b) => serde_json::Value::from(i64::from(b)),
                })
                .collect();
            SqlValue::Text(serde_json::Value::Array(items).to_string())
        }
    }
}

fn run(conn: &Connection, statement: Statement) -> Result<usize> {
    let mut prepared = conn.prepare_cached(&statement.sql).map_err(sqlite_error)?;
    prepared.execute(params_from_iter(statement.params.into_iter().map(sql_value))).map_err(sqlite_error)
}

fn query<T>(conn: &Connection, statement: Statement, read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>) -> Result<Vec<T>> {
    let mut prepared = conn.prepare_cached(&statement.sql).map_err(sqlite_error)?;
    let rows = prepared.query_map(params_from_iter(statement.params.into_iter().map(sql_value)), read).map_err(sqlite_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite_error)
}

fn query_one<T>(
    conn: &Connection,
    statement: Statement,
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    let mut prepared = conn.prepare_cached(&statement.sql).map_err(sqlite_error)?;
    prepared.query_row(params_from_iter(statement.params.into_iter().map(sql_value)), read).optional().map_err(sqlite_error)
}

/// The raw columns of a row, converted once out of rusqlite.
struct Raw {
    tenant: String,
    id: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    counters: Vec<i64>,
    body: String,
    key: Option<SqlValue>,
}

fn read_raw(table: &TableDef, ordered: bool) -> impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Raw> + '_ {
    move |row| {
        let counters = table.counters().count();
        let mut values = Vec::with_capacity(counters);
        for i in 0..counters {
            values.push(row.get(5_usize.saturating_add(i))?);
        }
        let body_at = 5_usize.saturating_add(counters);
        Ok(Raw {
            tenant: row.get(0)?,
            id: row.get(1)?,
            version: row.get(2)?,
            created_at: row.get(3)?,
            updated_at: row.get(4)?,
            counters: values,
            body: row.get(body_at)?,
            key: if ordered { Some(row.get(body_at.saturating_add(1))?) } else { None },
        })
    }
}

fn version(stored: i64) -> Result<u64> {
    u64::try_from(stored).map_err(|_| StorageError::corrupt(BACKEND, format!("version {stored}")))
}

fn meta(version_: i64, created_at: i64, updated_at: i64) -> Result<RecordMeta> {
    Ok(RecordMeta { version: version(version_)?, created_at: instant(created_at)?, updated_at: instant(updated_at)? })
}

impl Raw {
    fn row(self) -> Result<Row> {
        Ok(Row {
            meta: meta(self.version, self.created_at, self.updated_at)?,
            tenant: self.tenant,
            id: self.id,
            counters: self.counters,
            body: self.body,
        })
    }

    /// The row and its position in a list of `table` ordered by `query`.
    fn positioned(mut self, table: &TableDef, query: &Query, all_tenants: bool) -> Result<(Row, Position)> {
        let key = match (query.order.column.and_then(|c| table.index(c)), self.key.take()) {
            (Some((_, spec)), Some(raw)) => Some(decode_key(spec.kind, raw)?),
            _ => None,
        };
        let tenant =
            if all_tenants { Some(TenantId::stored(self.tenant.clone()).map_err(|e| StorageError::corrupt(BACKEND, e))?) } else { None };
        let id = self.id.clone();
        Ok((self.row()?, Position { tenant, key, id }))
    }
}

/// An order column's stored value, back as the index's kind.
fn decode_key(kind: IndexKind, raw: SqlValue) -> Result<Value> {
    match (kind, raw) {
        (IndexKind::Text, SqlValue::Text(text)) => Ok(Value::Text(text)),
        (IndexKind::Time, SqlValue::Integer(micros)) => Ok(Value::Time(instant(micros)?)),
        (IndexKind::Int, SqlValue::Integer(n)) => Ok(Value::Int(n)),
        (IndexKind::Bool, SqlValue::Integer(n)) => Ok(Value::Bool(n != 0)),
        (kind, other) => Err(StorageError::corrupt(BACKEND, format!("a {kind:?} index holds {other:?}"))),
    }
}

/// Names the unique index a write collided with, for the `Conflict`.
fn unique_conflict(conn: &Connection, statements: &Statements, row: &RowWrite, now: DateTime<Utc>) -> StorageError {
    let table = row.table;
    for (position, (spec, value)) in table.indexes.iter().zip(&row.indexes).enumerate() {
        let Some(value) = value.as_ref().filter(|_| spec.unique != Unique::No) else { continue };
        let tenant = (spec.unique == Unique::PerTenant).then_some(row.tenant.as_str());
        let statement = statements.find_unique(table, tenant, position, value, now);
        if let Ok(Some((t, id))) = query_one(conn, statement, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            && (t != row.tenant.as_str() || id != row.id)
        {
            return StorageError::conflict(table.entity, row.id.clone(), format!("`{}` is already used by `{id}`", spec.column));
        }
    }
    StorageError::conflict(table.entity, row.id.clone(), "already exists")
}

/// One write of a unit, on the writer connection.
fn write_row(conn: &Connection, statements: &Statements, row: RowWrite, mode: WriteMode, now: DateTime<Utc>) -> Result<Applied> {
    if let Some(drop) = statements.drop_expired(&row, now) {
        run(conn, drop)?;
    }
    let table = row.table;
    let outcome = match mode {
        WriteMode::Insert => match run(conn, statements.insert(&row, now)) {
            Ok(0) => return Err(StorageError::conflict(table.entity, row.id, "already exists")),
            Ok(_) => Ok(RecordMeta::new_at(now)),
            Err(e) => Err(e),
        },
        WriteMode::Upsert => query_one(conn, statements.upsert(&row, now), |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|stored| stored.ok_or_else(|| StorageError::backend(BACKEND, "an upsert returned nothing")))
            .and_then(|(v, created): (i64, i64)| meta(v, created, now.timestamp_micros())),
        WriteMode::Update { expected } => {
            let expected_stored =
                i64::try_from(expected).map_err(|_| StorageError::invalid("version", format!("{expected} is out of range")))?;
            match query_one(conn, statements.update(&row, expected_stored, now), |r| Ok((r.get(0)?, r.get(1)?))) {
                Ok(Some((v, created))) => meta(v, created, now.timestamp_micros()),
                // A unique violation is named below.
                Err(e) => Err(e),
                Ok(None) => {
                    let actual: Option<i64> = query_one(conn, statements.version(table, row.tenant.as_str(), &row.id), |r| r.get(0))?;
                    return Err(match actual {
                        None => StorageError::not_found(table.entity, row.id),
                        Some(actual) => {
                            StorageError::VersionMismatch { entity: table.entity, id: row.id, expected, actual: version(actual)? }
                        }
                    });
                }
            }
        }
    };
    match outcome {
        Ok(meta) => Ok(Applied::Written(meta)),
        Err(StorageError::Backend { source, .. }) if source.downcast_ref::<rusqlite::Error>().is_some_and(sqlite_unique_violation) => {
            Err(unique_conflict(conn, statements, &row, now))
        }
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Tables for SqliteTables {
    async fn get(&self, table: &'static TableDef, tenant: &TenantId, ids: &[String], now: DateTime<Utc>) -> Result<Vec<Row>> {
        let statement = self.statements.get(table, tenant.as_str(), ids, now);
        let raws = if ids.len() == 1 {
            self.readers.read(|conn| query(conn, statement, read_raw(table, false))).await?
        } else {
            self.readers.scan(|conn| query(conn, statement, read_raw(table, false))).await?
        };
        raws.into_iter().map(Raw::row).collect()
    }

    async fn apply(&self, tenant: &TenantId, changes: Vec<Change>, now: DateTime<Utc>) -> Result<Vec<Applied>> {
        let statements = Arc::clone(&self.statements);
        let tenant = tenant.clone();
        self.writer
            .write(move |conn| {
                changes
                    .into_iter()
                    .map(|change| match change {
                        Change::Write { row, mode } => write_row(conn, &statements, row, mode, now),
                        Change::Delete { table, id } => {
                            let live: Option<bool> = query_one(conn, statements.delete(table, tenant.as_str(), &id, now), |r| r.get(0))?;
                            Ok(Applied::Deleted(live.unwrap_or(false)))
                        }
                    })
                    .collect()
            })
            .await
    }

    async fn list(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        query_: &Query,
        after: Option<&Position>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<RowPage> {
        let statement = self.statements.list(table, scope, query_, after, limit.saturating_add(1), now);
        let ordered = query_.order.column.is_some();
        let raws = self.readers.scan(|conn| query(conn, statement, read_raw(table, ordered))).await?;
        let all_tenants = matches!(scope, Scope::AllTenants);
        let rows = raws.into_iter().map(|raw| raw.positioned(table, query_, all_tenants)).collect::<Result<Vec<_>>>()?;
        Ok(RowPage::from_overfetch(rows, limit))
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
        let rows = self.statements.search(table, tenant, search, filter, Some((limit, offset)), now);
        let count = self.statements.search(table, tenant, search, filter, None, now);
        let (raws, total) = self
            .readers
            .scan(|conn| {
                let raws = query(conn, rows, read_raw(table, false))?;
                let total: Option<i64> = query_one(conn, count, |r| r.get(0))?;
                Ok((raws, total))
            })
            .await?;
        let total = u64::try_from(total.unwrap_or(0)).map_err(|e| StorageError::corrupt(BACKEND, e))?;
        Ok(SearchPage { rows: raws.into_iter().map(Raw::row).collect::<Result<_>>()?, total })
    }

    async fn count(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let statement = self.statements.count(table, scope, filter, now);
        let n: Option<i64> = self.readers.scan(|conn| query_one(conn, statement, |r| r.get(0))).await?;
        u64::try_from(n.unwrap_or(0)).map_err(|e| StorageError::corrupt(BACKEND, e))
    }

    async fn delete_where(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let statement = self.statements.delete_where(table, scope, filter, now);
        let removed = self.writer.write(move |conn| run(conn, statement)).await?;
        Ok(removed as u64)
    }

    async fn purge_expired(&self, table: &'static TableDef, now: DateTime<Utc>) -> Result<u64> {
        let statement = self.statements.purge(table, now);
        let removed = self.writer.write(move |conn| run(conn, statement)).await?;
        Ok(removed as u64)
    }

    async fn increment(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        id: &str,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<Incremented> {
        let statements = Arc::clone(&self.statements);
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        let outcome = self
            .writer
            .write(move |conn| {
                let stepped = statements.increment(table, &tenant, &id, step, now);
                if let Some((value, v, created)) = query_one(conn, stepped, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
                    return Ok(Ok((value, v, created)));
                }
                let current: Option<i64> = query_one(conn, statements.counter(table, &tenant, &id, step.column, now), |r| r.get(0))?;
                Ok(Err(current))
            })
            .await?;
        match outcome {
            Ok((value, v, created)) => Ok(Incremented::To(value, meta(v, created, now.timestamp_micros())?)),
            Err(None) => Ok(Incremented::Missing),
            Err(Some(current)) => Ok(Incremented::Capped(current)),
        }
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
        let statement = self.statements.find_unique(table, tenant, column, value, now);
        let found = self.readers.read(|conn| query_one(conn, statement, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))).await?;
        found.map(|(tenant, id)| Ok((TenantId::stored(tenant).map_err(|e| StorageError::corrupt(BACKEND, e))?, id))).transpose()
    }
}
