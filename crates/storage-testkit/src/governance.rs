//! Conformance cases of `GovernanceStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{
    Approval, ApprovalDecision, ApprovalStatus, Clock, Decision, Governance, GovernanceRetention, GovernanceStore, PageRequest,
    StorageError, Verification,
};

fn approval(id: &str, risk: &str) -> Approval {
    let mut approval = Approval::new(tenant("acme"), id, "Deploy to production", "ada", 3_600);
    approval.risk_level = risk.into();
    approval.changes = serde_json::json!({"deploy": "v2"});
    approval
}

pub async fn an_approval_is_decided_once_before_its_deadline(s: &Subject) {
    let store = s.store::<Governance>();
    let acme = tenant("acme");
    let filed = store.save_approval(&approval("a-1", "high")).await.expect("file");
    assert_eq!(
        (filed.status, filed.requested_at, filed.expires_at),
        (ApprovalStatus::Pending, s.clock.now(), s.clock.now() + TimeDelta::hours(1))
    );
    let approved = store.decide_approval(&acme, "a-1", ApprovalDecision::Approve { by: "bob".into() }).await.expect("approve");
    assert_eq!((approved.status, approved.decided_by.as_deref()), (ApprovalStatus::Approved, Some("bob")));
    let reject = ApprovalDecision::Reject { by: "carol".into(), reason: "no".into() };
    assert!(matches!(store.decide_approval(&acme, "a-1", reject.clone()).await, Err(StorageError::Conflict { .. })), "decided once");
    let kept = store.get_approval(&acme, "a-1").await.expect("get").expect("present");
    assert_eq!(
        (kept.status, kept.decided_by.as_deref(), kept.rejection_reason),
        (ApprovalStatus::Approved, Some("bob"), None),
        "the first decision stays whole"
    );
    store.save_approval(&approval("a-2", "low")).await.expect("file");
    s.clock.advance(TimeDelta::hours(2));
    assert!(matches!(store.decide_approval(&acme, "a-2", reject).await, Err(StorageError::Conflict { .. })), "past the deadline");
    let late = store.get_approval(&acme, "a-2").await.expect("get").expect("present");
    assert_eq!(late.status_at(s.clock.now()), ApprovalStatus::Expired);
    let expired = collect_all(5, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_approvals(acme, Some(ApprovalStatus::Expired), None, &p).await }
    })
    .await;
    assert_eq!(expired.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["a-2"]);
    assert_eq!(store.expire_overdue().await.expect("expire"), 1);
    assert_eq!(store.get_approval(&acme, "a-2").await.expect("get").expect("present").status, ApprovalStatus::Expired);
    assert_eq!(store.expire_overdue().await.expect("again"), 0);
    store.save_approval(&approval("a-3", "high")).await.expect("file");
    let cancelled = store.decide_approval(&acme, "a-3", ApprovalDecision::Cancel { by: "ada".into() }).await.expect("cancel");
    assert_eq!(cancelled.status, ApprovalStatus::Cancelled);
    let high = collect_all(5, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_approvals(acme, None, Some("high"), &p).await }
    })
    .await;
    assert_eq!(high.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["a-3", "a-1"], "newest first");
    assert!(matches!(store.save_approval(&approval("a-1", "low")).await, Err(StorageError::Conflict { .. })));
    let mut bad = approval("a-4", "low");
    bad.timeout_seconds = 0;
    assert_invalid(store.save_approval(&bad).await, "timeout_seconds");
    assert!(matches!(
        store.decide_approval(&acme, "missing", ApprovalDecision::Cancel { by: "x".into() }).await,
        Err(StorageError::NotFound { .. })
    ));
    let globex = tenant("globex");
    assert!(store.get_approval(&globex, "a-1").await.expect("get").is_none(), "tenants are isolated");
    assert!(matches!(
        store.decide_approval(&globex, "a-3", ApprovalDecision::Cancel { by: "x".into() }).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(store.list_approvals(&globex, None, None, &PageRequest::first(10)).await.expect("list").items.is_empty());
    assert!(!store.delete_approval(&globex, "a-3").await.expect("delete elsewhere"));
    assert!(store.delete_approval(&acme, "a-3").await.expect("delete"));
}

pub async fn concurrent_decisions_have_one_winner(s: &Subject) {
    let store = Arc::new(s.store::<Governance>());
    let acme = tenant("acme");
    store.save_approval(&approval("contested", "high")).await.expect("file");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            let decision = if i % 2 == 0 {
                ApprovalDecision::Approve { by: format!("approver-{i}") }
            } else {
                ApprovalDecision::Reject { by: format!("approver-{i}"), reason: "risky".into() }
            };
            tokio::spawn(async move { store.decide_approval(&acme, "contested", decision).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(approval) => winners.push((approval.status, approval.decided_by)),
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one transition");
    let stored = store.get_approval(&acme, "contested").await.expect("get").expect("present");
    assert_eq!((stored.status, stored.decided_by, stored.version), (winners[0].0, winners[0].1.clone(), 2));
}

pub async fn verifications_and_decisions_list_newest_first_and_expire(s: &Subject) {
    let store = s.store::<Governance>();
    let acme = tenant("acme");
    for i in 0..3 {
        let verification = Verification {
            tenant: acme.clone(),
            id: format!("v-{i}"),
            claim: "the sky is blue".into(),
            claim_type: Some(if i == 1 { "fact" } else { "opinion" }.into()),
            context: String::new(),
            result: serde_json::json!({"ok": true}),
            verified_by: "z3".into(),
            confidence: 0.9,
            proof_tree: None,
            workspace_id: None,
            at: s.clock.now(),
            version: 0,
            created_at: s.clock.now(),
            updated_at: s.clock.now(),
        };
        store.save_verification(&verification).await.expect("verification");
        let decision = Decision {
            tenant: acme.clone(),
            id: format!("d-{i}"),
            debate_id: if i < 2 { "debate-1" } else { "debate-2" }.into(),
            conclusion: "yes".into(),
            consensus_reached: i != 1,
            confidence: 0.8,
            evidence: serde_json::json!([]),
            agents_involved: vec!["claude".into(), "gpt".into()],
            workspace_id: None,
            metadata: Default::default(),
            at: s.clock.now(),
            version: 0,
            created_at: s.clock.now(),
            updated_at: s.clock.now(),
        };
        store.save_decision(&decision).await.expect("decision");
        s.clock.advance(TimeDelta::days(5));
    }
    let facts = collect_all(5, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_verifications(acme, Some("fact"), &p).await }
    })
    .await;
    assert_eq!(facts.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["v-1"]);
    let all = collect_all(2, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_verifications(acme, None, &p).await }
    })
    .await;
    assert_eq!(all.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["v-2", "v-1", "v-0"]);
    let debate = store.get_decisions_for_debate(&acme, "debate-1").await.expect("decisions");
    assert_eq!(debate.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d-1", "d-0"]);
    let consensus = collect_all(5, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_decisions(acme, true, &p).await }
    })
    .await;
    assert_eq!(consensus.len(), 2);
    assert_eq!(store.get_decision(&acme, "d-2").await.expect("get").map(|d| d.agents_involved.len()), Some(2));
    let mut bad = store.get_decision(&acme, "d-2").await.expect("get").expect("present");
    bad.id = "d-9".into();
    bad.confidence = -0.1;
    assert_invalid(store.save_decision(&bad).await, "confidence");
    // Now is 15 days after the first records: verifications older than 7 days go (v-0, v-1).
    let removed = store.cleanup_old_records(GovernanceRetention::default()).await.expect("cleanup");
    assert_eq!(removed, 2);
    assert!(store.get_verification(&acme, "v-1").await.expect("get").is_none());
    assert!(store.get_verification(&acme, "v-2").await.expect("get").is_some());
}
