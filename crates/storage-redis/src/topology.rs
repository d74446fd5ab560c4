//! How the backend reaches Redis: one server, the master a group of Sentinels names, or a
//! Cluster. Each is a [`RedisConnection`], which every store uses the same way.
//!
//! The redis crate's own connections do not follow a Sentinel failover: a connection keeps
//! talking to the server it was opened on, which after a failover is a replica (or dead). A
//! [`SentinelConnection`] asks the Sentinels for the master again whenever the one it has fails
//! (a connection error, a timeout, `READONLY`, `MASTERDOWN`) and whenever a Sentinel announces a
//! failover of it. Cluster redirections (`MOVED`, `ASK`, `TRYAGAIN`) are followed by the redis
//! crate's cluster connection.

use crate::{BACKEND, redis_connect_error, redis_error};
use futures::StreamExt;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, IntoConnectionInfo, Pipeline, RedisFuture, TlsCertificates, TlsMode, Value,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use storage_core::{RedisMode, Result, Secret, StorageConfig, StorageError};

/// Where and how to reach Redis: the seed's `RedisHAConfig`. Build it from the environment's
/// settings with [`RedisHAConfig::from_config`], or by hand.
#[derive(Debug, Clone)]
pub struct RedisHAConfig {
    /// Standalone, Sentinel or Cluster.
    pub mode: RedisMode,
    /// The server's URL (standalone), or one node to discover a Cluster from.
    pub url: Option<Secret<String>>,
    /// The nodes' password, where the URL carries none (Sentinel and Cluster nodes always).
    pub password: Option<Secret<String>>,
    /// The database of a standalone or Sentinel-managed server, where the URL names none.
    pub db: i64,
    /// The Sentinels, `(host, port)`.
    pub sentinel_hosts: Vec<(String, u16)>,
    /// The name the Sentinels monitor.
    pub sentinel_master: String,
    /// The Sentinels' own password.
    pub sentinel_password: Option<Secret<String>>,
    /// Cluster nodes to discover the rest from, `(host, port)`.
    pub cluster_nodes: Vec<(String, u16)>,
    /// TLS to every node and Sentinel (a `rediss://` URL turns it on too).
    pub tls: bool,
    /// A PEM file of the certificate authorities to trust instead of the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// How long to wait for a connection (and, three times over, for a master or the Cluster's
    /// slot map to be found).
    pub connect_timeout: Duration,
    /// How long to wait for a reply before `Timeout`.
    pub response_timeout: Duration,
    /// Sentinel mode: how many replicas must have a write (`WAIT`) before it is acknowledged (0:
    /// acknowledged by the master alone, which a failover may lose).
    pub wait_replicas: u32,
    /// How long a write waits for those replicas before it fails as `Unavailable`.
    pub wait_timeout: Duration,
}

/// `host[:port]` entries of a comma-separated list.
fn hosts(variable: &'static str, list: Option<&str>, default_port: u16) -> Result<Vec<(String, u16)>> {
    let mut found = Vec::new();
    for entry in list.unwrap_or_default().split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, port) = match entry.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                let port = port.parse().map_err(|_| StorageError::invalid(variable, format!("`{entry}`: `{port}` is not a port")))?;
                (host.trim_start_matches('[').trim_end_matches(']'), port)
            }
            _ => (entry.trim_start_matches('[').trim_end_matches(']'), default_port),
        };
        if host.is_empty() {
            return Err(StorageError::invalid(variable, format!("`{entry}` names no host")));
        }
        found.push((host.to_owned(), port));
    }
    Ok(found)
}

