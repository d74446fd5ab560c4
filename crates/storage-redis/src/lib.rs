//! The Redis backend of `aragora-storage`.
//!
//! Key schema: `<namespace>:{<tenant>}:<store>:<id>` for records and
//! `<namespace>:{<tenant>}:<store>#<index>` for their indexes. The braces make the tenant a
//! Cluster hash tag, so every key of one tenant lives in one slot and every multi-key change is
//! one Lua script. Secondary indexes change in the same script as the record, so they never go
//! stale. Expiry is decided by the injected clock; server-side TTLs only collect garbage. Secrets
//! are stored sealed. Two kinds of key span tenants: the tenant registry of a store (for scans
//! across tenants) and the directory of a globally unique index.
//!
//! It connects to a standalone server, to the master a group of Sentinels names (found again
//! after a failover), or to a Cluster (see [`topology`]). On a Cluster every key of a namespace
//! shares one slot ([`Keys::single_slot`]): the scripts that check a globally unique value while
//! writing a tenant's record need all their keys in one slot.
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]

mod keys;
pub mod scripts;
mod stores;
mod table;
pub mod topology;

pub use keys::Keys;
pub use table::{RedisTables, decode, encode};
pub use topology::{RedisConnection, RedisHAConfig, RedisHealth, SentinelConnection, get_ha_redis_client};

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use storage_core::{
    DatabaseBackend, Engine, EngineParts, GmailTokens, Integrations, OpenEngine, RedisMode, Result, Sealer, SharedClock, StorageConfig,
    StorageError, SystemClock, WebhookOptions, Webhooks,
};

/// The Redis integration store: `RedisIntegrationStore::open(url)`.
pub type RedisIntegrationStore = Integrations<RedisBackend>;
/// The Redis webhook store.
pub type RedisWebhookStore = Webhooks<RedisBackend>;
/// The Redis Gmail token store.
pub type RedisGmailTokenStore = GmailTokens<RedisBackend>;

/// The backend in errors.
pub(crate) const BACKEND: DatabaseBackend = DatabaseBackend::Redis;

/// Maps a Redis error to the semantic error by its kind, keeping it as the source.
pub(crate) fn redis_error(error: redis::RedisError) -> StorageError {
    use redis::{ErrorKind, ServerErrorKind};
    // No reply in time, a connection that broke under a command, a `WAIT` cut short by a
    // demotion or short of replicas: the server may have run it. A refused connection sent nothing.
    let unknown = error.is_timeout()
        || (!error.is_connection_refusal() && (error.is_connection_dropped() || error.is_io_error()))
        || error.code() == Some("UNBLOCKED");
    if unknown {
        return StorageError::Indeterminate { backend: BACKEND, source: Box::new(error) };
    }
    let transient = error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || matches!(
            error.kind(),
            ErrorKind::Io
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        // Redirections the cluster connection gave up following: the slots are
                        // moving (a failover, a reshard) faster than it refreshed its map.
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                )
        );
    // A code the crate does not know: a master refusing writes it cannot replicate
    // (`min-replicas-to-write`).
    let transient = transient || error.code() == Some("NOREPLICAS");
    if transient {
        StorageError::Unavailable { backend: BACKEND, source: Box::new(error) }
    } else {
        StorageError::Backend { backend: BACKEND, source: Box::new(error) }
    }
}

/// Maps an error met while connecting or finding the master: no command of the caller's was sent,
/// so a broken or refused connection (a failed TLS handshake included) is `Unavailable`, never
/// `Indeterminate`.
pub(crate) fn redis_connect_error(error: redis::RedisError) -> StorageError {
    match redis_error(error) {
        StorageError::Indeterminate { backend, source } => StorageError::Unavailable { backend, source },
        other => other,
    }
}

/// A Redis deployment: the connection, the key namespace, the key ring and the clock its stores
/// share. Cheap to clone.
#[derive(Clone)]
pub struct RedisBackend {
    conn: RedisConnection,
    keys: Keys,
    tables: Arc<RedisTables>,
    parts: EngineParts,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend").field("keys", &self.keys).field("parts", &self.parts).finish_non_exhaustive()
    }
}

/// Settings for [`RedisBackend`]; start from [`RedisBackend::builder`].
#[derive(Debug)]
pub struct RedisBuilder {
    topology: RedisHAConfig,
    namespace: String,
    sealer: Option<Arc<dyn Sealer>>,
    clock: SharedClock,
    webhook: WebhookOptions,
}

