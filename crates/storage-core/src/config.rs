//! Configuration, read once with figment: defaults, then an optional `aragora-storage.toml`, then
//! the seed's environment variables, then `ARAGORA_`-prefixed variables (which win).

use crate::{DatabaseBackend, Result, Secret, StorageError};
use chrono::TimeDelta;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The seed's variable names, read without a prefix. `DATABASE_BACKEND` maps to `backend`.
const SEED_VARIABLES: [&str; 6] = ["DATABASE_BACKEND", "DATABASE_URL", "SQLITE_PATH", "REDIS_URL", "REDIS_MODE", "ENCRYPTION_KEY"];

/// Settings read as text, as written, by field and variable name (and whether the seed's
/// unprefixed name counts): secrets — a key of 64 hex digits that happen to be all decimal digits
/// must not become a number — and comma-separated lists.
const SECRET_VARIABLES: [(&str, &str, bool); 11] = [
    ("encryption_key", "ENCRYPTION_KEY", true),
    ("encryption_previous_keys", "ENCRYPTION_PREVIOUS_KEYS", false),
    ("database_url", "DATABASE_URL", true),
    ("redis_url", "REDIS_URL", true),
    ("postgres_primary_dsn", "POSTGRES_PRIMARY_DSN", false),
    ("postgres_replica_dsns", "POSTGRES_REPLICA_DSNS", false),
    ("postgres_replica_weights", "POSTGRES_REPLICA_WEIGHTS", false),
    ("redis_password", "REDIS_PASSWORD", false),
    ("redis_sentinel_hosts", "REDIS_SENTINEL_HOSTS", false),
    ("redis_sentinel_password", "REDIS_SENTINEL_PASSWORD", false),
    ("redis_cluster_nodes", "REDIS_CLUSTER_NODES", false),
];

/// The process environment, by name (names or values that are not UTF-8 are skipped).
fn environment() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?))).collect()
}

/// Settings the environment makes beyond `ARAGORA_<FIELD>` (see [`crate::placement`]): the
/// original deployment's names, below the file and every name of ours, and the store placements,
/// above the file. A value that cannot mean anything fails extraction, naming it.
struct Legacy(std::result::Result<Vec<crate::placement::Setting>, String>);

impl Legacy {
    fn from_env(part: fn(crate::placement::FromEnvironment) -> Vec<crate::placement::Setting>) -> Self {
        Self(crate::placement::from_legacy(&environment()).map(part).map_err(|e| e.to_string()))
    }
}

impl figment::Provider for Legacy {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("the original deployment's environment names")
    }
    fn data(&self) -> std::result::Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let settings = self.0.clone().map_err(figment::Error::from)?;
        let mut figment = Figment::new();
        for (path, value) in settings {
            figment = figment.merge(Serialized::default(&path, value));
        }
        figment.data()
    }
}

/// Whether a comma-separated list names anything.
fn listed(list: &Option<String>) -> bool {
    list.as_deref().is_some_and(|l| l.split(',').any(|item| !item.trim().is_empty()))
}

/// The variable that names another configuration file than `aragora-storage.toml`.
pub const CONFIG_FILE_VARIABLE: &str = "ARAGORA_STORAGE_CONFIG";

/// The deployment environment. Only the names below are development; any other name, including
/// a misspelt one, is production, so a typo fails closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Environment(pub String);

impl Environment {
    /// Names that mean "not production".
    pub const DEVELOPMENT_NAMES: [&'static str; 7] = ["development", "dev", "local", "test", "testing", "ci", "debug"];

    /// Whether this is production (anything not in [`Environment::DEVELOPMENT_NAMES`]).
    pub fn is_production(&self) -> bool {
        !Self::DEVELOPMENT_NAMES.contains(&self.0.trim().to_ascii_lowercase().as_str())
    }
}

impl Default for Environment {
    fn default() -> Self {
        Self("development".to_owned())
    }
}

/// How Redis is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server.
    #[default]
    Standalone,
    /// A master found through Sentinels.
    Sentinel,
    /// A Redis Cluster.
    Cluster,
}

