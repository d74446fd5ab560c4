//! Concurrent histories of webhook claims, job leases, token consumes and compare-and-set
//! updates on a standalone Redis behind the fault proxy, its connections reset (for 50–200 ms) a
//! few times during the run, checked for linearizability: an operation cut off by a reset is
//! indeterminate and may or may not have taken effect, and everything else must be explained by
//! one order (100 histories; 1,000 with `ARAGORA_FAULTS=full`).

use std::sync::Arc;
use std::time::Duration;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::RedisBackend;
use storage_testkit::history::{check_histories_across_resets, histories_to_run};
use storage_testkit::proxy::FaultProxy;
use storage_testkit::server::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_are_linearizable_across_connection_resets() {
    let server = RedisServer::start();
    let proxy = Arc::new(FaultProxy::start(format!("127.0.0.1:{}", server.port()).parse().expect("address")).await);
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    let backend = RedisBackend::builder(format!("redis://127.0.0.1:{}/", proxy.port()))
        .response_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1))
        .sealer(Arc::new(ring))
        .connect()
        .await
        .expect("connect through the proxy");

    let histories = histories_to_run();
    let (report, faults) = check_histories_across_resets(Arc::new(backend), proxy, histories, 0x7265).await;
    println!("redis ({faults} resets): {report}");
    assert_eq!(report.violations, 0, "{}", report.first_violation.unwrap_or_default());
    assert_eq!(report.histories, histories);
    assert!(report.indeterminate > 0, "the resets must have cut some operations off");
}
