//! Conformance cases of `DecisionResultStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use serde_json::json;
use std::sync::Arc;
use storage_core::{Clock, DecisionResult, DecisionResultOptions, DecisionResultStore, DecisionResults, PageRequest, TenantId};

/// A field a bad record names, and how the record is spoiled.
type Spoil = (&'static str, fn(&mut DecisionResult));

fn store(s: &Subject, ttl: TimeDelta, max_entries: u64) -> DecisionResults {
    s.store::<DecisionResults>().with_options(DecisionResultOptions { ttl, max_entries }).expect("options")
}

fn result(tenant: &TenantId, id: &str, status: &str) -> DecisionResult {
    DecisionResult::new(tenant.clone(), id, status, json!({"id": id}))
}

async fn recent(store: &DecisionResults, tenant: &TenantId) -> Vec<String> {
    collect_all(3, |p| async move { store.list_recent(tenant, &p).await }).await.into_iter().map(|r| r.request_id).collect()
}

/// A result lives for the TTL from its last save: reads hide it at once after, `purge_expired`
/// sweeps it; a re-save replaces it and keeps `created_at`.
pub async fn results_expire_after_their_ttl_and_a_resave_keeps_created_at(s: &Subject) {
    let store = store(s, TimeDelta::hours(1), 100);
    let acme = tenant("acme");
    let first = store.save(&result(&acme, "req-1", "pending")).await.expect("save");
    assert_eq!((first.expires_at, first.saved_at, first.version), (s.clock.now() + TimeDelta::hours(1), s.clock.now(), 1));
    assert_eq!(store.get(&acme, "req-1").await.expect("get"), Some(first.clone()), "round trip");
    assert_eq!(store.get_status(&acme, "req-1").await.expect("status"), Some(("pending".to_owned(), None)));
    s.clock.advance(TimeDelta::minutes(30));
    let mut done = DecisionResult::new(acme.clone(), "req-1", "completed", json!({"answer": 42}));
    (done.completed_at, done.error) = (Some(s.clock.now()), None);
    let second = store.save(&done).await.expect("resave");
    assert_eq!((second.created_at, second.version), (first.created_at, 2), "a resave keeps created_at");
    assert_eq!(second.expires_at, s.clock.now() + TimeDelta::hours(1), "and restarts the TTL");
    assert_eq!(store.get(&acme, "req-1").await.expect("get"), Some(second.clone()));
    assert_eq!(store.get_status(&acme, "req-1").await.expect("status"), Some(("completed".to_owned(), Some(s.clock.now()))));
    s.clock.advance(TimeDelta::minutes(59));
    assert!(store.get(&acme, "req-1").await.expect("get").is_some(), "the TTL runs from the last save");
    s.clock.advance(TimeDelta::minutes(1));
    assert_eq!(store.get(&acme, "req-1").await.expect("get"), None, "expired: gone from every read at once");
    assert_eq!(store.get_status(&acme, "req-1").await.expect("status"), None);
    assert_eq!(store.count(&acme).await.expect("count"), 0);
    assert!(recent(&store, &acme).await.is_empty());
    assert_eq!(store.purge_expired().await.expect("purge"), 1);
    assert_eq!(store.purge_expired().await.expect("purge"), 0);
    assert!(!store.delete(&acme, "req-1").await.expect("delete"), "a purged result is not there to delete");
    store.save(&result(&acme, "req-9", "completed")).await.expect("save");
    s.clock.advance(TimeDelta::hours(1));
    assert!(!store.delete(&acme, "req-9").await.expect("delete"), "an expired result is not there to delete");
    // Saved again after it expired, it is a new result.
    let reborn = store.save(&result(&acme, "req-1", "pending")).await.expect("save");
    assert_eq!((reborn.version, reborn.created_at), (1, s.clock.now()));
    assert!(store.delete(&acme, "req-1").await.expect("delete"));
    assert_eq!(store.get(&acme, "req-1").await.expect("get"), None);
}

/// A save that adds a result evicts the tenant's least recently saved ones beyond the cap (a
/// re-save moves a result to the newest end); lists run most recently saved first.
pub async fn a_tenant_keeps_at_most_its_cap_least_recently_saved_going_first(s: &Subject) {
    let store = store(s, TimeDelta::days(1), 10);
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    store.save(&result(&globex, "g-1", "completed")).await.expect("save");
    for i in 0..10 {
        store.save(&result(&acme, &format!("req-{i:02}"), "completed")).await.expect("save");
        s.clock.advance(TimeDelta::seconds(1));
    }
    assert_eq!(store.count(&acme).await.expect("count"), 10, "at the cap");
    // Re-saving the oldest makes it the newest: the next eviction takes req-01.
    store.save(&result(&acme, "req-00", "completed")).await.expect("resave");
    assert_eq!(store.count(&acme).await.expect("count"), 10, "a resave adds nothing");
    s.clock.advance(TimeDelta::seconds(1));
    for i in 10..19 {
        store.save(&result(&acme, &format!("req-{i:02}"), "completed")).await.expect("save");
        assert_eq!(store.count(&acme).await.expect("count"), 10, "never over the cap after a save");
        s.clock.advance(TimeDelta::seconds(1));
    }
    let mut expected: Vec<String> = (10..19).rev().map(|i| format!("req-{i:02}")).collect();
    expected.push("req-00".into());
    assert_eq!(recent(&store, &acme).await, expected, "the ten most recently saved remain, newest first");
    let latest = store.list_recent(&acme, &PageRequest::first(2)).await.expect("recent");
    assert_eq!(latest.items.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(), ["req-18", "req-17"]);
    assert_eq!(store.count(&globex).await.expect("count"), 1, "another tenant's results are not evicted");
    assert_eq!(store.enforce_cap(&acme).await.expect("cap"), 0, "nothing over the cap");

    // A lower cap takes effect at the next added result, or at once through enforce_cap.
    let smaller = self::store(s, TimeDelta::days(1), 4);
    assert_eq!(smaller.enforce_cap(&acme).await.expect("cap"), 6);
    assert_eq!(recent(&smaller, &acme).await, ["req-18", "req-17", "req-16", "req-15"]);
    smaller.save(&result(&acme, "req-19", "completed")).await.expect("save");
    assert_eq!(recent(&smaller, &acme).await, ["req-19", "req-18", "req-17", "req-16"]);
    assert_eq!(smaller.purge_expired().await.expect("purge"), 16, "evicted results are expired, then purged");
    assert_eq!(smaller.count(&acme).await.expect("count"), 4);
}

/// Every store instance reads the same rows: no process keeps a copy that another's save,
/// delete or eviction could leave stale.
pub async fn every_instance_reads_the_same_rows(s: &Subject) {
    let (a, b) = (store(s, TimeDelta::hours(1), 3), store(s, TimeDelta::hours(1), 3));
    let acme = tenant("acme");
    a.save(&result(&acme, "req-1", "pending")).await.expect("save");
    assert_eq!(b.get_status(&acme, "req-1").await.expect("status"), Some(("pending".to_owned(), None)), "seen by another instance");
    s.clock.advance(TimeDelta::seconds(1));
    b.save(&result(&acme, "req-1", "completed")).await.expect("resave");
    assert_eq!(a.get_status(&acme, "req-1").await.expect("status"), Some(("completed".to_owned(), None)), "never stale");
    for (i, store) in [&a, &b, &a].into_iter().enumerate() {
        s.clock.advance(TimeDelta::seconds(1));
        store.save(&result(&acme, &format!("req-{}", i + 2), "completed")).await.expect("save");
    }
    assert_eq!(a.count(&acme).await.expect("count"), 3, "one cap over every instance's saves");
    assert_eq!(a.get(&acme, "req-1").await.expect("get"), None, "evicted through b, gone for a");
    assert!(b.delete(&acme, "req-4").await.expect("delete"));
    assert_eq!(a.get(&acme, "req-4").await.expect("get"), None, "deleted through b, gone for a");
}

/// 32 concurrent saves of new results under a cap of 8 (from several instances): the tenant is
/// left at its cap, neither over it nor evicted below it by a stale count.
pub async fn concurrent_saves_leave_a_tenant_at_its_cap(s: &Subject) {
    let stores: Vec<Arc<DecisionResults>> = (0..4).map(|_| Arc::new(store(s, TimeDelta::hours(1), 8))).collect();
    let acme = tenant("acme");
    for round in 0..3 {
        let tasks: Vec<_> = (0..32usize)
            .map(|i| {
                let (store, acme) = (Arc::clone(&stores[i % stores.len()]), acme.clone());
                tokio::spawn(async move { store.save(&result(&acme, &format!("r{round}-{i:02}"), "completed")).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("join").expect("save");
        }
        assert_eq!(stores[0].count(&acme).await.expect("count"), 8, "round {round}: at the cap, neither over nor under");
        s.clock.advance(TimeDelta::seconds(1));
    }
    assert_eq!(stores[0].enforce_cap(&acme).await.expect("cap"), 0);
}

/// Bad input is `InvalidInput` naming the field, never a panic, and writes nothing.
pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = store(s, TimeDelta::hours(1), 100);
    let acme = tenant("acme");
    let huge = DecisionResult::new(acme.clone(), "req-2", "completed", json!({"blob": "x".repeat(300 * 1024)}));
    assert_invalid(store.save(&huge).await, "result");
    let cases: [Spoil; 5] = [
        ("request_id", |r| r.request_id = String::new()),
        ("status", |r| r.status = String::new()),
        ("status", |r| r.status = "bad\u{7}".into()),
        ("error", |r| r.error = Some("e\u{0}".into())),
        ("error", |r| r.error = Some("e".repeat(17 * 1024))),
    ];
    for (field, spoil) in cases {
        let mut bad = result(&acme, "req-2", "failed");
        spoil(&mut bad);
        assert_invalid(store.save(&bad).await, field);
    }
    assert_eq!(store.count(&acme).await.expect("count"), 0, "nothing partial");
    let mut fits = DecisionResult::new(acme.clone(), "req-3", "failed", json!({"blob": "x".repeat(250 * 1024)}));
    fits.error = Some("Traceback:\n\tline 1\n".into());
    store.save(&fits).await.expect("a result under the cap, an error with lines");
    assert_invalid(store.get(&acme, "").await, "request_id");
    for (field, ttl, max_entries) in [
        ("ttl", TimeDelta::zero(), 1),
        ("ttl", TimeDelta::hours(-1), 1),
        ("ttl", TimeDelta::MAX, 1),
        ("max_entries", TimeDelta::hours(1), 0),
    ] {
        assert_invalid(s.store::<DecisionResults>().with_options(DecisionResultOptions { ttl, max_entries }), field);
    }
    assert_eq!(DecisionResultOptions::default(), DecisionResultOptions { ttl: TimeDelta::days(1), max_entries: 10_000 });
}

/// Another tenant never sees, counts, evicts or deletes a result, even one with the same id.
pub async fn tenants_never_see_or_change_each_others_results(s: &Subject) {
    let store = store(s, TimeDelta::hours(1), 2);
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let ours = store.save(&result(&acme, "req-1", "completed")).await.expect("save");
    assert_eq!(store.get(&globex, "req-1").await.expect("get"), None);
    assert_eq!(store.get_status(&globex, "req-1").await.expect("status"), None);
    assert!(!store.delete(&globex, "req-1").await.expect("delete"));
    assert_eq!(store.count(&globex).await.expect("count"), 0);
    for i in 0..3 {
        s.clock.advance(TimeDelta::seconds(1));
        store.save(&result(&globex, &format!("g-{i}"), "completed")).await.expect("save");
    }
    store.save(&result(&globex, "req-1", "failed")).await.expect("their own req-1");
    assert_eq!(store.get(&acme, "req-1").await.expect("get"), Some(ours), "their saves and evictions leave ours");
    assert_eq!(recent(&store, &acme).await, ["req-1"]);
    assert_eq!(recent(&store, &globex).await, ["req-1", "g-2"]);
    let missing = store.get(&globex, "g-0").await.expect("get");
    assert!(missing.is_none(), "evicted in their tenant: {missing:?}");
}
