//! Concurrent histories of webhook claims, job leases, token consumes and compare-and-set
//! updates on SQLite (a fresh database file), checked for linearizability (100 histories;
//! 1,000 with `ARAGORA_FAULTS=full`).

use std::sync::Arc;
use storage_core::ManualClock;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_sqlite::SqliteBackend;
use storage_testkit::history::{check_histories, histories_to_run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_are_linearizable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::at_system_time();
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    let backend = SqliteBackend::builder(dir.path().join("histories.db"))
        .clock(clock.shared())
        .sealer(Arc::new(ring))
        .connect()
        .await
        .expect("open sqlite");
    let report = check_histories(Arc::new(backend), histories_to_run(), 0x73716c, |_| {}).await;
    println!("sqlite: {report}");
    assert_eq!(report.violations, 0, "{}", report.first_violation.unwrap_or_default());
    assert_eq!(report.histories, histories_to_run());
}
