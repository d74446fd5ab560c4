//! Conformance cases of `FindingWorkflowStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{
    Clock, FindingChange, FindingState, FindingWorkflow, FindingWorkflowStore, FindingWorkflows, NewFinding, PageRequest, StorageError,
    TenantId,
};

fn ids(findings: &[FindingWorkflow]) -> Vec<&str> {
    findings.iter().map(|f| f.finding_id.as_str()).collect()
}

fn in_state(id: &str, state: FindingState) -> NewFinding {
    NewFinding { state, ..NewFinding::new(id, "importer") }
}

async fn all(store: &FindingWorkflows, t: &TenantId) -> Vec<FindingWorkflow> {
    collect_all(7, |page| {
        let store = store.clone();
        let t = t.clone();
        async move { store.list_all(&t, &page).await }
    })
    .await
}

/// A finding moves through triage to resolved: each step is in its history, in order, with the
/// time spent in each state left; a second create is refused and changes nothing.
pub async fn a_finding_moves_through_triage_with_its_history(s: &Subject) {
    let store = s.store::<FindingWorkflows>();
    let acme = tenant("acme");
    let created = store.create(&acme, NewFinding::new("F-1", "scanner")).await.expect("create");
    assert_eq!((created.state, created.priority, created.version, created.opened_at), (FindingState::Open, 3, 1, s.clock.now()));
    assert_eq!(created.history.len(), 1);
    assert_eq!(created.history[0].change, FindingChange::Created { state: FindingState::Open });
    let again = store.create(&acme, in_state("F-1", FindingState::Resolved)).await;
    assert!(matches!(again, Err(StorageError::Conflict { .. })), "a finding is created once: {again:?}");

    let path = [FindingState::Triaging, FindingState::Investigating, FindingState::Remediating, FindingState::Resolved];
    let mut last = created.clone();
    for (minutes, to) in (1..).zip(path) {
        s.clock.advance(TimeDelta::minutes(minutes));
        last = store.transition(&acme, "F-1", to, "alice", Some(&format!("moving to {}", to.as_str()))).await.expect("transition");
        assert_eq!((last.state, last.state_since), (to, s.clock.now()));
    }
    let stored = store.get(&acme, "F-1").await.expect("get").expect("present");
    assert_eq!(stored, last, "round trip");
    assert_eq!(stored.created_at, created.created_at, "created_at survives every change");
    let moves: Vec<_> = stored.history.iter().skip(1).map(|e| (e.change.clone(), e.actor.as_str(), e.comment.is_some())).collect();
    let expected: Vec<_> = [FindingState::Open, FindingState::Triaging, FindingState::Investigating, FindingState::Remediating]
        .into_iter()
        .zip(path)
        .map(|(from, to)| (FindingChange::Transitioned { from, to }, "alice", true))
        .collect();
    assert_eq!(moves, expected, "every transition is in the history, in order");
    let spent: Vec<_> = stored.time_in_states.iter().map(|(state, secs)| (*state, *secs)).collect();
    assert_eq!(
        spent,
        vec![(FindingState::Open, 60), (FindingState::Triaging, 120), (FindingState::Investigating, 180), (FindingState::Remediating, 240)]
    );
    // Reopened: resolved → open is allowed, and the history keeps growing.
    let reopened = store.transition(&acme, "F-1", FindingState::Open, "bob", None).await.expect("reopen");
    assert_eq!(reopened.history.len(), 6);
    assert!(store.delete(&acme, "F-1").await.expect("delete"));
    assert!(!store.delete(&acme, "F-1").await.expect("delete"), "deleted once");
    let missing = store.transition(&acme, "F-1", FindingState::Triaging, "bob", None).await;
    assert!(matches!(missing, Err(StorageError::NotFound { .. })), "{missing:?}");
}

