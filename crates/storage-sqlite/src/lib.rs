//! The SQLite backend of `aragora-storage`: every store in one embedded database file.
//!
//! - WAL journal, `busy_timeout`, foreign keys on, `synchronous` configurable (NORMAL by default);
//! - one writer connection (writes queue in process instead of fighting over the file lock) and a
//!   pool of readers that never block it;
//! - multi-statement writes run in `BEGIN IMMEDIATE` transactions, which take the write lock up
//!   front and so never fail half-way with `SQLITE_BUSY`;
//! - the schema is migrated on open (see `storage-schema`).
//!
//! ```no_run
//! # async fn demo() -> storage_core::Result<()> {
//! use storage_sqlite::SqliteBackend;
//! let backend = SqliteBackend::open("aragora.db").await?;
//! let integrations = backend.integration_store();
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod stores;
mod table;

pub use stores::gmail_token::SQLiteGmailTokenStore;
pub use stores::integration::SQLiteIntegrationStore;
pub use stores::webhook::SQLiteWebhookStore;
pub use table::SqliteTable;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous as Synchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use storage_core::document::Document;
use storage_core::{Result, Sealer, SharedClock, SqliteSynchronous, StorageConfig, StorageError, SystemClock, TableHandle, WebhookOptions};
use storage_schema::sqlx_error;

/// The backend name in errors.
pub(crate) const BACKEND: &str = "sqlite";

/// An open SQLite database: the pools, the key ring and the clock its stores share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    writer: SqlitePool,
    reader: SqlitePool,
    sealer: Arc<dyn Sealer>,
    clock: SharedClock,
    webhook: WebhookOptions,
    path: PathBuf,
}

/// Settings for [`SqliteBackend`]; start from [`SqliteBackend::builder`].
#[derive(Debug)]
pub struct SqliteBuilder {
    path: PathBuf,
    synchronous: SqliteSynchronous,
    readers: u32,
    busy_timeout: Duration,
    sealer: Option<Arc<dyn Sealer>>,
    clock: SharedClock,
    webhook: WebhookOptions,
    migrate: bool,
}

impl SqliteBuilder {
    /// The clock stamping every record (a manual clock in tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
    /// The sealer for secret fields (by default the configured key ring).
    pub fn sealer(mut self, sealer: Arc<dyn Sealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }
    /// The `synchronous` pragma.
    pub fn synchronous(mut self, synchronous: SqliteSynchronous) -> Self {
        self.synchronous = synchronous;
        self
    }
    /// How many reader connections.
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }
    /// How long a connection waits for a lock held by another process.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
    /// Webhook retention.
    pub fn webhook_options(mut self, options: WebhookOptions) -> Self {
        self.webhook = options;
        self
    }
    /// Whether to apply pending migrations on open (default) or only verify the schema.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Opens (creating if needed) the database.
    pub async fn connect(self) -> Result<SqliteBackend> {
        let sealer = match self.sealer {
            Some(sealer) => sealer,
            None => {
                let config = StorageConfig { sqlite_path: self.path.clone(), ..StorageConfig::from_env()? };
                Arc::new(storage_crypto::load_key_ring(&config)?)
            }
        };
        let synchronous = match self.synchronous {
            SqliteSynchronous::Off => Synchronous::Off,
            SqliteSynchronous::Normal => Synchronous::Normal,
            SqliteSynchronous::Full => Synchronous::Full,
            SqliteSynchronous::Extra => Synchronous::Extra,
        };
        let options =
            SqliteConnectOptions::new().filename(&self.path).foreign_keys(true).busy_timeout(self.busy_timeout).synchronous(synchronous);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone().create_if_missing(true).journal_mode(SqliteJournalMode::Wal))
            .await
            .map_err(|e| open_error(&self.path, e))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(self.readers)
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| open_error(&self.path, e))?;
        let mut conn = writer.acquire().await.map_err(|e| sqlx_error(BACKEND, e))?;
        if self.migrate {
            storage_schema::upgrade_schema(&mut *conn).await?;
        } else {
            storage_schema::verify_schema(&mut *conn).await?;
        }
        drop(conn);
        Ok(SqliteBackend { writer, reader, sealer, clock: self.clock, webhook: self.webhook, path: self.path })
    }
}

/// An instant stored as microseconds; out-of-range values are corrupt rows.
pub(crate) fn instant(micros: i64) -> Result<chrono::DateTime<chrono::Utc>> {
    storage_core::clock::from_micros(micros).ok_or_else(|| StorageError::corrupt(BACKEND, format!("instant {micros} is out of range")))
}

fn open_error(path: &Path, e: sqlx::Error) -> StorageError {
    StorageError::Unavailable { backend: BACKEND, source: format!("cannot open {}: {e}", path.display()).into() }
}

impl SqliteBackend {
    /// Settings for the database at `path`, starting from the defaults.
    pub fn builder(path: impl AsRef<Path>) -> SqliteBuilder {
        let defaults = StorageConfig::default();
        SqliteBuilder {
            path: path.as_ref().to_path_buf(),
            synchronous: defaults.sqlite_synchronous,
            readers: defaults.sqlite_readers,
            busy_timeout: Duration::from_millis(defaults.sqlite_busy_timeout_ms),
            sealer: None,
            clock: SystemClock::shared(),
            webhook: WebhookOptions::default(),
            migrate: true,
        }
    }

    /// Opens the database at `path` with default settings and the key ring from the environment.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder(path).connect().await
    }

    /// Opens the database the configuration names.
    pub async fn connect(config: &StorageConfig, sealer: Arc<dyn Sealer>, clock: SharedClock) -> Result<Self> {
        Self::builder(&config.sqlite_path)
            .synchronous(config.sqlite_synchronous)
            .readers(config.sqlite_readers)
            .busy_timeout(Duration::from_millis(config.sqlite_busy_timeout_ms))
            .webhook_options(WebhookOptions::new(config.webhook_ttl())?)
            .sealer(sealer)
            .clock(clock)
            .connect()
            .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The integration store on this database.
    pub fn integration_store(&self) -> SQLiteIntegrationStore {
        SQLiteIntegrationStore::from_backend(self)
    }

    /// The webhook store on this database.
    pub fn webhook_store(&self) -> SQLiteWebhookStore {
        SQLiteWebhookStore::from_backend(self)
    }

    /// The Gmail token store on this database.
    pub fn gmail_token_store(&self) -> SQLiteGmailTokenStore {
        SQLiteGmailTokenStore::from_backend(self)
    }

    /// Closes every connection after checkpointing the WAL into the database file.
    pub async fn close(&self) {
        let _ = sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await;
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The generic table of `D` on this database.
    pub(crate) fn table<D: Document>(&self) -> TableHandle<D> {
        let table = SqliteTable::<D>::new(self.writer.clone(), self.reader.clone(), Arc::clone(&self.sealer));
        TableHandle::new(Arc::new(table), Arc::clone(&self.clock))
    }

    /// A write transaction on the writer connection that takes the database write lock up front
    /// (`BEGIN IMMEDIATE`), so a read-then-write never fails half-way with `SQLITE_BUSY`; other
    /// processes wait up to `busy_timeout` for it.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(|e| sqlx_error(BACKEND, e))
    }

    /// The single writer connection, for raw statements beside the stores (and benchmarks).
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The reader pool, for raw queries beside the stores (and benchmarks).
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub(crate) fn webhook(&self) -> &WebhookOptions {
        &self.webhook
    }
}
