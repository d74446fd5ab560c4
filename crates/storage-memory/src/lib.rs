//! The in-memory backend of `aragora-storage`: the reference model every other backend is tested
//! against. It keeps the same rules (validation, versions, `created_at`, tenant isolation,
//! pagination, expiry by the injected clock) and stores the same encoded, sealed bodies as the
//! others, so a record that could not round-trip fails here too; it only forgets everything when
//! the process ends.
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]

mod stores;
mod table;

pub use table::MemoryTables;

use async_trait::async_trait;
use std::sync::Arc;
use storage_core::{
    DatabaseBackend, Engine, EngineParts, GmailTokens, Integrations, Sealer, SharedClock, SystemClock, WebhookOptions, Webhooks,
};

/// The seed's in-memory integration store: `InMemoryIntegrationStore::new()`.
pub type InMemoryIntegrationStore = Integrations<MemoryBackend>;
/// The seed's in-memory webhook store.
pub type InMemoryWebhookStore = Webhooks<MemoryBackend>;
/// The seed's in-memory Gmail token store.
pub type InMemoryGmailTokenStore = GmailTokens<MemoryBackend>;

/// One in-process database: stores built on the same backend share their data. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    parts: EngineParts,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// A key ring of one random key: secrets are sealed in memory too, with a key that dies with the
/// process, exactly as the other backends seal them.
fn process_key_ring() -> Arc<dyn Sealer> {
    match storage_crypto::EncryptionKey::generate().and_then(storage_crypto::KeyRing::single) {
        Ok(ring) => Arc::new(ring),
        // The system random generator failed: every seal will fail with this error too.
        Err(e) => Arc::new(Unsealable(e.to_string())),
    }
}

#[derive(Debug)]
struct Unsealable(String);

impl Sealer for Unsealable {
    fn seal(&self, _: &storage_core::SealContext<'_>, _: &str) -> storage_core::Result<String> {
        Err(storage_core::StorageError::crypto(self.0.clone()))
    }
    fn open(&self, _: &storage_core::SealContext<'_>, _: &str) -> storage_core::Result<storage_core::Secret<String>> {
        Err(storage_core::StorageError::crypto(self.0.clone()))
    }
}

impl MemoryBackend {
    /// An empty database on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock::shared())
    }

    /// An empty database on `clock`.
    pub fn with_clock(clock: SharedClock) -> Self {
        Self {
            parts: EngineParts {
                tables: Arc::new(MemoryTables::default()),
                webhook_events: Arc::new(stores::webhook::Events::default()),
                job_rows: Arc::new(stores::job_queue::Jobs::default()),
                sealer: process_key_ring(),
                clock,
                webhook: WebhookOptions::default(),
            },
        }
    }

    /// Sets the webhook retention.
    pub fn webhook_options(mut self, options: WebhookOptions) -> Self {
        self.parts.webhook = options;
        self
    }

    /// Seals secrets with `sealer` instead of a key of its own.
    pub fn sealer(mut self, sealer: Arc<dyn Sealer>) -> Self {
        self.parts.sealer = sealer;
        self
    }
}

#[async_trait]
impl Engine for MemoryBackend {
    fn backend(&self) -> DatabaseBackend {
        DatabaseBackend::Memory
    }
    fn parts(&self) -> &EngineParts {
        &self.parts
    }
    /// Nothing to close: the data lives as long as the backend.
    async fn close(&self) {}
}
