//! Throwaway PostgreSQL and Redis servers, started from the binaries on this machine.
//!
//! One server of each kind serves every test of a test binary; each test gets a fresh database
//! (PostgreSQL) or key namespace (Redis). A watchdog process removes the server and its
//! directory when the test binary exits, also when it panics or is killed. Fault tests start a
//! dedicated server and stop, restart or `kill -9` it.
//!
//! `ARAGORA_TEST_POSTGRES_URL` / `ARAGORA_TEST_REDIS_URL` point the shared servers at existing
//! ones instead. When neither works the harness panics with one line saying what to install:
//! it never skips.

use sqlx::{Connection, PgConnection};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Runs a command to completion, panicking with its output if it fails.
fn run(command: &mut Command) -> String {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    if !output.status.success() {
        panic!("{command:?} failed: {}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free local port")
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|p| p.is_file()))
}

/// Removes `dir` after running `stop` once the current process has exited, however it exits.
#[allow(clippy::zombie_processes, reason = "the watchdog must outlive this process, so it is never waited for")]
fn watchdog(dir: &Path, stop: &[String]) {
    let script = r#"owner=$1; dir=$2; shift 2
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
"$@" >/dev/null 2>&1
rm -rf "$dir""#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .args(stop)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the cleanup watchdog");
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "{what} did not become ready within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL cluster in a temporary directory, on a free port.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    durable: bool,
}

impl PgServer {
    /// The newest `/usr/lib/postgresql/<version>/bin` (Debian's layout, with every tool), else
    /// the directory of `initdb` on `PATH`.
    fn bin_dir() -> PathBuf {
        let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|b| b.join("initdb").is_file()).collect())
            .unwrap_or_default();
        versions.sort_by_key(|p| p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()));
        if let Some(newest) = versions.pop() {
            return newest;
        }
        match on_path("initdb") {
            Some(initdb) => initdb.parent().map(Path::to_path_buf).unwrap_or_default(),
            None => panic!(
                "PostgreSQL server binaries (initdb, pg_ctl) not found: `apt-get install postgresql`, or set ARAGORA_TEST_POSTGRES_URL"
            ),
        }
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl_args(&self, action: &str) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        if self.as_postgres {
            args.extend(["runuser", "-u", "postgres", "--"].map(String::from));
        }
        args.push(self.bin.join("pg_ctl").display().to_string());
        args.extend([action, "-D"].map(String::from));
        args.push(self.dir.join("data").display().to_string());
        args
    }

    /// Creates and starts a new cluster tuned for tests (`fsync=off`: it survives the server
    /// process crashing, not the machine).
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Creates and starts a cluster with production durability (`fsync=on`), for benchmarks.
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("aragora-pg-").tempdir().expect("temp dir").keep();
        if as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(&dir));
        }
        let server = Self { bin: Self::bin_dir(), dir, port: free_port(), as_postgres, durable };
        watchdog(&server.dir, &[server.pg_ctl_args("stop"), vec!["-m".into(), "immediate".into()]].concat());
        run(server.command("initdb").arg("-D").arg(server.dir.join("data")).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "--no-locale",
            "-E",
            "UTF8",
        ]));
        server.start_again();
        server
    }

    /// Starts a streaming replica of this running cluster: a base backup (`pg_basebackup -R`,
    /// which writes the standby settings) into a directory of its own, started on its own port,
    /// applying the primary's changes `apply_delay` after they commit (`recovery_min_apply_delay`;
    /// zero for none). It can be stopped and started like any cluster.
    pub fn start_replica(&self, apply_delay: Duration) -> Self {
        let dir = tempfile::Builder::new().prefix("aragora-pg-replica-").tempdir().expect("temp dir").keep();
        if self.as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(&dir));
        }
        let replica = Self { bin: self.bin.clone(), dir, port: free_port(), as_postgres: self.as_postgres, durable: self.durable };
        watchdog(&replica.dir, &[replica.pg_ctl_args("stop"), vec!["-m".into(), "immediate".into()]].concat());
        run(replica
            .command("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                "--no-sync",
                "--checkpoint=fast",
                "-D",
            ])
            .arg(replica.dir.join("data")));
        let settings = format!("\nrecovery_min_apply_delay = '{}ms'\nhot_standby = on\n", apply_delay.as_millis());
        let auto_conf = replica.dir.join("data/postgresql.auto.conf");
        let mut conf = std::fs::read_to_string(&auto_conf).expect("postgresql.auto.conf");
        conf.push_str(&settings);
        std::fs::write(&auto_conf, conf).expect("standby settings");
        replica.start_again();
        replica
    }

    /// Starts the (stopped or killed) cluster again on the same port and data.
    pub fn start_again(&self) {
        let durability = if self.durable { "" } else { " -c fsync=off -c full_page_writes=off" };
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300{durability}", self.port, self.dir.display());
        run(self
            .command("pg_ctl")
            .arg("start")
            .arg("-w")
            .arg("-t")
            .arg("60")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(options));
    }

    /// Stops the cluster (fast shutdown: sessions are disconnected).
    pub fn stop(&self) {
        run(self.command("pg_ctl").arg("stop").arg("-w").arg("-m").arg("fast").arg("-D").arg(self.dir.join("data")));
    }

    /// Restarts the cluster.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// `kill -9` the postmaster, as a crash would.
    pub fn kill9(&self) {
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).expect("postmaster.pid");
        let pid = pid.lines().next().unwrap_or_default().trim().to_owned();
        run(Command::new("kill").args(["-9", &pid]));
        wait_until("the killed postmaster to exit", Duration::from_secs(10), || {
            !Command::new("kill").args(["-0", &pid]).status().is_ok_and(|s| s.success())
        });
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path of one of its binaries (`pgbench`, `psql`, ...).
    pub fn binary(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }
}

