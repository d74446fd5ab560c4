//! The PostgreSQL backend of `aragora-storage`.
//!
//! Documents are rows with real, indexed columns and a `JSONB` body; instants are `TIMESTAMPTZ`
//! written from the injected clock; pools come from `storage-router` with timeouts from the
//! configuration. Pending migrations are applied on connect under an advisory lock (or only
//! verified, with [`PostgresBuilder::migrate`]`(false)`).
#![forbid(unsafe_code)]

mod stores;
mod table;

pub use stores::gmail_token::PostgresGmailTokenStore;
pub use stores::integration::PostgresIntegrationStore;
pub use stores::webhook::PostgresWebhookStore;
pub use table::PostgresTable;

use std::sync::Arc;
use storage_core::document::Document;
use storage_core::{Result, Sealer, SharedClock, StorageConfig, SystemClock, TableHandle, WebhookOptions};
use storage_router::{ConnectionRouter, PoolSettings};
use storage_schema::sqlx_error;

/// The backend name in errors.
pub(crate) const BACKEND: &str = "postgresql";

/// A PostgreSQL database: its pools, the key ring and the clock its stores share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresBackend {
    router: ConnectionRouter,
    sealer: Arc<dyn Sealer>,
    clock: SharedClock,
    webhook: WebhookOptions,
}

/// Settings for [`PostgresBackend`]; start from [`PostgresBackend::builder`].
#[derive(Debug)]
pub struct PostgresBuilder {
    url: String,
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

    /// Connects, then migrates or verifies the schema.
    pub async fn connect(self) -> Result<PostgresBackend> {
        let sealer = match self.sealer {
            Some(sealer) => sealer,
            None => Arc::new(storage_crypto::load_key_ring(&StorageConfig::from_env()?)?),
        };
        let pool = storage_router::connect_pool("DATABASE_URL", &self.url, &self.pool)?;
        let mut conn = pool.acquire().await.map_err(|e| sqlx_error(BACKEND, e))?;
        if self.migrate {
            storage_schema::upgrade_schema(&mut *conn).await?;
        } else {
            storage_schema::verify_schema(&mut *conn).await?;
        }
        drop(conn);
        Ok(PostgresBackend { router: ConnectionRouter::from_pool(pool), sealer, clock: self.clock, webhook: self.webhook })
    }
}

impl PostgresBackend {
    /// Settings for the database at `url`, starting from the defaults.
    pub fn builder(url: impl Into<String>) -> PostgresBuilder {
        PostgresBuilder {
            url: url.into(),
            pool: PoolSettings::default(),
            sealer: None,
            clock: SystemClock::shared(),
            webhook: WebhookOptions::default(),
            migrate: true,
        }
    }

    /// Connects to the database the configuration names.
    pub async fn connect(config: &StorageConfig, sealer: Arc<dyn Sealer>, clock: SharedClock) -> Result<Self> {
        let url = config.database_url.as_ref().ok_or_else(|| storage_core::StorageError::config("DATABASE_URL is not set"))?;
        Self::builder(url.expose().clone())
            .pool(PoolSettings::from_config(config))
            .webhook_options(WebhookOptions::new(config.webhook_ttl())?)
            .sealer(sealer)
            .clock(clock)
            .connect()
            .await
    }

    /// The pools.
    pub fn router(&self) -> &ConnectionRouter {
        &self.router
    }

    /// The integration store on this database.
    pub fn integration_store(&self) -> PostgresIntegrationStore {
        PostgresIntegrationStore::from_backend(self)
    }

    /// The webhook store on this database.
    pub fn webhook_store(&self) -> PostgresWebhookStore {
        PostgresWebhookStore::from_backend(self)
    }

    /// The Gmail token store on this database.
    pub fn gmail_token_store(&self) -> PostgresGmailTokenStore {
        PostgresGmailTokenStore::from_backend(self)
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.router.close().await;
    }

    pub(crate) fn table<D: Document>(&self) -> TableHandle<D> {
        let table = PostgresTable::<D>::new(self.router.clone(), Arc::clone(&self.sealer));
        TableHandle::new(Arc::new(table), Arc::clone(&self.clock))
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub(crate) fn webhook(&self) -> &WebhookOptions {
        &self.webhook
    }
}
