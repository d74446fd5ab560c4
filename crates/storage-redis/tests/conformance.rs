//! The conformance suite on Redis: a throwaway server for this test binary, a fresh key
//! namespace per case.

use std::sync::Arc;
use storage_core::ManualClock;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::RedisBackend;
use storage_testkit::Subject;
use storage_testkit::server::{fresh_namespace, shared_redis_url};

async fn setup() -> Subject {
    let clock = ManualClock::at_system_time();
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    let backend = RedisBackend::builder(shared_redis_url())
        .namespace(fresh_namespace())
        .clock(clock.shared())
        .sealer(Arc::new(ring))
        .connect()
        .await
        .expect("connect redis");
    Subject { engine: Arc::new(backend), clock, guard: None }
}

storage_testkit::conformance_tests!(crate::setup);