impl RedisHAConfig {
    /// The settings of `config` (`REDIS_URL`, `REDIS_MODE`, `ARAGORA_REDIS_*`).
    pub fn from_config(config: &StorageConfig) -> Result<Self> {
        Ok(Self {
            mode: config.redis_topology(),
            url: config.redis_url.clone(),
            password: config.redis_password.clone(),
            db: config.redis_db,
            sentinel_hosts: hosts("ARAGORA_REDIS_SENTINEL_HOSTS", config.redis_sentinel_hosts.as_deref(), 26379)?,
            sentinel_master: config.redis_sentinel_master.clone(),
            sentinel_password: config.redis_sentinel_password.clone(),
            cluster_nodes: hosts("ARAGORA_REDIS_CLUSTER_NODES", config.redis_cluster_nodes.as_deref(), 6379)?,
            tls: config.redis_ssl,
            tls_ca_file: config.redis_ssl_ca_certs.clone(),
            connect_timeout: Duration::from_millis(config.redis_connect_timeout_ms),
            response_timeout: Duration::from_millis(config.redis_response_timeout_ms),
            wait_replicas: config.redis_wait_replicas,
            wait_timeout: Duration::from_millis(config.redis_wait_timeout_ms),
        })
    }

    /// A standalone server at `url`, with the default timeouts.
    pub fn standalone(url: impl Into<String>) -> Self {
        Self::with_mode(RedisMode::Standalone, Some(Secret::new(url.into())), Vec::new(), Vec::new())
    }

    /// The master named `master` by the Sentinels at `sentinels`.
    pub fn sentinel(sentinels: Vec<(String, u16)>, master: impl Into<String>) -> Self {
        Self { sentinel_master: master.into(), ..Self::with_mode(RedisMode::Sentinel, None, sentinels, Vec::new()) }
    }

    /// The Cluster that `nodes` belong to.
    pub fn cluster(nodes: Vec<(String, u16)>) -> Self {
        Self::with_mode(RedisMode::Cluster, None, Vec::new(), nodes)
    }

    fn with_mode(
        mode: RedisMode,
        url: Option<Secret<String>>,
        sentinel_hosts: Vec<(String, u16)>,
        cluster_nodes: Vec<(String, u16)>,
    ) -> Self {
        let defaults = StorageConfig::default();
        Self {
            mode,
            url,
            password: None,
            db: 0,
            sentinel_hosts,
            sentinel_master: defaults.redis_sentinel_master,
            sentinel_password: None,
            cluster_nodes,
            tls: false,
            tls_ca_file: None,
            connect_timeout: Duration::from_millis(defaults.redis_connect_timeout_ms),
            response_timeout: Duration::from_millis(defaults.redis_response_timeout_ms),
            wait_replicas: defaults.redis_wait_replicas,
            wait_timeout: Duration::from_millis(defaults.redis_wait_timeout_ms),
        }
    }

    /// Whether connections use TLS.
    fn uses_tls(&self) -> bool {
        self.tls || self.url.as_ref().is_some_and(|url| url.expose().starts_with("rediss://"))
    }

    /// The address of a node or Sentinel, over TLS when this configuration uses it.
    fn address(&self, (host, port): &(String, u16)) -> ConnectionAddr {
        if self.uses_tls() {
            ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(host.clone(), *port)
        }
    }

    /// The trusted authorities, when a file replaces the system's.
    fn certificates(&self) -> Result<Option<TlsCertificates>> {
        let Some(path) = &self.tls_ca_file else { return Ok(None) };
        let pem = std::fs::read(path)
            .map_err(|e| StorageError::invalid("ARAGORA_REDIS_SSL_CA_CERTS", format!("`{}` cannot be read: {e}", path.display())))?;
        Ok(Some(TlsCertificates { client_tls: None, root_cert: Some(pem) }))
    }

    /// A client for one node: the URL, or `(host, port)`, with this configuration's password,
    /// database and TLS.
    fn node_client(&self, url: Option<&str>, node: Option<&(String, u16)>) -> Result<Client> {
        // The message may quote the URL, which may hold a password.
        let invalid = |e: redis::RedisError| {
            let message = url.map_or_else(|| e.to_string(), |url| e.to_string().replace(url, "<url>"));
            StorageError::invalid("REDIS_URL", format!("is not a valid Redis URL: {message}"))
        };
        let mut info = match (url, node) {
            (Some(url), _) => url.into_connection_info().map_err(invalid)?,
            (None, Some((host, port))) => ConnectionAddr::Tcp(host.clone(), *port).into_connection_info().map_err(invalid)?,
            (None, None) => return Err(StorageError::config("REDIS_URL is not set")),
        };
        let mut redis_settings = info.redis_settings().clone();
        if redis_settings.password().is_none()
            && let Some(password) = &self.password
        {
            redis_settings = redis_settings.set_password(password.expose());
        }
        if redis_settings.db() == 0 && self.db != 0 {
            redis_settings = redis_settings.set_db(self.db);
        }
        info = info.set_redis_settings(redis_settings);
        if self.uses_tls()
            && let ConnectionAddr::Tcp(host, port) = info.addr().clone()
        {
            info = info.set_addr(self.address(&(host, port)));
        }
        match self.certificates()? {
            Some(certificates) => Client::build_with_tls(info, certificates),
            None => Client::open(info),
        }
        .map_err(redis_error)
    }
}

