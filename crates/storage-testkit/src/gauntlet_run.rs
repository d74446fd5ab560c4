//! Conformance cases of `GauntletRunStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use serde_json::json;
use std::sync::Arc;
use storage_core::{Clock, GauntletRun, GauntletRunStore, GauntletRuns, PageRequest, RunStatus, StorageError};

/// A field a bad record names, and how the record is spoiled.
type Spoil = (&'static str, fn(&mut GauntletRun));

fn run(t: &str, id: &str, template: &str) -> GauntletRun {
    GauntletRun::new(tenant(t), id, template, json!({"rounds": 3}))
}

fn ids(runs: &[GauntletRun]) -> Vec<&str> {
    runs.iter().map(|r| r.run_id.as_str()).collect()
}

/// The statuses a fresh run goes through to reach `to`.
fn path_to(to: RunStatus) -> &'static [RunStatus] {
    match to {
        RunStatus::Pending => &[],
        RunStatus::Running => &[RunStatus::Running],
        RunStatus::Completed => &[RunStatus::Running, RunStatus::Completed],
        RunStatus::Failed => &[RunStatus::Failed],
        RunStatus::Cancelled => &[RunStatus::Cancelled],
    }
}

/// A run reads back as saved, with the store's own fields; a second save of its id is refused
/// and leaves it as it was (its status and `created_at` never reset).
pub async fn a_run_round_trips_and_a_second_save_changes_nothing(s: &Subject) {
    let store = s.store::<GauntletRuns>();
    let acme = tenant("acme");
    let mut queued = run("acme", "run-1", "tpl-a");
    (queued.triggered_by, queued.workspace_id, queued.tags) = (Some("alice".into()), Some("ws-1".into()), vec!["nightly".into()]);
    // Fields the store owns are overridden, whatever the caller says.
    (queued.status, queued.started_at, queued.result_data) = (RunStatus::Completed, Some(s.clock.now()), Some(json!("forged")));
    let saved = store.save(&queued).await.expect("save");
    assert_eq!(
        (saved.status, saved.queued_at, saved.started_at, saved.completed_at, saved.result_data.clone()),
        (RunStatus::Pending, s.clock.now(), None, None, None),
        "a run is queued"
    );
    assert_eq!((saved.version, saved.created_at), (1, s.clock.now()));
    let got = store.get(&acme, "run-1").await.expect("get").expect("present");
    assert_eq!(got, saved, "round trip");
    assert_eq!(
        (got.config_data, got.triggered_by.as_deref(), got.workspace_id.as_deref(), got.tags),
        (json!({"rounds": 3}), Some("alice"), Some("ws-1"), vec!["nightly".to_owned()])
    );
    assert!(store.exists(&acme, "run-1").await.expect("exists"));
    assert!(!store.exists(&acme, "run-2").await.expect("exists"));

    s.clock.advance(TimeDelta::minutes(5));
    let running = store.update_status(&acme, "run-1", RunStatus::Running, None).await.expect("start");
    s.clock.advance(TimeDelta::minutes(5));
    let again = store.save(&run("acme", "run-1", "tpl-b")).await;
    assert!(matches!(again, Err(StorageError::Conflict { .. })), "an id is saved once: {again:?}");
    let stored = store.get(&acme, "run-1").await.expect("get").expect("present");
    assert_eq!(stored, running, "a refused re-save neither requeues the run nor resets created_at");
    assert_eq!(stored.created_at, saved.created_at);
    assert!(store.delete(&acme, "run-1").await.expect("delete"));
    assert!(!store.delete(&acme, "run-1").await.expect("delete"), "deleted once");
    assert!(!store.exists(&acme, "run-1").await.expect("exists"));
}

