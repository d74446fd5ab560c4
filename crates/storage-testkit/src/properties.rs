//! Property tests over the public API of every store (proptest): arbitrary text (any Unicode,
//! control characters, NUL, long), arbitrary nesting, arbitrary durations, instants and cursors.
//! Every call either succeeds and reads back exactly, or fails at the boundary with
//! `InvalidInput` and writes nothing; never a panic, never another error, never a record that
//! cannot be read.

use crate::Subject;
use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use storage_core::{
    ClaimOutcome, Cursor, Engine, GmailTokenStore, GmailTokens, GmailUserState, IntegrationConfig, IntegrationStore, Integrations,
    PageRequest, Result, Secret, StorageError, Store, TenantId, WebhookStore, Webhooks,
};

/// Cases per property: enough to meet every class of input, few enough for server backends.
const CASES: u32 = 48;

/// Runs `check` on `CASES` generated values, each against a tenant of its own, on a blocking
/// thread (proptest is synchronous) that drives the async calls on the test's runtime. `check`
/// says whether the write was accepted; both outcomes must occur, or the inputs missed a class.
async fn check<S, M, F, Fut>(s: &Subject, strategy: M, check: F)
where
    M: FnOnce() -> S + Send + 'static,
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(Arc<dyn Engine>, TenantId, S::Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool>,
{
    let engine = Arc::clone(&s.engine);
    let handle = tokio::runtime::Handle::current();
    let case = Arc::new(AtomicU64::new(0));
    let accepted_cases = Arc::new(AtomicU64::new(0));
    let (cases, accepted_count) = (Arc::clone(&case), Arc::clone(&accepted_cases));
    tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() });
        let outcome = runner.run(&strategy(), |value| {
            let tenant = TenantId::new(format!("prop-{}", case.fetch_add(1, Ordering::Relaxed))).expect("tenant");
            if handle.block_on(check(Arc::clone(&engine), tenant, value)) {
                accepted_count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        if let Err(failure) = outcome {
            panic!("{failure}");
        }
    })
    .await
    .expect("property runner");
    let (total, accepted) = (cases.load(Ordering::Relaxed), accepted_cases.load(Ordering::Relaxed));
    assert!(accepted > 0 && accepted < total, "{accepted} of {total} cases accepted: the inputs must cover both outcomes");
}

/// Succeeded, or refused at the boundary; anything else fails the property.
fn accepted<T: std::fmt::Debug>(what: &str, result: Result<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(StorageError::InvalidInput { .. }) => None,
        Err(other) => panic!("{what}: expected success or InvalidInput, got {other:?}"),
    }
}

/// Text of any kind: arbitrary Unicode with control characters and NUL, and long text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![4 => any::<String>(), 1 => "[a-z]{250,300}", 1 => "[\\x00-\\x1f]{0,4}[a-z]{1,8}", 2 => "[a-z0-9_-]{1,12}"]
}

/// Usually a valid name or id, sometimes any text: a record passes only when all its fields do.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![6 => "[a-z0-9_-]{1,12}", 1 => text()]
}

/// Usually a small count, sometimes any `u64` (most of which no backend holds as an index).
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 0u64..1_000_000, 1 => any::<u64>()]
}

/// JSON of any shape, sometimes nested deeper than any decoder reads.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(90, 160, 2, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(text(), inner, 0..3).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Any instant chrono can hold (far outside what backends store, at nanosecond precision).
fn instant() -> impl Strategy<Value = Option<DateTime<Utc>>> {
    prop_oneof![
        1 => Just(None),
        1 => any::<i64>().prop_map(DateTime::<Utc>::from_timestamp_micros),
        4 => (0i64..4_102_444_800, 0u32..1_000_000_000).prop_map(|(secs, nanos)| DateTime::<Utc>::from_timestamp(secs, nanos)),
    ]
}

/// Any duration, from nanoseconds to the largest there is, either sign.
fn duration() -> impl Strategy<Value = TimeDelta> {
    prop_oneof![
        any::<i64>().prop_map(TimeDelta::nanoseconds),
        any::<i64>().prop_map(|ms| TimeDelta::try_milliseconds(ms).unwrap_or(TimeDelta::MAX)),
        Just(TimeDelta::MAX),
        Just(TimeDelta::MIN),
        (1i64..100_000).prop_map(TimeDelta::seconds),
    ]
}

