//! Key rotation over 100,000 sealed records on PostgreSQL while 4 tasks keep updating them,
//! killed twice and resumed.

use std::sync::Arc;
use storage_postgres::PostgresBackend;
use storage_testkit::server::fresh_postgres_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_of_100k_records_survives_two_kills_beside_writers() {
    let url = fresh_postgres_database().await;
    let ring = storage_crypto::KeyRing::single(storage_crypto::EncryptionKey::generate().expect("key")).expect("ring");
    let backend = PostgresBackend::builder(url).sealer(Arc::new(ring)).connect().await.expect("connect");
    let report = storage_testkit::rotation::rotation_survives_kills_beside_writers(Arc::new(backend), 100_000).await;
    println!("postgresql rotation: {report:?}");
}
