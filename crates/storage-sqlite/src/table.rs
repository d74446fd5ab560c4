//! The generic engine: any [`Document`] in a table with real columns for the tenant, id, declared
//! indexes and metadata, and the rest as a JSON body with sealed secrets.

use crate::{BACKEND, SqliteBackend, instant};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use storage_core::clock::to_micros;
use storage_core::document::{Document, Filter, IndexValue, RecordMeta};
use storage_core::{Result, StorageError, Table, TenantId};
use storage_schema::{Placeholder, TableSql, sqlite_error};

/// The SQLite storage of one [`Document`] type.
pub struct SqliteTable<D> {
    backend: SqliteBackend,
    statements: Arc<TableSql>,
    _document: PhantomData<fn() -> D>,
}

impl<D> fmt::Debug for SqliteTable<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteTable").field("statements", &self.statements.get).finish_non_exhaustive()
    }
}

/// The columns every read selects: `id, version, created_at, updated_at, body`.
struct StoredRow {
    id: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    body: String,
}

impl StoredRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self { id: row.get(0)?, version: row.get(1)?, created_at: row.get(2)?, updated_at: row.get(3)?, body: row.get(4)? })
    }
}

fn version(stored: i64) -> Result<u64> {
    u64::try_from(stored).map_err(|_| StorageError::corrupt(BACKEND, format!("version {stored}")))
}

impl<D: Document> SqliteTable<D> {
    /// The table of `D` on `backend`.
    pub fn new(backend: SqliteBackend) -> Self {
        Self { backend, statements: Arc::new(TableSql::new::<D>(Placeholder::Question)), _document: PhantomData }
    }

    fn index_values(doc: &D) -> impl Iterator<Item = Value> {
        doc.index_values().into_iter().map(|value| match value {
            IndexValue::Text(text) => text.map_or(Value::Null, Value::Text),
            IndexValue::Time(time) => time.map_or(Value::Null, |t| Value::Integer(to_micros(t))),
        })
    }

    /// The values of a new row: identity, indexes, version 1, timestamps, sealed body.
    fn new_row(&self, doc: &D, now: DateTime<Utc>) -> Result<Vec<Value>> {
        let body = doc.encode(self.backend.sealer().as_ref())?.to_json()?;
        let mut values = vec![Value::Text(doc.tenant().as_str().to_owned()), Value::Text(doc.id())];
        values.extend(Self::index_values(doc));
        values.extend([Value::Integer(1), Value::Integer(to_micros(now)), Value::Integer(to_micros(now)), Value::Text(body)]);
        Ok(values)
    }

    fn decode(&self, tenant: &TenantId, row: StoredRow) -> Result<D> {
        let meta =
            RecordMeta { version: version(row.version)?, created_at: instant(row.created_at)?, updated_at: instant(row.updated_at)? };
        D::decode_json(tenant, &row.id, meta, &row.body, self.backend.sealer().as_ref())
    }

    fn stamped(doc: &D, version_created: (i64, i64), now: DateTime<Utc>) -> Result<D> {
        let mut stored = doc.clone();
        stored.set_meta(RecordMeta { version: version(version_created.0)?, created_at: instant(version_created.1)?, updated_at: now });
        Ok(stored)
    }
}

fn version_and_created(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64)> {
    Ok((row.get(0)?, row.get(1)?))
}

#[async_trait]
impl<D: Document> Table<D> for SqliteTable<D> {
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<D>> {
        let sql = &self.statements.get;
        let row = self
            .backend
            .read(|conn| {
                let mut statement = conn.prepare_cached(sql).map_err(sqlite_error)?;
                statement.query_row((tenant.as_str(), id), StoredRow::read).optional().map_err(sqlite_error)
            })
            .await?;
        row.map(|row| self.decode(tenant, row)).transpose()
    }

