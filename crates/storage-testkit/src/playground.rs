//! Conformance cases of `PlaygroundDebateStore`.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{
    CachedDebate, DEFAULT_PLAYGROUND_TTL, PlaygroundDebate, PlaygroundDebateStore, PlaygroundDebates, StorageError, TenantId, cache_key,
    normalize_topic,
};

async fn save(store: &PlaygroundDebates, t: &TenantId, id: &str, ttl: TimeDelta) {
    store.save(t, id, &format!("Topic of {id}"), json!({"winner": id}), "playground", ttl).await.expect("save");
}

/// Results are readable until they expire, list newest first, and a re-save renews them.
pub async fn results_expire_list_newest_first_and_a_resave_renews_them(s: &Subject) {
    let store = s.store::<PlaygroundDebates>();
    let acme = tenant("acme");
    for (n, id) in ["d-1", "d-2", "d-3"].into_iter().enumerate() {
        save(&store, &acme, id, TimeDelta::hours(1 + n as i64)).await;
        s.clock.advance(TimeDelta::minutes(1));
    }
    let got = store.get(&acme, "d-2").await.expect("get").expect("live");
    assert_eq!((got.topic.as_str(), got.result.clone(), got.source.as_str()), ("Topic of d-2", json!({"winner": "d-2"}), "playground"));
    let recent: Vec<_> = store.list_recent(&acme, 2).await.expect("recent").into_iter().map(|d| d.debate_id).collect();
    assert_eq!(recent, ["d-3", "d-2"], "newest first, at most the limit");
    s.clock.advance(TimeDelta::minutes(59));
    assert!(store.get(&acme, "d-1").await.expect("get").is_none(), "expired after its ttl");
    let recent: Vec<_> = store.list_recent(&acme, 10).await.expect("recent").into_iter().map(|d| d.debate_id).collect();
    assert_eq!(recent, ["d-3", "d-2"], "expired results are not listed");
    save(&store, &acme, "d-2", DEFAULT_PLAYGROUND_TTL).await;
    let recent: Vec<_> = store.list_recent(&acme, 10).await.expect("recent").into_iter().map(|d| d.debate_id).collect();
    assert_eq!(recent, ["d-2", "d-3"], "a re-save is the newest");
    s.clock.advance(TimeDelta::hours(3));
    assert!(store.get(&acme, "d-2").await.expect("get").is_some(), "renewed for its new ttl");
    assert!(store.get(&acme, "d-3").await.expect("get").is_none());
    assert_eq!(store.cleanup_expired().await.expect("cleanup"), 2, "d-1 and d-3");
    assert_eq!(store.cleanup_expired().await.expect("cleanup"), 0);
}

