//! The `Storage` handle: one configured backend, and every store on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use storage_core::rotation::{self, KeyCensus, Rotation, RotationProgress, RotationReport};
use storage_core::{
    DatabaseBackend, Engine, Health, Instrumentation, Result, SharedClock, StorageConfig, StorageError, SystemClock, instrumented,
};

/// The stores of the configured backends. Cheap to clone; clones share connections and data.
///
/// Every store lives on [`StorageConfig::backend`] unless `ARAGORA_<STORE>_STORE_BACKEND` places it
/// on another ([`storage_core::placement`]): each backend in use is connected once.
#[derive(Debug, Clone)]
pub struct Storage {
    engine: Arc<dyn Engine>,
    /// Stores placed on another backend than `engine`'s, by store name.
    placed: BTreeMap<&'static str, Arc<dyn Engine>>,
    /// Every engine, `engine` first.
    engines: Vec<Arc<dyn Engine>>,
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
        let observed = Instrumentation { tenant_labels: config.metrics_tenant_labels };
        // One key ring for every backend: one count of encryptions, one primary key.
        #[cfg(feature = "crypto")]
        let sealer: Option<Arc<dyn storage_core::Sealer>> = if config.backends_in_use().iter().any(|b| *b != DatabaseBackend::Memory) {
            Some(Arc::new(storage_crypto::load_key_ring(config)?))
        } else {
            None
        };
        #[cfg(not(feature = "crypto"))]
        let sealer: Option<Arc<dyn storage_core::Sealer>> = None;
        let mut engines: Vec<Arc<dyn Engine>> = Vec::new();
        for backend in config.backends_in_use() {
            let engine = connect_engine(config, backend, Arc::clone(&clock), sealer.clone()).await?;
            engines.push(instrumented(engine, observed));
        }
        let Some(engine) = engines.first().cloned() else {
            return Err(StorageError::config("no backend configured"));
        };
        let mut placed = BTreeMap::new();
        for store in storage_core::placement::STORES {
            let backend = config.store_backend(store);
            if backend != engine.backend()
                && let Some(other) = engines.iter().find(|e| e.backend() == backend)
            {
                placed.insert(*store, Arc::clone(other));
            }
        }
        Ok(Self { engine, placed, engines })
    }

    /// Stores on an engine built by hand (a backend with settings of your own), observed as
    /// [`storage_core::instrument`] describes.
    pub fn on(engine: Arc<dyn Engine>) -> Self {
        let engine = instrumented(engine, Instrumentation::default());
        Self { engines: vec![Arc::clone(&engine)], engine, placed: BTreeMap::new() }
    }

    /// The engine `store` (an accessor's name, `job_queue_store`) lives on.
    pub(crate) fn engine_for(&self, store: &str) -> &Arc<dyn Engine> {
        let name = store.strip_suffix("_store").unwrap_or(store);
        self.placed.get(name).unwrap_or(&self.engine)
    }

    /// Every backend in use, the default first.
    pub fn engines(&self) -> &[Arc<dyn Engine>] {
        &self.engines
    }

    /// Each backend's health, the default first: whether it answers, how fast, how busy its
    /// connections are, and (where they apply) its read replicas' lag and the Redis node's role.
    pub async fn health(&self) -> Vec<Health> {
        let mut reports = Vec::with_capacity(self.engines.len());
        for engine in &self.engines {
            reports.push(engine.health().await);
        }
        reports
    }

    /// How many stored values each encryption key seals, per store table, over every backend in
    /// use (it reads headers, never secrets).
    pub async fn key_census(&self) -> Result<KeyCensus> {
        let mut census = KeyCensus::default();
        for engine in &self.engines {
            census.merge(rotation::census(engine.as_ref()).await?);
        }
        Ok(census)
    }

    /// Re-encrypts every sealed value of every store under the primary key, as
    /// [`storage_core::rotation::reencrypt`] describes: in batches, resumable, and safe while the
    /// application keeps writing; backend after backend (a second one's checkpoint file gets its
    /// name as a suffix; a rerun after an interruption re-reads, without rewriting, the backends
    /// finished before it). `progress` is called after every batch.
    pub async fn reencrypt(&self, options: &Rotation, progress: impl Fn(&RotationProgress) + Send + Sync) -> Result<RotationReport> {
        let mut total: Option<RotationReport> = None;
        for (i, engine) in self.engines.iter().enumerate() {
            let mut options = options.clone();
            if i > 0 {
                options.checkpoint = options.checkpoint.map(|path| {
                    let mut name = path.into_os_string();
                    name.push(format!(".{}", engine.backend()));
                    name.into()
                });
            }
            let report = rotation::reencrypt(engine.as_ref(), &options, &progress).await?;
            total = Some(match total {
                None => report,
                Some(sum) => RotationReport {
                    scanned: sum.scanned.saturating_add(report.scanned),
                    resealed: sum.resealed.saturating_add(report.resealed),
                    resumed: sum.resumed || report.resumed,
                    ..sum
                },
            });
        }
        total.ok_or_else(|| StorageError::config("no backend configured"))
    }

    /// Checks that the key `key_id` may leave the key ring: refused (`Conflict`) while any value
    /// on any backend in use is still sealed with it, or if it is the primary key.
    pub async fn retire_key(&self, key_id: &str) -> Result<KeyCensus> {
        let mut census = KeyCensus::default();
        for engine in &self.engines {
            census.merge(rotation::retire(engine.as_ref(), key_id).await?);
        }
        Ok(census)
    }

    /// Closes every backend's connections; SQLite also folds its write-ahead log into the file.
    pub async fn close(&self) {
        for engine in &self.engines {
            engine.close().await;
        }
    }

    /// Which backend the stores run on.
    pub fn backend(&self) -> DatabaseBackend {
        self.engine.backend()
    }

    /// The backend itself.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }
}

