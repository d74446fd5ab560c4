//! Concurrent histories of webhook claims, job leases, token consumes and compare-and-set
//! updates on PostgreSQL behind the fault proxy, its connections reset (for 50–200 ms) a few
//! times during the run, checked for linearizability: an operation cut off by a reset is
//! indeterminate and may or may not have taken effect, and everything else must be explained by
//! one order (100 histories; 1,000 with `ARAGORA_FAULTS=full`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use storage_postgres::PostgresBackend;
use storage_router::PoolSettings;
use storage_testkit::history::{check_histories_across_resets, histories_to_run};
use storage_testkit::proxy::FaultProxy;
use storage_testkit::server::fresh_postgres_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_are_linearizable_across_connection_resets() {
    let url = fresh_postgres_database().await;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).expect("url");
    let proxy = Arc::new(FaultProxy::start(format!("127.0.0.1:{}", options.get_port()).parse().expect("address")).await);
    let proxied = url.replacen(&format!(":{}/", options.get_port()), &format!(":{}/", proxy.port()), 1);
    let ring = Arc::new(storage_crypto::KeyRing::single(storage_crypto::EncryptionKey::generate().expect("key")).expect("ring"));
    let pool = PoolSettings { acquire_timeout: Duration::from_secs(2), max_connections: 4, ..PoolSettings::default() };
    let backend = PostgresBackend::builder(proxied).pool(pool).sealer(ring).connect().await.expect("connect through the proxy");

    let histories = histories_to_run();
    let (report, faults) = check_histories_across_resets(Arc::new(backend), proxy, histories, 0x7067).await;
    println!("postgres ({faults} resets): {report}");
    assert_eq!(report.violations, 0, "{}", report.first_violation.unwrap_or_default());
    assert_eq!(report.histories, histories);
    assert!(report.indeterminate > 0, "the resets must have cut some operations off");
}