pub async fn integrations_read_back_whatever_they_accept(s: &Subject) {
    let strategy = || {
        let settings = proptest::collection::btree_map(field(), json(), 0..3);
        (field(), field(), field(), settings, proptest::collection::btree_map(field(), text(), 0..3), count(), text())
    };
    check(s, strategy, |engine, tenant, (key, user, kind, settings, credentials, sent, cursor)| async move {
        let store = Integrations::<dyn Engine>::on(engine.as_ref());
        let mut config = IntegrationConfig::new(tenant.clone(), key.clone(), kind).with_user(user.clone());
        config.settings = settings.into_iter().collect();
        config.credentials = credentials.into_iter().map(|(k, v)| (k, Secret::new(v))).collect::<BTreeMap<_, _>>();
        config.messages_sent = sent;
        let page = PageRequest::first(5).after(Cursor::from_string(cursor));
        accepted("list with any cursor", store.list(&tenant, &page).await);
        match accepted("set", store.set(&config).await) {
            Some(stored) => {
                let read = store.get(&tenant, &key).await.expect("a stored record reads back");
                assert_eq!(read.as_ref(), Some(&stored), "read back exactly");
                let listed = store.list_by_user(&tenant, &user, &PageRequest::first(10)).await.expect("list");
                assert_eq!(listed.items, vec![stored], "and lists");
                true
            }
            None => {
                if let Some(found) = accepted("get", store.get(&tenant, &key).await) {
                    assert!(found.is_none(), "a refused write wrote nothing");
                }
                false
            }
        }
    })
    .await;
}

pub async fn gmail_states_read_back_whatever_they_accept(s: &Subject) {
    let email = || prop_oneof![4 => "[a-z]{1,8}@[a-z]{1,8}\\.com", 1 => text()];
    let strategy = move || (field(), email(), instant(), text(), text(), text(), any::<u64>(), duration());
    check(s, strategy, |engine, tenant, (user, email, expiry, access, refresh, history, count, within)| async move {
        let store = GmailTokens::<dyn Engine>::on(engine.as_ref());
        let mut state = GmailUserState::new(tenant.clone(), user.clone(), email);
        state.access_token = Secret::new(access);
        state.refresh_token = Secret::new(refresh);
        state.token_expiry = expiry;
        state.history_id = history;
        state.indexed_count = count;
        accepted("list_expiring with any window", store.list_expiring(&tenant, within, &PageRequest::first(5)).await);
        match accepted("set", store.set(&state).await) {
            Some(stored) => {
                let read = store.get(&tenant, &user).await.expect("a stored record reads back");
                assert_eq!(read, Some(stored), "read back exactly");
                true
            }
            None => {
                if let Some(found) = accepted("get", store.get(&tenant, &user).await) {
                    assert!(found.is_none(), "a refused write wrote nothing");
                }
                false
            }
        }
    })
    .await;
}

pub async fn webhook_claims_hold_whatever_they_accept(s: &Subject) {
    let strategy = || (field(), duration(), text());
    check(s, strategy, |engine, tenant, (event, lease, result)| async move {
        let store = Webhooks::<dyn Engine>::on(engine.as_ref());
        let Some(outcome) = accepted("try_claim", store.try_claim(&tenant, &event, lease).await) else {
            if let Some(size) = accepted("size", store.size(&tenant).await) {
                assert_eq!(size, 0, "a refused claim wrote nothing");
            }
            return false;
        };
        let ClaimOutcome::Acquired(held) = outcome else { panic!("a fresh tenant's event is acquired: {outcome:?}") };
        match accepted("complete", store.complete(&tenant, &held, &result).await) {
            Some(done) => match store.try_claim(&tenant, &event, TimeDelta::seconds(1)).await.expect("claim again") {
                ClaimOutcome::AlreadyDone(read) => assert_eq!(read, done, "the result reads back exactly"),
                other => panic!("expected AlreadyDone, got {other:?}"),
            },
            None => assert!(store.release(&tenant, &held).await.expect("release"), "a refused completion kept the claim"),
        }
        true
    })
    .await;
}