/// A connection to Redis in any of its modes; cheap to clone (clones share the connection).
#[derive(Clone)]
pub enum RedisConnection {
    /// One server, reconnecting with backoff.
    Standalone(ConnectionManager),
    /// The master the Sentinels name, found again after a failover.
    Sentinel(SentinelConnection),
    /// A Cluster, following its redirections.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Standalone(_) => "RedisConnection::Standalone",
            Self::Sentinel(_) => "RedisConnection::Sentinel",
            Self::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

impl RedisConnection {
    /// The deployment this connection reaches.
    pub fn mode(&self) -> RedisMode {
        match self {
            Self::Standalone(_) => RedisMode::Standalone,
            Self::Sentinel(_) => RedisMode::Sentinel,
            Self::Cluster(_) => RedisMode::Cluster,
        }
    }

    /// Pings the server (a Cluster: every master) and reports its role and the round trip.
    pub async fn health(&self) -> Result<RedisHealth> {
        self.health_of("health").await
    }

    /// As [`Self::health`]; on a Cluster the round trip is to the master holding `key`'s slot
    /// (a `PING` goes to every master, and fails while any one is down).
    pub async fn health_of(&self, key: &str) -> Result<RedisHealth> {
        let mut conn = self.clone();
        let start = Instant::now();
        match self {
            Self::Cluster(_) => {
                let _: u64 = redis::cmd("EXISTS").arg(key).query_async(&mut conn).await.map_err(redis_error)?;
            }
            _ => {
                let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(redis_error)?;
            }
        }
        let latency = start.elapsed();
        let role = match self {
            Self::Cluster(_) => {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn).await.map_err(redis_error)?;
                let state = info.lines().find_map(|line| line.trim().strip_prefix("cluster_state:")).unwrap_or("unknown");
                format!("cluster ({state})")
            }
            _ => match redis::cmd("ROLE").query_async(&mut conn).await.map_err(redis_error)? {
                redis::Role::Primary { .. } => "master".to_owned(),
                redis::Role::Replica { .. } => "replica".to_owned(),
                redis::Role::Sentinel { .. } => "sentinel".to_owned(),
                _ => "unknown".to_owned(),
            },
        };
        Ok(RedisHealth { mode: self.mode(), role, latency })
    }
}

