//! Conformance cases of `SlackDebateStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{Clock, DebateOutcome, DebateStatus, SlackDebate, SlackDebateStore, SlackDebates, StorageError};

fn debate(s: &Subject, id: &str, ws: &str, user: &str, thread: Option<&str>) -> SlackDebate {
    let mut debate = SlackDebate::new(tenant("acme"), id, ws, "C01", format!("topic of {id}"), user, s.clock.now());
    debate.thread_ts = thread.map(str::to_owned);
    debate
}

pub async fn one_debate_per_thread_found_by_thread_user_and_status(s: &Subject) {
    let store = s.store::<SlackDebates>();
    let acme = tenant("acme");
    store.save(&debate(s, "d-1", "T1", "U1", Some("1700000000.000100"))).await.expect("save");
    s.clock.advance(TimeDelta::minutes(1));
    store.save(&debate(s, "d-2", "T1", "U2", None)).await.expect("save");
    s.clock.advance(TimeDelta::minutes(1));
    store.save(&debate(s, "d-3", "T2", "U1", None)).await.expect("save");
    let taken = store.save(&debate(s, "d-4", "T1", "U3", Some("1700000000.000100"))).await;
    assert!(matches!(taken, Err(StorageError::Conflict { .. })), "one debate per thread: {taken:?}");
    assert!(matches!(store.save(&debate(s, "d-1", "T9", "U9", None)).await, Err(StorageError::Conflict { .. })), "ids are taken once");
    let found = store.get_by_thread(&acme, "T1", "C01", "1700000000.000100").await.expect("by thread").expect("found");
    assert_eq!(found.debate_id, "d-1");
    assert!(
        store.get_by_thread(&tenant("globex"), "T1", "C01", "1700000000.000100").await.expect("by thread").is_none(),
        "tenants are isolated"
    );
    assert!(store.get_by_thread(&acme, "T1", "C02", "1700000000.000100").await.expect("by thread").is_none());
    let threaded = store.update_thread(&acme, "d-2", "1700000000.000200").await.expect("thread");
    assert_eq!(threaded.thread_ts.as_deref(), Some("1700000000.000200"));
    assert!(
        matches!(store.update_thread(&acme, "d-2", "1700000000.000300").await, Err(StorageError::Conflict { .. })),
        "a thread is set once"
    );
    // The same thread timestamp in another workspace is another thread.
    let elsewhere = store.update_thread(&acme, "d-3", "1700000000.000100").await.expect("another workspace's thread");
    assert_eq!(elsewhere.thread_ts.as_deref(), Some("1700000000.000100"));
    let active = collect_all(1, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_active(acme, Some("T1"), &p).await }
    })
    .await;
    assert_eq!(active.iter().map(|d| d.debate_id.as_str()).collect::<Vec<_>>(), ["d-2", "d-1"], "newest first");
    let by_user = collect_all(5, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_by_user(acme, "T1", "U1", &p).await }
    })
    .await;
    assert_eq!(by_user.iter().map(|d| d.debate_id.as_str()).collect::<Vec<_>>(), ["d-1"]);
    assert_invalid(store.save(&debate(s, "d-5", "T1", "bad\nuser", None)).await, "user_id");
    assert!(store.get(&acme, "d-5").await.expect("get").is_none(), "nothing written");
}

pub async fn debates_move_on_only_as_their_status_allows(s: &Subject) {
    let store = s.store::<SlackDebates>();
    let acme = tenant("acme");
    store.save(&debate(s, "d-1", "T1", "U1", None)).await.expect("save");
    let done = DebateOutcome::Completed { receipt_id: "rcpt-1".into() };
    assert!(matches!(store.update_status(&acme, "d-1", done.clone()).await, Err(StorageError::Conflict { .. })), "pending cannot complete");
    store.update_status(&acme, "d-1", DebateOutcome::Running).await.expect("run");
    assert!(matches!(store.update_status(&acme, "d-1", DebateOutcome::Running).await, Err(StorageError::Conflict { .. })));
    s.clock.advance(TimeDelta::minutes(3));
    let completed = store.update_status(&acme, "d-1", done).await.expect("complete");
    assert_eq!(
        (completed.status, completed.receipt_id.as_deref(), completed.completed_at),
        (DebateStatus::Completed, Some("rcpt-1"), Some(s.clock.now()))
    );
    let fail = DebateOutcome::Failed { error: "late".into() };
    assert!(
        matches!(store.update_status(&acme, "d-1", fail.clone()).await, Err(StorageError::Conflict { .. })),
        "an ended debate never changes"
    );
    let kept = store.get(&acme, "d-1").await.expect("get").expect("present");
    assert_eq!((kept.status, kept.receipt_id.as_deref(), kept.error_message), (DebateStatus::Completed, Some("rcpt-1"), None));
    store.save(&debate(s, "d-2", "T1", "U1", None)).await.expect("save");
    assert_eq!(store.update_status(&acme, "d-2", fail).await.expect("fail").error_message.as_deref(), Some("late"));
    store.save(&debate(s, "d-3", "T1", "U1", None)).await.expect("save");
    store.update_status(&acme, "d-3", DebateOutcome::Cancelled).await.expect("cancel");
    store.save(&debate(s, "d-4", "T1", "U1", None)).await.expect("save");
    assert!(matches!(store.update_status(&acme, "missing", DebateOutcome::Running).await, Err(StorageError::NotFound { .. })));
    let stats = store.get_stats(&acme, Some("T1")).await.expect("stats");
    assert_eq!(
        stats.into_iter().collect::<Vec<_>>(),
        [
            (DebateStatus::Pending, 1),
            (DebateStatus::Running, 0),
            (DebateStatus::Completed, 1),
            (DebateStatus::Failed, 1),
            (DebateStatus::Cancelled, 1)
        ]
    );
    // A day later every ended debate goes, cancelled ones included; the pending one stays.
    s.clock.advance(TimeDelta::hours(25));
    assert_eq!(store.cleanup_old(TimeDelta::hours(24)).await.expect("cleanup"), 3);
    assert_eq!(store.get(&acme, "d-4").await.expect("get").map(|d| d.status), Some(DebateStatus::Pending));
}

pub async fn concurrent_status_changes_have_one_winner(s: &Subject) {
    let store = Arc::new(s.store::<SlackDebates>());
    let acme = tenant("acme");
    store.save(&debate(s, "d-1", "T1", "U1", None)).await.expect("save");
    store.update_status(&acme, "d-1", DebateOutcome::Running).await.expect("run");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            let outcome = if i % 2 == 0 {
                DebateOutcome::Completed { receipt_id: format!("rcpt-{i}") }
            } else {
                DebateOutcome::Failed { error: format!("e-{i}") }
            };
            tokio::spawn(async move { store.update_status(&acme, "d-1", outcome).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(debate) => winners.push(debate),
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => panic!("a loser sees Conflict, not {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one transition");
    let stored = store.get(&acme, "d-1").await.expect("get").expect("present");
    assert_eq!(
        (stored.status, stored.receipt_id.clone(), stored.error_message.clone()),
        (winners[0].status, winners[0].receipt_id.clone(), winners[0].error_message.clone())
    );
    assert!(stored.receipt_id.is_some() != stored.error_message.is_some(), "a receipt or an error, never both");
}
