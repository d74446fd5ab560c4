//! PostgreSQL connection pools and read routing for `aragora-storage`.
//!
//! [`ConnectionRouter`] owns the primary pool (every write, and the reads that must see them) and
//! the replica pools, and picks where each read runs: see [`Consistency`] for what a read may
//! see, and `docs/operations.md` for running with replicas.
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;
use storage_core::{Result, Secret, StorageConfig, StorageError};

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
    /// Read replicas, named `replica-<i>` in order.
    pub replicas: Vec<ReplicaConfig>,
    /// Pool and session settings, from [`StorageConfig`].
    pub pool: PoolSettings,
    /// How reads are routed.
    pub routing: RoutingSettings,
}

impl RouterConfig {
    /// The primary and replicas a [`StorageConfig`] names (`DATABASE_URL` or
    /// `ARAGORA_POSTGRES_PRIMARY_DSN`, `ARAGORA_POSTGRES_REPLICA_DSNS` with
    /// `ARAGORA_POSTGRES_REPLICA_WEIGHTS`), with its pool and routing settings.
    pub fn from_config(config: &StorageConfig) -> Result<Self> {
        let primary = config
            .postgres_primary_dsn
            .as_ref()
            .or(config.database_url.as_ref())
            .ok_or_else(|| StorageError::config("neither ARAGORA_POSTGRES_PRIMARY_DSN nor DATABASE_URL is set"))?;
        let dsns: Vec<&str> = config
            .postgres_replica_dsns
            .as_ref()
            .map(|list| list.expose().split(',').map(str::trim).filter(|dsn| !dsn.is_empty()).collect())
            .unwrap_or_default();
        let weights = match config.postgres_replica_weights.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
            None => vec![1; dsns.len()],
            Some(list) => {
                list.split(',').map(|w| w.trim().parse::<u32>()).collect::<std::result::Result<Vec<_>, _>>().map_err(|e| {
                    StorageError::invalid("ARAGORA_POSTGRES_REPLICA_WEIGHTS", format!("is not a list of whole numbers: {e}"))
                })?
            }
        };
        if weights.len() != dsns.len() {
            return Err(StorageError::invalid(
                "ARAGORA_POSTGRES_REPLICA_WEIGHTS",
                format!("has {} weights for {} replicas", weights.len(), dsns.len()),
            ));
        }
        for (i, dsn) in dsns.iter().enumerate() {
            parse_url(&format!("ARAGORA_POSTGRES_REPLICA_DSNS[{i}]"), dsn)?;
        }
        Ok(Self {
            primary_dsn: primary.clone(),
            replicas: dsns
                .into_iter()
                .zip(weights)
                .map(|(dsn, weight)| ReplicaConfig { dsn: Secret::new(dsn.to_owned()), weight })
                .collect(),
            pool: PoolSettings::from_config(config),
            routing: RoutingSettings::from_config(config),
        })
    }
}

/// How the router picks a connection for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingSettings {
    /// How often each replica's health, replay position and lag are checked.
    pub health_interval: Duration,
    /// How long a check may take before the replica counts as down.
    pub health_timeout: Duration,
    /// The most a replica may lag behind the primary and still serve reads.
    pub max_lag: Duration,
    /// What a read may see unless [`with_consistency`] says otherwise.
    pub default_consistency: Consistency,
}

impl RoutingSettings {
    /// The settings a [`StorageConfig`] describes.
    pub fn from_config(config: &StorageConfig) -> Self {
        Self {
            health_interval: Duration::from_millis(config.postgres_replica_health_interval_ms),
            health_timeout: Duration::from_millis(config.postgres_replica_health_timeout_ms),
            max_lag: Duration::from_millis(config.postgres_replica_max_lag_ms),
            default_consistency: if config.postgres_replica_eventual { Consistency::Eventual } else { Consistency::ReadYourWrites },
        }
    }
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self::from_config(&StorageConfig::default())
    }
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
        // by a server restart fails its next query with a retryable `Indeterminate` instead.
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

mod routing;

pub use routing::{
    ConnectionRouter, Consistency, ReadFuture, ReplicaStatus, RouterMetrics, WriteConnection, Writing, with_consistency, with_session,
};

/// The process-wide router of [`initialize_connection_router`].
static ROUTER: RwLock<Option<ConnectionRouter>> = RwLock::new(None);

/// Opens the router `config` describes and makes it the process-wide one (closing the one it
/// replaces); must run inside a tokio runtime.
pub async fn initialize_connection_router(config: &RouterConfig) -> Result<ConnectionRouter> {
    let router = ConnectionRouter::new(config)?;
    let previous = ROUTER.write().unwrap_or_else(PoisonError::into_inner).replace(router.clone());
    if let Some(previous) = previous {
        previous.close().await;
    }
    Ok(router)
}

/// The process-wide router, if [`initialize_connection_router`] has run.
pub fn get_connection_router() -> Option<ConnectionRouter> {
    ROUTER.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Whether a process-wide router is set.
pub fn is_router_initialized() -> bool {
    ROUTER.read().unwrap_or_else(PoisonError::into_inner).is_some()
}

/// Closes and forgets the process-wide router.
pub async fn close_connection_router() {
    let router = ROUTER.write().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(router) = router {
        router.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(replicas: &str, weights: Option<&str>) -> StorageConfig {
        StorageConfig {
            database_url: Some(Secret::new("postgres://app@primary/app".to_owned())),
            postgres_replica_dsns: Some(Secret::new(replicas.to_owned())),
            postgres_replica_weights: weights.map(str::to_owned),
            ..StorageConfig::default()
        }
    }

    #[test]
    fn replicas_and_weights_come_from_the_configuration() {
        let routed = RouterConfig::from_config(&config("postgres://r1/app, postgres://r2/app", Some("1, 3"))).expect("config");
        assert_eq!(routed.primary_dsn.expose(), "postgres://app@primary/app");
        let replicas: Vec<_> = routed.replicas.iter().map(|r| (r.dsn.expose().as_str(), r.weight)).collect();
        assert_eq!(replicas, [("postgres://r1/app", 1), ("postgres://r2/app", 3)]);
        let even = RouterConfig::from_config(&config("postgres://r1/app,postgres://r2/app", None)).expect("config");
        assert!(even.replicas.iter().all(|r| r.weight == 1), "one share each by default");
        assert!(RouterConfig::from_config(&config("", None)).expect("config").replicas.is_empty());
        assert_eq!(routed.routing.default_consistency, Consistency::ReadYourWrites);
    }

    #[test]
    fn bad_replica_settings_name_the_variable() {
        let err = RouterConfig::from_config(&config("postgres://r1/app,postgres://r2/app", Some("1"))).expect_err("too few weights");
        assert!(err.to_string().contains("ARAGORA_POSTGRES_REPLICA_WEIGHTS"), "{err}");
        let err = RouterConfig::from_config(&config("postgres://r1/app", Some("heavy"))).expect_err("not a number");
        assert!(err.to_string().contains("ARAGORA_POSTGRES_REPLICA_WEIGHTS"), "{err}");
        let err = RouterConfig::from_config(&config("postgres://r1:notaport/app", None)).expect_err("bad url");
        assert!(err.to_string().contains("ARAGORA_POSTGRES_REPLICA_DSNS[0]") && !err.to_string().contains("notaport"), "{err}");
        let none = StorageConfig { database_url: None, ..StorageConfig::default() };
        assert!(RouterConfig::from_config(&none).is_err(), "a primary is needed");
    }
}
