//! Redis restarted and killed under a stream of writes, on a dedicated throwaway server that
//! fsyncs its append-only file on every write.

use std::sync::Arc;
use std::time::Duration;
use storage_core::Store;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::RedisBackend;
use storage_redis::RedisIntegrationStore;
use storage_testkit::faults::writes_survive_a_server_fault;
use storage_testkit::server::RedisServer;

async fn backend(server: &RedisServer) -> RedisBackend {
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    RedisBackend::builder(server.url())
        .response_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1))
        .sealer(Arc::new(ring))
        .connect()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_writes_survive_a_redis_restart() {
    let server = Arc::new(RedisServer::start_durable());
    let store = Arc::new(RedisIntegrationStore::on(&backend(&server).await));
    let target = Arc::clone(&server);
    let report = writes_survive_a_server_fault(store, move || target.restart()).await;
    println!("redis restart: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_writes_survive_a_redis_kill_9() {
    let server = Arc::new(RedisServer::start_durable());
    let store = Arc::new(RedisIntegrationStore::on(&backend(&server).await));
    let target = Arc::clone(&server);
    let report = writes_survive_a_server_fault(store, move || {
        target.kill9();
        std::thread::sleep(Duration::from_millis(500));
        target.start_again();
    })
    .await;
    println!("redis kill -9: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_lookups_fail_closed_while_redis_is_down() {
    let server = Arc::new(RedisServer::start_durable());
    let blacklist = Arc::new(<storage_core::TokenBlacklist>::on(&backend(&server).await));
    let (down, up) = (Arc::clone(&server), Arc::clone(&server));
    storage_testkit::faults::revocations_fail_closed_across_a_crash(blacklist, move || down.kill9(), move || up.start_again()).await;
}