/// What [`RedisConnection::health`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisHealth {
    /// The deployment.
    pub mode: RedisMode,
    /// `master` or `replica` (what a writer must never be talking to), or `cluster (<state>)`.
    pub role: String,
    /// The `PING` round trip.
    pub latency: Duration,
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(conn) => conn.req_packed_command(cmd),
            Self::Sentinel(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(conn) => conn.get_db(),
            Self::Sentinel(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Connects to Redis as `config` describes (the seed's `get_ha_redis_client`).
pub async fn get_ha_redis_client(config: &RedisHAConfig) -> Result<RedisConnection> {
    match config.mode {
        RedisMode::Standalone => {
            let url = config.url.as_ref().ok_or_else(|| StorageError::config("REDIS_URL is not set"))?;
            let client = config.node_client(Some(url.expose()), None)?;
            let manager = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.response_timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            Ok(RedisConnection::Standalone(ConnectionManager::new_with_config(client, manager).await.map_err(redis_connect_error)?))
        }
        RedisMode::Sentinel => Ok(RedisConnection::Sentinel(SentinelConnection::connect(config.clone()).await?)),
        RedisMode::Cluster => connect_cluster(config).await.map(RedisConnection::Cluster),
    }
}

/// How long finding a master or a Cluster's slots may take: a few connection attempts.
fn discovery_deadline(config: &RedisHAConfig) -> Duration {
    config.connect_timeout.saturating_mul(3)
}

/// A timeout on discovery, reported like a reply that never came.
fn discovery_timed_out(what: &str) -> StorageError {
    StorageError::Timeout { backend: BACKEND, source: format!("{what} took too long").into() }
}

async fn connect_cluster(config: &RedisHAConfig) -> Result<ClusterConnection> {
    let scheme = if config.uses_tls() { "rediss" } else { "redis" };
    let bracketed = |host: &str| if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    let mut nodes: Vec<String> = config.cluster_nodes.iter().map(|(host, port)| format!("{scheme}://{}:{port}", bracketed(host))).collect();
    if nodes.is_empty()
        && let Some(url) = &config.url
    {
        nodes.push(url.expose().clone());
    }
    if nodes.is_empty() {
        return Err(StorageError::config("REDIS_MODE=cluster needs ARAGORA_REDIS_CLUSTER_NODES"));
    }
    // Reads go to masters only: a replica's read may be stale (the original read from replicas).
    // Redirections and `TRYAGAIN` (a slot in migration) are retried after 10 ms to 0.5 s, not
    // the crate's 1.3 s to 11 min, which would outlast any response timeout.
    let mut builder = ClusterClientBuilder::new(nodes)
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.response_timeout)
        .min_retry_wait(10)
        .max_retry_wait(500)
        .retry_wait_formula(10, 2);
    if let Some(password) = &config.password {
        builder = builder.password(password.expose());
    }
    if config.uses_tls() {
        builder = builder.tls(TlsMode::Secure);
    }
    if let Some(certificates) = config.certificates()? {
        builder = builder.certs(certificates);
    }
    let client =
        builder.build().map_err(|e| StorageError::invalid("ARAGORA_REDIS_CLUSTER_NODES", format!("does not describe a Cluster: {e}")))?;
    tokio::time::timeout(discovery_deadline(config), client.get_async_connection())
        .await
        .map_err(|_| discovery_timed_out("discovering the Cluster's slots"))?
        .map_err(redis_connect_error)
}

/// The master a group of Sentinels names, found again whenever it fails or they announce a new
/// one. Cheap to clone: clones share the master connection.
#[derive(Clone)]
pub struct SentinelConnection {
    shared: Arc<SentinelShared>,
}

impl std::fmt::Debug for SentinelConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelConnection")
            .field("master", &self.shared.config.sentinel_master)
            .field("resolutions", &self.resolutions())
            .finish_non_exhaustive()
    }
}

/// A master's connections: one for everything, and, when writes wait for replicas, a few for
/// those writes (Redis holds a connection's later commands while a `WAIT` on it blocks).
struct Master {
    conn: MultiplexedConnection,
    writers: Vec<MultiplexedConnection>,
    next_writer: AtomicUsize,
}

impl Master {
    /// The connection for a command: a writer, in turn, for a write that waits for replicas.
    fn connection(&self, waits: bool) -> MultiplexedConnection {
        let writer = waits.then(|| self.next_writer.fetch_add(1, Ordering::Relaxed)).and_then(|n| n.checked_rem(self.writers.len()));
        writer.and_then(|n| self.writers.get(n)).unwrap_or(&self.conn).clone()
    }
}

/// Connections a master gets for writes that wait for replicas: as many writes wait at once.
const WAITING_WRITERS: usize = 4;

/// The current master and its generation (bumped whenever it is forgotten).
type Current = (u64, Option<Arc<Master>>);