/// Each allowed move stamps its time; every move the status machine forbids, from every status,
/// is `Conflict` and changes nothing.
pub async fn runs_move_only_as_their_status_allows(s: &Subject) {
    let store = s.store::<GauntletRuns>();
    let acme = tenant("acme");
    let saved = store.save(&run("acme", "run-1", "tpl-a")).await.expect("save");
    s.clock.advance(TimeDelta::seconds(5));
    let running = store.update_status(&acme, "run-1", RunStatus::Running, Some(json!({"progress": 0}))).await.expect("start");
    assert_eq!((running.started_at, running.completed_at), (Some(s.clock.now()), None));
    assert_eq!((running.created_at, running.version), (saved.created_at, 2), "created_at survives every write");
    s.clock.advance(TimeDelta::seconds(5));
    let done = store.update_status(&acme, "run-1", RunStatus::Completed, Some(json!({"verdict": "pass"}))).await.expect("finish");
    assert_eq!(
        (done.completed_at, done.started_at, done.result_data),
        (Some(s.clock.now()), running.started_at, Some(json!({"verdict": "pass"}))),
        "started_at is stamped once, completed_at at the end"
    );
    let no_result = store.save(&run("acme", "run-2", "tpl-a")).await.expect("save");
    let cancelled = store.update_status(&acme, "run-2", RunStatus::Cancelled, None).await.expect("cancel");
    assert_eq!((cancelled.started_at, cancelled.completed_at, cancelled.result_data), (None, Some(s.clock.now()), None));
    assert_eq!(cancelled.created_at, no_result.created_at);

    for from in RunStatus::ALL {
        for to in RunStatus::ALL {
            let id = format!("t-{}-{}", from.as_str(), to.as_str());
            store.save(&run("acme", &id, "tpl-a")).await.expect("save");
            for step in path_to(from) {
                store.update_status(&acme, &id, *step, None).await.expect("path");
            }
            let before = store.get(&acme, &id).await.expect("get").expect("present");
            let moved = store.update_status(&acme, &id, to, Some(json!("late"))).await;
            if from.may_become(to) {
                assert_eq!(moved.expect("allowed").status, to, "{id}");
                continue;
            }
            assert!(matches!(moved, Err(StorageError::Conflict { .. })), "{id}: {moved:?}");
            assert_eq!(store.get(&acme, &id).await.expect("get").expect("present"), before, "{id}: unchanged");
        }
    }
    let allowed: Vec<(RunStatus, RunStatus)> =
        RunStatus::ALL.iter().flat_map(|f| RunStatus::ALL.iter().map(move |t| (*f, *t))).filter(|(f, t)| f.may_become(*t)).collect();
    assert_eq!(allowed.len(), 6, "pending → running | failed | cancelled, running → completed | failed | cancelled");
    assert!(RunStatus::ALL.iter().filter(|s| s.is_final()).all(|f| RunStatus::ALL.iter().all(|t| !f.may_become(*t))));
    let missing = store.update_status(&acme, "run-missing", RunStatus::Running, None).await;
    assert!(matches!(missing, Err(StorageError::NotFound { .. })), "{missing:?}");
}

/// 16 concurrent moves out of `running` (to completed, failed or cancelled): exactly one wins,
/// the rest are `Conflict`, and the stored run is the winner's.
pub async fn concurrent_status_changes_have_one_winner(s: &Subject) {
    let store = Arc::new(s.store::<GauntletRuns>());
    let acme = tenant("acme");
    store.save(&run("acme", "run-1", "tpl-a")).await.expect("save");
    store.update_status(&acme, "run-1", RunStatus::Running, None).await.expect("start");
    let ends = [RunStatus::Completed, RunStatus::Failed, RunStatus::Cancelled];
    let tasks: Vec<_> = (0..16usize)
        .map(|i| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            let to = ends[i % ends.len()];
            tokio::spawn(async move { store.update_status(&acme, "run-1", to, Some(json!({"by": i}))).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("join") {
            Ok(run) => winners.push(run),
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => panic!("a loser sees Conflict, not {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one transition");
    let stored = store.get(&acme, "run-1").await.expect("get").expect("present");
    assert_eq!(stored, winners[0], "the stored run is the winner's");
    assert_eq!(stored.version, 3, "one write after the start");
}

/// Lists run newest first in keyset pages (all, by status, by template, active); counts and the
/// queue's positions.
pub async fn runs_list_newest_first_and_the_queue_has_positions(s: &Subject) {
    let store = s.store::<GauntletRuns>();
    let acme = tenant("acme");
    for i in 0..7 {
        store.save(&run("acme", &format!("run-{i}"), if i % 2 == 0 { "tpl-a" } else { "tpl-b" })).await.expect("save");
        s.clock.advance(TimeDelta::seconds(1));
    }
    // Two runs queued at the same instant list by id (descending, as the order is).
    store.save(&run("acme", "run-7a", "tpl-c")).await.expect("save");
    store.save(&run("acme", "run-7b", "tpl-c")).await.expect("save");
    store.save(&run("globex", "run-x", "tpl-a")).await.expect("another tenant");
    for id in ["run-1", "run-3", "run-5"] {
        store.update_status(&acme, id, RunStatus::Running, None).await.expect("start");
    }
    store.update_status(&acme, "run-5", RunStatus::Failed, None).await.expect("fail");
    store.update_status(&acme, "run-6", RunStatus::Cancelled, None).await.expect("cancel");
    let all = collect_all(2, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list(acme, None, None, &p).await }
    })
    .await;
    assert_eq!(ids(&all), ["run-7b", "run-7a", "run-6", "run-5", "run-4", "run-3", "run-2", "run-1", "run-0"]);
    let of_a = collect_all(1, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_by_template(acme, "tpl-a", &p).await }
    })
    .await;
    assert_eq!(ids(&of_a), ["run-6", "run-4", "run-2", "run-0"]);
    let pending = collect_all(2, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_by_status(acme, RunStatus::Pending, &p).await }
    })
    .await;
    assert_eq!(ids(&pending), ["run-7b", "run-7a", "run-4", "run-2", "run-0"]);
    let pending_b = store.list(&acme, Some(RunStatus::Running), Some("tpl-b"), &PageRequest::first(10)).await.expect("list");
    assert_eq!(ids(&pending_b.items), ["run-3", "run-1"], "status and template together");
    let active = collect_all(3, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_active(acme, &p).await }
    })
    .await;
    assert_eq!(ids(&active), ["run-7b", "run-7a", "run-4", "run-3", "run-2", "run-1", "run-0"]);
    assert_eq!(store.count(&acme, Some(RunStatus::Pending)).await.expect("count"), 5);
    assert_eq!(store.count(&acme, Some(RunStatus::Completed)).await.expect("count"), 0);
    assert_eq!(store.count(&acme, None).await.expect("count"), 9);

    let analytics = store.get_queue_analytics(&acme).await.expect("analytics");
    let counts: Vec<(RunStatus, u64)> = analytics.counts.iter().map(|(s, n)| (*s, *n)).collect();
    assert_eq!(
        counts,
        [(RunStatus::Pending, 5), (RunStatus::Running, 2), (RunStatus::Completed, 0), (RunStatus::Failed, 1), (RunStatus::Cancelled, 1)],
        "every status, zero included"
    );
    let queue: Vec<(&str, RunStatus, u32)> = analytics.active.iter().map(|q| (q.run_id.as_str(), q.status, q.position)).collect();
    assert_eq!(
        queue,
        [
            ("run-1", RunStatus::Running, 1),
            ("run-3", RunStatus::Running, 2),
            ("run-0", RunStatus::Pending, 1),
            ("run-2", RunStatus::Pending, 2),
            ("run-4", RunStatus::Pending, 3),
            ("run-7a", RunStatus::Pending, 4),
            ("run-7b", RunStatus::Pending, 5),
        ],
        "running first, then pending, each oldest first from 1"
    );
    let empty = store.get_queue_analytics(&tenant("initech")).await.expect("analytics");
    assert!(empty.active.is_empty() && empty.counts.values().all(|n| *n == 0) && empty.counts.len() == 5);
}

