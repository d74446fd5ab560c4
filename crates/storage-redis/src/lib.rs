//! The Redis backend of `aragora-storage`.
//!
//! Key schema: `<namespace>:{<tenant>}:<store>:<id>` for records and
//! `<namespace>:{<tenant>}:<store>#<index>...` for their indexes. The braces make the tenant a
//! Cluster hash tag, so every key of one tenant lives in one slot and every multi-key change is
//! one Lua script with all its keys passed as `KEYS`. Secondary indexes change in the same script
//! as the record, so they never go stale. Expiry is decided by the injected clock; server-side
//! TTLs only collect garbage. Secrets are stored sealed.
//!
//! This version connects to a standalone server through a `ConnectionManager` (reconnects with
//! backoff) with explicit connect and response timeouts; the key schema already suits Sentinel
//! and Cluster.
#![forbid(unsafe_code)]

mod keys;
pub mod scripts;
mod stores;
mod table;

pub use keys::Keys;
pub use stores::gmail_token::RedisGmailTokenStore;
pub use stores::integration::RedisIntegrationStore;
pub use stores::webhook::RedisWebhookStore;
pub use table::RedisTable;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;
use storage_core::document::Document;
use storage_core::{Result, Sealer, SharedClock, StorageConfig, StorageError, SystemClock, TableHandle, WebhookOptions};

/// The backend name in errors.
pub(crate) const BACKEND: &str = "redis";

/// Maps a Redis error to the semantic error, keeping it as the source.
pub(crate) fn redis_error(error: redis::RedisError) -> StorageError {
    use redis::ErrorKind;
    if error.is_timeout() {
        return StorageError::Timeout { backend: BACKEND, source: Box::new(error) };
    }
    let transient = error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || matches!(error.kind(), ErrorKind::Io | ErrorKind::ClusterConnectionNotFound)
        || error.to_string().contains("LOADING")
        || error.to_string().contains("READONLY")
        || error.to_string().contains("MASTERDOWN")
        || error.to_string().contains("TRYAGAIN");
    if transient {
        StorageError::Unavailable { backend: BACKEND, source: Box::new(error) }
    } else {
        StorageError::Backend { backend: BACKEND, source: Box::new(error) }
    }
}

/// A Redis deployment: the connection, the key namespace, the key ring and the clock its stores
/// share. Cheap to clone.
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    keys: Keys,
    sealer: Arc<dyn Sealer>,
    clock: SharedClock,
    webhook: WebhookOptions,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend").field("keys", &self.keys).field("webhook", &self.webhook).finish_non_exhaustive()
    }
}

/// Settings for [`RedisBackend`]; start from [`RedisBackend::builder`].
#[derive(Debug)]
pub struct RedisBuilder {
    url: String,
    namespace: String,
    connect_timeout: Duration,
    response_timeout: Duration,
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
        self.connect_timeout = timeout;
        self
    }
    /// How long to wait for a reply before `Timeout`.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
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

    /// Connects.
    pub async fn connect(self) -> Result<RedisBackend> {
        let keys = Keys::new(&self.namespace)?;
        let sealer = match self.sealer {
            Some(sealer) => sealer,
            None => Arc::new(storage_crypto::load_key_ring(&StorageConfig::from_env()?)?),
        };
        let client = redis::Client::open(self.url.as_str()).map_err(|e| {
            StorageError::invalid("REDIS_URL", format!("is not a valid Redis URL: {}", e.to_string().replace(&self.url, "<url>")))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config).await.map_err(redis_error)?;
        Ok(RedisBackend { conn, keys, sealer, clock: self.clock, webhook: self.webhook })
    }
}

impl RedisBackend {
    /// Settings for the server at `url`, starting from the defaults.
    pub fn builder(url: impl Into<String>) -> RedisBuilder {
        let defaults = StorageConfig::default();
        RedisBuilder {
            url: url.into(),
            namespace: "aragora".to_owned(),
            connect_timeout: Duration::from_millis(defaults.redis_connect_timeout_ms),
            response_timeout: Duration::from_millis(defaults.redis_response_timeout_ms),
            sealer: None,
            clock: SystemClock::shared(),
            webhook: WebhookOptions::default(),
        }
    }

    /// Connects to the server the configuration names.
    pub async fn connect(config: &StorageConfig, sealer: Arc<dyn Sealer>, clock: SharedClock) -> Result<Self> {
        if config.redis_mode != storage_core::RedisMode::Standalone {
            return Err(StorageError::NotSupported { operation: "REDIS_MODE=sentinel or cluster", backend: BACKEND });
        }
        let url = config.redis_url.as_ref().ok_or_else(|| StorageError::config("REDIS_URL is not set"))?;
        Self::builder(url.expose().clone())
            .connect_timeout(Duration::from_millis(config.redis_connect_timeout_ms))
            .response_timeout(Duration::from_millis(config.redis_response_timeout_ms))
            .webhook_options(WebhookOptions::new(config.webhook_ttl())?)
            .sealer(sealer)
            .clock(clock)
            .connect()
            .await
    }

    /// The integration store on this server.
    pub fn integration_store(&self) -> RedisIntegrationStore {
        RedisIntegrationStore::from_backend(self)
    }

    /// The webhook store on this server.
    pub fn webhook_store(&self) -> RedisWebhookStore {
        RedisWebhookStore::from_backend(self)
    }

    /// The Gmail token store on this server.
    pub fn gmail_token_store(&self) -> RedisGmailTokenStore {
        RedisGmailTokenStore::from_backend(self)
    }

    pub(crate) fn table<D: Document>(&self) -> TableHandle<D> {
        let table = RedisTable::<D>::new(self.conn.clone(), self.keys.clone(), Arc::clone(&self.sealer));
        TableHandle::new(Arc::new(table), Arc::clone(&self.clock))
    }

    /// The connection, for raw commands beside the stores (and benchmarks).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The key schema of this backend's namespace.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub(crate) fn webhook(&self) -> &WebhookOptions {
        &self.webhook
    }
}
