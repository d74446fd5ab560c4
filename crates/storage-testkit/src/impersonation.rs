//! Conformance cases of `ImpersonationStore`.

use crate::{Subject, assert_invalid};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{
    AuditStore, Clock, ImpersonationAuditQuery, ImpersonationStore, Impersonations, NewImpersonation, PageRequest, StorageError, TenantId,
};

fn new(admin: &str, target: &str) -> NewImpersonation {
    NewImpersonation {
        admin_id: admin.to_owned(),
        admin_email: format!("{admin}@example.com"),
        target_id: target.to_owned(),
        target_email: format!("{target}@example.com"),
        reason: "ticket 4711".to_owned(),
        ttl: TimeDelta::hours(1),
        ip_address: Some("10.0.0.1".to_owned()),
        user_agent: Some("browser".to_owned()),
    }
}

fn actions(entries: &[storage_core::AuditEntry]) -> Vec<String> {
    entries.iter().map(|e| e.event.action.clone()).collect()
}

pub async fn a_session_starts_acts_and_ends_once_with_every_step_audited(s: &Subject) {
    let store = s.store::<Impersonations>();
    let started = store.start(new("admin-1", "user-1")).await.expect("start");
    let id = started.session_id.expose().clone();
    assert!(id.starts_with("imp_"));
    assert_ne!(started.session.session_digest, id, "the id is stored as its digest");
    let mut details = serde_json::Map::new();
    details.insert("path".into(), "/billing".into());
    assert_eq!(store.record_action(&id, details.clone()).await.expect("action").actions_performed, 1);
    assert_eq!(store.record_action(&id, details).await.expect("action").actions_performed, 2);
    let ended = store.end(&id, "admin-1").await.expect("end");
    assert_eq!((ended.ended_at, ended.ended_by.as_deref(), ended.actions_performed), (Some(s.clock.now()), Some("admin-1"), 2));
    assert!(matches!(store.end(&id, "admin-1").await, Err(StorageError::Conflict { .. })), "ended once");
    assert!(matches!(store.record_action(&id, serde_json::Map::new()).await, Err(StorageError::Conflict { .. })));
    assert!(matches!(store.end("imp_unknown", "admin-1").await, Err(StorageError::NotFound { .. })));
    assert_eq!(store.get(&id).await.expect("get"), Some(ended));
    let log = store.audit_log(&ImpersonationAuditQuery::default(), &PageRequest::first(10)).await.expect("log").items;
    let mut expected = vec!["impersonation.start", "impersonation.action", "impersonation.action", "impersonation.end"];
    expected.reverse();
    assert_eq!(actions(&log), expected, "newest first");
    assert!(log.iter().all(|e| e.event.resource_id.as_deref() == Some("user-1")));
    let report = s.store::<storage_core::Audit>().verify(&TenantId::system(), None, None).await.expect("verify");
    assert!(report.broken.is_none(), "the audit chain verifies: {report:?}");
    let ends = ImpersonationAuditQuery { event_type: Some("end".to_owned()), ..ImpersonationAuditQuery::default() };
    assert_eq!(store.audit_log(&ends, &PageRequest::first(10)).await.expect("log").items.len(), 1);
}

pub async fn sessions_time_out_and_are_swept(s: &Subject) {
    let store = s.store::<Impersonations>();
    let a = store.start(new("admin-1", "user-1")).await.expect("start");
    let b = store.start(NewImpersonation { ttl: TimeDelta::hours(2), ..new("admin-2", "user-2") }).await.expect("start");
    assert_eq!(store.active_sessions(None).await.expect("active").len(), 2);
    assert_eq!(store.active_sessions(Some("admin-1")).await.expect("active").len(), 1);
    s.clock.advance(TimeDelta::hours(1));
    assert!(matches!(store.record_action(a.session_id.expose(), serde_json::Map::new()).await, Err(StorageError::Conflict { .. })));
    assert_eq!(store.active_sessions(None).await.expect("active").len(), 1);
    let expired = store.expire_sessions().await.expect("sweep");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].ended_by.as_deref(), Some("timeout"));
    assert!(store.expire_sessions().await.expect("sweep").is_empty(), "once");
    let timeouts = ImpersonationAuditQuery { event_type: Some("timeout".to_owned()), ..ImpersonationAuditQuery::default() };
    assert_eq!(store.audit_log(&timeouts, &PageRequest::first(10)).await.expect("log").items.len(), 1);
    let all = store.sessions_for_admin("admin-1", true, &PageRequest::first(10)).await.expect("list");
    assert_eq!(all.items.len(), 1);
    assert!(store.sessions_for_admin("admin-1", false, &PageRequest::first(10)).await.expect("list").items.is_empty());
    store.end(b.session_id.expose(), "admin-2").await.expect("b still runs");
}