/// Table-driven: from every state (legacy ones included, as imported), every move the table
/// forbids — staying put included — is `Conflict` and leaves the finding as it was; every move it
/// allows succeeds.
pub async fn every_forbidden_transition_is_a_conflict_and_changes_nothing(s: &Subject) {
    let store = s.store::<FindingWorkflows>();
    let acme = tenant("acme");
    let (mut allowed, mut refused) = (0, 0);
    for from in FindingState::ALL {
        for to in FindingState::ALL {
            let id = format!("F-{}-{}", from.as_str(), to.as_str());
            let before = store.create(&acme, in_state(&id, from)).await.expect("create");
            let moved = store.transition(&acme, &id, to, "alice", None).await;
            if from.may_become(to) {
                assert_eq!(moved.expect("an allowed move").state, to);
                allowed += 1;
            } else {
                assert!(matches!(moved, Err(StorageError::Conflict { .. })), "{from:?} → {to:?}: {moved:?}");
                assert_eq!(store.get(&acme, &id).await.expect("get").expect("present"), before, "{from:?} → {to:?} changed nothing");
                refused += 1;
            }
        }
    }
    assert_eq!((allowed, refused), (24, 76), "the transition table has 24 moves");
}

/// Assignment, due dates (stored as instants, compared as instants) and the overdue list:
/// findings past due and not closed, soonest due first.
pub async fn assignments_due_dates_and_the_overdue_list(s: &Subject) {
    let store = s.store::<FindingWorkflows>();
    let acme = tenant("acme");
    let now = s.clock.now();
    for (id, due_hours, state) in [
        ("F-late-2", Some(-2), FindingState::Open),
        ("F-late-5", Some(-5), FindingState::Investigating),
        ("F-late-closed", Some(-9), FindingState::Resolved),
        ("F-late-wontfix", Some(-9), FindingState::WontFix),
        ("F-soon", Some(3), FindingState::Open),
        ("F-undated", None, FindingState::Open),
    ] {
        let due = due_hours.map(|h| now + TimeDelta::hours(h) + TimeDelta::nanoseconds(1_500));
        store.create(&acme, NewFinding { due_date: due, ..in_state(id, state) }).await.expect("create");
    }
    let late = store.get(&acme, "F-late-2").await.expect("get").expect("present");
    assert_eq!(late.due_date, Some(now - TimeDelta::hours(2) + TimeDelta::microseconds(1)), "due dates keep microseconds");
    let overdue = store.list_overdue(&acme, &PageRequest::first(10)).await.expect("overdue");
    assert_eq!(ids(&overdue.items), ["F-late-5", "F-late-2"], "soonest due first, closed findings left out");
    s.clock.advance(TimeDelta::hours(4));
    let overdue = store.list_overdue(&acme, &PageRequest::first(10)).await.expect("overdue");
    assert_eq!(ids(&overdue.items), ["F-late-5", "F-late-2", "F-soon"]);
    let cleared = store.set_due_date(&acme, "F-soon", None, "alice").await.expect("clear");
    assert_eq!(cleared.history.last().map(|e| e.change.clone()), Some(FindingChange::DueDateSet { due: None }));
    store.transition(&acme, "F-late-5", FindingState::Remediating, "alice", None).await.expect("move");
    store.transition(&acme, "F-late-5", FindingState::Resolved, "alice", None).await.expect("resolve");
    let overdue = store.list_overdue(&acme, &PageRequest::first(10)).await.expect("overdue");
    assert_eq!(ids(&overdue.items), ["F-late-2"], "a resolved finding is no longer overdue");

    let assigned = store.assign(&acme, "F-late-2", Some("bob"), "alice").await.expect("assign");
    assert_eq!(
        (assigned.assigned_to.as_deref(), assigned.assigned_by.as_deref(), assigned.assigned_at),
        (Some("bob"), Some("alice"), Some(s.clock.now()))
    );
    store.assign(&acme, "F-soon", Some("bob"), "alice").await.expect("assign");
    store.assign(&acme, "F-undated", Some("carol"), "alice").await.expect("assign");
    let bobs = store.list_by_assignee(&acme, "bob", &PageRequest::first(10)).await.expect("by assignee");
    let mut bob_ids = ids(&bobs.items);
    bob_ids.sort_unstable();
    assert_eq!(bob_ids, ["F-late-2", "F-soon"]);
    let unassigned = store.assign(&acme, "F-soon", None, "alice").await.expect("unassign");
    assert_eq!((unassigned.assigned_to, unassigned.assigned_by, unassigned.assigned_at), (None, None, None));
    assert_eq!(ids(&store.list_by_assignee(&acme, "bob", &PageRequest::first(10)).await.expect("by assignee").items), ["F-late-2"]);
    let prioritised = store.set_priority(&acme, "F-late-2", 1, "alice").await.expect("priority");
    assert_eq!(prioritised.priority, 1);
    let open = store.list_by_state(&acme, FindingState::Open, &PageRequest::first(10)).await.expect("by state");
    assert_eq!(
        ids(&open.items),
        ["F-undated", "F-soon", "F-late-2"],
        "newest first (created in that order, one instant: by id, descending)"
    );
    assert_eq!(all(&store, &acme).await.len(), 6);
}