struct SentinelShared {
    config: RedisHAConfig,
    /// The master and its generation. The lock is held only to read or swap them, never while
    /// connecting.
    current: Mutex<Current>,
    /// One lookup at a time: callers that find no master wait for its answer.
    lookup: tokio::sync::Mutex<()>,
    /// How many times a master was found (for tests and metrics).
    resolutions: AtomicU64,
    /// How many failover announcements for our master arrived.
    announcements: AtomicU64,
    /// Dropped with the last handle, which ends the failover listener.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl SentinelConnection {
    /// Finds the master and starts listening for failovers.
    pub async fn connect(config: RedisHAConfig) -> Result<Self> {
        if config.sentinel_hosts.is_empty() {
            return Err(StorageError::config("REDIS_MODE=sentinel needs ARAGORA_REDIS_SENTINEL_HOSTS"));
        }
        if config.wait_replicas > 0 && config.wait_timeout >= config.response_timeout {
            return Err(StorageError::invalid(
                "ARAGORA_REDIS_WAIT_TIMEOUT_MS",
                "must be shorter than ARAGORA_REDIS_RESPONSE_TIMEOUT_MS, or every wait that runs out is a timeout",
            ));
        }
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let shared = Arc::new(SentinelShared {
            config,
            current: Mutex::new((0, None)),
            lookup: tokio::sync::Mutex::new(()),
            resolutions: AtomicU64::new(0),
            announcements: AtomicU64::new(0),
            _stop: stop,
        });
        let connection = Self { shared };
        connection.master().await?;
        tokio::spawn(listen_for_failovers(Arc::downgrade(&connection.shared), stopped));
        Ok(connection)
    }

    /// How many times the master was looked up (1 after connecting; one more per failover seen).
    pub fn resolutions(&self) -> u64 {
        self.shared.resolutions.load(Ordering::Relaxed)
    }

    /// How many failover announcements (`+failover-state-reconf-slaves`, `+switch-master`) for
    /// this master the Sentinels sent.
    pub fn announcements(&self) -> u64 {
        self.shared.announcements.load(Ordering::Relaxed)
    }

    /// The current master and its generation, finding it first if needed.
    async fn master(&self) -> Result<(u64, Arc<Master>)> {
        if let Some(found) = self.shared.installed() {
            return Ok(found);
        }
        let lookup = async {
            let _one_at_a_time = self.shared.lookup.lock().await;
            loop {
                // Found by the lookup this caller waited for.
                if let Some(found) = self.shared.installed() {
                    return Ok(found);
                }
                let generation = self.shared.lock().0;
                let found = Arc::new(self.find_master().await?);
                let mut current = self.shared.lock();
                if current.0 == generation {
                    *current = (generation, Some(Arc::clone(&found)));
                    return Ok((generation, found));
                }
                // A failover was announced during the lookup, whose answer may be the old
                // master: ask again.
            }
        };
        tokio::time::timeout(discovery_deadline(&self.shared.config), lookup)
            .await
            .map_err(|_| discovery_timed_out("asking the Sentinels for the master"))?
    }

    /// Asks every Sentinel at once for the master (`SENTINEL GET-MASTER-ADDR-BY-NAME`), and
    /// keeps the first it could connect to and that `ROLE` confirms is a master. That lookup names
    /// the promoted replica as soon as a failover reconfigures the other replicas, before
    /// `+switch-master` is announced (the redis crate's, `SENTINEL MASTERS`, names the old master
    /// until then).
    async fn find_master(&self) -> Result<Master> {
        let config = &self.shared.config;
        if config.sentinel_hosts.is_empty() {
            // `select_ok` of nothing would panic.
            return Err(StorageError::config("REDIS_MODE=sentinel needs ARAGORA_REDIS_SENTINEL_HOSTS"));
        }
        let asks = config.sentinel_hosts.iter().map(|sentinel| Box::pin(self.master_named_by(sentinel)));
        let ((address, conn), _) = futures::future::select_ok(asks).await?;
        let mut writers = Vec::new();
        if config.wait_replicas > 0 {
            for _ in 0..WAITING_WRITERS {
                writers.push(self.connect_node(&address).await?);
            }
        }
        self.shared.resolutions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(master = %config.sentinel_master, "redis sentinel: connected to the master");
        Ok(Master { conn, writers, next_writer: AtomicUsize::new(0) })
    }

