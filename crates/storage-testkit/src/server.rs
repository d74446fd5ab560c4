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

/// A `redis-server` in a temporary directory, on a free port.
#[derive(Debug)]
pub struct RedisServer {
    dir: PathBuf,
    port: u16,
    durable: bool,
}

impl RedisServer {
    /// Starts a server that keeps nothing on disk.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a server with an append-only file fsynced on every write, so restarts keep data.
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        if on_path("redis-server").is_none() {
            panic!("redis-server not found: `apt-get install redis-server`, or set ARAGORA_TEST_REDIS_URL");
        }
        let dir = tempfile::Builder::new().prefix("aragora-redis-").tempdir().expect("temp dir").keep();
        let server = Self { dir, port: free_port(), durable };
        let pidfile = server.dir.join("redis.pid").display().to_string();
        watchdog(&server.dir, &["sh".into(), "-c".into(), format!("kill -9 $(cat {pidfile})")]);
        server.start_again();
        server
    }

    /// Starts the (stopped or killed) server again on the same port and directory.
    pub fn start_again(&self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--daemonize", "yes", "--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--pidfile")
            .arg(self.dir.join("redis.pid"))
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        if self.durable {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        run(&mut command);
        wait_until("redis-server", Duration::from_secs(20), || self.cli(&["ping"]).is_some_and(|out| out.trim() == "PONG"));
    }

    fn cli(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).stdin(Stdio::null()).output().ok()?;
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

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.port
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
