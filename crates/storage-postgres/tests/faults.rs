//! PostgreSQL restarted and killed under a stream of writes, on a dedicated throwaway server.

use std::sync::Arc;
use std::time::Duration;
use storage_core::Store;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_postgres::PostgresBackend;
use storage_postgres::PostgresIntegrationStore;
use storage_router::PoolSettings;
use storage_testkit::faults::writes_survive_a_server_fault;
use storage_testkit::server::{PgServer, create_database};

async fn backend(server: &PgServer) -> PostgresBackend {
    let url = create_database(&server.url("postgres")).await;
    let pool = PoolSettings { acquire_timeout: Duration::from_secs(2), max_connections: 4, ..PoolSettings::default() };
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    PostgresBackend::builder(url).pool(pool).sealer(Arc::new(ring)).connect().await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_writes_survive_a_postgres_restart() {
    let server = Arc::new(PgServer::start());
    let store = Arc::new(PostgresIntegrationStore::on(&backend(&server).await));
    let target = Arc::clone(&server);
    let report = writes_survive_a_server_fault(store, move || target.restart()).await;
    println!("postgres restart: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_writes_survive_a_postgres_kill_9() {
    let server = Arc::new(PgServer::start());
    let store = Arc::new(PostgresIntegrationStore::on(&backend(&server).await));
    let target = Arc::clone(&server);
    let report = writes_survive_a_server_fault(store, move || {
        target.kill9();
        std::thread::sleep(Duration::from_millis(500));
        target.start_again();
    })
    .await;
    println!("postgres kill -9: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_lookups_fail_closed_while_postgres_is_down() {
    let server = Arc::new(PgServer::start());
    let blacklist = Arc::new(<storage_core::TokenBlacklist>::on(&backend(&server).await));
    let (down, up) = (Arc::clone(&server), Arc::clone(&server));
    storage_testkit::faults::revocations_fail_closed_across_a_crash(blacklist, move || down.kill9(), move || up.start_again()).await;
}
