//! Conformance cases of `ApprovalRequestStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use std::sync::Arc;
use storage_core::{
    ApprovalRequest, ApprovalRequestStore, ApprovalRequests, ApprovalResponse, Clock, PageRequest, RequestStatus, Scope, StorageError,
};

/// A field a bad record names, and how the record is spoiled.
type Spoil = (&'static str, fn(&mut ApprovalRequest));

fn request(t: &str, id: &str, priority: u8) -> ApprovalRequest {
    let mut request = ApprovalRequest::new(tenant(t), id, "wf-1", "step-2", "Ship the release?");
    request.priority = priority;
    request.request_data = json!({"release": "1.4"});
    request
}

fn due(t: &str, id: &str, deadline: DateTime<Utc>) -> ApprovalRequest {
    let mut r = request(t, id, 3);
    r.expires_at = Some(deadline);
    r
}

fn ids(requests: &[ApprovalRequest]) -> Vec<&str> {
    requests.iter().map(|r| r.request_id.as_str()).collect()
}

/// A request reads back as created, with the store's own fields; a second create of its id is
/// refused; lists by status and workflow run newest first in pages.
pub async fn a_request_round_trips_and_lists_by_status_and_workflow(s: &Subject) {
    let store = s.store::<ApprovalRequests>();
    let acme = tenant("acme");
    let mut asked = request("acme", "req-1", 1);
    (asked.description, asked.requester_id, asked.workspace_id) =
        (Some("Release 1.4 to all users".into()), Some("bot".into()), Some("ws".into()));
    asked.tags = vec!["release".into()];
    asked.expires_at = Some(s.clock.now() + TimeDelta::hours(4));
    // Fields the store owns are overridden, whatever the caller says.
    (asked.status, asked.responder_id, asked.responded_at, asked.response_data) =
        (RequestStatus::Approved, Some("mallory".into()), Some(s.clock.now()), Some(json!("forged")));
    let created = store.create(&asked).await.expect("create");
    assert_eq!(
        (created.status, created.responder_id.clone(), created.responded_at, created.response_data.clone(), created.requested_at),
        (RequestStatus::Pending, None, None, None, s.clock.now())
    );
    let got = store.get(&acme, "req-1").await.expect("get").expect("present");
    assert_eq!(got, created, "round trip");
    assert_eq!((got.request_data, got.priority, got.expires_at), (json!({"release": "1.4"}), 1, asked.expires_at));
    let again = store.create(&request("acme", "req-1", 5)).await;
    assert!(matches!(again, Err(StorageError::Conflict { .. })), "{again:?}");
    assert_eq!(store.get(&acme, "req-1").await.expect("get").expect("present"), created, "unchanged");

    for i in 2..=6 {
        s.clock.advance(TimeDelta::seconds(1));
        let mut r = request("acme", &format!("req-{i}"), 3);
        if i % 2 == 0 {
            r.workflow_id = "wf-2".into();
        }
        store.create(&r).await.expect("create");
    }
    store.respond(&acme, "req-3", ApprovalResponse::Reject, "cto", Some(json!({"why": "not yet"}))).await.expect("reject");
    store.respond(&acme, "req-5", ApprovalResponse::Approve, "cto", None).await.expect("approve");
    let pending = collect_all(2, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_by_status(acme, RequestStatus::Pending, &p).await }
    })
    .await;
    assert_eq!(ids(&pending), ["req-6", "req-4", "req-2", "req-1"], "newest first");
    let wf2 = collect_all(1, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_by_workflow(acme, "wf-2", &p).await }
    })
    .await;
    assert_eq!(ids(&wf2), ["req-6", "req-4", "req-2"]);
    let decided_wf1 = store.list(&acme, Some(RequestStatus::Rejected), Some("wf-1"), &PageRequest::first(10)).await.expect("list");
    assert_eq!(ids(&decided_wf1.items), ["req-3"]);
    assert_eq!(decided_wf1.items[0].response_data, Some(json!({"why": "not yet"})));
    assert!(store.delete(&acme, "req-6").await.expect("delete"));
    assert!(!store.delete(&acme, "req-6").await.expect("delete"));
    assert_eq!(store.get(&acme, "req-6").await.expect("get"), None);
}

