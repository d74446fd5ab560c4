//! Concurrent histories of webhook claims, job leases, token consumes and compare-and-set
//! updates on a standalone Redis behind the fault proxy, checked for linearizability (gate 16):
//! first with its connections reset (for 50–200 ms) a few times, then across a restart and a
//! kill -9 of a server that fsyncs its append-only file on every write. An operation cut off by a
//! fault is indeterminate and may or may not have taken effect; everything else must be explained
//! by one order (200 histories; 2,000 with `ARAGORA_FAULTS=full`).

use std::sync::Arc;
use std::time::Duration;
use storage_core::Engine;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::RedisBackend;
use storage_testkit::history::{HistoryReport, check_histories_across, check_histories_across_resets, histories_to_run};
use storage_testkit::proxy::FaultProxy;
use storage_testkit::server::RedisServer;

fn assert_linearizable(what: &str, report: &HistoryReport, histories: usize) {
    println!("redis, {what}: {report}");
    assert_eq!(report.violations, 0, "{what}: {}", report.first_violation.as_deref().unwrap_or_default());
    assert!(report.histories >= histories, "{what}: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_are_linearizable_across_resets_a_restart_and_a_kill_9() {
    let server = Arc::new(RedisServer::start_durable());
    let proxy = Arc::new(FaultProxy::start(format!("127.0.0.1:{}", server.port()).parse().expect("address")).await);
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    let backend = RedisBackend::builder(format!("redis://127.0.0.1:{}/", proxy.port()))
        .response_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1))
        .sealer(Arc::new(ring))
        .connect()
        .await
        .expect("connect through the proxy");
    let engine: Arc<dyn Engine> = Arc::new(backend);
    let histories = histories_to_run();

    let (report, resets) = check_histories_across_resets(Arc::clone(&engine), Arc::clone(&proxy), histories, 0x7265).await;
    assert_linearizable(&format!("{resets} connection resets"), &report, histories);
    assert!(report.indeterminate > 0, "the resets must have cut some operations off");

    let target = Arc::clone(&server);
    let restart = check_histories_across(Arc::clone(&engine), histories / 2, 0x7266, move || target.restart()).await;
    assert_linearizable("a restart", &restart, histories / 2);
    let target = Arc::clone(&server);
    let kill = check_histories_across(engine, histories / 2, 0x7267, move || {
        target.kill9();
        std::thread::sleep(Duration::from_millis(300));
        target.start_again();
    })
    .await;
    assert_linearizable("a kill -9", &kill, histories / 2);
    assert!(restart.indeterminate + kill.indeterminate > 0, "the crashes must have cut some operations off");
}
