//! The engine contract for [`Document`]s, and the checked handle stores use.

use crate::clock::SharedClock;
use crate::document::{Document, Filter, RecordMeta};
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::Arc;

/// How many times [`TableHandle::patch`] re-reads after losing a race before giving up.
const PATCH_ATTEMPTS: usize = 32;

/// One backend's storage of one [`Document`] type: the common case, implemented once per backend.
///
/// Implementations trust their arguments: [`TableHandle`] validates them first.
#[async_trait]
pub trait Table<D: Document>: Send + Sync + fmt::Debug {
    /// The record, if it exists in `tenant`.
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<D>>;
    /// Inserts a new record (version 1); [`StorageError::Conflict`] if the id is taken.
    async fn insert(&self, doc: &D, now: DateTime<Utc>) -> Result<D>;
    /// Inserts or replaces; a replaced record keeps its `created_at` and gets the next version.
    async fn upsert(&self, doc: &D, now: DateTime<Utc>) -> Result<D>;
    /// Replaces the record only if its stored version is `expected`.
    async fn update(&self, doc: &D, expected: u64, now: DateTime<Utc>) -> Result<D>;
    /// Deletes the record; whether it existed.
    async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool>;
    /// Up to `limit` records of `tenant` passing `filter`, ordered by id, with ids after `after`.
    async fn list(&self, tenant: &TenantId, filter: &Filter, after: Option<&str>, limit: u32) -> Result<Vec<D>>;
}

/// A [`Table`] behind the checks every store keeps: ids and records are validated before the
/// backend sees them, timestamps come from the injected clock, lists are paginated.
#[derive(Debug)]
pub struct TableHandle<D: Document> {
    table: Arc<dyn Table<D>>,
    clock: SharedClock,
}

impl<D: Document> Clone for TableHandle<D> {
    fn clone(&self) -> Self {
        Self { table: Arc::clone(&self.table), clock: Arc::clone(&self.clock) }
    }
}

impl<D: Document> TableHandle<D> {
    /// Wraps a backend table.
    pub fn new(table: Arc<dyn Table<D>>, clock: SharedClock) -> Self {
        Self { table, clock }
    }

    /// The clock this table stamps records with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Reads a record.
    pub async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<D>> {
        validate_id(D::ID_FIELD, id)?;
        self.table.get(tenant, id).await
    }

    /// Creates a record; [`StorageError::Conflict`] if it exists.
    pub async fn insert(&self, doc: &D) -> Result<D> {
        doc.validate()?;
        self.table.insert(doc, self.clock.now()).await
    }

    /// Creates or replaces a record, keeping `created_at`.
    pub async fn upsert(&self, doc: &D) -> Result<D> {
        doc.validate()?;
        self.table.upsert(doc, self.clock.now()).await
    }

    /// Replaces a record if it still has the version `doc` was read at.
    pub async fn update(&self, doc: &D) -> Result<D> {
        doc.validate()?;
        self.table.update(doc, doc.meta().version, self.clock.now()).await
    }

    /// Deletes a record; whether it existed.
    pub async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        validate_id(D::ID_FIELD, id)?;
        self.table.delete(tenant, id).await
    }

    /// One page of the tenant's records passing `filter`, in id order.
    pub async fn list(&self, tenant: &TenantId, filter: Filter, page: &PageRequest) -> Result<Page<D>> {
        if let Filter::Eq { column, value } = &filter {
            validate_id(column, value)?;
        }
        let limit = page.limit()?;
        let after = page.after_key()?;
        let items = self.table.list(tenant, &filter, after.as_deref(), limit + 1).await?;
        Ok(Page::from_overfetch(items, limit, |d| d.id()))
    }

    /// Applies `change` to the current record and writes it back atomically: if another writer
    /// got in between, the change is re-applied to the newer record. No update is lost.
    pub async fn patch(&self, tenant: &TenantId, id: &str, mut change: impl FnMut(&mut D) -> Result<()> + Send) -> Result<D> {
        for _ in 0..PATCH_ATTEMPTS {
            let Some(mut doc) = self.get(tenant, id).await? else {
                return Err(StorageError::not_found(D::ENTITY, id));
            };
            let RecordMeta { version, .. } = doc.meta();
            change(&mut doc)?;
            doc.validate()?;
            match self.table.update(&doc, version, self.clock.now()).await {
                Err(StorageError::VersionMismatch { .. }) => continue,
                other => return other,
            }
        }
        Err(StorageError::conflict(D::ENTITY, id, format!("still contended after {PATCH_ATTEMPTS} attempts")))
    }
}