/// Pending requests list highest priority first, then newest, ties by id, in pages that are the
/// same whatever their size; a decided request leaves the list.
pub async fn pending_requests_list_by_priority_then_newest_in_stable_pages(s: &Subject) {
    let store = s.store::<ApprovalRequests>();
    let acme = tenant("acme");
    for (id, priority) in [("r-1", 3), ("r-2", 1), ("r-3", 3), ("r-4", 5), ("r-5", 1)] {
        store.create(&request("acme", id, priority)).await.expect("create");
        s.clock.advance(TimeDelta::minutes(1));
    }
    // Three of one priority at one instant: ordered by id.
    for id in ["r-8", "r-6", "r-7"] {
        store.create(&request("acme", id, 2)).await.expect("create");
    }
    store.create(&request("globex", "g-1", 1)).await.expect("another tenant");
    let expected = ["r-5", "r-2", "r-6", "r-7", "r-8", "r-3", "r-1", "r-4"];
    for size in [1, 2, 3, 100] {
        let pending = collect_all(size, |p| {
            let (store, acme) = (&store, &acme);
            async move { store.list_pending(acme, &p).await }
        })
        .await;
        assert_eq!(ids(&pending), expected, "pages of {size}: highest priority first, then newest, then id");
    }
    store.respond(&acme, "r-3", ApprovalResponse::Approve, "cto", None).await.expect("approve");
    store.respond(&acme, "r-6", ApprovalResponse::Reject, "cto", None).await.expect("reject");
    let pending = store.list_pending(&acme, &PageRequest::first(100)).await.expect("pending");
    assert_eq!(ids(&pending.items), ["r-5", "r-2", "r-7", "r-8", "r-1", "r-4"], "a decided request is not pending");
}

