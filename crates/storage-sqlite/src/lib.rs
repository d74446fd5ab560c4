//! The SQLite backend of `aragora-storage`: every store in one embedded database file, on the
//! SQLite C library through `rusqlite`.
//!
//! - WAL journal, `busy_timeout`, foreign keys on, `synchronous` configurable (NORMAL by default);
//! - reads run in place on a small pool of read-only connections, with statements prepared once
//!   per connection and cached;
//! - writes are group-committed on the one writer connection: the caller that finds it free runs
//!   every queued write in one `BEGIN IMMEDIATE` transaction, each in its own savepoint, and
//!   answers each caller after `COMMIT` (see `connection.rs`);
//! - the schema is migrated on open (see `storage-schema`).
//!
//! ```no_run
//! # async fn demo() -> storage_core::Result<()> {
//! use storage_core::{Integrations, Store};
//! use storage_sqlite::{SQLiteIntegrationStore, SqliteBackend};
//! let backend = SqliteBackend::open("aragora.db").await?;
//! let integrations = Integrations::<SqliteBackend>::on(&backend);
//! // or, as the seed writes it:
//! let same_file = SQLiteIntegrationStore::open("aragora.db").await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]

mod connection;
mod stores;
mod table;

pub use table::SqliteTables;
/// The job queue's statements, as the store sends them (for tools and the benchmarks' baselines).
pub mod job_statements {
    pub use crate::stores::job_queue::{CLAIM, HEAD, INSERT, SETTLE, TAIL};
}

use async_trait::async_trait;
use backon::BlockingRetryable;
use connection::{Checkpointer, Readers, Writer};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use storage_core::{
    DatabaseBackend, Engine, EngineParts, GmailTokens, Integrations, OpenEngine, Result, Sealer, SharedClock, SqliteSynchronous,
    StorageConfig, StorageError, SystemClock, WebhookOptions, Webhooks,
};
use storage_schema::sqlite_error;

/// The seed's SQLite integration store: `SQLiteIntegrationStore::open(path)`.
pub type SQLiteIntegrationStore = Integrations<SqliteBackend>;
/// The seed's SQLite webhook store.
pub type SQLiteWebhookStore = Webhooks<SqliteBackend>;
/// The seed's SQLite Gmail token store.
pub type SQLiteGmailTokenStore = GmailTokens<SqliteBackend>;

/// The backend in errors.
pub(crate) const BACKEND: DatabaseBackend = DatabaseBackend::Sqlite;

/// The size a rewound WAL file is cut back to, in bytes.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Prepared statements kept per connection (rusqlite's LRU); enough for every statement of every
/// store, so none is prepared twice in steady state.
const STATEMENT_CACHE: usize = 512;

/// An open SQLite database: its connections, the key ring and the clock its stores share. Cheap
/// to clone.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
    parts: EngineParts,
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

    /// Opens (creating if needed) the database. Opening and migrating run on a blocking thread.
    /// The sealer must have been given: a builder never reads the environment.
    pub async fn connect(self) -> Result<SqliteBackend> {
        let sealer = self.sealer.ok_or_else(|| {
            StorageError::config("no sealer for the SQLite backend: pass `.sealer(..)` (or open it with `SqliteBackend::open`, which reads the key from the environment)")
        })?;
        let (path, synchronous, readers, busy_timeout, migrate) =
            (self.path.clone(), self.synchronous, self.readers, self.busy_timeout, self.migrate);
        let (writer, checkpointer, readers) =
            tokio::task::spawn_blocking(move || open_connections(&path, synchronous, readers, busy_timeout, migrate))
                .await
                .map_err(|e| StorageError::backend(BACKEND, e))??;
        let durable = matches!(self.synchronous, SqliteSynchronous::Full | SqliteSynchronous::Extra);
        let writer = Arc::new(Writer::new(writer, durable, Checkpointer::start(checkpointer)?));
        let readers = Arc::new(Readers::new(readers));
        Ok(SqliteBackend {
            inner: Arc::new(Inner {
                parts: EngineParts {
                    tables: Arc::new(SqliteTables::new(Arc::clone(&writer), Arc::clone(&readers))),
                    webhook_events: Arc::new(stores::webhook::SqliteWebhookEvents::new(Arc::clone(&writer), Arc::clone(&readers))),
                    job_rows: Arc::new(stores::job_queue::SqliteJobs::new(Arc::clone(&writer), Arc::clone(&readers))),
                    sealer,
                    clock: self.clock,
                    webhook: self.webhook,
                },
                writer,
                readers,
                path: self.path,
            }),
        })
    }
}

