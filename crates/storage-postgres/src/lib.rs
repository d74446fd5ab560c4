//! The PostgreSQL backend of `aragora-storage`.
//!
//! Documents are rows with real, indexed columns and a JSON body; instants are `TIMESTAMPTZ`
//! written from the injected clock; pools come from `storage-router` with timeouts from the
//! configuration. Pending migrations are applied on connect under an advisory lock (or only
//! verified, with [`PostgresBuilder::migrate`]`(false)`).
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]

mod stores;
mod table;

pub use table::PostgresTables;
/// The job queue's statements, as the store sends them (for tools and the benchmarks' baselines).
pub mod job_statements {
    pub use crate::stores::job_queue::{CLAIM, INSERT, SETTLE};
}

use async_trait::async_trait;
use std::sync::Arc;
use storage_core::{
    DatabaseBackend, Engine, EngineParts, GmailTokens, Integrations, OpenEngine, Result, Sealer, SharedClock, StorageConfig, StorageError,
    SystemClock, WebhookOptions, Webhooks,
};
use storage_router::{ConnectionRouter, PoolSettings, ReplicaConfig, RouterConfig, RoutingSettings};

/// The PostgreSQL integration store: `PostgresIntegrationStore::open(url)`.
pub type PostgresIntegrationStore = Integrations<PostgresBackend>;
/// The PostgreSQL webhook store.
pub type PostgresWebhookStore = Webhooks<PostgresBackend>;
/// The PostgreSQL Gmail token store.
pub type PostgresGmailTokenStore = GmailTokens<PostgresBackend>;

/// The backend in errors.
pub(crate) const BACKEND: DatabaseBackend = DatabaseBackend::Postgresql;

/// A PostgreSQL database: its pools, the key ring and the clock its stores share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresBackend {
    router: ConnectionRouter,
    parts: EngineParts,
}

/// Settings for [`PostgresBackend`]; start from [`PostgresBackend::builder`].
#[derive(Debug)]
pub struct PostgresBuilder {
    url: String,
    replicas: Vec<ReplicaConfig>,
    routing: RoutingSettings,
    pool: PoolSettings,
    sealer: Option<Arc<dyn Sealer>>,
    clock: SharedClock,
    webhook: WebhookOptions,
    migrate: bool,
}

impl PostgresBuilder {
    /// The clock stamping every record.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
    /// The sealer for secret fields (by default the configured key ring).
    pub fn sealer(mut self, sealer: Arc<dyn Sealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }
    /// Read replicas of the database, named `replica-<i>` in order; reads go where
    /// [`RoutingSettings`] and each read's [`storage_router::Consistency`] allow.
    pub fn replicas(mut self, replicas: Vec<ReplicaConfig>) -> Self {
        self.replicas = replicas;
        self
    }
    /// How reads are routed among the replicas.
    pub fn routing(mut self, routing: RoutingSettings) -> Self {
        self.routing = routing;
        self
    }
    /// Pool and session settings.
    pub fn pool(mut self, pool: PoolSettings) -> Self {
        self.pool = pool;
        self
    }
    /// Webhook retention.
    pub fn webhook_options(mut self, options: WebhookOptions) -> Self {
        self.webhook = options;
        self
    }
    /// Whether to apply pending migrations on connect (default) or only verify the schema.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Connects, then migrates or verifies the schema. The sealer must have been given: a
    /// builder never reads the environment.
    pub async fn connect(self) -> Result<PostgresBackend> {
        let sealer = self.sealer.ok_or_else(|| {
            StorageError::config("no sealer for the PostgreSQL backend: pass `.sealer(..)` (or use `PostgresBackend::open`, which reads the key from the environment)")
        })?;
        let config = RouterConfig {
            primary_dsn: storage_core::Secret::new(self.url),
            replicas: self.replicas,
            pool: self.pool,
            routing: self.routing,
        };
        let router = ConnectionRouter::new(&config)?;
        let mut conn = router.write_pool().acquire().await.map_err(storage_schema::sqlx_error)?;
        if self.migrate {
            let applied = storage_schema::upgrade_schema(&mut *conn).await?;
            if !applied.is_empty() {
                // A migration is a write: reads wait for the replicas to have its schema.
                router.wrote();
            }
        } else {
            storage_schema::verify_schema(&mut *conn).await?;
        }
        drop(conn);
        let parts = EngineParts {
            tables: Arc::new(PostgresTables::new(router.clone())),
            webhook_events: Arc::new(stores::webhook::PostgresWebhookEvents::new(router.clone())),
            job_rows: Arc::new(stores::job_queue::PostgresJobs::new(router.clone())),
            sealer,
            clock: self.clock,
            webhook: self.webhook,
        };
        Ok(PostgresBackend { router, parts })
    }
}