impl RedisBuilder {
    /// The first segment of every key (`aragora` by default); lets applications share a server.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
    /// How long to wait for a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.topology.connect_timeout = timeout;
        self
    }
    /// How long to wait for a reply before `Timeout`.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.topology.response_timeout = timeout;
        self
    }
    /// The clock stamping every record and deciding expiry.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
    /// The sealer for secret fields (by default the configured key ring).
    pub fn sealer(mut self, sealer: Arc<dyn Sealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }
    /// Webhook retention.
    pub fn webhook_options(mut self, options: WebhookOptions) -> Self {
        self.webhook = options;
        self
    }

    /// Connects. The sealer must have been given: a builder never reads the environment.
    pub async fn connect(self) -> Result<RedisBackend> {
        let keys = match self.topology.mode {
            RedisMode::Cluster => Keys::single_slot(&self.namespace)?,
            RedisMode::Standalone | RedisMode::Sentinel => Keys::new(&self.namespace)?,
        };
        let sealer = self.sealer.ok_or_else(|| {
            StorageError::config("no sealer for the Redis backend: pass `.sealer(..)` (or use `RedisBackend::open`, which reads the key from the environment)")
        })?;
        let conn = get_ha_redis_client(&self.topology).await?;
        let tables = Arc::new(RedisTables::new(conn.clone(), keys.clone()));
        let parts = EngineParts {
            tables: Arc::clone(&tables) as Arc<dyn storage_core::Tables>,
            webhook_events: Arc::new(stores::webhook::RedisWebhookEvents::new(conn.clone(), keys.clone())),
            job_rows: Arc::new(stores::job_queue::RedisJobs::new(conn.clone(), &keys)),
            sealer,
            clock: self.clock,
            webhook: self.webhook,
        };
        Ok(RedisBackend { conn, keys, tables, parts })
    }
}

impl RedisBackend {
    /// Settings for the standalone server at `url`, starting from the defaults.
    pub fn builder(url: impl Into<String>) -> RedisBuilder {
        Self::builder_for(RedisHAConfig::standalone(url))
    }

    /// Settings for the deployment `topology` describes (standalone, Sentinel or Cluster).
    pub fn builder_for(topology: RedisHAConfig) -> RedisBuilder {
        RedisBuilder {
            topology,
            namespace: "aragora".to_owned(),
            sealer: None,
            clock: SystemClock::shared(),
            webhook: WebhookOptions::default(),
        }
    }

    /// Connects to the server at `url` with default settings and the key ring the environment
    /// configures (`ENCRYPTION_KEY`).
    pub async fn open(url: impl Into<String>) -> Result<Self> {
        let ring = Arc::new(storage_crypto::load_key_ring(&StorageConfig::from_env()?)?);
        Self::builder(url).sealer(ring).connect().await
    }

    /// Connects to the deployment the configuration names (`REDIS_MODE`, `REDIS_URL`,
    /// `ARAGORA_REDIS_*`).
    pub async fn connect(config: &StorageConfig, sealer: Arc<dyn Sealer>, clock: SharedClock) -> Result<Self> {
        Self::builder_for(RedisHAConfig::from_config(config)?)
            .webhook_options(WebhookOptions::new(config.webhook_ttl()?)?)
            .sealer(sealer)
            .clock(clock)
            .connect()
            .await
    }

    /// The generic tables (for the benchmarks' raw-driver baseline).
    #[doc(hidden)]
    pub fn redis_tables(&self) -> &RedisTables {
        &self.tables
    }

    /// The connection, for raw commands beside the stores.
    #[doc(hidden)]
    pub fn conn(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// Pings the deployment and reports its mode, the role of the node written to and the round
    /// trip.
    pub async fn health(&self) -> Result<RedisHealth> {
        // On a Cluster, the master of this namespace's slot.
        self.conn.health_of(&format!("{}:health", self.keys.namespace())).await
    }

    /// The key schema of this backend's namespace.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }
}

#[async_trait]
impl Engine for RedisBackend {
    fn backend(&self) -> DatabaseBackend {
        BACKEND
    }
    fn parts(&self) -> &EngineParts {
        &self.parts
    }
    /// Redis connections close when the last handle is dropped; there is nothing to flush.
    async fn close(&self) {}
    /// A `PING` of the node written to, and its role. One multiplexed connection carries every
    /// call, so there is no pool to report.
    async fn health(&self) -> storage_core::Health {
        let started = std::time::Instant::now();
        match RedisBackend::health(self).await {
            Ok(health) => {
                storage_core::Health { redis_role: Some(health.role), ..storage_core::Health::probed(BACKEND, health.latency, Ok(())) }
            }
            Err(e) => storage_core::Health::probed(BACKEND, started.elapsed(), Err(e)),
        }
    }
}

#[async_trait]
impl OpenEngine for RedisBackend {
    type Target = String;
    async fn open_engine(url: String) -> Result<Self> {
        Self::open(url).await
    }
}