/// SQLite's `synchronous` pragma: how often it waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// Never waits; an OS crash may corrupt the database.
    Off,
    /// Waits at checkpoints (WAL): durable across application crashes; a power loss may drop the
    /// last commits but never corrupts.
    #[default]
    Normal,
    /// Waits on every commit: durable across power loss.
    Full,
    /// As `Full`, and also syncs the directory.
    Extra,
}

/// Everything `aragora-storage` reads from its environment. See `docs/configuration.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `ARAGORA_ENV`: `development` by default; unknown names are production.
    pub environment: Environment,
    /// `DATABASE_BACKEND`: `memory`, `sqlite` (default), `postgresql` or `redis`.
    pub backend: DatabaseBackend,
    /// `DATABASE_URL`: the PostgreSQL URL.
    pub database_url: Option<Secret<String>>,
    /// `SQLITE_PATH`: the SQLite file (`aragora.db`).
    pub sqlite_path: PathBuf,
    /// `ARAGORA_SQLITE_SYNCHRONOUS`: `normal` by default.
    pub sqlite_synchronous: SqliteSynchronous,
    /// `ARAGORA_SQLITE_READERS`: reader connections beside the one writer (4).
    pub sqlite_readers: u32,
    /// `ARAGORA_SQLITE_BUSY_TIMEOUT_MS`: how long a connection waits for a lock (5000).
    pub sqlite_busy_timeout_ms: u64,
    /// `REDIS_URL`: the Redis URL.
    pub redis_url: Option<Secret<String>>,
    /// `REDIS_MODE`: `standalone`, `sentinel` or `cluster`; unset, the listed Sentinel hosts or
    /// Cluster nodes decide ([`StorageConfig::redis_topology`]).
    pub redis_mode: Option<RedisMode>,
    /// `ARAGORA_REDIS_CONNECT_TIMEOUT_MS` (2000).
    pub redis_connect_timeout_ms: u64,
    /// `ARAGORA_REDIS_RESPONSE_TIMEOUT_MS` (2000).
    pub redis_response_timeout_ms: u64,
    /// `ARAGORA_REDIS_PASSWORD`: the password of the Redis nodes, where the URL carries none (and
    /// always for Sentinel and Cluster, whose nodes are found, not configured).
    pub redis_password: Option<Secret<String>>,
    /// `ARAGORA_REDIS_DB`: the database of a standalone or Sentinel-managed server, where the
    /// URL names none (0).
    pub redis_db: i64,
    /// `ARAGORA_REDIS_SENTINEL_HOSTS`: comma-separated `host[:port]` of the Sentinels (port
    /// 26379 by default).
    pub redis_sentinel_hosts: Option<String>,
    /// `ARAGORA_REDIS_SENTINEL_MASTER`: the name the Sentinels monitor (`mymaster`).
    pub redis_sentinel_master: String,
    /// `ARAGORA_REDIS_SENTINEL_PASSWORD`: the Sentinels' own password.
    pub redis_sentinel_password: Option<Secret<String>>,
    /// `ARAGORA_REDIS_CLUSTER_NODES`: comma-separated `host[:port]` of some Cluster nodes to
    /// discover the rest from (port 6379 by default).
    pub redis_cluster_nodes: Option<String>,
    /// `ARAGORA_REDIS_SSL`: TLS to every Redis node and Sentinel, in every mode (a `rediss://`
    /// URL turns it on too).
    pub redis_ssl: bool,
    /// `ARAGORA_REDIS_SSL_CA_CERTS`: a PEM file of the authorities to trust instead of the
    /// system's.
    pub redis_ssl_ca_certs: Option<PathBuf>,
    /// `ARAGORA_REDIS_WAIT_REPLICAS`: Sentinel mode, how many replicas must hold a write before
    /// it is acknowledged (0: the master alone, which a failover may lose).
    pub redis_wait_replicas: u32,
    /// `ARAGORA_REDIS_WAIT_TIMEOUT_MS`: how long a write waits for them (1000).
    pub redis_wait_timeout_ms: u64,
    /// `ENCRYPTION_KEY`: the primary key, 64 hex characters or base64 of 32 bytes.
    pub encryption_key: Option<Secret<String>>,
    /// `ARAGORA_ENCRYPTION_PREVIOUS_KEYS`: comma-separated retired keys, still used to decrypt.
    pub encryption_previous_keys: Option<Secret<String>>,
    /// `ARAGORA_ENCRYPTION_KEY_FILE`: where development mode keeps its generated key (default:
    /// beside the SQLite file, `<sqlite_path>.key`).
    pub encryption_key_file: Option<PathBuf>,
    /// `ARAGORA_WEBHOOK_TTL_SECONDS`: how long a delivered webhook is remembered (86400).
    pub webhook_ttl_seconds: i64,
    /// `ARAGORA_POSTGRES_MAX_CONNECTIONS` (10).
    pub postgres_max_connections: u32,
    /// `ARAGORA_POSTGRES_MIN_CONNECTIONS` (0).
    pub postgres_min_connections: u32,
    /// `ARAGORA_POSTGRES_ACQUIRE_TIMEOUT_MS`: waiting for a pooled connection (5000).
    pub postgres_acquire_timeout_ms: u64,
    /// `ARAGORA_POSTGRES_IDLE_TIMEOUT_S` (600).
    pub postgres_idle_timeout_s: u64,
    /// `ARAGORA_POSTGRES_MAX_LIFETIME_S` (1800).
    pub postgres_max_lifetime_s: u64,
    /// `ARAGORA_POSTGRES_STATEMENT_TIMEOUT_MS` (30000; 0 disables).
    pub postgres_statement_timeout_ms: u64,
    /// `ARAGORA_POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS` (60000; 0 disables).
    pub postgres_idle_in_transaction_timeout_ms: u64,
    /// `ARAGORA_POSTGRES_APPLICATION_NAME` (`aragora-storage`).
    pub postgres_application_name: String,
    /// `ARAGORA_POSTGRES_STATEMENT_CACHE_CAPACITY`: prepared statements per connection (100; 0
    /// behind PgBouncer in transaction mode older than 1.21).
    pub postgres_statement_cache_capacity: usize,
    /// `ARAGORA_POSTGRES_PRIMARY_DSN`: the primary's URL when replicas are configured (default:
    /// `DATABASE_URL`).
    pub postgres_primary_dsn: Option<Secret<String>>,
    /// `ARAGORA_POSTGRES_REPLICA_DSNS`: comma-separated read replica URLs (`replica-0`, ...).
    pub postgres_replica_dsns: Option<Secret<String>>,
    /// `ARAGORA_POSTGRES_REPLICA_WEIGHTS`: comma-separated shares of reads, one per replica (1
    /// each by default; 0 takes a replica out).
    pub postgres_replica_weights: Option<String>,
    /// `ARAGORA_POSTGRES_REPLICA_MAX_LAG_MS`: the most a replica may lag and serve reads (5000).
    pub postgres_replica_max_lag_ms: u64,
    /// `ARAGORA_POSTGRES_REPLICA_HEALTH_INTERVAL_MS`: how often replicas are checked (1000).
    pub postgres_replica_health_interval_ms: u64,
    /// `ARAGORA_POSTGRES_REPLICA_HEALTH_TIMEOUT_MS`: how long a check may take (1000).
    pub postgres_replica_health_timeout_ms: u64,
    /// `ARAGORA_POSTGRES_REPLICA_EVENTUAL`: whether reads default to eventual consistency instead
    /// of read-your-writes (false).
    pub postgres_replica_eventual: bool,
    /// `ARAGORA_MULTI_INSTANCE`: more than one process serves the application (false). In
    /// production no store may then live in process memory or in a SQLite file, which another
    /// instance cannot see.
    pub multi_instance: bool,
    /// `ARAGORA_<STORE>_STORE_BACKEND`: stores on another backend than [`StorageConfig::backend`],
    /// by store name (`job_queue = "postgresql"`; see [`crate::placement`]).
    pub store_backends: std::collections::BTreeMap<String, DatabaseBackend>,
    /// `ARAGORA_METRICS_TENANT_LABELS`: label metrics with the tenant id (false: tenant ids may
    /// name customers, and multiply the series).
    pub metrics_tenant_labels: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            environment: Environment::default(),
            backend: DatabaseBackend::Sqlite,
            database_url: None,
            sqlite_path: PathBuf::from("aragora.db"),
            sqlite_synchronous: SqliteSynchronous::Normal,
            sqlite_readers: 4,
            sqlite_busy_timeout_ms: 5_000,
            redis_url: None,
            redis_mode: None,
            redis_connect_timeout_ms: 2_000,
            redis_response_timeout_ms: 2_000,
            redis_password: None,
            redis_db: 0,
            redis_sentinel_hosts: None,
            redis_sentinel_master: "mymaster".to_owned(),
            redis_sentinel_password: None,
            redis_cluster_nodes: None,
            redis_ssl: false,
            redis_ssl_ca_certs: None,
            redis_wait_replicas: 0,
            redis_wait_timeout_ms: 1_000,
            encryption_key: None,
            encryption_previous_keys: None,
            encryption_key_file: None,
            webhook_ttl_seconds: 86_400,
            postgres_max_connections: 10,
            postgres_min_connections: 0,
            postgres_acquire_timeout_ms: 5_000,
            postgres_idle_timeout_s: 600,
            postgres_max_lifetime_s: 1_800,
            postgres_statement_timeout_ms: 30_000,
            postgres_idle_in_transaction_timeout_ms: 60_000,
            postgres_application_name: "aragora-storage".to_owned(),
            postgres_statement_cache_capacity: 100,
            postgres_primary_dsn: None,
            postgres_replica_dsns: None,
            postgres_replica_weights: None,
            postgres_replica_max_lag_ms: 5_000,
            postgres_replica_health_interval_ms: 1_000,
            postgres_replica_health_timeout_ms: 1_000,
            postgres_replica_eventual: false,
            multi_instance: false,
            store_backends: std::collections::BTreeMap::new(),
            metrics_tenant_labels: false,
        }
    }
}

