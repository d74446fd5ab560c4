//! Conformance cases of `FederationRegistryStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::stores::federation::MAX_SYNC_ERROR_BYTES;
use storage_core::{
    Clock, FederatedRegion, FederationMode, FederationRegistry, FederationRegistryStore, Secret, StorageError, SyncDirection, SyncScope,
    TenantId,
};

fn region(workspace: Option<&TenantId>, id: &str, key: &str) -> FederatedRegion {
    FederatedRegion::new(workspace, id, format!("https://{id}.example/federation"), Secret::new(key.to_owned()))
}

fn ids(regions: &[FederatedRegion]) -> Vec<String> {
    regions.iter().map(|r| format!("{}/{}", r.workspace().map_or("-", TenantId::as_str), r.region_id)).collect()
}

/// A region reads back with its key; a re-save replaces its settings and keeps its counters,
/// sync times and `created_at`.
pub async fn a_region_round_trips_and_a_resave_keeps_its_counters(s: &Subject) {
    let store = s.store::<FederationRegistry>();
    let acme = tenant("acme");
    let mut eu = region(Some(&acme), "eu-west", "fed-key-1");
    eu.metadata.insert("owner".into(), "platform".into());
    // Counters and times are the store's: a save ignores them.
    (eu.total_pushes, eu.last_sync_at) = (99, Some(s.clock.now()));
    let saved = store.save(&eu).await.expect("save");
    assert_eq!((saved.total_pushes, saved.last_sync_at, saved.version), (0, None, 1));
    let got = store.get("eu-west", Some(&acme)).await.expect("get").expect("present");
    assert_eq!(got.api_key.expose(), "fed-key-1");
    assert_eq!(got.metadata.get("owner"), Some(&"platform".into()));
    assert_eq!(got, saved, "round trip");

    s.clock.advance(TimeDelta::minutes(5));
    let synced = store.update_sync_status("eu-west", SyncDirection::Push, 40, None, Some(&acme)).await.expect("sync");
    assert_eq!((synced.total_pushes, synced.total_nodes_synced), (1, 40));
    assert_eq!((synced.last_sync_at, synced.last_push_at, synced.last_pull_at), (Some(s.clock.now()), Some(s.clock.now()), None));
    s.clock.advance(TimeDelta::minutes(5));
    let mut changed = region(Some(&acme), "eu-west", "fed-key-2");
    (changed.mode, changed.sync_scope, changed.enabled) = (FederationMode::Pull, SyncScope::Summary, false);
    let resaved = store.save(&changed).await.expect("resave");
    assert_eq!(resaved.api_key.expose(), "fed-key-2");
    assert_eq!((resaved.mode, resaved.sync_scope, resaved.enabled), (FederationMode::Pull, SyncScope::Summary, false));
    assert_eq!((resaved.total_pushes, resaved.total_nodes_synced, resaved.last_push_at), (1, 40, synced.last_push_at), "counters kept");
    assert_eq!(resaved.created_at, saved.created_at, "created_at kept");
    assert!(resaved.metadata.is_empty(), "metadata replaced");
    assert!(store.delete("eu-west", Some(&acme)).await.expect("delete"));
    assert!(!store.delete("eu-west", Some(&acme)).await.expect("delete"), "deleted once");
    let missing = store.update_sync_status("eu-west", SyncDirection::Pull, 1, None, Some(&acme)).await;
    assert!(matches!(missing, Err(StorageError::NotFound { .. })), "{missing:?}");
}

/// Every list names one workspace (`None` is the global registry, not every workspace); the
/// all-workspace list is its own call and holds no key.
pub async fn every_list_is_scoped_to_one_workspace(s: &Subject) {
    let store = s.store::<FederationRegistry>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    for (workspace, id) in [(Some(&acme), "r-1"), (Some(&acme), "r-2"), (Some(&globex), "r-1"), (None, "r-global")] {
        store.save(&region(workspace, id, &format!("key-{id}"))).await.expect("save");
    }
    let mut off = region(Some(&acme), "r-3", "key-r-3");
    off.enabled = false;
    store.save(&off).await.expect("save");
    assert_eq!(ids(&store.list_all(Some(&acme)).await.expect("list")), ["acme/r-1", "acme/r-2", "acme/r-3"]);
    assert_eq!(ids(&store.list_enabled(Some(&acme)).await.expect("list")), ["acme/r-1", "acme/r-2"]);
    assert_eq!(ids(&store.list_all(Some(&globex)).await.expect("list")), ["globex/r-1"]);
    assert_eq!(ids(&store.list_all(None).await.expect("list")), ["-/r-global"], "no workspace is the global registry only");
    assert_eq!(store.list_all(Some(&acme)).await.expect("list")[0].api_key.expose(), "key-r-1", "a workspace's own list has its keys");
    assert!(store.get("r-1", None).await.expect("get").is_none());
    assert_eq!(store.get("r-global", None).await.expect("get").expect("global").api_key.expose(), "key-r-global");

    let every = collect_all(2, |page| {
        let store = store.clone();
        async move { store.list_every_workspace(&page).await }
    })
    .await;
    let mut every_ids = ids(&every);
    every_ids.sort_unstable();
    assert_eq!(every_ids, ["-/r-global", "acme/r-1", "acme/r-2", "acme/r-3", "globex/r-1"]);
    assert!(every.iter().all(|r| r.api_key.expose().is_empty()), "the admin list holds no key");
}

