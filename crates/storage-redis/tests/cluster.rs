//! The conformance suite on a real Redis Cluster (three masters, three replicas, started once
//! for this test binary), a fresh key namespace — so a fresh slot, on any master — per case.

use std::sync::{Arc, OnceLock};
use storage_core::{ManualClock, RedisMode};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::{RedisBackend, RedisHAConfig};
use storage_testkit::Subject;
use storage_testkit::server::{RedisCluster, fresh_namespace};

fn cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

async fn backend(clock: &ManualClock, namespace: String) -> RedisBackend {
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    RedisBackend::builder_for(RedisHAConfig::cluster(cluster().addresses()))
        .namespace(namespace)
        .clock(clock.shared())
        .sealer(Arc::new(ring))
        .connect()
        .await
        .expect("connect to the cluster")
}

async fn setup() -> Subject {
    let clock = ManualClock::at_system_time();
    let backend = backend(&clock, fresh_namespace()).await;
    Subject { engine: Arc::new(backend), clock, guard: None }
}

storage_testkit::conformance_tests!(crate::setup);

#[tokio::test]
async fn health_reports_the_cluster_state() {
    let backend = backend(&ManualClock::at_system_time(), fresh_namespace()).await;
    let health = backend.health().await.expect("health");
    assert_eq!((health.mode, health.role.as_str()), (RedisMode::Cluster, "cluster (ok)"));
}

#[tokio::test]
async fn every_key_of_a_namespace_lives_in_the_namespace_slot() {
    use storage_core::{IntegrationConfig, IntegrationStore, Store};
    let namespace = fresh_namespace();
    let backend = backend(&ManualClock::at_system_time(), namespace.clone()).await;
    let store = storage_redis::RedisIntegrationStore::on(&backend);
    for (tenant, key) in [("acme", "a"), ("globex", "b"), ("initech", "c")] {
        store.set(&IntegrationConfig::new(storage_testkit::tenant(tenant), key, "slack")).await.expect("save");
    }
    let cluster = cluster();
    let slot = cluster.slot(&format!("{{{namespace}}}"));
    let owner = cluster.master_of(slot);
    let pattern = format!("{{{namespace}}}:*");
    let found: Vec<usize> =
        cluster.nodes.iter().map(|node| node.cli(&["--scan", "--pattern", &pattern]).map_or(0, |keys| keys.lines().count())).collect();
    let in_slot: usize =
        cluster.nodes[owner].cli(&["cluster", "countkeysinslot", &slot.to_string()]).and_then(|n| n.trim().parse().ok()).expect("count");
    assert!(found[owner] > 3, "records and their indexes on the slot's master: {found:?}");
    assert!(in_slot >= found[owner], "the namespace's keys are in its slot ({in_slot} keys there): {found:?}");
    let replica_or_other = found.iter().enumerate().filter(|(i, n)| *i != owner && **n > 0).count();
    assert!(replica_or_other <= 1, "only the slot's master and its replica hold the namespace: {found:?}");
}