enum PgTarget {
    Owned(PgServer),
    External(String),
}

fn shared_postgres() -> &'static PgTarget {
    static SHARED: OnceLock<PgTarget> = OnceLock::new();
    SHARED.get_or_init(|| match std::env::var("ARAGORA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => PgTarget::External(url),
        _ => PgTarget::Owned(PgServer::start()),
    })
}

/// Creates an empty database on `admin_url`'s server and returns its URL.
pub async fn create_database(admin_url: &str) -> String {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(admin_url).await.unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.expect("create database");
    match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("ARAGORA_TEST_POSTGRES_URL must name a database: {admin_url}"),
    }
}

/// A fresh, empty database on the shared test server.
pub async fn fresh_postgres_database() -> String {
    match shared_postgres() {
        PgTarget::Owned(server) => create_database(&server.url("postgres")).await,
        PgTarget::External(url) => create_database(url).await,
    }
}

/// A `redis-server` (or Sentinel) in a temporary directory, on a free port.
#[derive(Debug)]
pub struct RedisServer {
    dir: PathBuf,
    port: u16,
    durable: bool,
    /// Extra arguments (replication, cluster mode).
    args: Vec<String>,
    /// Runs as a Sentinel with this configuration file (which Sentinel rewrites).
    sentinel: Option<PathBuf>,
    /// Serves TLS only, with these certificates.
    tls: Option<TestTls>,
}

/// A new certificate authority and a server certificate it signed for `127.0.0.1` and
/// `localhost`, made with `openssl`, for TLS servers (and their replication and cluster bus).
#[derive(Debug, Clone)]
pub struct TestTls {
    dir: PathBuf,
}