    /// The master `sentinel` names, connected and checked.
    async fn master_named_by(&self, sentinel: &(String, u16)) -> Result<((String, u16), MultiplexedConnection)> {
        let config = &self.shared.config;
        let mut asked = sentinel_client(config, sentinel)?
            .get_multiplexed_async_connection_with_config(&self.settings())
            .await
            .map_err(redis_connect_error)?;
        let named: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&config.sentinel_master)
            .query_async(&mut asked)
            .await
            .map_err(redis_connect_error)?;
        let address = named.ok_or_else(|| {
            StorageError::config(format!(
                "the sentinels monitor no master named `{}` (ARAGORA_REDIS_SENTINEL_MASTER)",
                config.sentinel_master
            ))
        })?;
        let mut master = self.connect_node(&address).await?;
        match redis::cmd("ROLE").query_async(&mut master).await.map_err(redis_connect_error)? {
            redis::Role::Primary { .. } => Ok((address, master)),
            _ => Err(StorageError::Unavailable {
                backend: BACKEND,
                source: format!("the server a sentinel names as master ({}:{}) is not one yet", address.0, address.1).into(),
            }),
        }
    }

    fn settings(&self) -> AsyncConnectionConfig {
        let config = &self.shared.config;
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
    }

    async fn connect_node(&self, address: &(String, u16)) -> Result<MultiplexedConnection> {
        let client = self.shared.config.node_client(None, Some(address))?;
        client.get_multiplexed_async_connection_with_config(&self.settings()).await.map_err(redis_connect_error)
    }

    /// Sends through the master, forgetting it when the reply says it may no longer be one. A
    /// write waits for [`RedisHAConfig::wait_replicas`] replicas when that is set.
    async fn through_master<T>(
        &self,
        writes: bool,
        send: impl AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let config = &self.shared.config;
        let waits = writes && config.wait_replicas > 0;
        let (generation, master) = self.master().await.map_err(storage_to_redis)?;
        let mut conn = master.connection(waits);
        let mut reply = send(&mut conn).await;
        if reply.is_ok() && waits {
            // WAIT covers every earlier write of this connection, so also this one.
            let timeout = u64::try_from(config.wait_timeout.as_millis()).unwrap_or(u64::MAX).max(1);
            let acked: redis::RedisResult<u32> = redis::cmd("WAIT").arg(config.wait_replicas).arg(timeout).query_async(&mut conn).await;
            match acked {
                Ok(acked) if acked >= config.wait_replicas => {}
                Ok(acked) => {
                    // Applied, and perhaps not for long: an outcome the caller cannot know
                    // (`Indeterminate`), to retry like a reply that never came.
                    let detail = format!(
                        "the master applied the write but only {acked} of {} replicas had it within {timeout} ms: a failover may lose it",
                        config.wait_replicas
                    );
                    reply = Err(redis::RedisError::from(std::io::Error::other(detail)));
                }
                Err(error) => reply = Err(error),
            }
        }
        if let Err(error) = &reply
            && master_may_have_moved(error)
        {
            self.shared.forget(Some(generation));
        }
        reply
    }
}

impl SentinelShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        // A panic elsewhere cannot leave the pair inconsistent: every change is one assignment.
        self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The master, if one is connected.
    fn installed(&self) -> Option<(u64, Arc<Master>)> {
        let current = self.lock();
        current.1.as_ref().map(|master| (current.0, Arc::clone(master)))
    }

    /// Drops the master connection of `generation`, so the next call finds the master again.
    /// `None` (a Sentinel announced a new master) also discards any lookup still under way,
    /// which may have found the old one.
    fn forget(&self, generation: Option<u64>) {
        let mut current = self.lock();
        let stale = generation.is_none_or(|g| g == current.0 && current.1.is_some());
        if stale {
            *current = (current.0.wrapping_add(1), None);
            tracing::warn!(master = %self.config.sentinel_master, "redis sentinel: the master moved or failed; asking the sentinels again");
        }
    }
}

/// Whether an error means the connection may be talking to something that is no longer the
/// master: a lost or refused connection, a timeout, or a server that says it is a replica.
fn master_may_have_moved(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(error.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown))
        // A `WAIT` cut short because the server became a replica.
        || error.code() == Some("UNBLOCKED")
}

