//! Power loss (gate 7): the database lives on a filesystem that forgets whatever was not synced
//! (`storage_testkit::power_loss`). While writers commit, the test takes crash points at random
//! instants: the files a power loss would leave, opened as after a reboot. With
//! `synchronous=FULL` no acknowledged commit may be missing; with `NORMAL` commits may be lost,
//! but only the latest ones (no record survives while one acknowledged before it was written is
//! missing, across both writers), and the database is never corrupt.
//!
//! `ARAGORA_FAULTS=full` takes 1,000 crash points per setting; the default run takes 120.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storage_core::stores::integration::IntegrationConfig;
use storage_core::{Engine, SqliteSynchronous};
use storage_sqlite::SqliteBackend;
use storage_testkit::power_loss::{Image, PowerLossFs, Survivors, restore};

const WRITERS: u64 = 2;
/// Crash points per database: a fresh file every so often keeps images small.
const POINTS_PER_DATABASE: usize = 40;

fn crash_points() -> usize {
    if std::env::var("ARAGORA_FAULTS").is_ok_and(|v| v == "full") { 1_000 } else { 120 }
}

#[derive(Debug, Default)]
struct Outcome {
    points: usize,
    /// Commits acknowledged before the crash point and missing after it, summed over the points.
    lost_acknowledged: usize,
    /// Crash points where some record survived while one acknowledged before it was even
    /// written did not: a hole in the commit order, not a lost suffix.
    out_of_order: usize,
    /// Of those, lost from images that held the schema (with `normal`, even it can be lost).
    lost_with_schema: usize,
    commits: u64,
    unsynced_at_crash: usize,
}

/// A record's key: writer and sequence number.
type Key = (u64, u64);

/// Commit order as the writers saw it: for each record, how many commits had been acknowledged
/// when its insert started, and its own place among the acknowledgements.
#[derive(Default)]
struct Order {
    started_after: BTreeMap<Key, u64>,
    acknowledged_as: BTreeMap<Key, u64>,
    acknowledgements: u64,
}

/// The records a recovered image holds, after an integrity check; `None` without the schema.
fn recover(image: &Image) -> Option<BTreeSet<Key>> {
    let dir = tempfile::tempdir().expect("tempdir");
    restore(image, dir.path()).expect("restore the image");
    let conn = rusqlite::Connection::open(dir.path().join("aragora.db")).expect("open after the crash");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).expect("integrity check");
    assert_eq!(check, "ok", "the database is corrupt after a power loss");
    let has_table: bool =
        conn.query_row("SELECT count(*) > 0 FROM sqlite_master WHERE name = 'integrations'", [], |row| row.get(0)).expect("schema");
    if !has_table {
        return None;
    }
    let mut select = conn.prepare("SELECT id FROM integrations").expect("prepare");
    let keys = select
        .query_map([], |row| row.get::<_, String>(0))
        .expect("query")
        .map(|id| {
            let id = id.expect("row");
            let (writer, seq) = id.trim_start_matches('w').split_once('-').expect("key");
            (writer.parse().expect("writer"), seq.parse().expect("seq"))
        })
        .collect();
    Some(keys)
}

