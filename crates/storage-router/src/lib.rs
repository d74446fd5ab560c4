//! PostgreSQL connection pools and read routing for `aragora-storage`.
//!
//! [`ConnectionRouter`] owns the primary pool (all writes, and reads that must see them) and,
//! when configured, replica pools for reads that tolerate lag. This first version routes every
//! read to the primary; replica selection, health and lag checks build on the same interface.
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;
use std::time::Duration;
use storage_core::{Result, Secret, StorageConfig, StorageError};
use storage_schema::sqlx_error;

/// A read replica.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Its URL.
    pub dsn: Secret<String>,
    /// Its share of reads.
    pub weight: u32,
}

/// Primary and replicas, with the pool settings every pool uses.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The primary's URL.
    pub primary_dsn: Secret<String>,
    /// Read replicas (not used for routing yet).
    pub replicas: Vec<ReplicaConfig>,
    /// Pool and session settings, from [`StorageConfig`].
    pub pool: PoolSettings,
}

/// Pool and session settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections per pool.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long to wait for a pooled connection before `Timeout`.
    pub acquire_timeout: Duration,
    /// Close connections idle this long.
    pub idle_timeout: Duration,
    /// Recycle connections after this long.
    pub max_lifetime: Duration,
    /// `statement_timeout` (zero disables).
    pub statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout` (zero disables).
    pub idle_in_transaction_timeout: Duration,
    /// `application_name`, shown in `pg_stat_activity`.
    pub application_name: String,
    /// Prepared statements cached per connection (0 behind PgBouncer transaction pooling).
    pub statement_cache_capacity: usize,
}

impl PoolSettings {
    /// The settings a [`StorageConfig`] describes.
    pub fn from_config(config: &StorageConfig) -> Self {
        Self {
            max_connections: config.postgres_max_connections,
            min_connections: config.postgres_min_connections,
            acquire_timeout: Duration::from_millis(config.postgres_acquire_timeout_ms),
            idle_timeout: Duration::from_secs(config.postgres_idle_timeout_s),
            max_lifetime: Duration::from_secs(config.postgres_max_lifetime_s),
            statement_timeout: Duration::from_millis(config.postgres_statement_timeout_ms),
            idle_in_transaction_timeout: Duration::from_millis(config.postgres_idle_in_transaction_timeout_ms),
            application_name: config.postgres_application_name.clone(),
            statement_cache_capacity: config.postgres_statement_cache_capacity,
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self::from_config(&StorageConfig::default())
    }
}

/// Parses a PostgreSQL URL; the error names the variable but never echoes the URL (it may hold a
/// password).
pub fn parse_url(variable: &str, url: &str) -> Result<PgConnectOptions> {
    PgConnectOptions::from_str(url).map_err(|e| StorageError::InvalidInput {
        field: variable.to_owned(),
        reason: format!("is not a valid PostgreSQL URL: {}", e.to_string().replace(url, "<url>")),
    })
}

/// Opens a pool with `settings`. Connections are made lazily, so this only fails on a bad URL.
pub fn connect_pool(variable: &str, url: &str, settings: &PoolSettings) -> Result<PgPool> {
    let mut options = parse_url(variable, url)?
        .application_name(&settings.application_name)
        .statement_cache_capacity(settings.statement_cache_capacity)
        .log_statements(tracing::log::LevelFilter::Trace);
    let mut session = Vec::new();
    if !settings.statement_timeout.is_zero() {
        session.push(("statement_timeout", settings.statement_timeout.as_millis().to_string()));
    }
    if !settings.idle_in_transaction_timeout.is_zero() {
        session.push(("idle_in_transaction_session_timeout", settings.idle_in_transaction_timeout.as_millis().to_string()));
    }
    options = options.options(session);
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(Some(settings.idle_timeout))
        .max_lifetime(Some(settings.max_lifetime))
        // No ping per checkout: it doubles the round trips of every operation. A connection broken
        // by a server restart fails its next query with a retryable `Unavailable` instead.
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

/// The pools of one PostgreSQL deployment.
#[derive(Debug, Clone)]
pub struct ConnectionRouter {
    primary: PgPool,
}

impl ConnectionRouter {
    /// Opens the pools `config` describes.
    pub fn new(config: &RouterConfig) -> Result<Self> {
        Ok(Self { primary: connect_pool("DATABASE_URL", config.primary_dsn.expose(), &config.pool)? })
    }

    /// Routes over an existing pool.
    pub fn from_pool(primary: PgPool) -> Self {
        Self { primary }
    }

    /// The pool for writes and for reads that must see them.
    pub fn write_pool(&self) -> &PgPool {
        &self.primary
    }

    /// The pool for reads (the primary until replica routing lands).
    pub fn read_pool(&self) -> &PgPool {
        &self.primary
    }

    /// Checks that the primary answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.primary).await.map_err(sqlx_error)?;
        Ok(())
    }

    /// Closes every pool.
    pub async fn close(&self) {
        self.primary.close().await;
    }
}