impl TestTls {
    /// Makes the authority and the certificate in a new directory.
    pub fn generate() -> Self {
        if on_path("openssl").is_none() {
            panic!("openssl not found: `apt-get install openssl` (the TLS tests make their certificates with it)");
        }
        let dir = tempfile::Builder::new().prefix("aragora-tls-").tempdir().expect("temp dir").keep();
        let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(&dir).args(args));
        let subject = |name: &str| format!("/CN={name}");
        openssl(
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject("aragora test CA")]
                .into_iter()
                .chain(["-keyout", "ca.key", "-out", "ca.pem"])
                .collect::<Vec<_>>(),
        );
        openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", &subject("localhost"), "-keyout", "server.key", "-out", "server.csr"]);
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n").expect("san.ext");
        openssl(
            &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"]
                .into_iter()
                .chain(["-extfile", "san.ext", "-out", "server.pem"])
                .collect::<Vec<_>>(),
        );
        Self { dir }
    }

    /// The authority's certificate (PEM), for `ARAGORA_REDIS_SSL_CA_CERTS`.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server's TLS arguments: TLS only on `port`, also between replicas and cluster nodes.
    fn server_args(&self, port: u16) -> Vec<String> {
        let file = |name: &str| self.dir.join(name).display().to_string();
        [
            ("--port", "0".to_owned()),
            ("--tls-port", port.to_string()),
            ("--tls-cert-file", file("server.pem")),
            ("--tls-key-file", file("server.key")),
            ("--tls-ca-cert-file", file("ca.pem")),
            ("--tls-auth-clients", "no".to_owned()),
            ("--tls-replication", "yes".to_owned()),
        ]
        .into_iter()
        .flat_map(|(name, value)| [name.to_owned(), value])
        .collect()
    }
}

impl RedisServer {
    /// Starts a server that keeps nothing on disk.
    pub fn start() -> Self {
        Self::start_with(false, Vec::new(), None, None)
    }

    /// Starts a server with an append-only file fsynced on every write, so restarts keep data.
    pub fn start_durable() -> Self {
        Self::start_with(true, Vec::new(), None, None)
    }

    fn start_with(durable: bool, args: Vec<String>, sentinel: Option<&dyn Fn(u16) -> String>, tls: Option<&TestTls>) -> Self {
        if on_path("redis-server").is_none() {
            panic!("redis-server not found: `apt-get install redis-server`, or set ARAGORA_TEST_REDIS_URL");
        }
        let dir = tempfile::Builder::new().prefix("aragora-redis-").tempdir().expect("temp dir").keep();
        let port = free_port();
        let sentinel = sentinel.map(|config| {
            let path = dir.join("sentinel.conf");
            std::fs::write(&path, config(port)).expect("write sentinel.conf");
            path
        });
        let server = Self { dir, port, durable, args, sentinel, tls: tls.cloned() };
        let pidfile = server.dir.join("redis.pid").display().to_string();
        watchdog(&server.dir, &["sh".into(), "-c".into(), format!("kill -9 $(cat {pidfile})")]);
        server.start_again();
        server
    }

    /// Starts a server that speaks only TLS, with a certificate signed by a new authority
    /// ([`Self::tls_ca`]).
    pub fn start_tls() -> Self {
        Self::start_with(false, Vec::new(), None, Some(&TestTls::generate()))
    }

    /// The authority that signed a TLS server's certificate.
    pub fn tls_ca(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(TestTls::ca)
    }