/// Carries a lookup failure through the redis crate's error type as a refused connection: no
/// master was found, so nothing was sent (`Unavailable`, and the next call looks again).
fn storage_to_redis(error: StorageError) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, error.to_string()))
}

/// Commands the stores send that change nothing; any other counts as a write.
const READ_ONLY: [&[u8]; 16] = [
    b"GET",
    b"HGET",
    b"HMGET",
    b"HGETALL",
    b"EXISTS",
    b"SMEMBERS",
    b"ZCARD",
    b"ZCOUNT",
    b"ZMSCORE",
    b"ZRANGE",
    b"ZRANGEBYLEX",
    b"ZRANGEBYSCORE",
    b"PING",
    b"ROLE",
    b"INFO",
    b"SCAN",
];

/// Whether `cmd` may change data: any command but the reads above and the read-only scripts
/// (by hash; their source, sent once after `NOSCRIPT`, counts as a write).
fn writes(cmd: &Cmd) -> bool {
    use redis::Arg::Simple;
    let read_only_scripts = [&*crate::table::QUERY_SCRIPT, &*crate::stores::job_queue::LIST, &*crate::stores::job_queue::LAPSED];
    let mut args = cmd.args_iter();
    match (args.next(), args.next()) {
        (Some(Simple(name)), Some(Simple(hash))) if name.eq_ignore_ascii_case(b"EVALSHA") => {
            !read_only_scripts.iter().any(|script| script.get_hash().as_bytes() == hash)
        }
        (Some(Simple(name)), _) => !READ_ONLY.iter().any(|read| name.eq_ignore_ascii_case(read)),
        _ => true,
    }
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.through_master(writes(cmd), async move |conn: &mut MultiplexedConnection| conn.req_packed_command(cmd).await))
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        let writes = pipeline.cmd_iter().any(writes);
        Box::pin(
            self.through_master(writes, async move |conn: &mut MultiplexedConnection| {
                conn.req_packed_commands(pipeline, offset, count).await
            }),
        )
    }

    fn get_db(&self) -> i64 {
        self.shared.config.db
    }
}

/// The announcement of a completed failover.
const SWITCH_MASTER: &str = "+switch-master";
/// The announcement that a failover promoted a replica and now reconfigures the others: from
/// here on the Sentinels name the promoted replica.
const RECONFIGURING: &str = "+failover-state-reconf-slaves";

/// Listens to the Sentinels' failover announcements and forgets the master when ours moves, so
/// the next call goes to the new one even if the old one still answers. Moves to the next
/// Sentinel when one goes away; ends with the connection.
async fn listen_for_failovers(shared: std::sync::Weak<SentinelShared>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let (mut next, mut pause) = (0usize, LISTENER_RETRY);
    loop {
        let Some(config) = shared.upgrade().map(|s| s.config.clone()) else { return };
        let Some(sentinel) = next.checked_rem(config.sentinel_hosts.len()).and_then(|i| config.sentinel_hosts.get(i)).cloned() else {
            return;
        };
        next = next.wrapping_add(1);
        let listen = async {
            let client = sentinel_client(&config, &sentinel)?;
            let subscribe = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&[SWITCH_MASTER, RECONFIGURING]).await.map(|()| pubsub)
            };
            // A Sentinel that does not answer must not hold the listener.
            let mut pubsub = tokio::time::timeout(discovery_deadline(&config), subscribe)
                .await
                .map_err(|_| discovery_timed_out("subscribing to a sentinel"))?
                .map_err(redis_error)?;
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let payload: String = message.get_payload().unwrap_or_default();
                let mut words = payload.split(' ');
                let master = match message.get_channel_name() {
                    // `<master name> <old ip> <old port> <new ip> <new port>`
                    SWITCH_MASTER => words.next(),
                    // `master <master name> <ip> <port>`
                    _ => words.nth(1),
                };
                if master == Some(config.sentinel_master.as_str())
                    && let Some(shared) = shared.upgrade()
                {
                    tracing::warn!(announcement = %payload, channel = message.get_channel_name(), "redis sentinel: failover announced");
                    shared.announcements.fetch_add(1, Ordering::Relaxed);
                    shared.forget(None);
                }
            }
            Ok::<(), StorageError>(())
        };
        tokio::select! {
            _ = &mut stopped => return,
            ended = listen => match ended {
                Ok(()) => pause = LISTENER_RETRY,
                Err(error) => {
                    tracing::warn!(%error, "redis sentinel: the failover listener lost its sentinel; trying the next");
                    pause = pause.saturating_mul(2).min(LISTENER_RETRY_MAX);
                }
            },
            // A connection that went silent (a half-open TCP connection, a Sentinel cut off on
            // the minority side) would never deliver: move on now and then.
            () = tokio::time::sleep(LISTENER_TURN) => pause = LISTENER_RETRY,
        }
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// How long the listener stays subscribed to one Sentinel before it moves to the next.
const LISTENER_TURN: Duration = Duration::from_secs(30);
/// The listener's first pause after losing a Sentinel, doubled on each further loss.
const LISTENER_RETRY: Duration = Duration::from_millis(200);
/// The longest pause between the listener's attempts.
const LISTENER_RETRY_MAX: Duration = Duration::from_secs(5);