pub async fn retention_deletes_old_sessions_and_audits_itself(s: &Subject) {
    let store = s.store::<Impersonations>();
    let old = store.start(new("admin-1", "user-1")).await.expect("start");
    store.end(old.session_id.expose(), "admin-1").await.expect("end");
    s.clock.advance(TimeDelta::days(100));
    let recent = store.start(new("admin-1", "user-2")).await.expect("start");
    store.end(recent.session_id.expose(), "admin-1").await.expect("end");
    assert_eq!(store.cleanup_old_sessions(TimeDelta::days(90)).await.expect("cleanup"), 1);
    assert!(store.get(old.session_id.expose()).await.expect("get").is_none());
    assert!(store.get(recent.session_id.expose()).await.expect("get").is_some());
    let retention = ImpersonationAuditQuery { event_type: Some("retention".to_owned()), ..ImpersonationAuditQuery::default() };
    let log = store.audit_log(&retention, &PageRequest::first(10)).await.expect("log").items;
    assert_eq!(log.len(), 1, "retention leaves its own record");
    assert_eq!(log[0].event.metadata.get("sessions_deleted").and_then(|v| v.as_u64()), Some(1));
    let starts = ImpersonationAuditQuery { event_type: Some("start".to_owned()), ..ImpersonationAuditQuery::default() };
    assert_eq!(store.audit_log(&starts, &PageRequest::first(10)).await.expect("log").items.len(), 2, "the audit log is kept");
}

pub async fn concurrent_ends_end_a_session_once(s: &Subject) {
    let store = Arc::new(s.store::<Impersonations>());
    let started = store.start(new("admin-1", "user-1")).await.expect("start");
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let (store, id) = (Arc::clone(&store), started.session_id.expose().clone());
            tokio::spawn(async move { store.end(&id, &format!("admin-{n}")).await })
        })
        .collect();
    let mut ended = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ended += 1,
            Err(StorageError::Conflict { .. }) => {}
            Err(e) => panic!("end: {e}"),
        }
    }
    assert_eq!(ended, 1);
    let ends = ImpersonationAuditQuery { event_type: Some("end".to_owned()), ..ImpersonationAuditQuery::default() };
    assert_eq!(store.audit_log(&ends, &PageRequest::first(20)).await.expect("log").items.len(), 1, "and audited once");
}

pub async fn bad_input_is_refused(s: &Subject) {
    let store = s.store::<Impersonations>();
    assert_invalid(store.start(NewImpersonation { reason: " ".to_owned(), ..new("a", "u") }).await, "reason");
    assert_invalid(store.start(NewImpersonation { ttl: TimeDelta::hours(9), ..new("a", "u") }).await, "ttl");
    assert_invalid(store.start(NewImpersonation { admin_email: "nope".to_owned(), ..new("a", "u") }).await, "admin_email");
    assert_invalid(store.start(NewImpersonation { target_id: String::new(), ..new("a", "u") }).await, "target_id");
    assert_invalid(store.end("", "a").await, "session_id");
    assert!(store.active_sessions(None).await.expect("active").is_empty(), "nothing was written");
    store.log_denied("admin-1", "user-1", "not an admin").await.expect("denied");
    let denied = ImpersonationAuditQuery { event_type: Some("denied".to_owned()), ..ImpersonationAuditQuery::default() };
    assert_eq!(store.audit_log(&denied, &PageRequest::first(10)).await.expect("log").items.len(), 1);
}