/// Concurrent comments and transitions: every comment is in the history, and among racers moving
/// a finding out of one state exactly one wins.
pub async fn concurrent_changes_lose_nothing(s: &Subject) {
    let store = Arc::new(s.store::<FindingWorkflows>());
    let acme = tenant("acme");
    store.create(&acme, NewFinding::new("F-1", "scanner")).await.expect("create");
    let comments: Vec<_> = (0..16)
        .map(|n| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            tokio::spawn(async move { store.add_comment(&acme, "F-1", &format!("user-{n}"), &format!("note {n}")).await })
        })
        .collect();
    let moves: Vec<_> = (0..8)
        .map(|n| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            tokio::spawn(async move { store.transition(&acme, "F-1", FindingState::Triaging, &format!("triager-{n}"), None).await })
        })
        .collect();
    for comment in comments {
        comment.await.expect("join").expect("comment");
    }
    let mut won = 0;
    for moved in moves {
        match moved.await.expect("join") {
            Ok(_) => won += 1,
            Err(StorageError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert_eq!(won, 1, "one racer moves the finding out of open");
    let stored = store.get(&acme, "F-1").await.expect("get").expect("present");
    assert_eq!(stored.state, FindingState::Triaging);
    assert_eq!(stored.history.len(), 1 + 16 + 1, "created, 16 comments, one transition");
    let mut notes: Vec<_> = stored.history.iter().filter_map(|e| e.comment.clone()).collect();
    notes.sort_unstable();
    let mut expected: Vec<_> = (0..16).map(|n| format!("note {n}")).collect();
    expected.sort_unstable();
    assert_eq!(notes, expected, "no comment lost");
    assert_eq!(stored.version, 18);
}

/// Links and parents name findings of the tenant; a parent is never the finding or one of its
/// descendants.
pub async fn links_and_parents_name_existing_findings_without_cycles(s: &Subject) {
    let store = s.store::<FindingWorkflows>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    for id in ["F-root", "F-mid", "F-leaf"] {
        store.create(&acme, NewFinding::new(id, "scanner")).await.expect("create");
    }
    store.create(&globex, NewFinding::new("F-foreign", "scanner")).await.expect("create");
    store.set_parent(&acme, "F-mid", Some("F-root"), "alice").await.expect("parent");
    store.set_parent(&acme, "F-leaf", Some("F-mid"), "alice").await.expect("parent");
    let cycle = store.set_parent(&acme, "F-root", Some("F-leaf"), "alice").await;
    assert_invalid(cycle, "parent");
    assert_invalid(store.set_parent(&acme, "F-root", Some("F-root"), "alice").await, "parent");
    assert_invalid(store.set_parent(&acme, "F-root", Some("F-foreign"), "alice").await, "parent");
    assert_eq!(store.get(&acme, "F-root").await.expect("get").expect("present").parent_finding_id, None, "refusals changed nothing");
    let children = store.list_children(&acme, "F-root", &PageRequest::first(10)).await.expect("children");
    assert_eq!(ids(&children.items), ["F-mid"]);
    let child = store.create(&acme, NewFinding { parent_finding_id: Some("F-root".into()), ..NewFinding::new("F-new", "scanner") }).await;
    assert_eq!(child.expect("create under a parent").parent_finding_id.as_deref(), Some("F-root"));
    let orphan =
        store.create(&acme, NewFinding { parent_finding_id: Some("F-none".into()), ..NewFinding::new("F-orphan", "scanner") }).await;
    assert_invalid(orphan, "parent_finding_id");

    store.link(&acme, "F-root", "F-leaf", "alice").await.expect("link");
    let linked = store.link(&acme, "F-root", "F-leaf", "alice").await.expect("link twice");
    assert_eq!(linked.linked_findings.iter().map(String::as_str).collect::<Vec<_>>(), ["F-leaf"], "one link");
    assert_invalid(store.link(&acme, "F-root", "F-foreign", "alice").await, "other");
    assert_invalid(store.link(&acme, "F-root", "F-root", "alice").await, "other");
    let unlinked = store.unlink(&acme, "F-root", "F-leaf", "alice").await.expect("unlink");
    assert!(unlinked.linked_findings.is_empty());
    assert_eq!(unlinked.history.last().map(|e| e.change.clone()), Some(FindingChange::Unlinked { finding_id: "F-leaf".into() }));

    // A deleted ancestor orphans its subtree: it can still be re-parented (the walk up ends at
    // the missing ancestor), and a finding re-created under its old children is refused.
    assert!(store.delete(&acme, "F-root").await.expect("delete"));
    store.create(&acme, NewFinding::new("F-other", "scanner")).await.expect("create");
    store.set_parent(&acme, "F-other", Some("F-leaf"), "alice").await.expect("under an orphaned subtree");
    let back = store.create(&acme, NewFinding { parent_finding_id: Some("F-leaf".into()), ..NewFinding::new("F-root", "scanner") }).await;
    assert_invalid(back, "parent_finding_id");
    assert!(store.get(&acme, "F-root").await.expect("get").is_none(), "nothing written");

    // Concurrent moves that would close a cycle: at most one succeeds.
    store.create(&acme, NewFinding::new("F-a", "scanner")).await.expect("create");
    store.create(&acme, NewFinding::new("F-b", "scanner")).await.expect("create");
    let (ab, ba) = tokio::join!(store.set_parent(&acme, "F-a", Some("F-b"), "alice"), store.set_parent(&acme, "F-b", Some("F-a"), "bob"));
    assert!(ab.is_ok() != ba.is_ok(), "exactly one of two crossing moves: {ab:?} {ba:?}");
    let (a, b) = (store.get(&acme, "F-a").await.expect("get").expect("a"), store.get(&acme, "F-b").await.expect("get").expect("b"));
    assert!(a.parent_finding_id.is_none() || b.parent_finding_id.is_none(), "no cycle");
}

/// A long history keeps its latest events and counts the dropped ones; the finding never stops
/// accepting changes.
pub async fn a_full_history_drops_its_oldest_events(s: &Subject) {
    use storage_core::stores::finding_workflow::MAX_HISTORY;
    let store = s.store::<FindingWorkflows>();
    let acme = tenant("acme");
    store.create(&acme, NewFinding::new("F-1", "scanner")).await.expect("create");
    for n in 0..MAX_HISTORY + 4 {
        store.add_comment(&acme, "F-1", "bot", &format!("c{n}")).await.expect("comment");
    }
    let moved = store.transition(&acme, "F-1", FindingState::Triaging, "alice", None).await.expect("a transition past the cap");
    assert_eq!(moved.history.len(), MAX_HISTORY);
    assert_eq!(moved.history_dropped, 6, "created and the first five comments made room");
    assert_eq!(moved.history.first().and_then(|e| e.comment.as_deref()), Some("c5"));
    assert_eq!(
        moved.history.last().map(|e| e.change.clone()),
        Some(FindingChange::Transitioned { from: FindingState::Open, to: FindingState::Triaging })
    );
}

/// Bad input is `InvalidInput` naming the field, and nothing is written.
pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = s.store::<FindingWorkflows>();
    let acme = tenant("acme");
    assert_invalid(store.create(&acme, NewFinding { priority: 0, ..NewFinding::new("F-1", "scanner") }).await, "priority");
    assert_invalid(store.create(&acme, NewFinding { priority: 6, ..NewFinding::new("F-1", "scanner") }).await, "priority");
    assert_invalid(store.create(&acme, NewFinding::new("F-\u{7}", "scanner")).await, "finding_id");
    assert_invalid(store.create(&acme, NewFinding::new("F-1", "")).await, "actor");
    let far = s.clock.now() + TimeDelta::days(4_000_000);
    assert_invalid(store.create(&acme, NewFinding { due_date: Some(far), ..NewFinding::new("F-1", "scanner") }).await, "due_date");
    assert!(store.get(&acme, "F-1").await.expect("get").is_none(), "nothing written");
    let before = store.create(&acme, NewFinding::new("F-1", "scanner")).await.expect("create");
    assert_invalid(store.add_comment(&acme, "F-1", "alice", "   ").await, "comment");
    assert_invalid(store.add_comment(&acme, "F-1", "alice", "nul\0byte").await, "comment");
    assert_invalid(
        store.add_comment(&acme, "F-1", "alice", &"x".repeat(storage_core::stores::finding_workflow::MAX_COMMENT_BYTES + 1)).await,
        "comment",
    );
    assert_invalid(store.set_priority(&acme, "F-1", 9, "alice").await, "priority");
    assert_invalid(store.assign(&acme, "F-1", Some("bad\u{7}"), "alice").await, "assignee");
    assert_invalid(store.transition(&acme, "F-1", FindingState::Triaging, "", None).await, "actor");
    assert_eq!(store.get(&acme, "F-1").await.expect("get").expect("present"), before, "nothing changed");
}

/// A tenant never sees, lists or changes another's findings.
pub async fn tenants_never_see_or_change_each_others_findings(s: &Subject) {
    let store = s.store::<FindingWorkflows>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mine =
        store.create(&acme, NewFinding { due_date: Some(s.clock.now()), ..NewFinding::new("F-1", "scanner") }).await.expect("create");
    store.assign(&acme, "F-1", Some("bob"), "alice").await.expect("assign");
    s.clock.advance(TimeDelta::hours(1));
    assert!(store.get(&globex, "F-1").await.expect("get").is_none());
    assert!(matches!(store.transition(&globex, "F-1", FindingState::Triaging, "eve", None).await, Err(StorageError::NotFound { .. })));
    assert!(matches!(store.add_comment(&globex, "F-1", "eve", "hi").await, Err(StorageError::NotFound { .. })));
    assert!(!store.delete(&globex, "F-1").await.expect("delete"));
    assert!(store.list_overdue(&globex, &PageRequest::first(10)).await.expect("overdue").items.is_empty());
    assert!(store.list_by_assignee(&globex, "bob", &PageRequest::first(10)).await.expect("assignee").items.is_empty());
    assert!(all(&store, &globex).await.is_empty());
    let theirs = store.create(&globex, NewFinding::new("F-1", "scanner")).await.expect("same id, other tenant");
    assert_eq!(theirs.history.len(), 1);
    let stored = store.get(&acme, "F-1").await.expect("get").expect("present");
    assert_eq!((stored.version, stored.created_at, stored.state), (mine.version + 1, mine.created_at, FindingState::Open));
}