    /// Starts the (stopped or killed) server again on the same port and directory.
    pub fn start_again(&self) {
        let mut command = Command::new("redis-server");
        if let Some(config) = &self.sentinel {
            command.arg(config).arg("--sentinel");
        }
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--daemonize", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--pidfile")
            .arg(self.dir.join("redis.pid"))
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        if self.sentinel.is_none() {
            command.args(["--save", ""]);
            if self.durable {
                command.args(["--appendonly", "yes", "--appendfsync", "always"]);
            } else {
                command.args(["--appendonly", "no"]);
            }
        }
        command.args(&self.args);
        if let Some(tls) = &self.tls {
            command.args(tls.server_args(self.port));
        }
        run(&mut command);
        wait_until("redis-server", Duration::from_secs(20), || self.cli(&["ping"]).is_some_and(|out| out.trim() == "PONG"));
    }

    /// Runs `redis-cli` against this server; its output, or `None` when it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let mut command = Command::new("redis-cli");
        if let Some(tls) = &self.tls {
            command.arg("--tls").arg("--cacert").arg(tls.ca());
        }
        let output = command.args(["-p", &self.port.to_string()]).args(args).stdin(Stdio::null()).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Stops the server (writing its append-only file when durable).
    pub fn stop(&self) {
        let _ = self.cli(&["shutdown"]);
        wait_until("redis-server to stop", Duration::from_secs(20), || self.cli(&["ping"]).is_none());
    }

    /// Restarts the server.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// `kill -9` the server, as a crash would.
    pub fn kill9(&self) {
        let pid = std::fs::read_to_string(self.dir.join("redis.pid")).expect("redis.pid");
        run(Command::new("kill").args(["-9", pid.trim()]));
        wait_until("the killed redis-server to exit", Duration::from_secs(10), || self.cli(&["ping"]).is_none());
    }

    /// Its URL (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `(host, port)`, as the Sentinel and Cluster settings list nodes.
    pub fn address(&self) -> (String, u16) {
        ("127.0.0.1".to_owned(), self.port)
    }

    /// Whether it is a master, or a replica whose link to its master is up; `true` when it does
    /// not answer.
    fn synced(&self) -> bool {
        self.cli(&["info", "replication"]).is_none_or(|info| info.contains("role:master") || info.contains("master_link_status:up"))
    }

    /// The `role:` line of `INFO replication` (`master` or `slave`), `None` when it does not answer.
    pub fn role(&self) -> Option<String> {
        let info = self.cli(&["info", "replication"])?;
        info.lines().find_map(|line| line.trim().strip_prefix("role:")).map(str::to_owned)
    }
}

/// The master name of a [`RedisSentinelGroup`].
pub const SENTINEL_MASTER: &str = "mymaster";

/// A real Sentinel group: one master, one replica (or more) and three Sentinels (quorum 2) on free ports,
/// tuned to fail over within about two seconds of the master dying.
#[derive(Debug)]
pub struct RedisSentinelGroup {
    /// The servers; which one is the master changes with failovers (see [`Self::master`]).
    pub servers: Vec<RedisServer>,
    /// The Sentinels.
    pub sentinels: Vec<RedisServer>,
    /// The certificates, when every server and Sentinel speaks only TLS.
    pub tls: Option<TestTls>,
}

impl RedisSentinelGroup {
    /// Starts the group and waits until every Sentinel sees the replica and its peers.
    pub fn start() -> Self {
        Self::start_with_replicas(1)
    }

    /// Starts a group whose master has `replicas` replicas.
    pub fn start_with_replicas(replicas: usize) -> Self {
        Self::launch(replicas, None)
    }

    /// Starts a group in which every server and Sentinel speaks only TLS.
    pub fn start_tls() -> Self {
        Self::launch(1, Some(TestTls::generate()))
    }

    fn launch(replicas: usize, tls: Option<TestTls>) -> Self {
        let quick_sync = || vec!["--repl-diskless-sync-delay".to_owned(), "0".to_owned()];
        let master = RedisServer::start_with(false, quick_sync(), None, tls.as_ref());
        let mut servers = vec![];
        for _ in 0..replicas {
            let mut replica_args = quick_sync();
            replica_args.extend(["--replicaof".to_owned(), "127.0.0.1".to_owned(), master.port.to_string()]);
            servers.push(RedisServer::start_with(false, replica_args, None, tls.as_ref()));
        }
        let master_port = master.port;
        let config = move |port: u16| {
            format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\nsentinel failover-timeout {SENTINEL_MASTER} 10000\n\
                 sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
            )
        };
        let sentinels: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_with(false, Vec::new(), Some(&config), tls.as_ref())).collect();
        servers.insert(0, master);
        let group = Self { servers, sentinels, tls };
        let replicas = replicas.to_string();
        wait_until("the sentinels to see the replica and each other", Duration::from_secs(30), || {
            group.sentinels.iter().all(|s| {
                s.cli(&["sentinel", "master", SENTINEL_MASTER]).is_some_and(|out| {
                    let fields: Vec<&str> = out.lines().map(str::trim).collect();
                    let value = |name: &str| fields.iter().position(|f| *f == name).and_then(|i| fields.get(i + 1)).copied();
                    value("num-slaves") == Some(replicas.as_str()) && value("num-other-sentinels") == Some("2")
                })
            }) && group.servers.iter().all(RedisServer::synced)
        });
        group
    }

    /// The Sentinels' addresses.
    pub fn sentinel_hosts(&self) -> Vec<(String, u16)> {
        self.sentinels.iter().map(RedisServer::address).collect()
    }

    /// The port the Sentinels name as master (asking the first that answers).
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let out = s.cli(&["sentinel", "get-master-addr-by-name", SENTINEL_MASTER])?;
            out.lines().nth(1)?.trim().parse().ok()
        })
    }

    /// The server the Sentinels name as master.
    pub fn master(&self) -> &RedisServer {
        let port = self.master_port().expect("the sentinels name a master");
        self.servers.iter().find(|s| s.port == port).expect("the master is one of the group's servers")
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Debug)]
struct NodeEntry {
    id: String,
    port: u16,
    live_master: bool,
    slots: Vec<(u16, u16)>,
}