/// The cache key ignores case, spacing and model order; a hit finds the debate and counts; an
/// entry of a deleted debate is forgotten; entries expire with their debate.
pub async fn the_cache_index_finds_debates_and_forgets_gone_ones(s: &Subject) {
    let store = s.store::<PlaygroundDebates>();
    let acme = tenant("acme");
    assert_eq!(normalize_topic("  Should   we SHIP\tit? "), "should we ship it?");
    let key = cache_key("Should we ship it?", &["gpt", "claude"], 3);
    assert_eq!(key, cache_key("  should WE  ship it? ", &["claude", "gpt"], 3), "normalised");
    assert_ne!(key, cache_key("Should we ship it?", &["gpt", "claude"], 4), "rounds count");
    assert_ne!(key, cache_key("Should we ship it?", &["gpt"], 3), "models count");

    save(&store, &acme, "d-1", TimeDelta::hours(2)).await;
    let missing = store.save_cache_index(&acme, "Should we ship it?", &["gpt", "claude"], 3, "d-none").await;
    assert!(matches!(missing, Err(StorageError::NotFound { .. })), "only a live debate is indexed: {missing:?}");
    let entry = store.save_cache_index(&acme, "Should we ship it?", &["gpt", "claude"], 3, "d-1").await.expect("index");
    assert_eq!(
        (entry.cache_key.as_str(), entry.model_ids.clone(), entry.hit_count),
        (key.as_str(), vec!["claude".into(), "gpt".into()], 0)
    );
    assert_eq!(entry.topic_normalized, "should we ship it?");
    for expected in 1..=3 {
        let hit = store.get_by_cache_key(&acme, &key).await.expect("lookup").expect("hit");
        assert_eq!((hit.debate.debate_id.as_str(), hit.hit_count), ("d-1", expected));
    }
    // Re-indexed: the hits start again.
    store.save_cache_index(&acme, "should we ship it?", &["claude", "gpt"], 3, "d-1").await.expect("reindex");
    assert_eq!(store.get_by_cache_key(&acme, &key).await.expect("lookup").expect("hit").hit_count, 1);

    assert!(store.delete(&acme, "d-1").await.expect("delete"));
    assert!(store.get_by_cache_key(&acme, &key).await.expect("lookup").is_none(), "a deleted debate's entry goes with it");

    // The debate of an entry disappears behind the store: the lookup forgets the entry.
    save(&store, &acme, "d-2", TimeDelta::hours(5)).await;
    store.save_cache_index(&acme, "Other", &["gpt"], 1, "d-2").await.expect("index");
    let other = cache_key("Other", &["gpt"], 1);
    assert!(s.engine.table::<PlaygroundDebate>().delete(&acme, "d-2").await.expect("delete behind"));
    assert!(store.get_by_cache_key(&acme, &other).await.expect("lookup").is_none());
    assert!(s.engine.table::<CachedDebate>().get(&acme, &other).await.expect("get").is_none(), "the stale entry is forgotten");

    // Entries expire with their debate, and one cleanup removes both.
    save(&store, &acme, "d-3", TimeDelta::hours(5)).await;
    store.save_cache_index(&acme, "Third", &["gpt"], 1, "d-3").await.expect("index");
    save(&store, &acme, "d-4", TimeDelta::hours(1)).await;
    store.save_cache_index(&acme, "Fourth", &["gpt"], 1, "d-4").await.expect("index");
    s.clock.advance(TimeDelta::hours(2));
    assert!(store.get_by_cache_key(&acme, &cache_key("Fourth", &["gpt"], 1)).await.expect("lookup").is_none(), "expired with its debate");
    assert_eq!(store.cleanup_expired().await.expect("cleanup"), 2, "the expired debate and its entry, together");
    assert!(store.get_by_cache_key(&acme, &cache_key("Third", &["gpt"], 1)).await.expect("lookup").is_some());
}

/// A re-save renews its debate's cache entries with it; an entry indexed again after its debate
/// came back is not forgotten by a lookup that read the old one.
pub async fn a_resave_renews_the_debates_cache_entries(s: &Subject) {
    let store = s.store::<PlaygroundDebates>();
    let acme = tenant("acme");
    save(&store, &acme, "d-1", TimeDelta::hours(1)).await;
    let key = store.save_cache_index(&acme, "Renewed", &["gpt"], 1, "d-1").await.expect("index").cache_key;
    store.get_by_cache_key(&acme, &key).await.expect("lookup").expect("hit");
    save(&store, &acme, "d-1", TimeDelta::hours(10)).await;
    s.clock.advance(TimeDelta::hours(2));
    let hit = store.get_by_cache_key(&acme, &key).await.expect("lookup").expect("still a hit: renewed with its debate");
    assert_eq!(hit.hit_count, 2, "renewal keeps the hits");
    s.clock.advance(TimeDelta::hours(9));
    assert!(store.get_by_cache_key(&acme, &key).await.expect("lookup").is_none(), "and expires with it");
}