    async fn insert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let values = self.new_row(doc, now)?;
        let statements = Arc::clone(&self.statements);
        let inserted = self
            .backend
            .write(move |conn| {
                let mut statement = conn.prepare_cached(&statements.insert).map_err(sqlite_error)?;
                statement.execute(params_from_iter(values)).map_err(sqlite_error)
            })
            .await?;
        if inserted == 0 {
            return Err(StorageError::conflict(D::ENTITY, doc.id(), "already exists"));
        }
        let micros = to_micros(now);
        Self::stamped(doc, (1, micros), now)
    }

    async fn upsert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let values = self.new_row(doc, now)?;
        let statements = Arc::clone(&self.statements);
        let stored = self
            .backend
            .write(move |conn| {
                let mut statement = conn.prepare_cached(&statements.upsert).map_err(sqlite_error)?;
                statement.query_row(params_from_iter(values), version_and_created).map_err(sqlite_error)
            })
            .await?;
        Self::stamped(doc, stored, now)
    }

    async fn update(&self, doc: &D, expected: u64, now: DateTime<Utc>) -> Result<D> {
        let body = doc.encode(self.backend.sealer().as_ref())?.to_json()?;
        let expected_stored =
            i64::try_from(expected).map_err(|_| StorageError::invalid("version", format!("{expected} is out of range")))?;
        let mut values: Vec<Value> = Self::index_values(doc).collect();
        values.extend([
            Value::Integer(to_micros(now)),
            Value::Text(body),
            Value::Text(doc.tenant().as_str().to_owned()),
            Value::Text(doc.id()),
        ]);
        values.push(Value::Integer(expected_stored));
        let (tenant, id) = (doc.tenant().as_str().to_owned(), doc.id());
        let statements = Arc::clone(&self.statements);
        // The update and, when it matches nothing, the read of what is there: one unit, so the
        // answer describes the same state the update saw.
        let outcome = self
            .backend
            .write(move |conn: &Connection| {
                let mut statement = conn.prepare_cached(&statements.update).map_err(sqlite_error)?;
                if let Some(stored) = statement.query_row(params_from_iter(values), version_and_created).optional().map_err(sqlite_error)? {
                    return Ok(Ok(stored));
                }
                let mut statement = conn.prepare_cached(&statements.version).map_err(sqlite_error)?;
                let actual: Option<i64> = statement.query_row((tenant, id), |row| row.get(0)).optional().map_err(sqlite_error)?;
                Ok(Err(actual))
            })
            .await?;
        match outcome {
            Ok(stored) => Self::stamped(doc, stored, now),
            Err(None) => Err(StorageError::not_found(D::ENTITY, doc.id())),
            Err(Some(actual)) => Err(StorageError::VersionMismatch { entity: D::ENTITY, id: doc.id(), expected, actual: version(actual)? }),
        }
    }

    async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        let statements = Arc::clone(&self.statements);
        let deleted = self
            .backend
            .write(move |conn| {
                let mut statement = conn.prepare_cached(&statements.delete).map_err(sqlite_error)?;
                statement.execute((tenant, id)).map_err(sqlite_error)
            })
            .await?;
        Ok(deleted > 0)
    }

    async fn list(&self, tenant: &TenantId, filter: &Filter, after: Option<&str>, limit: u32) -> Result<Vec<D>> {
        let sql = self.statements.list(filter, D::STORE)?;
        let mut values = vec![Value::Text(tenant.as_str().to_owned())];
        match filter {
            Filter::All => {}
            Filter::Eq { value, .. } => values.push(Value::Text(value.clone())),
            Filter::AtOrBefore { at, .. } => values.push(Value::Integer(to_micros(*at))),
        }
        values.extend([Value::Text(after.unwrap_or("").to_owned()), Value::Integer(i64::from(limit))]);
        let rows = self
            .backend
            .scan(|conn| {
                let mut statement = conn.prepare_cached(&sql).map_err(sqlite_error)?;
                let rows = statement.query_map(params_from_iter(values), StoredRow::read).map_err(sqlite_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite_error)
            })
            .await?;
        rows.into_iter().map(|row| self.decode(tenant, row)).collect()
    }
}