/// Opens the writer (creating the file, switching it to WAL, migrating), the checkpointer's
/// connection and the readers.
fn open_connections(
    path: &Path,
    synchronous: SqliteSynchronous,
    readers: u32,
    busy_timeout: Duration,
    migrate: bool,
) -> Result<(Connection, Connection, Vec<Connection>)> {
    let open = |flags: OpenFlags| -> Result<Connection> {
        let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| StorageError::Unavailable { backend: BACKEND, source: format!("cannot open {}: {e}", path.display()).into() })?;
        conn.busy_timeout(busy_timeout).map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    };
    let mut writer = open(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
    // Switching a new file to WAL answers SQLITE_BUSY at once, without waiting on the busy
    // handler, while another process is switching or migrating it: wait here, as any other
    // statement would, for up to `busy_timeout`.
    let backoff = backon::ExponentialBuilder::new()
        .with_jitter()
        .with_min_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(50))
        .without_max_times()
        .with_total_delay(Some(busy_timeout));
    let mode: String = (|| writer.query_row("PRAGMA journal_mode = WAL", [], |row| row.get::<_, String>(0)))
        .retry(backoff)
        .sleep(std::thread::sleep)
        .when(|e| e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy))
        .call()
        .map_err(sqlite_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Unavailable {
            backend: BACKEND,
            source: format!("{} cannot use WAL (journal mode {mode})", path.display()).into(),
        });
    }
    let synchronous = match synchronous {
        SqliteSynchronous::Off => "OFF",
        SqliteSynchronous::Normal => "NORMAL",
        SqliteSynchronous::Full => "FULL",
        SqliteSynchronous::Extra => "EXTRA",
    };
    writer.pragma_update(None, "synchronous", synchronous).map_err(sqlite_error)?;
    writer.pragma_update(None, "foreign_keys", "ON").map_err(sqlite_error)?;
    // Inside the batch transaction every write keeps a statement journal (it must be able to roll
    // back alone); in memory it costs no file I/O.
    writer.pragma_update(None, "temp_store", "MEMORY").map_err(sqlite_error)?;
    // Checkpoints run on the checkpointer's connection, and between batches on the writer, never
    // inside a commit; a WAL that grew in a burst is cut back when it rewinds.
    writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(sqlite_error)?;
    writer.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT).map_err(sqlite_error)?;
    // The migrator's futures never wait (rusqlite is synchronous): this runs them in place.
    if migrate {
        futures::executor::block_on(storage_schema::upgrade_schema(&mut writer))?;
    } else {
        futures::executor::block_on(storage_schema::verify_schema(&mut writer))?;
    }
    let checkpointer = open(OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    checkpointer.pragma_update(None, "synchronous", synchronous).map_err(sqlite_error)?;
    let readers = (0..readers).map(|_| open(OpenFlags::SQLITE_OPEN_READ_ONLY)).collect::<Result<Vec<_>>>()?;
    Ok((writer, checkpointer, readers))
}

/// An instant stored as microseconds; out-of-range values are corrupt rows.
pub(crate) fn instant(micros: i64) -> Result<chrono::DateTime<chrono::Utc>> {
    storage_core::clock::from_micros(micros).ok_or_else(|| StorageError::corrupt(BACKEND, format!("instant {micros} is out of range")))
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

    /// Opens the database at `path` with default settings and the key ring the environment
    /// configures (`ENCRYPTION_KEY`, or the development key file beside the database).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let config = StorageConfig { sqlite_path: path.as_ref().to_path_buf(), ..StorageConfig::from_env()? };
        let ring = Arc::new(storage_crypto::load_key_ring(&config)?);
        Self::builder(path).sealer(ring).connect().await
    }

    /// Opens the database the configuration names.
    pub async fn connect(config: &StorageConfig, sealer: Arc<dyn Sealer>, clock: SharedClock) -> Result<Self> {
        Self::builder(&config.sqlite_path)
            .synchronous(config.sqlite_synchronous)
            .readers(config.sqlite_readers)
            .busy_timeout(Duration::from_millis(config.sqlite_busy_timeout_ms))
            .webhook_options(WebhookOptions::new(config.webhook_ttl()?)?)
            .sealer(sealer)
            .clock(clock)
            .connect()
            .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Checkpoints the WAL into the database file and closes every connection; later calls
    /// fail with `Unavailable`.
    pub async fn close(&self) {
        self.inner.readers.close();
        if let Some(writer) = self.inner.writer.close().await {
            let _ = writer.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
    }

    /// Runs `write` as one atomic unit on the writer connection, in the next group commit: it
    /// sees its own changes and those of the writes before it in the batch, and is rolled back
    /// alone if it fails. The batch runs in a `BEGIN IMMEDIATE` transaction, so other processes
    /// wait (up to `busy_timeout`) rather than interleave. For statements of your own beside the
    /// stores.
    pub async fn write<R: Send + 'static>(&self, write: impl FnOnce(&Connection) -> Result<R> + Send + 'static) -> Result<R> {
        self.inner.writer.write(write).await
    }

    /// Runs `read` on a reader connection, in place: it sees every committed write.
    pub async fn read<R>(&self, read: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        self.inner.readers.read(read).await
    }
}

#[async_trait]
impl Engine for SqliteBackend {
    fn backend(&self) -> DatabaseBackend {
        BACKEND
    }
    fn parts(&self) -> &EngineParts {
        &self.inner.parts
    }
    async fn close(&self) {
        SqliteBackend::close(self).await;
    }
    /// A read of a reader connection; the pool is the reader connections plus the one writer,
    /// and `waiting` counts the reads waiting for a reader and the writes queued for the writer.
    async fn health(&self) -> storage_core::Health {
        let probed = storage_core::health::probe(BACKEND, self.inner.parts.tables.as_ref(), &self.inner.parts.clock).await;
        let (readers, reading, waiting_readers) = self.inner.readers.occupancy();
        let writers = self.inner.writer.callers();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let size = count(readers.saturating_add(1));
        storage_core::Health {
            pool: Some(storage_core::PoolHealth {
                size,
                max: size,
                in_use: count(reading.saturating_add(writers.min(1))),
                waiting: Some(count(waiting_readers.saturating_add(writers.saturating_sub(1)))),
            }),
            ..probed
        }
    }
}

#[async_trait]
impl OpenEngine for SqliteBackend {
    type Target = PathBuf;
    async fn open_engine(path: PathBuf) -> Result<Self> {
        Self::open(path).await
    }
}
