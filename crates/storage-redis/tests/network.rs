//! Redis behind the fault proxy (gate 12): every store family under latency, a bandwidth limit,
//! connection resets, a blackhole and a network down, in windows, with nothing acknowledged lost,
//! nothing applied twice, unknown outcomes resolved by the stores' idempotency, and the
//! connection serving again within 5 s of each window. `ARAGORA_FAULTS=full` runs 10,000
//! operations per family and fault.

use std::sync::Arc;
use std::time::Duration;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::RedisBackend;
use storage_testkit::proxy::FaultProxy;
use storage_testkit::server::RedisServer;

async fn backend(url: String, ring: Arc<KeyRing>) -> RedisBackend {
    RedisBackend::builder(url)
        .response_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .sealer(ring)
        .connect()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_family_survives_every_network_fault() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", server.port()).parse().expect("address")).await;
    let proxied = server.url().replacen(&format!(":{}", server.port()), &format!(":{}", proxy.port()), 1);
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let through = backend(proxied, Arc::clone(&ring)).await;
    let direct = backend(server.url(), ring).await;
    storage_testkit::network::assert_every_family_survives("redis", &proxy, &through, &direct).await;
}