/// Connects `backend` with `config`'s settings, sealing with `sealer` (the memory backend, alone,
/// seals with a key of its own that dies with the process).
#[allow(unreachable_code, reason = "with no backend feature every arm returns early")]
async fn connect_engine(
    config: &StorageConfig,
    backend: DatabaseBackend,
    clock: SharedClock,
    sealer: Option<Arc<dyn storage_core::Sealer>>,
) -> Result<Arc<dyn Engine>> {
    #[cfg(not(any(feature = "memory", feature = "sqlite", feature = "postgres", feature = "redis")))]
    let _ = (config, &clock, &sealer);
    #[allow(dead_code, reason = "unused when no backend needs a key ring")]
    let ring = || sealer.clone().ok_or_else(|| StorageError::config("no key ring was loaded for this backend"));
    Ok(match backend {
        #[cfg(feature = "memory")]
        DatabaseBackend::Memory => {
            let memory =
                storage_memory::MemoryBackend::with_clock(clock).webhook_options(storage_core::WebhookOptions::new(config.webhook_ttl()?)?);
            Arc::new(match &sealer {
                Some(sealer) => memory.sealer(Arc::clone(sealer)),
                None => memory,
            })
        }
        #[cfg(feature = "sqlite")]
        DatabaseBackend::Sqlite => Arc::new(storage_sqlite::SqliteBackend::connect(config, ring()?, clock).await?),
        #[cfg(feature = "postgres")]
        DatabaseBackend::Postgresql => {
            #[cfg(feature = "router")]
            let backend = storage_postgres::PostgresBackend::connect_with_replicas(config, ring()?, clock).await?;
            #[cfg(not(feature = "router"))]
            let backend = storage_postgres::PostgresBackend::connect(config, ring()?, clock).await?;
            Arc::new(backend)
        }
        #[cfg(feature = "redis")]
        DatabaseBackend::Redis => Arc::new(storage_redis::RedisBackend::connect(config, ring()?, clock).await?),
        #[allow(unreachable_patterns, reason = "reachable only when a backend feature is off")]
        other => return Err(not_compiled(other)),
    })
}
