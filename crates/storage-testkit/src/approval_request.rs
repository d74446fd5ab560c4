//! Conformance cases of `ApprovalRequestStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use serde_json::json;
use std::sync::Arc;
use storage_core::{
    ApprovalRequest, ApprovalRequestStore, ApprovalRequests, ApprovalResponse, Clock, PageRequest, RequestStatus, Scope, StorageError,
};

fn request(t: &str, id: &str, priority: u8) -> ApprovalRequest {
    let mut request = ApprovalRequest::new(tenant(t), id, "wf-1", "step-2", "Ship the release?");
    request.priority = priority;
    request.request_data = json!({"release": "1.4"});
    request
}

/// 32 concurrent approvals and rejections of one request: exactly one decides.
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
    assert_eq!(stored.response_data, Some(json!({"by": i})));
}

pub async fn deadlines_expire_requests_and_pending_ones_list_by_priority(s: &Subject) {
    let store = s.store::<ApprovalRequests>();
    let acme = tenant("acme");
    for (id, priority, deadline_hours) in
        [("r-1", 3, Some(1)), ("r-2", 1, Some(5)), ("r-3", 3, None), ("r-4", 5, Some(1)), ("r-5", 1, None)]
    {
        let mut r = request("acme", id, priority);
        r.expires_at = deadline_hours.map(|h| s.clock.now() + TimeDelta::hours(h));
        store.create(&r).await.expect("create");
        s.clock.advance(TimeDelta::minutes(1));
    }
    store.create(&request("globex", "g-1", 1)).await.expect("another tenant");
    let pending = collect_all(2, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_pending(acme, &p).await }
    })
    .await;
    assert_eq!(
        pending.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(),
        ["r-5", "r-2", "r-3", "r-1", "r-4"],
        "highest priority first, then newest"
    );
    store.respond(&acme, "r-3", ApprovalResponse::Approve, "cto", None).await.expect("approve");
    assert_eq!(
        store.list_pending(&acme, &PageRequest::first(10)).await.expect("pending").items.len(),
        4,
        "a decided request is not pending"
    );

    s.clock.advance(TimeDelta::hours(2));
    let due = store.list_expired(&acme, &PageRequest::first(10)).await.expect("expired");
    assert_eq!(due.items.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(), ["r-1", "r-4"], "pending and past the deadline");
    assert!(
        matches!(store.respond(&acme, "r-1", ApprovalResponse::Approve, "cto", None).await, Err(StorageError::Conflict { .. })),
        "a decision after the deadline is refused"
    );
    assert_eq!(store.expire_due(Scope::AllTenants).await.expect("expire"), 2);
    assert_eq!(store.expire_due(Scope::Tenant(&acme)).await.expect("again"), 0);
    let expired = store.get(&acme, "r-1").await.expect("get").expect("present");
    assert_eq!((expired.status, expired.responded_at), (RequestStatus::Expired, Some(s.clock.now())));
    assert!(matches!(store.respond(&acme, "r-4", ApprovalResponse::Reject, "cto", None).await, Err(StorageError::Conflict { .. })));
    let by_status = store.list(&acme, Some(RequestStatus::Expired), None, &PageRequest::first(10)).await.expect("list");
    assert_eq!(by_status.items.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(), ["r-4", "r-1"], "newest first");
    assert_eq!(store.list(&acme, None, Some("wf-1"), &PageRequest::first(10)).await.expect("list").items.len(), 5);
    assert!(matches!(store.respond(&acme, "g-1", ApprovalResponse::Approve, "cto", None).await, Err(StorageError::NotFound { .. })));

    assert_invalid(store.create(&request("acme", "r-9", 0)).await, "priority");
    assert_invalid(store.create(&request("acme", "r-9", 6)).await, "priority");
    assert_invalid(store.respond(&acme, "r-2", ApprovalResponse::Approve, "c\u{7}o", None).await, "responder_id");
    assert_eq!(store.get(&acme, "r-9").await.expect("get"), None);
    assert!(store.delete(&acme, "r-5").await.expect("delete"));
}
