//! The generic engine: any [`Document`] in a table with real columns for the tenant, id, declared
//! indexes and metadata, and the rest as a JSON body with sealed secrets.

use crate::{BACKEND, instant};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe, Row, SqlSafeStr, SqlStr, SqlitePool};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use storage_core::clock::to_micros;
use storage_core::document::{Document, Filter, IndexValue, RecordMeta};
use storage_core::{Result, Sealer, StorageError, Table, TenantId};
use storage_schema::sqlx_error;

/// The statements of one table, built once from the document's declaration.
#[derive(Debug)]
struct Statements {
    get: SqlStr,
    insert: SqlStr,
    upsert: SqlStr,
    update: SqlStr,
    version: SqlStr,
    delete: SqlStr,
    list_all: SqlStr,
    list_eq: Vec<(&'static str, SqlStr)>,
    list_before: Vec<(&'static str, SqlStr)>,
}

fn sql(text: String) -> SqlStr {
    AssertSqlSafe(text).into_sql_str()
}

impl Statements {
    fn new<D: Document>() -> Self {
        let t = D::STORE;
        let columns: Vec<_> = D::INDEXES.iter().map(|i| i.column).collect();
        let column_list: String = columns.iter().map(|c| format!("{c}, ")).collect();
        let placeholders: String = columns.iter().map(|_| "?, ").collect();
        let set_excluded: String = columns.iter().map(|c| format!("{c} = excluded.{c}, ")).collect();
        let set_params: String = columns.iter().map(|c| format!("{c} = ?, ")).collect();
        let values = format!(
            "INSERT INTO {t} (tenant, id, {column_list}version, created_at, updated_at, body) VALUES (?, ?, {placeholders}?, ?, ?, ?)"
        );
        let select = format!("SELECT id, version, created_at, updated_at, body FROM {t} WHERE tenant = ?");
        let list = |condition: &str| sql(format!("{select}{condition} AND id > ? ORDER BY id LIMIT ?"));
        Self {
            get: sql(format!("{select} AND id = ?")),
            insert: sql(format!("{values} ON CONFLICT (tenant, id) DO NOTHING")),
            upsert: sql(format!(
                "{values} ON CONFLICT (tenant, id) DO UPDATE SET {set_excluded}version = {t}.version + 1, updated_at = excluded.updated_at, body = excluded.body RETURNING version, created_at"
            )),
            update: sql(format!(
                "UPDATE {t} SET {set_params}version = version + 1, updated_at = ?, body = ? WHERE tenant = ? AND id = ? AND version = ? RETURNING version, created_at"
            )),
            version: sql(format!("SELECT version FROM {t} WHERE tenant = ? AND id = ?")),
            delete: sql(format!("DELETE FROM {t} WHERE tenant = ? AND id = ?")),
            list_all: list(""),
            list_eq: columns.iter().map(|c| (*c, list(&format!(" AND {c} = ?")))).collect(),
            list_before: columns.iter().map(|c| (*c, list(&format!(" AND {c} <= ?")))).collect(),
        }
    }
}

/// The SQLite storage of one [`Document`] type.
pub struct SqliteTable<D> {
    writer: SqlitePool,
    reader: SqlitePool,
    sealer: Arc<dyn Sealer>,
    statements: Arc<Statements>,
    _document: PhantomData<fn() -> D>,
}

impl<D> fmt::Debug for SqliteTable<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteTable").field("statements", &self.statements.get.as_str()).finish_non_exhaustive()
    }
}

fn bind_error(e: impl Into<storage_core::BoxError>) -> StorageError {
    StorageError::backend(BACKEND, e)
}

impl<D: Document> SqliteTable<D> {
    /// The table of `D`, writing through `writer` and reading through `reader`.
    pub fn new(writer: SqlitePool, reader: SqlitePool, sealer: Arc<dyn Sealer>) -> Self {
        Self { writer, reader, sealer, statements: Arc::new(Statements::new::<D>()), _document: PhantomData }
    }

    /// Index values, then the JSON body, as bind arguments.
    fn bind_indexes(args: &mut SqliteArguments, doc: &D) -> Result<()> {
        for value in doc.index_values() {
            match value {
                IndexValue::Text(text) => args.add(text),
                IndexValue::Time(time) => args.add(time.map(to_micros)),
            }
            .map_err(bind_error)?;
        }
        Ok(())
    }

    /// The arguments of a new row: identity, indexes, version 1, timestamps, sealed body.
    fn new_row_args(&self, doc: &D, now: DateTime<Utc>) -> Result<SqliteArguments> {
        let body = doc.encode(self.sealer.as_ref())?.to_string();
        let mut args = SqliteArguments::default();
        args.add(doc.tenant().as_str()).map_err(bind_error)?;
        args.add(doc.id()).map_err(bind_error)?;
        Self::bind_indexes(&mut args, doc)?;
        for value in [1, to_micros(now), to_micros(now)] {
            args.add(value).map_err(bind_error)?;
        }
        args.add(body).map_err(bind_error)?;
        Ok(args)
    }

