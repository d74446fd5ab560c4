//! The statements of the generic engine's tables, built once per [`Document`] from its
//! declaration. SQLite and PostgreSQL share them: both take numbered placeholders (`?1` / `$1`)
//! and the same `ON CONFLICT .. RETURNING` syntax.

use std::sync::Arc;
use storage_core::document::Document;
use storage_core::{Filter, Result, StorageError};

/// Placeholder style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `?1`, `?2`, ... (SQLite).
    Question,
    /// `$1`, `$2`, ... (PostgreSQL).
    Dollar,
}

/// The statements of one document table. Bind order is documented per statement.
#[derive(Debug)]
pub struct TableSql {
    /// `tenant, id` → `id, version, created_at, updated_at, body`.
    pub get: Arc<str>,
    /// `tenant, id, indexes.., version, created_at, updated_at, body`; affects no row on conflict.
    pub insert: Arc<str>,
    /// As `insert`; replaces on conflict keeping `created_at` → `version, created_at`.
    pub upsert: Arc<str>,
    /// `indexes.., updated_at, body, tenant, id, expected version` → `version, created_at`.
    pub update: Arc<str>,
    /// `tenant, id` → `version`.
    pub version: Arc<str>,
    /// `tenant, id`.
    pub delete: Arc<str>,
    list_all: Arc<str>,
    list_eq: Vec<(&'static str, Arc<str>)>,
    list_before: Vec<(&'static str, Arc<str>)>,
}

fn sql(text: String) -> Arc<str> {
    Arc::from(text)
}

impl TableSql {
    /// The statements of `D`'s table.
    pub fn new<D: Document>(style: Placeholder) -> Self {
        let p = |n: usize| match style {
            Placeholder::Question => format!("?{n}"),
            Placeholder::Dollar => format!("${n}"),
        };
        let t = D::STORE;
        let columns: Vec<_> = D::INDEXES.iter().map(|i| i.column).collect();
        let n = columns.len();
        let column_list: String = columns.iter().map(|c| format!("{c}, ")).collect();
        let placeholders: String = (0..n).map(|i| format!("{}, ", p(i + 3))).collect();
        let set_excluded: String = columns.iter().map(|c| format!("{c} = excluded.{c}, ")).collect();
        let set_params: String = columns.iter().enumerate().map(|(i, c)| format!("{c} = {}, ", p(i + 1))).collect();
        let values = format!(
            "INSERT INTO {t} (tenant, id, {column_list}version, created_at, updated_at, body) VALUES ({}, {}, {placeholders}{}, {}, {}, {})",
            p(1),
            p(2),
            p(n + 3),
            p(n + 4),
            p(n + 5),
            p(n + 6)
        );
        let select = format!("SELECT id, version, created_at, updated_at, body FROM {t} WHERE tenant = {}", p(1));
        let list =
            |condition: &str, next: usize| sql(format!("{select}{condition} AND id > {} ORDER BY id LIMIT {}", p(next), p(next + 1)));
        Self {
            get: sql(format!("{select} AND id = {}", p(2))),
            insert: sql(format!("{values} ON CONFLICT (tenant, id) DO NOTHING")),
            upsert: sql(format!(
                "{values} ON CONFLICT (tenant, id) DO UPDATE SET {set_excluded}version = {t}.version + 1, updated_at = excluded.updated_at, body = excluded.body RETURNING version, created_at"
            )),
            update: sql(format!(
                "UPDATE {t} SET {set_params}version = version + 1, updated_at = {}, body = {} WHERE tenant = {} AND id = {} AND version = {} RETURNING version, created_at",
                p(n + 1),
                p(n + 2),
                p(n + 3),
                p(n + 4),
                p(n + 5)
            )),
            version: sql(format!("SELECT version FROM {t} WHERE tenant = {} AND id = {}", p(1), p(2))),
            delete: sql(format!("DELETE FROM {t} WHERE tenant = {} AND id = {}", p(1), p(2))),
            list_all: list("", 2),
            list_eq: columns.iter().map(|c| (*c, list(&format!(" AND {c} = {}", p(2)), 3))).collect(),
            list_before: columns.iter().map(|c| (*c, list(&format!(" AND {c} <= {}", p(2)), 3))).collect(),
        }
    }

    /// The list statement for `filter`: binds `tenant, [filter value], after id, limit` →
    /// `id, version, created_at, updated_at, body`.
    pub fn list(&self, filter: &Filter, store: &str) -> Result<Arc<str>> {
        let find = |list: &[(&'static str, Arc<str>)], column: &str| {
            list.iter()
                .find(|(c, _)| *c == column)
                .map(|(_, s)| s.clone())
                .ok_or_else(|| StorageError::invalid("filter", format!("`{column}` is not an index of {store}")))
        };
        match filter {
            Filter::All => Ok(self.list_all.clone()),
            Filter::Eq { column, .. } => find(&self.list_eq, column),
            Filter::AtOrBefore { column, .. } => find(&self.list_before, column),
        }
    }
}