/// 32 concurrent approvals and rejections of one request: exactly one decides, the rest are
/// `Conflict`, and the stored decision is the winner's.
pub async fn concurrent_responders_have_one_winner(s: &Subject) {
    let store = Arc::new(s.store::<ApprovalRequests>());
    let acme = tenant("acme");
    store.create(&request("acme", "req-1", 2)).await.expect("create");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            let response = if i % 2 == 0 { ApprovalResponse::Approve } else { ApprovalResponse::Reject };
            tokio::spawn(
                async move { (i, store.respond(&acme, "req-1", response, &format!("approver-{i}"), Some(json!({"by": i}))).await) },
            )
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("join") {
            (i, Ok(decided)) => winners.push((i, decided)),
            (_, Err(StorageError::Conflict { .. })) => {}
            (i, Err(e)) => panic!("approver {i}: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one decision");
    let (i, decided) = winners.pop().expect("a winner");
    let stored = store.get(&acme, "req-1").await.expect("get").expect("present");
    assert_eq!(stored, decided, "the stored decision is the winner's");
    let expected = if i % 2 == 0 { RequestStatus::Approved } else { RequestStatus::Rejected };
    assert_eq!((stored.status, stored.responder_id.as_deref()), (expected, Some(format!("approver-{i}").as_str())));
    assert_eq!((stored.response_data, stored.responded_at, stored.version), (Some(json!({"by": i})), Some(s.clock.now()), 2));
}

/// Every response to a decided, expired or overdue request is `Conflict` and changes nothing.
pub async fn every_decided_or_overdue_request_refuses_a_response(s: &Subject) {
    let store = s.store::<ApprovalRequests>();
    let acme = tenant("acme");
    let start = s.clock.now();
    store.create(&request("acme", "approved", 3)).await.expect("create");
    store.respond(&acme, "approved", ApprovalResponse::Approve, "cto", None).await.expect("approve");
    store.create(&request("acme", "rejected", 3)).await.expect("create");
    store.respond(&acme, "rejected", ApprovalResponse::Reject, "cto", None).await.expect("reject");
    store.create(&due("acme", "expired", start + TimeDelta::minutes(1))).await.expect("create");
    store.create(&due("acme", "at-deadline", start + TimeDelta::minutes(2))).await.expect("create");
    store.create(&due("acme", "overdue", start + TimeDelta::minutes(1))).await.expect("create");
    s.clock.advance(TimeDelta::minutes(1));
    assert_eq!(store.expire_due(Scope::Tenant(&acme)).await.expect("sweep"), 2, "`expired` and `overdue` are due");
    store.create(&due("acme", "overdue", start + TimeDelta::minutes(1))).await.expect_err("the id is still taken");
    assert!(store.delete(&acme, "overdue").await.expect("delete"));
    store.create(&due("acme", "overdue", start + TimeDelta::seconds(30))).await.expect("an overdue request, not swept yet");
    s.clock.advance(TimeDelta::minutes(1));
    let expected = [
        ("approved", RequestStatus::Approved),
        ("rejected", RequestStatus::Rejected),
        ("expired", RequestStatus::Expired),
        ("at-deadline", RequestStatus::Pending),
        ("overdue", RequestStatus::Pending),
    ];
    for (id, status) in expected {
        for response in [ApprovalResponse::Approve, ApprovalResponse::Reject] {
            let before = store.get(&acme, id).await.expect("get").expect("present");
            assert_eq!(before.status, status, "{id}");
            let answered = store.respond(&acme, id, response, "late", Some(json!("late"))).await;
            assert!(matches!(answered, Err(StorageError::Conflict { .. })), "{id} {response:?}: {answered:?}");
            assert_eq!(store.get(&acme, id).await.expect("get").expect("present"), before, "{id}: unchanged");
        }
    }
    let missing = store.respond(&acme, "missing", ApprovalResponse::Approve, "cto", None).await;
    assert!(matches!(missing, Err(StorageError::NotFound { .. })), "{missing:?}");
}

/// Deadlines compare as instants (a deadline half a second into a second is after that whole
/// second, which text order gets wrong); the sweep marks only overdue pending requests expired,
/// in one tenant or in all, and an expired request stays readable.
pub async fn deadlines_compare_as_instants_and_the_sweep_expires_only_overdue_requests(s: &Subject) {
    let store = s.store::<ApprovalRequests>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let whole = DateTime::<Utc>::from_timestamp(s.clock.now().timestamp() + 3_600, 0).expect("instant");
    // As ISO text "…:00Z" sorts after "…:00.500Z", though it is the earlier instant.
    store.create(&due("acme", "at-whole", whole)).await.expect("create");
    store.create(&due("acme", "half-past", whole + TimeDelta::milliseconds(500))).await.expect("create");
    store.create(&due("acme", "tomorrow", whole + TimeDelta::days(1))).await.expect("create");
    store.create(&request("acme", "no-deadline", 1)).await.expect("create");
    store.create(&due("acme", "decided", whole)).await.expect("create");
    store.respond(&acme, "decided", ApprovalResponse::Approve, "cto", None).await.expect("approve in time");
    store.create(&due("globex", "g-1", whole)).await.expect("create");
    s.clock.set(whole + TimeDelta::milliseconds(250));
    let overdue = store.list_expired(&acme, &PageRequest::first(10)).await.expect("expired");
    assert_eq!(ids(&overdue.items), ["at-whole"], "only the deadline before now, compared as instants");
    s.clock.set(whole + TimeDelta::milliseconds(500));
    let overdue = collect_all(1, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_expired(acme, &p).await }
    })
    .await;
    assert_eq!(ids(&overdue), ["at-whole", "half-past"], "soonest deadline first; overdue from the deadline on");

    assert_eq!(store.expire_due(Scope::Tenant(&acme)).await.expect("sweep"), 2);
    assert_eq!(store.get(&globex, "g-1").await.expect("get").expect("present").status, RequestStatus::Pending, "one tenant's sweep");
    assert_eq!(store.expire_due(Scope::AllTenants).await.expect("sweep"), 1, "the other tenant's");
    assert_eq!(store.expire_due(Scope::AllTenants).await.expect("sweep"), 0, "nothing twice");
    let expired = store.get(&acme, "at-whole").await.expect("get").expect("an expired request stays readable");
    assert_eq!((expired.status, expired.responded_at, expired.responder_id), (RequestStatus::Expired, Some(s.clock.now()), None));
    assert_eq!(store.get(&acme, "decided").await.expect("get").expect("present").status, RequestStatus::Approved, "decided stays");
    assert!(store.list_expired(&acme, &PageRequest::first(10)).await.expect("expired").items.is_empty(), "swept");
    let by_status = store.list_by_status(&acme, RequestStatus::Expired, &PageRequest::first(10)).await.expect("list");
    assert_eq!(ids(&by_status.items), ["half-past", "at-whole"], "newest first (ties by id, descending)");
    let pending = store.list_pending(&acme, &PageRequest::first(10)).await.expect("pending");
    assert_eq!(ids(&pending.items), ["no-deadline", "tomorrow"], "expired requests are not pending");

    // A sweep larger than one page of work expires every due request.
    for i in 0..620 {
        store.create(&due("globex", &format!("bulk-{i:03}"), s.clock.now() + TimeDelta::seconds(1))).await.expect("create");
    }
    s.clock.advance(TimeDelta::seconds(1));
    assert_eq!(store.expire_due(Scope::AllTenants).await.expect("sweep"), 620);
    assert!(store.list_expired(&globex, &PageRequest::first(10)).await.expect("expired").items.is_empty());
}

