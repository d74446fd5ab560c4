//! The in-memory backend of `aragora-storage`: the reference model every other backend is tested
//! against. It keeps the same rules (validation, versions, `created_at`, tenant isolation,
//! pagination, expiry by the injected clock); it only forgets everything when the process ends.
#![forbid(unsafe_code)]

mod stores;
mod table;

pub use stores::gmail_token::InMemoryGmailTokenStore;
pub use stores::integration::InMemoryIntegrationStore;
pub use stores::webhook::InMemoryWebhookStore;
pub use table::MemoryTable;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use storage_core::document::Document;
use storage_core::{SharedClock, SystemClock, TableHandle, WebhookOptions};

/// One in-process database: stores handed out by the same backend share their data.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    clock: SharedClock,
    webhook: WebhookOptions,
    tables: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
    webhook_events: Arc<stores::webhook::Events>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    /// An empty database on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock::shared())
    }

    /// An empty database on `clock`.
    pub fn with_clock(clock: SharedClock) -> Self {
        Self { clock, webhook: WebhookOptions::default(), tables: Arc::default(), webhook_events: Arc::default() }
    }

    /// Sets the webhook retention.
    pub fn webhook_options(mut self, options: WebhookOptions) -> Self {
        self.webhook = options;
        self
    }

    /// The integration store of this database.
    pub fn integration_store(&self) -> InMemoryIntegrationStore {
        InMemoryIntegrationStore::from_backend(self)
    }

    /// The webhook store of this database.
    pub fn webhook_store(&self) -> InMemoryWebhookStore {
        InMemoryWebhookStore::from_backend(self)
    }

    /// The Gmail token store of this database.
    pub fn gmail_token_store(&self) -> InMemoryGmailTokenStore {
        InMemoryGmailTokenStore::from_backend(self)
    }

    /// The table of `D`, created on first use and shared afterwards.
    pub(crate) fn table<D: Document>(&self) -> TableHandle<D> {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = tables.entry(TypeId::of::<D>()).or_insert_with(|| Arc::new(Arc::new(MemoryTable::<D>::default())));
        let table = entry.downcast_ref::<Arc<MemoryTable<D>>>().map(Arc::clone).unwrap_or_default();
        TableHandle::new(table, Arc::clone(&self.clock))
    }
}
