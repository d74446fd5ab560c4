//! Concurrent histories of webhook claims, job leases, token consumes and compare-and-set
//! updates on a standalone Redis behind the fault proxy, checked for linearizability (gate 16):
//! first with its connections reset (for 50–200 ms) a few times, then across a restart and a
//! kill -9 of a server that fsyncs its append-only file on every write. An operation cut off by a
//! fault is indeterminate and may or may not have taken effect; everything else must be explained
//! by one order (200 histories; 2,000 with `ARAGORA_FAULTS=full`).

use std::sync::Arc;
use std::time::Duration;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::RedisBackend;
use storage_testkit::history::assert_linearizable_across_faults;
use storage_testkit::proxy::FaultProxy;
use storage_testkit::server::RedisServer;

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
    let (restarted, crashed) = (Arc::clone(&server), Arc::clone(&server));
    let crash = move || {
        crashed.kill9();
        std::thread::sleep(Duration::from_millis(300));
        crashed.start_again();
    };
    assert_linearizable_across_faults("redis", Arc::new(backend), proxy, move || restarted.restart(), crash, 0x7265).await;
}