async fn run(synchronous: SqliteSynchronous, survivors: Survivors, points: usize, seed: u64) -> Outcome {
    let mut outcome = Outcome::default();
    let mut rng = fastrand::Rng::with_seed(seed);
    while outcome.points < points {
        let fs = PowerLossFs::mount().expect("the power-loss filesystem must mount here");
        let ring = Arc::new(storage_crypto::KeyRing::single(storage_crypto::EncryptionKey::generate().expect("key")).expect("ring"));
        let backend = SqliteBackend::builder(fs.path().join("aragora.db"))
            .synchronous(synchronous)
            .sealer(ring)
            .connect()
            .await
            .expect("open on the power-loss filesystem");
        let stop = Arc::new(AtomicBool::new(false));
        let order = Arc::new(Mutex::new(Order::default()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (backend, stop, order) = (backend.clone(), Arc::clone(&stop), Arc::clone(&order));
                tokio::spawn(async move {
                    let engine: &dyn Engine = &backend;
                    let table = engine.table::<IntegrationConfig>();
                    let tenant = storage_testkit::tenant("power");
                    let mut seq = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let padding = "x".repeat(100 + (seq as usize * 37) % 900);
                        let doc = IntegrationConfig::new(tenant.clone(), format!("w{w}-{seq}"), "slack")
                            .with_setting("padding", padding)
                            .with_credential("token", format!("secret-{seq}"));
                        {
                            let mut order = order.lock().expect("order");
                            let so_far = order.acknowledgements;
                            order.started_after.insert((w, seq), so_far);
                        }
                        table.insert(&doc).await.expect("writes succeed on the running system");
                        let mut order = order.lock().expect("order");
                        let place = order.acknowledgements;
                        order.acknowledged_as.insert((w, seq), place);
                        order.acknowledgements += 1;
                        seq += 1;
                    }
                    seq
                })
            })
            .collect();
        for _ in 0..POINTS_PER_DATABASE.min(points - outcome.points) {
            tokio::time::sleep(Duration::from_micros(rng.u64(0..20_000))).await;
            // Taken before the image: every commit counted here returned before the crash.
            let acknowledged: BTreeSet<Key> = order.lock().expect("order").acknowledged_as.keys().copied().collect();
            outcome.unsynced_at_crash += fs.unsynced_bytes();
            let image = fs.power_loss(survivors, rng.u64(..));
            let found = tokio::task::spawn_blocking(move || recover(&image)).await.expect("recover");
            let schema = found.is_some();
            let found = found.unwrap_or_default();
            let lost = acknowledged.difference(&found).count();
            outcome.lost_acknowledged += lost;
            outcome.lost_with_schema += if schema { lost } else { 0 };
            // Every record acknowledged before a surviving record's insert started must survive.
            let order = order.lock().expect("order");
            let needed = found.iter().filter_map(|key| order.started_after.get(key)).max().copied().unwrap_or(0);
            if order.acknowledged_as.iter().any(|(key, place)| *place < needed && !found.contains(key)) {
                outcome.out_of_order += 1;
            }
            outcome.points += 1;
        }
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            outcome.commits += writer.await.expect("writer");
        }
        backend.close().await;
        drop(backend);
        // The checkpointer's thread ends on its own; give it a moment before unmounting.
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(fs);
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_full_loses_no_acknowledged_commit() {
    let points = crash_points();
    for (survivors, seed) in [(Survivors::Nothing, 1), (Survivors::InOrderPrefix, 2)] {
        let outcome = run(SqliteSynchronous::Full, survivors, points / 2, seed).await;
        println!("FULL, {survivors:?}: {outcome:?}");
        assert_eq!(outcome.points, points / 2);
        assert_eq!(outcome.out_of_order, 0, "{outcome:?}");
        assert_eq!(outcome.lost_acknowledged, 0, "synchronous=FULL lost acknowledged commits: {outcome:?}");
        assert!(outcome.commits > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_normal_loses_only_the_latest_commits() {
    let points = crash_points();
    let mut lost = 0;
    for (survivors, seed) in [(Survivors::Nothing, 3), (Survivors::InOrderPrefix, 4)] {
        let outcome = run(SqliteSynchronous::Normal, survivors, points / 2, seed).await;
        println!("NORMAL, {survivors:?}: {outcome:?}");
        assert_eq!(outcome.points, points / 2);
        assert_eq!(outcome.out_of_order, 0, "NORMAL may lose the latest commits, never earlier ones: {outcome:?}");
        lost += outcome.lost_with_schema;
    }
    // The test would prove nothing if NORMAL never lost anything: its commits are not synced.
    assert!(lost > 0, "synchronous=NORMAL never lost a commit: the crash points missed the unsynced window");
}