    fn row_to_doc(&self, tenant: &TenantId, row: &sqlx::sqlite::SqliteRow) -> Result<D> {
        let id: String = row.try_get(0).map_err(|e| sqlx_error(BACKEND, e))?;
        let meta = RecordMeta {
            version: row.try_get::<i64, _>(1).map_err(|e| sqlx_error(BACKEND, e))? as u64,
            created_at: instant(row.try_get(2).map_err(|e| sqlx_error(BACKEND, e))?)?,
            updated_at: instant(row.try_get(3).map_err(|e| sqlx_error(BACKEND, e))?)?,
        };
        let body: String = row.try_get(4).map_err(|e| sqlx_error(BACKEND, e))?;
        let body = serde_json::from_str(&body).map_err(|e| StorageError::corrupt(BACKEND, e))?;
        D::decode(tenant, &id, meta, body, self.sealer.as_ref())
    }

    fn with_meta(doc: &D, version: i64, created_at: i64, now: DateTime<Utc>) -> Result<D> {
        let mut stored = doc.clone();
        stored.set_meta(RecordMeta { version: version as u64, created_at: instant(created_at)?, updated_at: now });
        Ok(stored)
    }
}

#[async_trait]
impl<D: Document> Table<D> for SqliteTable<D> {
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<D>> {
        let row = sqlx::query(self.statements.get.clone())
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        row.map(|row| self.row_to_doc(tenant, &row)).transpose()
    }

    async fn insert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let args = self.new_row_args(doc, now)?;
        let done =
            sqlx::query_with(self.statements.insert.clone(), args).execute(&self.writer).await.map_err(|e| sqlx_error(BACKEND, e))?;
        if done.rows_affected() == 0 {
            return Err(StorageError::conflict(D::ENTITY, doc.id(), "already exists"));
        }
        Self::with_meta(doc, 1, to_micros(now), now)
    }

    async fn upsert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let args = self.new_row_args(doc, now)?;
        let row =
            sqlx::query_with(self.statements.upsert.clone(), args).fetch_one(&self.writer).await.map_err(|e| sqlx_error(BACKEND, e))?;
        Self::with_meta(doc, row.get(0), row.get(1), now)
    }

    async fn update(&self, doc: &D, expected: u64, now: DateTime<Utc>) -> Result<D> {
        let body = doc.encode(self.sealer.as_ref())?.to_string();
        let mut args = SqliteArguments::default();
        Self::bind_indexes(&mut args, doc)?;
        args.add(to_micros(now)).map_err(bind_error)?;
        args.add(body).map_err(bind_error)?;
        args.add(doc.tenant().as_str()).map_err(bind_error)?;
        args.add(doc.id()).map_err(bind_error)?;
        args.add(expected as i64).map_err(bind_error)?;
        let row = sqlx::query_with(self.statements.update.clone(), args)
            .fetch_optional(&self.writer)
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        if let Some(row) = row {
            return Self::with_meta(doc, row.get(0), row.get(1), now);
        }
        let actual: Option<i64> = sqlx::query_scalar(self.statements.version.clone())
            .bind(doc.tenant().as_str())
            .bind(doc.id())
            .fetch_optional(&self.writer)
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Err(match actual {
            None => StorageError::not_found(D::ENTITY, doc.id()),
            Some(actual) => StorageError::VersionMismatch { entity: D::ENTITY, id: doc.id(), expected, actual: actual as u64 },
        })
    }

    async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let done = sqlx::query(self.statements.delete.clone())
            .bind(tenant.as_str())
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn list(&self, tenant: &TenantId, filter: &Filter, after: Option<&str>, limit: u32) -> Result<Vec<D>> {
        let find = |list: &[(&'static str, SqlStr)], column: &str| {
            list.iter()
                .find(|(c, _)| *c == column)
                .map(|(_, s)| s.clone())
                .ok_or_else(|| StorageError::invalid("filter", format!("`{column}` is not an index of {}", D::STORE)))
        };
        let mut args = SqliteArguments::default();
        args.add(tenant.as_str()).map_err(bind_error)?;
        let statement = match filter {
            Filter::All => self.statements.list_all.clone(),
            Filter::Eq { column, value } => {
                args.add(value.as_str()).map_err(bind_error)?;
                find(&self.statements.list_eq, column)?
            }
            Filter::AtOrBefore { column, at } => {
                args.add(to_micros(*at)).map_err(bind_error)?;
                find(&self.statements.list_before, column)?
            }
        };
        args.add(after.unwrap_or("")).map_err(bind_error)?;
        args.add(i64::from(limit)).map_err(bind_error)?;
        let rows = sqlx::query_with(statement, args).fetch_all(&self.reader).await.map_err(|e| sqlx_error(BACKEND, e))?;
        rows.iter().map(|row| self.row_to_doc(tenant, row)).collect()
    }
}