/// Bad input is `InvalidInput` naming the field, never a panic, and writes nothing.
pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = s.store::<ApprovalRequests>();
    let acme = tenant("acme");
    let cases: [Spoil; 11] = [
        ("request_id", |r| r.request_id = String::new()),
        ("priority", |r| r.priority = 0),
        ("priority", |r| r.priority = 6),
        ("workflow_id", |r| r.workflow_id = String::new()),
        ("step_id", |r| r.step_id = "s\u{7}".into()),
        ("title", |r| r.title = "  ".into()),
        ("title", |r| r.title = "a\u{0}b".into()),
        ("description", |r| r.description = Some("d".repeat(17 * 1024))),
        ("requester_id", |r| r.requester_id = Some("x".repeat(300))),
        ("workspace_id", |r| r.workspace_id = Some(String::new())),
        ("tags", |r| r.tags = vec![String::new()]),
    ];
    for (field, spoil) in cases {
        let mut bad = request("acme", "req-bad", 3);
        spoil(&mut bad);
        assert_invalid(store.create(&bad).await, field);
    }
    let mut ancient = request("acme", "req-bad", 3);
    ancient.expires_at = Some(DateTime::<Utc>::MIN_UTC);
    assert_invalid(store.create(&ancient).await, "expires_at");
    let mut long = request("acme", "req-long", 3);
    long.description = Some("Line one\n\tline two\n".repeat(500));
    store.create(&long).await.expect("a long description with lines and tabs is fine");
    assert!(store.delete(&acme, "req-long").await.expect("delete"));
    assert!(store.list(&acme, None, None, &PageRequest::first(10)).await.expect("list").items.is_empty(), "nothing partial");

    store.create(&request("acme", "req-1", 3)).await.expect("create");
    let before = store.get(&acme, "req-1").await.expect("get");
    assert_invalid(store.respond(&acme, "req-1", ApprovalResponse::Approve, "c\u{7}o", None).await, "responder_id");
    assert_invalid(store.respond(&acme, "req-1", ApprovalResponse::Approve, "", None).await, "responder_id");
    assert_eq!(store.get(&acme, "req-1").await.expect("get"), before, "a refused response writes nothing");
    assert_invalid(store.list_by_workflow(&acme, "w\u{1b}", &PageRequest::first(10)).await, "workflow_id");
    assert_invalid(store.get(&acme, "").await, "request_id");
}

/// Another tenant never sees, decides, expires or deletes a request, even one with the same id.
pub async fn tenants_never_see_or_change_each_others_requests(s: &Subject) {
    let store = s.store::<ApprovalRequests>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    store.create(&due("acme", "req-1", s.clock.now() + TimeDelta::minutes(1))).await.expect("create");
    let before = store.get(&acme, "req-1").await.expect("get").expect("present");
    assert_eq!(store.get(&globex, "req-1").await.expect("get"), None);
    let answered = store.respond(&globex, "req-1", ApprovalResponse::Approve, "intruder", None).await;
    assert!(matches!(answered, Err(StorageError::NotFound { .. })), "{answered:?}");
    assert!(!store.delete(&globex, "req-1").await.expect("delete"));
    assert!(store.list_pending(&globex, &PageRequest::first(10)).await.expect("pending").items.is_empty());
    assert!(store.list_by_workflow(&globex, "wf-1", &PageRequest::first(10)).await.expect("list").items.is_empty());
    s.clock.advance(TimeDelta::minutes(2));
    assert!(store.list_expired(&globex, &PageRequest::first(10)).await.expect("expired").items.is_empty());
    assert_eq!(store.expire_due(Scope::Tenant(&globex)).await.expect("sweep"), 0, "their sweep leaves ours");
    assert_eq!(store.get(&acme, "req-1").await.expect("get").expect("present"), before, "ours untouched");
    // The same id in another tenant is another request, decided on its own.
    store.create(&request("globex", "req-1", 1)).await.expect("their own req-1");
    store.respond(&globex, "req-1", ApprovalResponse::Reject, "them", None).await.expect("theirs");
    assert_eq!(store.get(&acme, "req-1").await.expect("get").expect("present"), before, "ours still untouched");
}
