//! The `Storage` handle: one configured backend and the stores on it.

use std::sync::Arc;
use storage_core::{
    DatabaseBackend, GmailTokenStore, IntegrationStore, Result, SharedClock, StorageConfig, StorageError, SystemClock, WebhookStore,
};

/// The stores of one configured backend. Cheap to clone; clones share connections and data.
#[derive(Debug, Clone)]
pub struct Storage {
    backend: DatabaseBackend,
    integrations: Arc<dyn IntegrationStore>,
    webhooks: Arc<dyn WebhookStore>,
    gmail_tokens: Arc<dyn GmailTokenStore>,
    #[cfg(feature = "sqlite")]
    sqlite: Option<storage_sqlite::SqliteBackend>,
}

/// The error for a backend this build does not include.
#[allow(dead_code, reason = "unused when every backend feature is on")]
fn not_compiled(backend: DatabaseBackend) -> StorageError {
    let feature = match backend {
        DatabaseBackend::Memory => "memory",
        DatabaseBackend::Sqlite => "sqlite",
        DatabaseBackend::Postgresql => "postgres",
        DatabaseBackend::Redis => "redis",
    };
    StorageError::config(format!("DATABASE_BACKEND={backend} needs aragora-storage built with the `{feature}` feature"))
}

impl Storage {
    /// Connects to the backend the environment and `aragora-storage.toml` describe.
    pub async fn from_env() -> Result<Self> {
        Self::connect(&StorageConfig::from_env()?).await
    }

    /// Connects to the backend `config` describes, on the system clock.
    pub async fn connect(config: &StorageConfig) -> Result<Self> {
        Self::connect_with_clock(config, SystemClock::shared()).await
    }

    /// Connects with an injected clock (tests move a `ManualClock` instead of sleeping).
    pub async fn connect_with_clock(config: &StorageConfig, clock: SharedClock) -> Result<Self> {
        config.validate()?;
        #[cfg(not(any(feature = "memory", feature = "sqlite", feature = "postgres", feature = "redis")))]
        let _ = clock;
        match config.backend {
            #[cfg(feature = "memory")]
            DatabaseBackend::Memory => {
                let backend = storage_memory::MemoryBackend::with_clock(clock)
                    .webhook_options(storage_core::WebhookOptions::new(config.webhook_ttl())?);
                Ok(Self::assemble(config.backend, backend.integration_store(), backend.webhook_store(), backend.gmail_token_store()))
            }
            #[cfg(feature = "sqlite")]
            DatabaseBackend::Sqlite => {
                let ring = Arc::new(storage_crypto::load_key_ring(config)?);
                let backend = storage_sqlite::SqliteBackend::connect(config, ring, clock).await?;
                let mut storage =
                    Self::assemble(config.backend, backend.integration_store(), backend.webhook_store(), backend.gmail_token_store());
                storage.sqlite = Some(backend);
                Ok(storage)
            }
            #[cfg(feature = "postgres")]
            DatabaseBackend::Postgresql => {
                let ring = Arc::new(storage_crypto::load_key_ring(config)?);
                let backend = storage_postgres::PostgresBackend::connect(config, ring, clock).await?;
                Ok(Self::assemble(config.backend, backend.integration_store(), backend.webhook_store(), backend.gmail_token_store()))
            }
            #[cfg(feature = "redis")]
            DatabaseBackend::Redis => {
                let ring = Arc::new(storage_crypto::load_key_ring(config)?);
                let backend = storage_redis::RedisBackend::connect(config, ring, clock).await?;
                Ok(Self::assemble(config.backend, backend.integration_store(), backend.webhook_store(), backend.gmail_token_store()))
            }
            #[allow(unreachable_patterns, reason = "reachable only when a backend feature is off")]
            other => Err(not_compiled(other)),
        }
    }

    #[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres", feature = "redis"))]
    fn assemble(
        backend: DatabaseBackend,
        integrations: impl IntegrationStore + 'static,
        webhooks: impl WebhookStore + 'static,
        gmail_tokens: impl GmailTokenStore + 'static,
    ) -> Self {
        Self {
            backend,
            integrations: Arc::new(integrations),
            webhooks: Arc::new(webhooks),
            gmail_tokens: Arc::new(gmail_tokens),
            #[cfg(feature = "sqlite")]
            sqlite: None,
        }
    }

    /// Which backend the stores run on.
    pub fn backend(&self) -> DatabaseBackend {
        self.backend
    }

    /// The integration store.
    pub fn integration_store(&self) -> Arc<dyn IntegrationStore> {
        Arc::clone(&self.integrations)
    }

    /// The webhook idempotency store.
    pub fn webhook_store(&self) -> Arc<dyn WebhookStore> {
        Arc::clone(&self.webhooks)
    }

    /// The Gmail token store.
    pub fn gmail_token_store(&self) -> Arc<dyn GmailTokenStore> {
        Arc::clone(&self.gmail_tokens)
    }

    /// Closes connections; SQLite also folds its write-ahead log into the database file.
    pub async fn close(&self) {
        #[cfg(feature = "sqlite")]
        if let Some(sqlite) = &self.sqlite {
            sqlite.close().await;
        }
    }
}