impl StorageConfig {
    /// The layered sources, lowest precedence first. Exposed so applications can add their own.
    pub fn figment() -> Figment {
        let file = std::env::var_os(CONFIG_FILE_VARIABLE).map(PathBuf::from).unwrap_or_else(|| "aragora-storage.toml".into());
        let mut figment = Figment::from(Serialized::defaults(StorageConfig::default()))
            .merge(Legacy::from_env(|found| found.aliases))
            .merge(Toml::file(file))
            .merge(Legacy::from_env(|found| found.placements))
            .merge(Env::raw().only(&SEED_VARIABLES).map(|key| match key.as_str() {
                k if k.eq_ignore_ascii_case("DATABASE_BACKEND") => "backend".into(),
                k => k.to_ascii_lowercase().into(),
            }))
            .merge(Env::prefixed("ARAGORA_").map(|key| match key.as_str() {
                k if k.eq_ignore_ascii_case("DATABASE_BACKEND") => "backend".into(),
                k if k.eq_ignore_ascii_case("ENV") => "environment".into(),
                k => k.to_ascii_lowercase().into(),
            }));
        // Secrets again, as raw text (the environment providers above parse values).
        for (field, variable, seed) in SECRET_VARIABLES {
            let raw = std::env::var(format!("ARAGORA_{variable}")).ok().or_else(|| if seed { std::env::var(variable).ok() } else { None });
            if let Some(raw) = raw {
                figment = figment.merge(Serialized::default(field, raw));
            }
        }
        figment
    }

