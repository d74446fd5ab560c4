//! `kill -9` in the middle of group commits: a child process writes from 16 tasks and prints the
//! id of every write the store acknowledged; it is killed mid-stream five times, then every
//! acknowledged record must read back whole. Both `synchronous` modes: a process crash must never
//! lose an acknowledged write, whatever the disk does afterwards.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage_core::Store;
use storage_core::{IntegrationConfig, IntegrationStore, SqliteSynchronous, TenantId};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_sqlite::SQLiteIntegrationStore;
use storage_sqlite::SqliteBackend;

const CHILD: &str = "ARAGORA_CRASH_CHILD";
const ROUNDS: usize = 5;
const TASKS: usize = 16;

fn key(hex: &str) -> Arc<KeyRing> {
    Arc::new(KeyRing::single(EncryptionKey::parse("test key", hex).expect("key")).expect("ring"))
}

fn synchronous(name: &str) -> SqliteSynchronous {
    match name {
        "full" => SqliteSynchronous::Full,
        _ => SqliteSynchronous::Normal,
    }
}

/// Runs the writer child five times, killing it mid-stream; returns every acknowledged id with
/// the value it was acknowledged with.
fn crash_rounds(path: &std::path::Path, mode: &str, hex: &str) -> BTreeMap<String, u64> {
    let mut acknowledged = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "child_writes_until_killed", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("ARAGORA_CRASH_DB", path)
            .env("ARAGORA_CRASH_MODE", mode)
            .env("ARAGORA_CRASH_KEY", hex)
            .env("ARAGORA_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the writer");
        let stdout = child.stdout.take().expect("stdout");
        let started = Instant::now();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        // Kill after a varying number of acknowledgements, so the kill lands at different points
        // of a batch.
        let kill_after = 300 + 97 * round;
        while let Some(Ok(line)) = lines.next() {
            if let Some((id, value)) = line.strip_prefix("ACK ").and_then(|rest| rest.split_once(' ')) {
                acknowledged.insert(id.to_owned(), value.parse::<u64>().expect("value"));
                seen += 1;
            }
            if seen >= kill_after || started.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
        child.kill().expect("kill -9");
        // Whatever the child printed before it died was acknowledged before it died.
        for line in lines.map_while(Result::ok) {
            if let Some((id, value)) = line.strip_prefix("ACK ").and_then(|rest| rest.split_once(' ')) {
                acknowledged.insert(id.to_owned(), value.parse::<u64>().expect("value"));
            }
        }
        child.wait().expect("reap");
        assert!(seen > 0, "round {round}: the writer acknowledged nothing");
    }
    acknowledged
}

async fn survives(mode: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.db");
    let hex = "5a".repeat(32);
    let acknowledged = crash_rounds(&path, mode, &hex);
    let backend = SqliteBackend::builder(&path).sealer(key(&hex)).synchronous(synchronous(mode)).connect().await.expect("reopen");
    let integrity: String = backend
        .read(|conn| conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).map_err(storage_schema::sqlite_error))
        .await
        .expect("integrity check");
    assert_eq!(integrity, "ok");
    let store = SQLiteIntegrationStore::on(&backend);
    let tenant = TenantId::new("crash").expect("tenant");
    for (id, value) in &acknowledged {
        let read = store.get(&tenant, id).await.expect("read").unwrap_or_else(|| panic!("acknowledged write {id} was lost"));
        // A later write of the same record may have committed unacknowledged when the kill came.
        assert!(read.messages_sent >= *value, "{id}: acknowledged {value}, read {}", read.messages_sent);
        assert_eq!(read.credentials["token"].expose(), &format!("token-{id}-{}", read.messages_sent), "{id}: the record is whole");
    }
    assert!(acknowledged.len() >= ROUNDS * 300, "{} acknowledged writes", acknowledged.len());
    eprintln!("{mode}: {} acknowledged records read back whole after {ROUNDS} kill -9 rounds", acknowledged.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_with_synchronous_normal() {
    survives("normal").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_with_synchronous_full() {
    survives("full").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the writer of the tests above, run in a child process that they kill"]
async fn child_writes_until_killed() {
    assert!(std::env::var_os(CHILD).is_some(), "run through its parent test");
    let path = std::env::var("ARAGORA_CRASH_DB").expect("db path");
    let mode = std::env::var("ARAGORA_CRASH_MODE").expect("mode");
    let round = std::env::var("ARAGORA_CRASH_ROUND").expect("round");
    let ring = key(&std::env::var("ARAGORA_CRASH_KEY").expect("key"));
    let backend = SqliteBackend::builder(&path).sealer(ring).synchronous(synchronous(&mode)).connect().await.expect("open");
    let store = Arc::new(SQLiteIntegrationStore::on(&backend));
    let tenant = TenantId::new("crash").expect("tenant");
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, tenant, round) = (Arc::clone(&store), tenant.clone(), round.clone());
            tokio::spawn(async move {
                for n in 1u64.. {
                    // Every fourth write goes back to an earlier record, so updates are killed too.
                    let id = if n % 4 == 0 { format!("r{round}-t{task}-{}", n / 2) } else { format!("r{round}-t{task}-{n}") };
                    let mut config =
                        IntegrationConfig::new(tenant.clone(), &id, "slack").with_credential("token", format!("token-{id}-{n}"));
                    config.messages_sent = n;
                    store.set(&config).await.expect("set");
                    println!("ACK {id} {n}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
}
