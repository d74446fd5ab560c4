//! The generic engine: an ordered map per document type.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};
use storage_core::document::{Document, Filter, RecordMeta};
use storage_core::{Result, StorageError, Table, TenantId};

/// The in-memory storage of one [`Document`] type, ordered by (tenant, id).
#[derive(Debug)]
pub struct MemoryTable<D> {
    rows: RwLock<BTreeMap<(TenantId, String), D>>,
}

impl<D> Default for MemoryTable<D> {
    fn default() -> Self {
        Self { rows: RwLock::new(BTreeMap::new()) }
    }
}

fn stamped<D: Document>(doc: &D, meta: RecordMeta) -> D {
    let mut stored = doc.clone();
    stored.set_meta(meta);
    stored
}

#[async_trait]
impl<D: Document> Table<D> for MemoryTable<D> {
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<D>> {
        let rows = self.rows.read().unwrap_or_else(PoisonError::into_inner);
        Ok(rows.get(&(tenant.clone(), id.to_owned())).cloned())
    }

    async fn insert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let mut rows = self.rows.write().unwrap_or_else(PoisonError::into_inner);
        let key = (doc.tenant().clone(), doc.id());
        if rows.contains_key(&key) {
            return Err(StorageError::conflict(D::ENTITY, doc.id(), "already exists"));
        }
        let stored = stamped(doc, RecordMeta::new_at(now));
        rows.insert(key, stored.clone());
        Ok(stored)
    }

    async fn upsert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let mut rows = self.rows.write().unwrap_or_else(PoisonError::into_inner);
        let key = (doc.tenant().clone(), doc.id());
        let meta = match rows.get(&key) {
            Some(old) => RecordMeta { version: old.meta().version + 1, created_at: old.meta().created_at, updated_at: now },
            None => RecordMeta::new_at(now),
        };
        let stored = stamped(doc, meta);
        rows.insert(key, stored.clone());
        Ok(stored)
    }

    async fn update(&self, doc: &D, expected: u64, now: DateTime<Utc>) -> Result<D> {
        let mut rows = self.rows.write().unwrap_or_else(PoisonError::into_inner);
        let key = (doc.tenant().clone(), doc.id());
        let Some(old) = rows.get(&key) else {
            return Err(StorageError::not_found(D::ENTITY, doc.id()));
        };
        let actual = old.meta().version;
        if actual != expected {
            return Err(StorageError::VersionMismatch { entity: D::ENTITY, id: doc.id(), expected, actual });
        }
        let stored = stamped(doc, RecordMeta { version: actual + 1, created_at: old.meta().created_at, updated_at: now });
        rows.insert(key, stored.clone());
        Ok(stored)
    }

    async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let mut rows = self.rows.write().unwrap_or_else(PoisonError::into_inner);
        Ok(rows.remove(&(tenant.clone(), id.to_owned())).is_some())
    }

    async fn list(&self, tenant: &TenantId, filter: &Filter, after: Option<&str>, limit: u32) -> Result<Vec<D>> {
        let rows = self.rows.read().unwrap_or_else(PoisonError::into_inner);
        let start = match after {
            Some(after) => Bound::Excluded((tenant.clone(), after.to_owned())),
            None => Bound::Included((tenant.clone(), String::new())),
        };
        Ok(rows
            .range((start, Bound::Unbounded))
            .take_while(|((t, _), _)| t == tenant)
            .map(|(_, doc)| doc)
            .filter(|doc| doc.matches(filter))
            .take(limit as usize)
            .cloned()
            .collect())
    }
}
