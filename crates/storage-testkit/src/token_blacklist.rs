//! Conformance cases of `TokenBlacklistStore` (that lookups fail closed is a fault test of each
//! server backend: `faults::revocations_fail_closed_across_a_crash`).

use crate::{Subject, assert_invalid};
use chrono::TimeDelta;
use storage_core::{Clock, TokenBlacklist, TokenBlacklistStore};

pub async fn revocations_last_until_the_token_expires(s: &Subject) {
    let store = s.store::<TokenBlacklist>();
    let now = s.clock.now();
    store.revoke("jwt-a", now + TimeDelta::minutes(10)).await.expect("revoke");
    store.revoke("jti-b", now + TimeDelta::hours(1)).await.expect("revoke");
    assert!(store.is_revoked("jwt-a").await.expect("is_revoked"));
    assert!(!store.is_revoked("jwt-c").await.expect("is_revoked"));
    assert_eq!(store.size().await.expect("size"), 2);
    // A second revocation keeps the later expiry, never the earlier.
    store.revoke("jwt-a", now + TimeDelta::minutes(30)).await.expect("extend");
    store.revoke("jwt-a", now + TimeDelta::minutes(5)).await.expect("no shortening");
    s.clock.advance(TimeDelta::minutes(20));
    assert!(store.is_revoked("jwt-a").await.expect("is_revoked"), "kept until the later expiry");
    assert_eq!(store.cleanup_expired().await.expect("cleanup"), 0, "nothing live is cleaned");
    s.clock.advance(TimeDelta::minutes(10));
    assert!(!store.is_revoked("jwt-a").await.expect("is_revoked"));
    assert_eq!(store.size().await.expect("size"), 1);
    assert_eq!(store.cleanup_expired().await.expect("cleanup"), 1, "only the expired one");
    assert!(store.is_revoked("jti-b").await.expect("is_revoked"));
}

pub async fn a_large_blacklist_forgets_no_live_revocation(s: &Subject) {
    let store = s.store::<TokenBlacklist>();
    let until = s.clock.now() + TimeDelta::hours(1);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in (w..3_000).step_by(8) {
                    store.revoke(&format!("token-{n}"), until).await.expect("revoke");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(store.size().await.expect("size"), 3_000);
    for n in (0..3_000).step_by(97) {
        assert!(store.is_revoked(&format!("token-{n}")).await.expect("is_revoked"), "token-{n}");
    }
}

pub async fn bad_input_is_refused(s: &Subject) {
    let store = s.store::<TokenBlacklist>();
    assert_invalid(store.revoke("", s.clock.now() + TimeDelta::hours(1)).await, "token");
    assert_invalid(store.revoke(&"x".repeat(16 * 1024 + 1), s.clock.now() + TimeDelta::hours(1)).await, "token");
    assert_invalid(store.revoke("jwt", s.clock.now()).await, "expires_at");
    assert_invalid(store.is_revoked("").await, "token");
    assert_eq!(store.size().await.expect("size"), 0);
}
