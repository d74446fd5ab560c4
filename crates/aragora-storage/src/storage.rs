//! The `Storage` handle: one configured backend, and every store on it.

use std::sync::Arc;
use storage_core::{DatabaseBackend, Engine, Result, SharedClock, StorageConfig, StorageError, SystemClock};

/// The stores of one configured backend. Cheap to clone; clones share connections and data.
#[derive(Debug, Clone)]
pub struct Storage {
    engine: Arc<dyn Engine>,
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
        let engine: Arc<dyn Engine> = match config.backend {
            #[cfg(feature = "memory")]
            DatabaseBackend::Memory => Arc::new(
                storage_memory::MemoryBackend::with_clock(clock).webhook_options(storage_core::WebhookOptions::new(config.webhook_ttl()?)?),
            ),
            #[cfg(feature = "sqlite")]
            DatabaseBackend::Sqlite => {
                let ring = Arc::new(storage_crypto::load_key_ring(config)?);
                Arc::new(storage_sqlite::SqliteBackend::connect(config, ring, clock).await?)
            }
            #[cfg(feature = "postgres")]
            DatabaseBackend::Postgresql => {
                let ring = Arc::new(storage_crypto::load_key_ring(config)?);
                #[cfg(feature = "router")]
                let backend = storage_postgres::PostgresBackend::connect_with_replicas(config, ring, clock).await?;
                #[cfg(not(feature = "router"))]
                let backend = storage_postgres::PostgresBackend::connect(config, ring, clock).await?;
                Arc::new(backend)
            }
            #[cfg(feature = "redis")]
            DatabaseBackend::Redis => {
                let ring = Arc::new(storage_crypto::load_key_ring(config)?);
                Arc::new(storage_redis::RedisBackend::connect(config, ring, clock).await?)
            }
            #[allow(unreachable_patterns, reason = "reachable only when a backend feature is off")]
            other => return Err(not_compiled(other)),
        };
        Ok(Self { engine })
    }

    /// Stores on an engine built by hand (a backend with settings of your own).
    pub fn on(engine: Arc<dyn Engine>) -> Self {
        Self { engine }
    }

    /// Which backend the stores run on.
    pub fn backend(&self) -> DatabaseBackend {
        self.engine.backend()
    }

    /// The backend itself.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// Closes the backend's connections; SQLite also folds its write-ahead log into the file.
    pub async fn close(&self) {
        self.engine.close().await;
    }
}
