//! The generic engine: per tenant, an ordered map of records by id.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};
use storage_core::document::{Document, Filter, RecordMeta};
use storage_core::{Result, StorageError, Table, TenantId};

/// The in-memory storage of one [`Document`] type. Nested by tenant, so a lookup borrows its
/// keys instead of allocating them, and a tenant's records are one ordered map.
#[derive(Debug)]
pub struct MemoryTable<D> {
    tenants: RwLock<BTreeMap<TenantId, BTreeMap<String, D>>>,
}

impl<D> Default for MemoryTable<D> {
    fn default() -> Self {
        Self { tenants: RwLock::new(BTreeMap::new()) }
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
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        Ok(tenants.get(tenant).and_then(|rows| rows.get(id)).cloned())
    }

    async fn insert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        let rows = tenants.entry(doc.tenant().clone()).or_default();
        let id = doc.id();
        if rows.contains_key(&id) {
            return Err(StorageError::conflict(D::ENTITY, id, "already exists"));
        }
        let stored = stamped(doc, RecordMeta::new_at(now));
        rows.insert(id, stored.clone());
        Ok(stored)
    }

    async fn upsert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        let rows = tenants.entry(doc.tenant().clone()).or_default();
        let id = doc.id();
        let meta = match rows.get(&id) {
            Some(old) => RecordMeta { version: old.meta().version + 1, created_at: old.meta().created_at, updated_at: now },
            None => RecordMeta::new_at(now),
        };
        let stored = stamped(doc, meta);
        rows.insert(id, stored.clone());
        Ok(stored)
    }

    async fn update(&self, doc: &D, expected: u64, now: DateTime<Utc>) -> Result<D> {
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        let id = doc.id();
        let Some(old) = tenants.get_mut(doc.tenant()).and_then(|rows| rows.get_mut(&id)) else {
            return Err(StorageError::not_found(D::ENTITY, id));
        };
        let actual = old.meta().version;
        if actual != expected {
            return Err(StorageError::VersionMismatch { entity: D::ENTITY, id, expected, actual });
        }
        *old = stamped(doc, RecordMeta { version: actual + 1, created_at: old.meta().created_at, updated_at: now });
        Ok(old.clone())
    }

    async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        Ok(tenants.get_mut(tenant).is_some_and(|rows| rows.remove(id).is_some()))
    }

    async fn list(&self, tenant: &TenantId, filter: &Filter, after: Option<&str>, limit: u32) -> Result<Vec<D>> {
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        let Some(rows) = tenants.get(tenant) else {
            return Ok(Vec::new());
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(rows
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(_, doc)| doc)
            .filter(|doc| doc.matches(filter))
            .take(limit as usize)
            .cloned()
            .collect())
    }
}