    /// Reads and validates the configuration from the file and the environment. The first call
    /// in a process logs [`StorageConfig::warnings`].
    pub fn from_env() -> Result<Self> {
        let config = Self::from_figment(Self::figment())?;
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            for warning in config.warnings() {
                tracing::warn!(target: "aragora_storage", "{warning}");
            }
        });
        Ok(config)
    }

    /// What in the environment is read differently than it is written, or not at all: the
    /// original deployment's names (with what replaces each), unknown `ARAGORA_` storage names,
    /// and durable stores placed on Redis in production.
    pub fn warnings(&self) -> Vec<String> {
        let vars = environment();
        let known: Vec<String> = match serde_json::to_value(Self::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().map(|field| field.to_ascii_uppercase()).collect(),
            _ => Vec::new(),
        };
        let mut known = known;
        known.extend(["ENV".to_owned(), "STORAGE_CONFIG".to_owned()]);
        let mut warnings = crate::placement::from_legacy(&vars).map(|found| found.warnings).unwrap_or_default();
        warnings.extend(crate::placement::unknown_variables(&vars, &known));
        warnings.extend(self.placement_warnings());
        warnings
    }

    /// Extracts and validates the configuration from `figment`.
    pub fn from_figment(figment: Figment) -> Result<Self> {
        let config: StorageConfig =
            figment.extract().map_err(|e| StorageError::Config { message: e.to_string(), source: Some(Box::new(e)) })?;
        config.validate()?;
        Ok(config)
    }

    /// Whether production rules apply (see [`Environment`]).
    pub fn is_production(&self) -> bool {
        self.environment.is_production()
    }

    /// How long a delivered webhook is remembered.
    pub fn webhook_ttl(&self) -> Result<TimeDelta> {
        let ttl = crate::limits::seconds("ARAGORA_WEBHOOK_TTL_SECONDS", self.webhook_ttl_seconds)?;
        crate::WebhookOptions::new(ttl).map(|options| options.ttl()).map_err(|_| {
            StorageError::invalid(
                "ARAGORA_WEBHOOK_TTL_SECONDS",
                format!("`{}` must be a positive number of seconds, at most a century", self.webhook_ttl_seconds),
            )
        })
    }

    /// The Redis deployment these settings describe: `REDIS_MODE` when it is set; otherwise
    /// Sentinel when Sentinel hosts are listed, Cluster when Cluster nodes are, else standalone
    /// (the original's upgrade from its default).
    pub fn redis_topology(&self) -> RedisMode {
        match self.redis_mode {
            Some(mode) => mode,
            None if listed(&self.redis_sentinel_hosts) => RedisMode::Sentinel,
            None if listed(&self.redis_cluster_nodes) => RedisMode::Cluster,
            None => RedisMode::Standalone,
        }
    }

    /// What each Redis mode needs to be reachable, and settings that contradict the mode.
    fn check_redis_topology(&self) -> Result<()> {
        if self.redis_mode.is_none() && listed(&self.redis_sentinel_hosts) && listed(&self.redis_cluster_nodes) {
            return Err(StorageError::config(
                "both ARAGORA_REDIS_SENTINEL_HOSTS and ARAGORA_REDIS_CLUSTER_NODES are set: say which with REDIS_MODE",
            ));
        }
        let mode = self.redis_topology();
        match mode {
            RedisMode::Standalone if self.redis_url.is_none() => {
                return Err(StorageError::config("DATABASE_BACKEND=redis needs REDIS_URL"));
            }
            RedisMode::Sentinel if !listed(&self.redis_sentinel_hosts) => {
                return Err(StorageError::config("REDIS_MODE=sentinel needs ARAGORA_REDIS_SENTINEL_HOSTS"));
            }
            RedisMode::Sentinel if self.redis_sentinel_master.trim().is_empty() => {
                return Err(StorageError::invalid("ARAGORA_REDIS_SENTINEL_MASTER", "must name the master the Sentinels monitor"));
            }
            RedisMode::Cluster if !listed(&self.redis_cluster_nodes) && self.redis_url.is_none() => {
                return Err(StorageError::config("REDIS_MODE=cluster needs ARAGORA_REDIS_CLUSTER_NODES (or REDIS_URL naming one node)"));
            }
            _ => {}
        }
        if self.redis_db < 0 || (mode == RedisMode::Cluster && self.redis_db != 0) {
            return Err(StorageError::invalid(
                "ARAGORA_REDIS_DB",
                format!("`{}`: a database number from 0; a Cluster has only 0", self.redis_db),
            ));
        }
        if self.redis_wait_replicas > 0 && mode != RedisMode::Sentinel {
            return Err(StorageError::invalid("ARAGORA_REDIS_WAIT_REPLICAS", "waiting for replicas is done in Sentinel mode only"));
        }
        if self.redis_wait_replicas > 0 && self.redis_wait_timeout_ms >= self.redis_response_timeout_ms {
            return Err(StorageError::invalid(
                "ARAGORA_REDIS_WAIT_TIMEOUT_MS",
                format!(
                    "`{}` must be shorter than ARAGORA_REDIS_RESPONSE_TIMEOUT_MS (`{}`)",
                    self.redis_wait_timeout_ms, self.redis_response_timeout_ms
                ),
            ));
        }
        Ok(())
    }

    /// Where development mode keeps a generated encryption key.
    pub fn key_file(&self) -> PathBuf {
        self.encryption_key_file.clone().unwrap_or_else(|| {
            let mut name = self.sqlite_path.clone().into_os_string();
            name.push(".key");
            PathBuf::from(name)
        })
    }

    /// Checks values and the production rules; the message names the variable and the value.
    pub fn validate(&self) -> Result<()> {
        self.webhook_ttl()?;
        if self.sqlite_readers == 0 {
            return Err(StorageError::invalid("ARAGORA_SQLITE_READERS", "`0`: at least one reader connection is needed"));
        }
        if self.sqlite_path.as_os_str().is_empty() {
            return Err(StorageError::invalid("SQLITE_PATH", "must not be empty"));
        }
        if let Some(url) = &self.database_url {
            check_scheme("DATABASE_URL", url.expose(), &["postgres://", "postgresql://"])?;
        }
        if let Some(url) = &self.postgres_primary_dsn {
            check_scheme("ARAGORA_POSTGRES_PRIMARY_DSN", url.expose(), &["postgres://", "postgresql://"])?;
        }
        if let Some(list) = &self.postgres_replica_dsns {
            for url in list.expose().split(',').map(str::trim).filter(|url| !url.is_empty()) {
                check_scheme("ARAGORA_POSTGRES_REPLICA_DSNS", url, &["postgres://", "postgresql://"])?;
            }
        }
        if self.postgres_replica_health_interval_ms == 0 || self.postgres_replica_health_timeout_ms == 0 {
            return Err(StorageError::invalid(
                "ARAGORA_POSTGRES_REPLICA_HEALTH_INTERVAL_MS",
                "the health interval and timeout must be at least 1 ms",
            ));
        }
        if let Some(url) = &self.redis_url {
            check_scheme("REDIS_URL", url.expose(), &["redis://", "rediss://", "redis+unix://", "unix://"])?;
        }
        if self.postgres_max_connections == 0 || self.postgres_min_connections > self.postgres_max_connections {
            return Err(StorageError::invalid(
                "ARAGORA_POSTGRES_MAX_CONNECTIONS",
                format!(
                    "`{}` must be at least 1 and at least ARAGORA_POSTGRES_MIN_CONNECTIONS (`{}`)",
                    self.postgres_max_connections, self.postgres_min_connections
                ),
            ));
        }
        for backend in self.backends_in_use() {
            match backend {
                DatabaseBackend::Postgresql if self.database_url.is_none() && self.postgres_primary_dsn.is_none() => {
                    return Err(StorageError::config("DATABASE_BACKEND=postgresql needs DATABASE_URL (or ARAGORA_POSTGRES_PRIMARY_DSN)"));
                }
                DatabaseBackend::Redis => self.check_redis_topology()?,
                _ => {}
            }
        }
        if self.is_production() && self.encryption_key.is_none() {
            return Err(StorageError::config(format!(
                "ENCRYPTION_KEY is required in production (ARAGORA_ENV=`{}`); without it secrets could not be read after a restart",
                self.environment.0
            )));
        }
        self.check_placement()
    }
}

