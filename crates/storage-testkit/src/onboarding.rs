//! Conformance cases of `OnboardingStore` and `VerticalStore`.

use crate::{Subject, collect_all};
use chrono::TimeDelta;
use storage_core::{Clock, FlowChanges, Onboarding, OnboardingStore, StorageError, VerticalStore, Verticals};

pub async fn one_flow_per_user_and_org_advances_and_completes(s: &Subject) {
    let store = s.store::<Onboarding>();
    let flow = store.create_flow("ada", Some("acme"), "welcome").await.expect("create");
    assert!(matches!(store.create_flow("ada", Some("acme"), "welcome").await, Err(StorageError::Conflict { .. })), "one per (user, org)");
    let solo = store.create_flow("ada", None, "welcome").await.expect("outside any org is another flow");
    assert_ne!(solo.id, flow.id);
    assert_eq!(store.get_flow("ada", Some("acme")).await.expect("get").map(|f| f.id), Some(flow.id.clone()));
    assert_eq!(store.get_flow("ada", None).await.expect("get").map(|f| f.id), Some(solo.id.clone()));
    assert!(store.get_flow("bob", Some("acme")).await.expect("get").is_none());
    let changes = FlowChanges { advance_to: Some("pick-template".into()), use_case: Some("compliance".into()), ..FlowChanges::default() };
    let advanced = store.update_flow(&flow.id, &changes).await.expect("advance");
    assert_eq!(
        (advanced.current_step.as_str(), advanced.completed_steps.clone(), advanced.use_case.as_deref()),
        ("pick-template", vec!["welcome".to_owned()], Some("compliance"))
    );
    s.clock.advance(TimeDelta::minutes(3));
    let done = store.complete_flow(&flow.id).await.expect("complete");
    assert_eq!((done.completed_at, done.completed_steps.len()), (Some(s.clock.now()), 2));
    s.clock.advance(TimeDelta::minutes(3));
    assert_eq!(store.complete_flow(&flow.id).await.expect("again").completed_at, done.completed_at, "completing twice changes nothing");
    assert!(matches!(store.update_flow("missing", &changes).await, Err(StorageError::NotFound { .. })));
    let analytics = store.get_analytics(None, None).await.expect("analytics");
    assert_eq!((analytics.total, analytics.completed, analytics.completion_rate), (2, 1, 50.0));
    assert_eq!(analytics.current_steps.get("welcome"), Some(&1));
    let later = store.get_analytics(Some(s.clock.now()), None).await.expect("analytics");
    assert_eq!(later.total, 0);
    assert!(store.get_analytics(Some(s.clock.now()), Some(s.clock.now() - TimeDelta::days(1))).await.is_err());
}

pub async fn vertical_configs_are_saved_replaced_and_listed(s: &Subject) {
    let store = s.store::<Verticals>();
    let mut config = serde_json::Map::new();
    config.insert("agents".into(), serde_json::json!(["a", "b"]));
    let saved = store.save_config("healthcare", config.clone(), Some("admin")).await.expect("save");
    assert_eq!((saved.version, saved.config.clone()), (1, config.clone()));
    config.insert("strict".into(), true.into());
    assert_eq!(store.save_config("healthcare", config.clone(), None).await.expect("replace").version, 2);
    store.save_config("legal", serde_json::Map::new(), None).await.expect("save");
    assert_eq!(store.get_config("healthcare").await.expect("get").map(|c| c.config), Some(config));
    let all = collect_all(1, |p| {
        let store = &store;
        async move { store.get_all_configs(&p).await }
    })
    .await;
    assert_eq!(all.iter().map(|c| c.vertical_id.as_str()).collect::<Vec<_>>(), ["healthcare", "legal"]);
    assert!(store.delete_config("legal").await.expect("delete"));
    assert!(store.get_config("legal").await.expect("get").is_none());
}
