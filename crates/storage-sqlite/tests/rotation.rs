//! Key rotation over 100,000 sealed records on SQLite while 4 tasks keep updating them, killed
//! twice and resumed.

use std::sync::Arc;
use storage_sqlite::SqliteBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_of_100k_records_survives_two_kills_beside_writers() {
    let dir = tempfile::tempdir().expect("dir");
    let ring = storage_crypto::KeyRing::single(storage_crypto::EncryptionKey::generate().expect("key")).expect("ring");
    let backend = SqliteBackend::builder(dir.path().join("rotation.db")).sealer(Arc::new(ring)).connect().await.expect("open");
    let report = storage_testkit::rotation::rotation_survives_kills_beside_writers(Arc::new(backend), 100_000).await;
    println!("sqlite rotation: {report:?}");
}
