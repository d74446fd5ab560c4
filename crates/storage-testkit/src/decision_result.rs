//! Conformance cases of `DecisionResultStore`.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use serde_json::json;
use storage_core::{Clock, DecisionResult, DecisionResultOptions, DecisionResultStore, DecisionResults, PageRequest};

pub async fn results_expire_after_their_ttl_and_a_resave_keeps_created_at(s: &Subject) {
    let store =
        s.store::<DecisionResults>().with_options(DecisionResultOptions { ttl: TimeDelta::hours(1), max_entries: 100 }).expect("options");
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let first = store.save(&DecisionResult::new(acme.clone(), "req-1", "pending", json!({}))).await.expect("save");
    assert_eq!(first.expires_at, s.clock.now() + TimeDelta::hours(1));
    s.clock.advance(TimeDelta::minutes(30));
    let mut done = DecisionResult::new(acme.clone(), "req-1", "completed", json!({"answer": 42}));
    done.completed_at = Some(s.clock.now());
    let second = store.save(&done).await.expect("resave");
    assert_eq!((second.created_at, second.version), (first.created_at, 2), "a resave keeps created_at");
    assert_eq!(store.get_status(&acme, "req-1").await.expect("status"), Some(("completed".to_owned(), Some(s.clock.now()))));
    assert_eq!(store.get(&globex, "req-1").await.expect("get"), None, "tenants are apart");
    s.clock.advance(TimeDelta::minutes(59));
    assert!(store.get(&acme, "req-1").await.expect("get").is_some(), "the TTL runs from the last save");
    s.clock.advance(TimeDelta::minutes(2));
    assert_eq!(store.get(&acme, "req-1").await.expect("get"), None, "expired: gone from every read at once");
    assert_eq!(store.count(&acme).await.expect("count"), 0);
    assert_eq!(store.purge_expired().await.expect("purge"), 1);

    let huge = DecisionResult::new(acme.clone(), "req-2", "completed", json!({"blob": "x".repeat(300 * 1024)}));
    assert_invalid(store.save(&huge).await, "result");
    assert_invalid(store.save(&DecisionResult::new(acme.clone(), "req-2", "bad\u{7}", json!({}))).await, "status");
    assert_eq!(store.get(&acme, "req-2").await.expect("get"), None, "nothing partial");
    assert!(s.store::<DecisionResults>().with_options(DecisionResultOptions { ttl: TimeDelta::zero(), max_entries: 1 }).is_err());
}

pub async fn a_tenant_keeps_at_most_its_cap_oldest_going_first(s: &Subject) {
    let store =
        s.store::<DecisionResults>().with_options(DecisionResultOptions { ttl: TimeDelta::days(1), max_entries: 10 }).expect("options");
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    for i in 0..25 {
        store.save(&DecisionResult::new(acme.clone(), format!("req-{i:02}"), "completed", json!({"i": i}))).await.expect("save");
        s.clock.advance(TimeDelta::seconds(1));
    }
    store.save(&DecisionResult::new(globex.clone(), "g-1", "completed", json!({}))).await.expect("save");
    store.enforce_cap(&acme).await.expect("cap");
    assert_eq!(store.count(&acme).await.expect("count"), 10);
    let recent = store.list_recent(&acme, &PageRequest::first(100)).await.expect("recent");
    let ids: Vec<&str> = recent.items.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, (15..25).rev().map(|i| format!("req-{i:02}")).collect::<Vec<_>>(), "the newest ten remain, newest first");
    assert_eq!(store.count(&globex).await.expect("count"), 1, "another tenant's results are not evicted");
    assert!(store.delete(&acme, "req-24").await.expect("delete"));
    assert!(!store.delete(&acme, "req-24").await.expect("delete"));
}