impl PostgresBackend {
    /// Settings for the database at `url`, starting from the defaults.
    pub fn builder(url: impl Into<String>) -> PostgresBuilder {
        PostgresBuilder {
            url: url.into(),
            replicas: Vec::new(),
            routing: RoutingSettings::default(),
            pool: PoolSettings::default(),
            sealer: None,
            clock: SystemClock::shared(),
            webhook: WebhookOptions::default(),
            migrate: true,
        }
    }

    /// Connects to the database at `url` with default settings and the key ring the environment
    /// configures (`ENCRYPTION_KEY`).
    pub async fn open(url: impl Into<String>) -> Result<Self> {
        let ring = Arc::new(storage_crypto::load_key_ring(&StorageConfig::from_env()?)?);
        Self::builder(url).sealer(ring).connect().await
    }

    /// Connects to the database the configuration names (its primary only: see
    /// [`Self::connect_with_replicas`]).
    pub async fn connect(config: &StorageConfig, sealer: Arc<dyn Sealer>, clock: SharedClock) -> Result<Self> {
        let url = config
            .postgres_primary_dsn
            .as_ref()
            .or(config.database_url.as_ref())
            .ok_or_else(|| storage_core::StorageError::config("DATABASE_URL (or ARAGORA_POSTGRES_PRIMARY_DSN) is not set"))?;
        Self::builder(url.expose().clone())
            .pool(PoolSettings::from_config(config))
            .webhook_options(WebhookOptions::new(config.webhook_ttl()?)?)
            .sealer(sealer)
            .clock(clock)
            .connect()
            .await
    }

    /// Connects to the primary and the read replicas the configuration names
    /// (`ARAGORA_POSTGRES_REPLICA_DSNS` and the routing settings).
    pub async fn connect_with_replicas(config: &StorageConfig, sealer: Arc<dyn Sealer>, clock: SharedClock) -> Result<Self> {
        let routed = RouterConfig::from_config(config)?;
        Self::builder(routed.primary_dsn.expose().clone())
            .pool(routed.pool)
            .replicas(routed.replicas)
            .routing(routed.routing)
            .webhook_options(WebhookOptions::new(config.webhook_ttl()?)?)
            .sealer(sealer)
            .clock(clock)
            .connect()
            .await
    }

    /// The pools.
    pub fn router(&self) -> &ConnectionRouter {
        &self.router
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.router.close().await;
    }
}

#[async_trait]
impl Engine for PostgresBackend {
    fn backend(&self) -> DatabaseBackend {
        BACKEND
    }
    fn parts(&self) -> &EngineParts {
        &self.parts
    }
    async fn close(&self) {
        PostgresBackend::close(self).await;
    }
    /// `SELECT 1` on the primary, the primary pool's occupancy (sqlx does not count waiters) and
    /// each replica's last check.
    async fn health(&self) -> storage_core::Health {
        let started = std::time::Instant::now();
        let outcome = self.router.ping().await;
        let pool = self.router.write_pool();
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
        storage_core::Health {
            pool: Some(storage_core::PoolHealth {
                size,
                max: pool.options().get_max_connections(),
                in_use: size.saturating_sub(idle),
                waiting: None,
            }),
            replicas: self
                .router
                .metrics()
                .replicas
                .into_iter()
                .map(|r| storage_core::ReplicaHealth { name: r.name, healthy: r.healthy, lag: r.lag })
                .collect(),
            ..storage_core::Health::probed(BACKEND, started.elapsed(), outcome)
        }
    }
}

#[async_trait]
impl OpenEngine for PostgresBackend {
    type Target = String;
    async fn open_engine(url: String) -> Result<Self> {
        Self::open(url).await
    }
}
