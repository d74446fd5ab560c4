//! The conformance suite on the master a real Sentinel group names (one master, one replica,
//! three Sentinels, started once for this test binary), a fresh key namespace per case.

use std::sync::{Arc, OnceLock};
use storage_core::{ManualClock, RedisMode};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::{RedisBackend, RedisHAConfig};
use storage_testkit::Subject;
use storage_testkit::server::{RedisSentinelGroup, SENTINEL_MASTER, fresh_namespace};

fn group() -> &'static RedisSentinelGroup {
    static GROUP: OnceLock<RedisSentinelGroup> = OnceLock::new();
    GROUP.get_or_init(RedisSentinelGroup::start)
}

async fn backend(clock: &ManualClock) -> RedisBackend {
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    RedisBackend::builder_for(RedisHAConfig::sentinel(group().sentinel_hosts(), SENTINEL_MASTER))
        .namespace(fresh_namespace())
        .clock(clock.shared())
        .sealer(Arc::new(ring))
        .connect()
        .await
        .expect("connect through the sentinels")
}

async fn setup() -> Subject {
    let clock = ManualClock::at_system_time();
    let backend = backend(&clock).await;
    Subject { engine: Arc::new(backend), clock, guard: None }
}

storage_testkit::conformance_tests!(crate::setup);

#[tokio::test]
async fn health_reports_the_sentinel_mode_and_a_master() {
    let backend = backend(&ManualClock::at_system_time()).await;
    let health = backend.health().await.expect("health");
    assert_eq!((health.mode, health.role.as_str()), (RedisMode::Sentinel, "master"));
    assert!(health.latency < std::time::Duration::from_secs(1), "{health:?}");
}

#[tokio::test]
async fn a_master_name_the_sentinels_do_not_know_is_a_clear_error() {
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    let error = RedisBackend::builder_for(RedisHAConfig::sentinel(group().sentinel_hosts(), "no-such-master"))
        .sealer(Arc::new(ring))
        .connect()
        .await
        .expect_err("an unknown master");
    assert!(matches!(error, storage_core::StorageError::Config { .. }) && error.to_string().contains("`no-such-master`"), "{error}");
}