/// Checks a URL's scheme without echoing credentials: only the part before `://` is quoted.
fn check_scheme(variable: &str, url: &str, schemes: &[&str]) -> Result<()> {
    let ok = schemes.iter().any(|s| url.len() > s.len() && url.get(..s.len()).is_some_and(|head| head.eq_ignore_ascii_case(s)));
    if ok {
        return Ok(());
    }
    let shown = match url.split_once("://") {
        Some((scheme, _)) => format!("a URL with scheme `{scheme}`"),
        None => "a value without a `scheme://` prefix".to_owned(),
    };
    Err(StorageError::invalid(variable, format!("is {shown}; expected it to start with {}", schemes.join(" or "))))
}

#[cfg(test)]
#[allow(clippy::result_large_err, reason = "figment::Jail fixes the error type")]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_then_seed_names_then_prefixed_names_win() {
        Jail::expect_with(|jail| {
            let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
            assert_eq!(config.backend, DatabaseBackend::Sqlite);
            assert_eq!(config.sqlite_path, PathBuf::from("aragora.db"));

            jail.create_file("aragora-storage.toml", "sqlite_path = \"from-file.db\"\nsqlite_readers = 2")?;
            let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
            assert_eq!(config.sqlite_path, PathBuf::from("from-file.db"));
            assert_eq!(config.sqlite_readers, 2);

            jail.set_env("SQLITE_PATH", "seed.db");
            jail.set_env("DATABASE_BACKEND", "memory");
            let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
            assert_eq!(config.sqlite_path, PathBuf::from("seed.db"));
            assert_eq!(config.backend, DatabaseBackend::Memory);

            jail.set_env("ARAGORA_SQLITE_PATH", "prefixed.db");
            jail.set_env("ARAGORA_DATABASE_BACKEND", "sqlite");
            let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
            assert_eq!(config.sqlite_path, PathBuf::from("prefixed.db"));
            assert_eq!(config.backend, DatabaseBackend::Sqlite);
            Ok(())
        });
    }

    #[test]
    fn an_unknown_backend_is_named_in_the_error() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_BACKEND", "mongodb");
            let err = StorageConfig::from_env().expect_err("mongodb is not a backend").to_string();
            assert!(err.contains("mongodb") && err.contains("postgresql"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_negative_ttl_and_a_malformed_database_url_are_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_WEBHOOK_TTL_SECONDS", "-5");
            let err = StorageConfig::from_env().expect_err("negative ttl").to_string();
            assert!(err.contains("ARAGORA_WEBHOOK_TTL_SECONDS") && err.contains("-5"), "{err}");
            jail.set_env("ARAGORA_WEBHOOK_TTL_SECONDS", "60");
            jail.set_env("DATABASE_URL", "mysql://user:hunter2@db/app");
            let err = StorageConfig::from_env().expect_err("not postgres").to_string();
            assert!(err.contains("DATABASE_URL") && err.contains("mysql"), "{err}");
            assert!(!err.contains("hunter2"), "the password leaked: {err}");
            Ok(())
        });
    }

    #[test]
    fn the_redis_topology_comes_from_the_original_variables() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_BACKEND", "redis");
            let err = StorageConfig::from_env().expect_err("no redis url").to_string();
            assert!(err.contains("REDIS_URL"), "{err}");
            // Sentinel hosts alone select Sentinel mode, as in the original.
            jail.set_env("ARAGORA_REDIS_SENTINEL_HOSTS", "s1:26379,s2");
            jail.set_env("ARAGORA_REDIS_SENTINEL_PASSWORD", "12345");
            jail.set_env("ARAGORA_REDIS_PASSWORD", "0042");
            let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
            assert_eq!(config.redis_topology(), RedisMode::Sentinel);
            assert_eq!(config.redis_sentinel_hosts.as_deref(), Some("s1:26379,s2"));
            assert_eq!(config.redis_sentinel_master, "mymaster");
            assert_eq!(config.redis_password.as_ref().map(|p| p.expose().as_str()), Some("0042"), "a password of digits stays text");
            // Both lists, and no mode to choose between them.
            jail.set_env("ARAGORA_REDIS_CLUSTER_NODES", "n1:7000,n2:7001");
            let err = StorageConfig::from_env().expect_err("ambiguous").to_string();
            assert!(err.contains("REDIS_MODE"), "{err}");
            // An explicit mode wins and says what it lacks.
            jail.set_env("ARAGORA_REDIS_CLUSTER_NODES", "");
            jail.set_env("REDIS_MODE", "cluster");
            let err = StorageConfig::from_env().expect_err("no cluster nodes").to_string();
            assert!(err.contains("ARAGORA_REDIS_CLUSTER_NODES"), "{err}");
            jail.set_env("REDIS_MODE", "standalone");
            jail.set_env("REDIS_URL", "redis://cache:6379");
            assert_eq!(StorageConfig::from_env().map_err(|e| e.to_string())?.redis_topology(), RedisMode::Standalone, "even over hosts");
            jail.set_env("REDIS_MODE", "cluster");
            jail.set_env("ARAGORA_REDIS_CLUSTER_NODES", "n1:7000,n2:7001");
            jail.set_env("ARAGORA_REDIS_SSL", "true");
            let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
            assert_eq!((config.redis_topology(), config.redis_ssl), (RedisMode::Cluster, true));
            jail.set_env("ARAGORA_REDIS_WAIT_REPLICAS", "1");
            let err = StorageConfig::from_env().expect_err("WAIT on a cluster").to_string();
            assert!(err.contains("ARAGORA_REDIS_WAIT_REPLICAS"), "{err}");
            jail.set_env("REDIS_MODE", "sentinel");
            jail.set_env("ARAGORA_REDIS_WAIT_TIMEOUT_MS", "5000");
            let err = StorageConfig::from_env().expect_err("a wait longer than a reply").to_string();
            assert!(err.contains("ARAGORA_REDIS_WAIT_TIMEOUT_MS"), "{err}");
            jail.set_env("ARAGORA_REDIS_WAIT_TIMEOUT_MS", "500");
            assert_eq!(StorageConfig::from_env().map_err(|e| e.to_string())?.redis_wait_replicas, 1);
            jail.set_env("REDIS_MODE", "sharded");
            let err = StorageConfig::from_env().expect_err("not a mode").to_string();
            assert!(err.contains("sharded"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn replicas_come_from_the_environment() {
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_POSTGRES_PRIMARY_DSN", "postgres://app:pw@primary/app");
            jail.set_env("ARAGORA_POSTGRES_REPLICA_DSNS", "postgres://app:pw@r1/app,postgres://app:pw@r2/app");
            jail.set_env("ARAGORA_POSTGRES_REPLICA_WEIGHTS", "3");
            jail.set_env("ARAGORA_POSTGRES_REPLICA_MAX_LAG_MS", "2000");
            jail.set_env("ARAGORA_POSTGRES_REPLICA_EVENTUAL", "true");
            let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
            assert_eq!(config.postgres_primary_dsn.as_ref().map(|d| d.expose().as_str()), Some("postgres://app:pw@primary/app"));
            assert_eq!(
                config.postgres_replica_dsns.as_ref().map(|d| d.expose().as_str()),
                Some("postgres://app:pw@r1/app,postgres://app:pw@r2/app")
            );
            assert_eq!(config.postgres_replica_weights.as_deref(), Some("3"), "a single weight stays text");
            assert_eq!((config.postgres_replica_max_lag_ms, config.postgres_replica_eventual), (2_000, true));
            jail.set_env("ARAGORA_POSTGRES_REPLICA_DSNS", "postgres://r1/app,mysql://pw@r2/app");
            let err = StorageConfig::from_env().expect_err("not postgres").to_string();
            assert!(err.contains("ARAGORA_POSTGRES_REPLICA_DSNS") && !err.contains("pw@"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_from_the_environment_are_text_as_written() {
        Jail::expect_with(|jail| {
            jail.set_env("ENCRYPTION_KEY", "0".repeat(64));
            let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
            assert_eq!(config.encryption_key.as_ref().map(|k| k.expose().clone()), Some("0".repeat(64)));
            jail.set_env("ARAGORA_ENCRYPTION_KEY", "1".repeat(64));
            let config = StorageConfig::from_env().map_err(|e| e.to_string())?;
            assert_eq!(config.encryption_key.as_ref().map(|k| k.expose().clone()), Some("1".repeat(64)), "the prefixed name wins");
            jail.set_env("ARAGORA_WEBHOOK_TTL_SECONDS", i64::MAX.to_string());
            let err = StorageConfig::from_env().expect_err("an absurd ttl").to_string();
            assert!(err.contains("ARAGORA_WEBHOOK_TTL_SECONDS"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn production_needs_a_key_and_unknown_environments_are_production() {
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_ENV", "prd");
            let err = StorageConfig::from_env().expect_err("no key in production").to_string();
            assert!(err.contains("ENCRYPTION_KEY"), "{err}");
            jail.set_env("ENCRYPTION_KEY", "00".repeat(32));
            assert!(StorageConfig::from_env().is_ok());
            jail.set_env("ARAGORA_DATABASE_BACKEND", "memory");
            assert!(StorageConfig::from_env().is_err(), "memory is refused in production");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_when_the_configuration_is_printed() {
        let config = StorageConfig { database_url: Some(Secret::from("postgres://u:hunter2@h/db")), ..Default::default() };
        let shown = format!("{config:?} {}", serde_json::to_string(&config).unwrap_or_default());
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
