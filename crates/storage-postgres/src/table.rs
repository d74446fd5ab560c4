//! The generic engine: any [`Document`] in a table with real columns for the tenant, id, declared
//! indexes and metadata, and the rest as a `JSONB` body with sealed secrets.

use crate::BACKEND;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::types::Json;
use sqlx::{Arguments, AssertSqlSafe, Row, SqlSafeStr, SqlStr};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use storage_core::document::{Document, Filter, IndexValue, RecordMeta, StoredBody};
use storage_core::{Result, Sealer, StorageError, Table, TenantId};
use storage_router::ConnectionRouter;
use storage_schema::{Placeholder, TableSql, sqlx_error};

/// The PostgreSQL storage of one [`Document`] type.
pub struct PostgresTable<D> {
    router: ConnectionRouter,
    sealer: Arc<dyn Sealer>,
    statements: Arc<TableSql>,
    _document: PhantomData<fn() -> D>,
}

impl<D> fmt::Debug for PostgresTable<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTable").field("statements", &self.statements.get).finish_non_exhaustive()
    }
}

/// A statement built once from the table's declaration (never from input) as sqlx SQL.
fn sql(statement: &Arc<str>) -> SqlStr {
    AssertSqlSafe(Arc::clone(statement)).into_sql_str()
}

fn bind_error(e: impl Into<storage_core::BoxError>) -> StorageError {
    StorageError::backend(BACKEND, e)
}

impl<D: Document> PostgresTable<D> {
    /// The table of `D` on the router's pools.
    pub fn new(router: ConnectionRouter, sealer: Arc<dyn Sealer>) -> Self {
        Self { router, sealer, statements: Arc::new(TableSql::new::<D>(Placeholder::Dollar)), _document: PhantomData }
    }

    fn bind_indexes(args: &mut PgArguments, doc: &D) -> Result<()> {
        for value in doc.index_values() {
            match value {
                IndexValue::Text(text) => args.add(text),
                IndexValue::Time(time) => args.add(time),
            }
            .map_err(bind_error)?;
        }
        Ok(())
    }

    /// The arguments of a new row: identity, indexes, version 1, timestamps, sealed body.
    fn new_row_args(&self, doc: &D, now: DateTime<Utc>) -> Result<PgArguments> {
        let body = doc.encode(self.sealer.as_ref())?;
        let mut args = PgArguments::default();
        args.add(doc.tenant().as_str()).map_err(bind_error)?;
        args.add(doc.id()).map_err(bind_error)?;
        Self::bind_indexes(&mut args, doc)?;
        args.add(1_i64).map_err(bind_error)?;
        args.add(now).map_err(bind_error)?;
        args.add(now).map_err(bind_error)?;
        args.add(Json(body)).map_err(bind_error)?;
        Ok(args)
    }

    fn row_to_doc(&self, tenant: &TenantId, row: &PgRow) -> Result<D> {
        let get = |e: sqlx::Error| sqlx_error(BACKEND, e);
        let id: String = row.try_get(0).map_err(get)?;
        let meta = RecordMeta {
            version: row.try_get::<i64, _>(1).map_err(get)? as u64,
            created_at: row.try_get(2).map_err(get)?,
            updated_at: row.try_get(3).map_err(get)?,
        };
        let Json(body): Json<StoredBody<D>> = row.try_get(4).map_err(get)?;
        D::decode(tenant, &id, meta, body, self.sealer.as_ref())
    }

    fn with_meta(doc: &D, row: &PgRow, now: DateTime<Utc>) -> Result<D> {
        let get = |e: sqlx::Error| sqlx_error(BACKEND, e);
        let mut stored = doc.clone();
        stored.set_meta(RecordMeta {
            version: row.try_get::<i64, _>(0).map_err(get)? as u64,
            created_at: row.try_get(1).map_err(get)?,
            updated_at: now,
        });
        Ok(stored)
    }
}

#[async_trait]
impl<D: Document> Table<D> for PostgresTable<D> {
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<D>> {
        let row = sqlx::query(sql(&self.statements.get))
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(self.router.read_pool())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        row.map(|row| self.row_to_doc(tenant, &row)).transpose()
    }

    async fn insert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let args = self.new_row_args(doc, now)?;
        let done = sqlx::query_with(sql(&self.statements.insert), args)
            .execute(self.router.write_pool())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        if done.rows_affected() == 0 {
            return Err(StorageError::conflict(D::ENTITY, doc.id(), "already exists"));
        }
        let mut stored = doc.clone();
        stored.set_meta(RecordMeta::new_at(now));
        Ok(stored)
    }

    async fn upsert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let args = self.new_row_args(doc, now)?;
        let row = sqlx::query_with(sql(&self.statements.upsert), args)
            .fetch_one(self.router.write_pool())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Self::with_meta(doc, &row, now)
    }

    async fn update(&self, doc: &D, expected: u64, now: DateTime<Utc>) -> Result<D> {
        let body = doc.encode(self.sealer.as_ref())?;
        let mut args = PgArguments::default();
        Self::bind_indexes(&mut args, doc)?;
        args.add(now).map_err(bind_error)?;
        args.add(Json(body)).map_err(bind_error)?;
        args.add(doc.tenant().as_str()).map_err(bind_error)?;
        args.add(doc.id()).map_err(bind_error)?;
        args.add(expected as i64).map_err(bind_error)?;
        let pool = self.router.write_pool();
        let row = sqlx::query_with(sql(&self.statements.update), args).fetch_optional(pool).await.map_err(|e| sqlx_error(BACKEND, e))?;
        if let Some(row) = row {
            return Self::with_meta(doc, &row, now);
        }
        let actual: Option<i64> = sqlx::query_scalar(sql(&self.statements.version))
            .bind(doc.tenant().as_str())
            .bind(doc.id())
            .fetch_optional(pool)
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Err(match actual {
            None => StorageError::not_found(D::ENTITY, doc.id()),
            Some(actual) => StorageError::VersionMismatch { entity: D::ENTITY, id: doc.id(), expected, actual: actual as u64 },
        })
    }

    async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let done = sqlx::query(sql(&self.statements.delete))
            .bind(tenant.as_str())
            .bind(id)
            .execute(self.router.write_pool())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn list(&self, tenant: &TenantId, filter: &Filter, after: Option<&str>, limit: u32) -> Result<Vec<D>> {
        let statement = self.statements.list(filter, D::STORE)?;
        let mut args = PgArguments::default();
        args.add(tenant.as_str()).map_err(bind_error)?;
        match filter {
            Filter::All => {}
            Filter::Eq { value, .. } => args.add(value.as_str()).map_err(bind_error)?,
            Filter::AtOrBefore { at, .. } => args.add(*at).map_err(bind_error)?,
        }
        args.add(after.unwrap_or("")).map_err(bind_error)?;
        args.add(i64::from(limit)).map_err(bind_error)?;
        let rows = sqlx::query_with(sql(&statement), args).fetch_all(self.router.read_pool()).await.map_err(|e| sqlx_error(BACKEND, e))?;
        rows.iter().map(|row| self.row_to_doc(tenant, row)).collect()
    }
}