/// Bad input is `InvalidInput` naming the field, never a panic, and writes nothing.
pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = s.store::<GauntletRuns>();
    let acme = tenant("acme");
    let cases: [Spoil; 8] = [
        ("run_id", |r| r.run_id = String::new()),
        ("run_id", |r| r.run_id = "run\u{0}".into()),
        ("template_id", |r| r.template_id = String::new()),
        ("template_id", |r| r.template_id = "tpl\u{7}".into()),
        ("triggered_by", |r| r.triggered_by = Some("x".repeat(5_000))),
        ("workspace_id", |r| r.workspace_id = Some("ws\n1".into())),
        ("tags", |r| r.tags = vec!["ok".into(), "b\u{7}d".into()]),
        ("tags", |r| r.tags = (0..65).map(|i| format!("t{i}")).collect()),
    ];
    for (field, spoil) in cases {
        let mut bad = run("acme", "run-bad", "tpl-a");
        spoil(&mut bad);
        assert_invalid(store.save(&bad).await, field);
    }
    assert_eq!(store.count(&acme, None).await.expect("count"), 0, "nothing partial");
    assert_invalid(store.list_by_template(&acme, "", &PageRequest::first(10)).await, "template_id");
    assert_invalid(store.get(&acme, "").await, "run_id");
    assert_invalid(store.update_status(&acme, "r\u{1b}", RunStatus::Running, None).await, "run_id");
    store.save(&run("acme", "run-ok", "tpl-a")).await.expect("a good run after bad ones");
}

/// Another tenant never sees, counts, moves or deletes a run, even one with the same id.
pub async fn tenants_never_see_or_change_each_others_runs(s: &Subject) {
    let store = s.store::<GauntletRuns>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    store.save(&run("acme", "run-1", "tpl-a")).await.expect("save");
    store.update_status(&acme, "run-1", RunStatus::Running, None).await.expect("start");
    let before = store.get(&acme, "run-1").await.expect("get").expect("present");
    assert_eq!(store.get(&globex, "run-1").await.expect("get"), None);
    assert!(!store.exists(&globex, "run-1").await.expect("exists"));
    let moved = store.update_status(&globex, "run-1", RunStatus::Failed, None).await;
    assert!(matches!(moved, Err(StorageError::NotFound { .. })), "{moved:?}");
    assert!(!store.delete(&globex, "run-1").await.expect("delete"));
    assert_eq!(store.count(&globex, None).await.expect("count"), 0);
    assert!(store.list(&globex, None, Some("tpl-a"), &PageRequest::first(10)).await.expect("list").items.is_empty());
    assert!(store.list_active(&globex, &PageRequest::first(10)).await.expect("list").items.is_empty());
    assert!(store.get_queue_analytics(&globex).await.expect("analytics").active.is_empty());
    // The same id in another tenant is another run.
    let theirs = store.save(&run("globex", "run-1", "tpl-z")).await.expect("their own run-1");
    assert_eq!(theirs.status, RunStatus::Pending);
    store.update_status(&globex, "run-1", RunStatus::Cancelled, None).await.expect("cancel theirs");
    assert_eq!(store.get(&acme, "run-1").await.expect("get").expect("present"), before, "ours untouched");
    assert_eq!(store.count(&acme, Some(RunStatus::Running)).await.expect("count"), 1);
}
