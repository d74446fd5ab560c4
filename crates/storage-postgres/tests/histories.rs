//! Concurrent histories of webhook claims, job leases, token consumes and compare-and-set
//! updates on PostgreSQL behind the fault proxy, checked for linearizability (gate 16): first with
//! its connections reset (for 50–200 ms) a few times, then across a server restart and a kill -9.
//! An operation cut off by a fault is indeterminate and may or may not have taken effect;
//! everything else must be explained by one order (200 histories; 2,000 with
//! `ARAGORA_FAULTS=full`). One dedicated server for the binary, since it is restarted.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use storage_postgres::PostgresBackend;
use storage_router::PoolSettings;
use storage_testkit::history::assert_linearizable_across_faults;
use storage_testkit::proxy::FaultProxy;
use storage_testkit::server::{PgServer, create_database};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_are_linearizable_across_resets_a_restart_and_a_kill_9() {
    let server = Arc::new(PgServer::start());
    let url = create_database(&server.url("postgres")).await;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).expect("url");
    let proxy = Arc::new(FaultProxy::start(format!("127.0.0.1:{}", options.get_port()).parse().expect("address")).await);
    let proxied = url.replacen(&format!(":{}/", options.get_port()), &format!(":{}/", proxy.port()), 1);
    let ring = Arc::new(storage_crypto::KeyRing::single(storage_crypto::EncryptionKey::generate().expect("key")).expect("ring"));
    let pool = PoolSettings { acquire_timeout: Duration::from_secs(2), max_connections: 4, ..PoolSettings::default() };
    let backend = PostgresBackend::builder(proxied).pool(pool).sealer(ring).connect().await.expect("connect through the proxy");
    let (restarted, crashed) = (Arc::clone(&server), Arc::clone(&server));
    let crash = move || {
        crashed.kill9();
        std::thread::sleep(Duration::from_millis(300));
        crashed.start_again();
    };
    assert_linearizable_across_faults("postgres", Arc::new(backend), proxy, move || restarted.restart(), crash, 0x7067).await;
}