/// 32 concurrent hits on one entry: each sees its own count, and the total is exact.
pub async fn concurrent_cache_hits_are_all_counted(s: &Subject) {
    let store = Arc::new(s.store::<PlaygroundDebates>());
    let acme = tenant("acme");
    save(&store, &acme, "d-1", TimeDelta::hours(1)).await;
    let entry = store.save_cache_index(&acme, "Hot topic", &["gpt", "claude"], 2, "d-1").await.expect("index");
    let hits: Vec<_> = (0..32)
        .map(|_| {
            let (store, acme, key) = (Arc::clone(&store), acme.clone(), entry.cache_key.clone());
            tokio::spawn(async move { store.get_by_cache_key(&acme, &key).await })
        })
        .collect();
    let mut counts = BTreeSet::new();
    for hit in hits {
        counts.insert(hit.await.expect("join").expect("lookup").expect("hit").hit_count);
    }
    assert_eq!(counts, (1..=32).collect::<BTreeSet<u64>>(), "every hit counted once");
    assert_eq!(store.get_by_cache_key(&acme, &entry.cache_key).await.expect("lookup").expect("hit").hit_count, 33);
}

/// Bad input is `InvalidInput` naming the field, and nothing is written.
pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = s.store::<PlaygroundDebates>();
    let acme = tenant("acme");
    let save = |id: &'static str, ttl: TimeDelta, source: &'static str| {
        let store = store.clone();
        let acme = acme.clone();
        async move { store.save(&acme, id, "topic", json!({}), source, ttl).await }
    };
    assert_invalid(save("d-1", TimeDelta::zero(), "playground").await, "ttl");
    assert_invalid(save("d-1", TimeDelta::days(4_000), "playground").await, "ttl");
    assert_invalid(save("d-\u{7}", TimeDelta::hours(1), "playground").await, "debate_id");
    assert_invalid(save("d-1", TimeDelta::hours(1), "").await, "source");
    assert_invalid(store.save(&acme, "d-1", "nul\0topic", json!({}), "playground", TimeDelta::hours(1)).await, "topic");
    let huge = json!("x".repeat(storage_core::stores::playground::MAX_PLAYGROUND_RESULT_BYTES));
    assert_invalid(store.save(&acme, "d-1", "topic", huge, "playground", TimeDelta::hours(1)).await, "result");
    assert!(store.list_recent(&acme, 10).await.expect("recent").is_empty(), "nothing written");
    save("d-1", TimeDelta::hours(1), "playground").await.expect("save");
    assert_invalid(store.save_cache_index(&acme, "topic", &["bad\u{7}"], 1, "d-1").await, "model_ids");
    let models: Vec<String> = (0..65).map(|n| format!("m{n}")).collect();
    let models: Vec<&str> = models.iter().map(String::as_str).collect();
    assert_invalid(store.save_cache_index(&acme, "topic", &models, 1, "d-1").await, "model_ids");
}

/// A tenant never reads, hits or deletes another's results or cache entries.
pub async fn tenants_never_see_each_others_results(s: &Subject) {
    let store = s.store::<PlaygroundDebates>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    save(&store, &acme, "d-1", TimeDelta::hours(1)).await;
    let entry = store.save_cache_index(&acme, "Topic", &["gpt"], 1, "d-1").await.expect("index");
    assert!(store.get(&globex, "d-1").await.expect("get").is_none());
    assert!(store.list_recent(&globex, 10).await.expect("recent").is_empty());
    assert!(store.get_by_cache_key(&globex, &entry.cache_key).await.expect("lookup").is_none());
    let foreign = store.save_cache_index(&globex, "Topic", &["gpt"], 1, "d-1").await;
    assert!(matches!(foreign, Err(StorageError::NotFound { .. })), "another tenant's debate is not indexed: {foreign:?}");
    assert!(!store.delete(&globex, "d-1").await.expect("delete"));
    let hit = store.get_by_cache_key(&acme, &entry.cache_key).await.expect("lookup").expect("hit");
    assert_eq!(hit.hit_count, 1, "the other tenant's lookup counted nothing");
}