/// A client for one Sentinel.
fn sentinel_client(config: &RedisHAConfig, (host, port): &(String, u16)) -> Result<Client> {
    let mut info = config.address(&(host.clone(), *port)).into_connection_info().map_err(redis_error)?;
    if let Some(password) = &config.sentinel_password {
        let settings = info.redis_settings().clone().set_password(password.expose());
        info = info.set_redis_settings(settings);
    }
    match config.certificates()? {
        Some(certificates) => Client::build_with_tls(info, certificates),
        None => Client::open(info),
    }
    .map_err(redis_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lists_take_default_ports_and_refuse_bad_ones() {
        let found = hosts("X", Some(" a:1, b ,[::1]:7,[::2]"), 26379).expect("hosts");
        let expected = [("a", 1), ("b", 26379), ("::1", 7), ("::2", 26379)].map(|(host, port)| (host.to_owned(), port));
        assert_eq!(found, expected.to_vec());
        assert!(hosts("X", Some("a:port"), 1).is_err());
        assert!(hosts("X", Some(":1"), 1).is_err());
        assert!(hosts("X", None, 1).expect("empty").is_empty());
    }

    #[test]
    fn settings_become_a_topology_and_bad_ones_name_their_variable() {
        let config = StorageConfig {
            redis_sentinel_hosts: Some("10.0.0.1, 10.0.0.2:26380".to_owned()),
            redis_ssl: true,
            ..StorageConfig::default()
        };
        let topology = RedisHAConfig::from_config(&config).expect("topology");
        assert_eq!(topology.mode, RedisMode::Sentinel);
        assert_eq!(topology.sentinel_hosts, vec![("10.0.0.1".to_owned(), 26379), ("10.0.0.2".to_owned(), 26380)]);
        assert!(topology.uses_tls());
        let bad = StorageConfig { redis_cluster_nodes: Some("n1:seventy".to_owned()), ..StorageConfig::default() };
        let err = RedisHAConfig::from_config(&bad).expect_err("a bad port").to_string();
        assert!(err.contains("ARAGORA_REDIS_CLUSTER_NODES") && err.contains("seventy"), "{err}");
        assert!(RedisHAConfig::standalone("rediss://cache:6380").uses_tls());
        assert!(!RedisHAConfig::standalone("redis://cache").uses_tls());
    }

    #[test]
    fn only_commands_that_change_nothing_skip_the_replica_wait() {
        assert!(!writes(&redis::cmd("HMGET")) && !writes(&redis::cmd("zrangebylex")));
        assert!(writes(&redis::cmd("EVALSHA")) && writes(&redis::cmd("ZADD")) && writes(&redis::cmd("DEL")));
        let evalsha = |script: &redis::Script| {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(script.get_hash()).arg(1).arg("key");
            cmd
        };
        assert!(!writes(&evalsha(&crate::table::QUERY_SCRIPT)), "a query only reads");
        assert!(writes(&evalsha(&redis::Script::new(crate::scripts::APPLY))));
    }
}
