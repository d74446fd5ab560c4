//! Conformance cases of `UsageStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use storage_core::{Clock, Usage, UsageStore};

pub async fn usage_events_list_newest_first_and_total_by_type(s: &Subject) {
    let store = s.store::<Usage>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let start = s.clock.now();
    for (i, kind) in ["debate", "tokens", "debate", "api_call", "tokens"].iter().enumerate() {
        store.record_usage_event(&acme, kind, (i as u64 + 1) * 10, serde_json::Map::new()).await.expect("record");
        s.clock.advance(TimeDelta::seconds(1));
    }
    store.record_usage_event(&globex, "debate", 1_000, serde_json::Map::new()).await.expect("other tenant");
    let all = collect_all(2, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.get_events(acme, None, None, &p).await }
    })
    .await;
    assert_eq!(all.iter().map(|e| e.count).collect::<Vec<_>>(), [50, 40, 30, 20, 10], "newest first");
    let debates = collect_all(5, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.get_events(acme, Some("debate"), None, &p).await }
    })
    .await;
    assert_eq!(debates.len(), 2);
    let since = start + TimeDelta::seconds(2);
    let recent = collect_all(5, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.get_events(acme, None, Some(since), &p).await }
    })
    .await;
    assert_eq!(recent.len(), 3);
    let totals = store.get_totals_by_type(&acme, None).await.expect("totals");
    assert_eq!(totals.into_iter().collect::<Vec<_>>(), [("api_call".to_owned(), 40), ("debate".to_owned(), 40), ("tokens".to_owned(), 70)]);
    let totals = store.get_totals_by_type(&acme, Some(since)).await.expect("totals");
    assert_eq!(totals.get("debate"), Some(&30));
    assert_invalid(store.record_usage_event(&acme, "Not A Type", 1, serde_json::Map::new()).await, "event_type");
    assert_invalid(store.record_usage_event(&acme, "debate", u64::MAX, serde_json::Map::new()).await, "count");
}