/// A real Redis Cluster: three masters with one replica each (`redis-cli --cluster create`),
/// on free ports, with a two-second node timeout so a dead master's replica takes over quickly.
#[derive(Debug)]
pub struct RedisCluster {
    /// The six nodes; which are masters changes with failovers.
    pub nodes: Vec<RedisServer>,
    /// The certificates, when every node speaks only TLS (the cluster bus too).
    pub tls: Option<TestTls>,
}

impl RedisCluster {
    /// Starts the nodes, creates the Cluster and waits until every node reports it healthy.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Starts a Cluster whose nodes speak only TLS, to clients and to each other.
    pub fn start_tls() -> Self {
        Self::launch(Some(TestTls::generate()))
    }

    fn launch(tls: Option<TestTls>) -> Self {
        // The bus port is given: the default (port + 10000) may be taken.
        let args = || {
            let mut args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]
                .map(String::from)
                .to_vec();
            args.extend(["--cluster-port".to_owned(), free_port().to_string(), "--repl-diskless-sync-delay".to_owned(), "0".to_owned()]);
            if tls.is_some() {
                args.extend(["--tls-cluster".to_owned(), "yes".to_owned()]);
            }
            args
        };
        let nodes: Vec<RedisServer> = (0..6).map(|_| RedisServer::start_with(false, args(), None, tls.as_ref())).collect();
        let mut create = Command::new("redis-cli");
        if let Some(tls) = &tls {
            create.arg("--tls").arg("--cacert").arg(tls.ca());
        }
        create.arg("--cluster").arg("create");
        create.args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        run(&mut create);
        let cluster = Self { nodes, tls };
        cluster.wait_healthy();
        cluster
    }

    /// Waits until every node that answers reports `cluster_state:ok` and every replica that
    /// answers has finished its first sync (a replica that never synced refuses to take over).
    pub fn wait_healthy(&self) {
        wait_until("the cluster to be healthy", Duration::from_secs(60), || {
            self.nodes.iter().filter_map(|n| n.cli(&["cluster", "info"])).all(|info| info.contains("cluster_state:ok"))
                && self.nodes.iter().any(|n| n.cli(&["cluster", "info"]).is_some())
                && self.nodes.iter().all(RedisServer::synced)
        });
    }

    /// The nodes' addresses, as `ARAGORA_REDIS_CLUSTER_NODES` lists them.
    pub fn addresses(&self) -> Vec<(String, u16)> {
        self.nodes.iter().map(RedisServer::address).collect()
    }

    /// The slot a key (or hash tag) hashes to.
    pub fn slot(&self, key: &str) -> u16 {
        let node = self.nodes.iter().find(|n| n.cli(&["ping"]).is_some()).expect("a live node");
        node.cli(&["cluster", "keyslot", key]).and_then(|s| s.trim().parse().ok()).expect("cluster keyslot")
    }

    /// `CLUSTER NODES`, from the first node that answers.
    fn table(&self) -> Vec<NodeEntry> {
        let out = self.nodes.iter().find_map(|n| n.cli(&["cluster", "nodes"])).expect("a node answers CLUSTER NODES");
        out.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let port = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                let flags = fields.get(2)?;
                let slots = fields
                    .iter()
                    .skip(8)
                    .filter(|r| !r.starts_with('['))
                    .filter_map(|r| match r.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => r.parse().ok().map(|s| (s, s)),
                    })
                    .collect();
                Some(NodeEntry {
                    id: (*fields.first()?).to_owned(),
                    port,
                    live_master: flags.contains("master") && !flags.contains("fail"),
                    slots,
                })
            })
            .collect()
    }

    /// The index in [`Self::nodes`] of the live master serving `slot`.
    pub fn master_of(&self, slot: u16) -> usize {
        self.serving(slot).expect("a live master serves the slot")
    }

    /// The index in [`Self::nodes`] of the live master serving `slot`, if any.
    pub fn serving(&self, slot: u16) -> Option<usize> {
        let table = self.table();
        let port = table
            .iter()
            .find(|node| node.live_master && node.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .map(|node| node.port)?;
        self.nodes.iter().position(|n| n.port == port)
    }

    /// Moves `slot` to the master at `to` as an operator would (`SETSLOT IMPORTING/MIGRATING`,
    /// `MIGRATE`, `SETSLOT NODE`), pausing after the keys moved so that traffic meets the `ASK`
    /// and then the `MOVED` redirections. The keys move in one `MIGRATE`: the stores' scripts read keys they do
    /// not declare, so a slot must never be half moved while they run (see docs/operations.md).
    pub fn move_slot(&self, slot: u16, to: usize) {
        let table = self.table();
        let id_of = |port: u16| table.iter().find(|node| node.port == port).map(|node| node.id.clone()).expect("node id");
        let from = self.master_of(slot);
        let (source, target) = (&self.nodes[from], &self.nodes[to]);
        let (source_id, target_id) = (id_of(source.port), id_of(target.port));
        let slot_text = slot.to_string();
        let ok = |node: &RedisServer, args: &[&str]| {
            let out = node.cli(args).unwrap_or_else(|| panic!("redis-cli {args:?} failed"));
            assert!(!out.contains("ERR"), "redis-cli {args:?}: {out}");
            out
        };
        ok(target, &["cluster", "setslot", &slot_text, "importing", &source_id]);
        ok(source, &["cluster", "setslot", &slot_text, "migrating", &target_id]);
        let keys = ok(source, &["cluster", "getkeysinslot", &slot_text, "1000000"]);
        let keys: Vec<&str> = keys.lines().map(str::trim).filter(|k| !k.is_empty()).collect();
        if !keys.is_empty() {
            let port = target.port.to_string();
            let mut args = vec!["migrate", "127.0.0.1", &port, "", "0", "30000", "KEYS"];
            args.extend(keys.iter().copied());
            ok(source, &args);
        }
        std::thread::sleep(Duration::from_millis(800));
        for node in [target, source] {
            ok(node, &["cluster", "setslot", &slot_text, "node", &target_id]);
        }
        for (index, node) in self.nodes.iter().enumerate() {
            if index != from && index != to && table.iter().any(|entry| entry.live_master && entry.port == node.port) {
                let _ = node.cli(&["cluster", "setslot", &slot_text, "node", &target_id]);
            }
        }
    }
}

/// The URL of the shared test Redis server (started on first use).
pub fn shared_redis_url() -> String {
    static SHARED: OnceLock<String> = OnceLock::new();
    SHARED
        .get_or_init(|| match std::env::var("ARAGORA_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let server = Box::leak(Box::new(RedisServer::start()));
                server.url()
            }
        })
        .clone()
}

/// A key namespace no other test uses.
pub fn fresh_namespace() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}