/// Concurrent sync reports all count: counters exact, the last error that of a failed report.
pub async fn concurrent_sync_reports_all_count(s: &Subject) {
    let store = Arc::new(s.store::<FederationRegistry>());
    let acme = tenant("acme");
    store.save(&region(Some(&acme), "eu-west", "fed-key")).await.expect("save");
    let reports: Vec<_> = (0..32u64)
        .map(|n| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            tokio::spawn(async move {
                let direction = if n % 2 == 0 { SyncDirection::Push } else { SyncDirection::Pull };
                let error = (n % 4 == 3).then(|| format!("timeout {n}"));
                store.update_sync_status("eu-west", direction, n, error.as_deref(), Some(&acme)).await
            })
        })
        .collect();
    for report in reports {
        report.await.expect("join").expect("report");
    }
    let stored = store.get("eu-west", Some(&acme)).await.expect("get").expect("present");
    let nodes: u64 = (0..32u64).filter(|n| n % 4 != 3).sum();
    assert_eq!((stored.total_pushes, stored.total_pulls, stored.total_sync_errors, stored.total_nodes_synced), (16, 16, 8, nodes));
    assert_eq!(stored.version, 33, "one write per report");
    s.clock.advance(TimeDelta::seconds(1));
    let ok = store.update_sync_status("eu-west", SyncDirection::Pull, 0, None, Some(&acme)).await.expect("report");
    assert_eq!((ok.last_sync_error, ok.last_pull_at), (None, Some(s.clock.now())), "a successful sync clears the error");
}

/// Bad input is `InvalidInput` naming the field, and nothing is written; a long error is cut.
pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = s.store::<FederationRegistry>();
    let acme = tenant("acme");
    assert_invalid(store.save(&region(Some(&acme), "eu-west", "")).await, "api_key");
    assert_invalid(store.save(&region(Some(&acme), "eu\u{7}", "key")).await, "region_id");
    let mut bad_url = region(Some(&acme), "eu-west", "key");
    bad_url.endpoint_url = "ftp://nowhere".into();
    assert_invalid(store.save(&bad_url).await, "endpoint_url");
    assert!(store.list_all(Some(&acme)).await.expect("list").is_empty(), "nothing written");
    store.save(&region(Some(&acme), "eu-west", "key")).await.expect("save");
    assert_invalid(store.update_sync_status("eu-west", SyncDirection::Push, u64::MAX, None, Some(&acme)).await, "nodes_synced");
    let long = "é".repeat(MAX_SYNC_ERROR_BYTES);
    let failed = store.update_sync_status("eu-west", SyncDirection::Push, 0, Some(&long), Some(&acme)).await.expect("report");
    let kept = failed.last_sync_error.expect("error kept");
    assert!(kept.len() <= MAX_SYNC_ERROR_BYTES && long.starts_with(&kept) && !kept.is_empty(), "cut at a character boundary");
    assert_eq!(failed.total_pushes, 1);
}

/// A workspace never sees or changes another's regions, nor the global ones through its own.
pub async fn tenants_never_see_or_change_each_others_regions(s: &Subject) {
    let store = s.store::<FederationRegistry>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    store.save(&region(Some(&acme), "eu-west", "acme-key")).await.expect("save");
    assert!(store.get("eu-west", Some(&globex)).await.expect("get").is_none());
    assert!(store.get("eu-west", None).await.expect("get").is_none());
    assert!(!store.delete("eu-west", Some(&globex)).await.expect("delete"));
    let foreign = store.update_sync_status("eu-west", SyncDirection::Push, 5, None, Some(&globex)).await;
    assert!(matches!(foreign, Err(StorageError::NotFound { .. })), "{foreign:?}");
    store.save(&region(Some(&globex), "eu-west", "globex-key")).await.expect("same id, other workspace");
    let mine = store.get("eu-west", Some(&acme)).await.expect("get").expect("present");
    assert_eq!((mine.api_key.expose().as_str(), mine.total_pushes, mine.version), ("acme-key", 0, 1));
}
