//! Conformance cases of `GauntletRunStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use serde_json::json;
use storage_core::{Clock, GauntletRun, GauntletRunStore, GauntletRuns, PageRequest, RunStatus, StorageError};

fn run(t: &str, id: &str, template: &str) -> GauntletRun {
    GauntletRun::new(tenant(t), id, template, json!({"rounds": 3}))
}

pub async fn runs_move_only_as_their_status_allows(s: &Subject) {
    let store = s.store::<GauntletRuns>();
    let acme = tenant("acme");
    let mut queued = run("acme", "run-1", "tpl-a");
    queued.status = RunStatus::Completed;
    let saved = store.save(&queued).await.expect("save");
    assert_eq!((saved.status, saved.queued_at, saved.started_at), (RunStatus::Pending, s.clock.now(), None), "a run is queued");
    assert!(matches!(store.save(&run("acme", "run-1", "tpl-b")).await, Err(StorageError::Conflict { .. })), "an id once");
    s.clock.advance(TimeDelta::seconds(5));
    let running = store.update_status(&acme, "run-1", RunStatus::Running, None).await.expect("start");
    assert_eq!(running.started_at, Some(s.clock.now()));
    assert_eq!(running.created_at, saved.created_at, "created_at survives every write");
    s.clock.advance(TimeDelta::seconds(5));
    let done = store.update_status(&acme, "run-1", RunStatus::Completed, Some(json!({"verdict": "pass"}))).await.expect("finish");
    assert_eq!(
        (done.completed_at, done.started_at, done.result),
        (Some(s.clock.now()), running.started_at, Some(json!({"verdict": "pass"})))
    );

    // Every transition the table forbids, from every status, is refused and changes nothing.
    for from in RunStatus::ALL {
        for to in RunStatus::ALL {
            if from.may_become(to) {
                continue;
            }
            let id = format!("t-{}-{}", from.as_str(), to.as_str());
            store.save(&run("acme", &id, "tpl-a")).await.expect("save");
            let path: &[RunStatus] = match from {
                RunStatus::Pending => &[],
                RunStatus::Running => &[RunStatus::Running],
                RunStatus::Completed => &[RunStatus::Running, RunStatus::Completed],
                RunStatus::Failed => &[RunStatus::Failed],
                RunStatus::Cancelled => &[RunStatus::Cancelled],
            };
            for step in path {
                store.update_status(&acme, &id, *step, None).await.expect("path");
            }
            let before = store.get(&acme, &id).await.expect("get");
            assert!(matches!(store.update_status(&acme, &id, to, None).await, Err(StorageError::Conflict { .. })), "{id}");
            assert_eq!(store.get(&acme, &id).await.expect("get"), before, "{id}: unchanged");
        }
    }
    assert!(matches!(store.update_status(&acme, "run-missing", RunStatus::Running, None).await, Err(StorageError::NotFound { .. })));
    assert!(matches!(store.update_status(&tenant("globex"), "run-1", RunStatus::Failed, None).await, Err(StorageError::NotFound { .. })));
    let mut bad = run("acme", "run-bad", "tpl\u{7}");
    assert_invalid(store.save(&bad).await, "template_id");
    bad.template_id = "tpl-a".into();
    bad.tags = vec!["ok".into(), "b\u{7}d".into()];
    assert_invalid(store.save(&bad).await, "tags");
    assert_eq!(store.get(&acme, "run-bad").await.expect("get"), None, "nothing partial");
}

pub async fn runs_list_newest_first_and_the_queue_has_positions(s: &Subject) {
    let store = s.store::<GauntletRuns>();
    let acme = tenant("acme");
    for i in 0..7 {
        store.save(&run("acme", &format!("run-{i}"), if i % 2 == 0 { "tpl-a" } else { "tpl-b" })).await.expect("save");
        s.clock.advance(TimeDelta::seconds(1));
    }
    store.save(&run("globex", "run-x", "tpl-a")).await.expect("another tenant");
    for id in ["run-1", "run-3", "run-5"] {
        store.update_status(&acme, id, RunStatus::Running, None).await.expect("start");
    }
    store.update_status(&acme, "run-5", RunStatus::Failed, None).await.expect("fail");
    store.update_status(&acme, "run-6", RunStatus::Cancelled, None).await.expect("cancel");
    let all = collect_all(3, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list(acme, None, None, &p).await }
    })
    .await;
    assert_eq!(all.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["run-6", "run-5", "run-4", "run-3", "run-2", "run-1", "run-0"]);
    let of_a = store.list(&acme, None, Some("tpl-a"), &PageRequest::first(10)).await.expect("list");
    assert_eq!(of_a.items.len(), 4);
    let active = store.list_active(&acme, &PageRequest::first(10)).await.expect("active");
    assert_eq!(active.items.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["run-4", "run-3", "run-2", "run-1", "run-0"]);
    assert_eq!(store.count(&acme, Some(RunStatus::Pending)).await.expect("count"), 3);
    assert_eq!(store.count(&acme, None).await.expect("count"), 7);
    let analytics = store.get_queue_analytics(&acme).await.expect("analytics");
    assert_eq!(analytics.counts[&RunStatus::Running], 2);
    assert_eq!(analytics.counts[&RunStatus::Failed], 1);
    let queue: Vec<(&str, RunStatus, u32)> = analytics.active.iter().map(|q| (q.run_id.as_str(), q.status, q.position)).collect();
    assert_eq!(
        queue,
        [
            ("run-1", RunStatus::Running, 1),
            ("run-3", RunStatus::Running, 2),
            ("run-0", RunStatus::Pending, 1),
            ("run-2", RunStatus::Pending, 2),
            ("run-4", RunStatus::Pending, 3)
        ],
        "running first, then pending, each oldest first"
    );
    assert!(store.delete(&acme, "run-0").await.expect("delete"));
    assert!(!store.delete(&acme, "run-0").await.expect("delete"));
    assert_eq!(store.count(&tenant("globex"), None).await.expect("count"), 1, "tenants are apart");
}
