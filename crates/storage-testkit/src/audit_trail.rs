//! Conformance cases of `AuditTrailStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use storage_core::{Artifact, ArtifactQuery, AuditTrailStore, AuditTrails, Change, Clock, ReceiptStore, StorageError, WriteMode};

fn trail(t: &str, id: &str, gauntlet: &str, verdict: &str) -> Artifact {
    let mut trail = Artifact::new(tenant(t), id, gauntlet, verdict, serde_json::json!({"steps": [1, 2, 3], "note": id}));
    trail.confidence = 0.75;
    trail.total_findings = 3;
    trail.duration_seconds = 12.5;
    trail
}

pub async fn trails_and_receipts_are_written_once_per_gauntlet_run(s: &Subject) {
    let store = s.store::<AuditTrails>();
    let acme = tenant("acme");
    let saved = store.save_trail(&trail("acme", "t-1", "g-1", "pass")).await.expect("save");
    assert_eq!((saved.checksum.len(), saved.saved_at), (64, s.clock.now()));
    assert_eq!(store.get_trail(&acme, "t-1").await.expect("get"), Some(saved.clone()));
    assert_eq!(store.get_trail_by_gauntlet(&acme, "g-1").await.expect("by gauntlet").map(|t| t.id), Some("t-1".into()));
    assert!(store.get_trail(&tenant("globex"), "t-1").await.expect("get").is_none(), "tenants are isolated");
    match store.save_trail(&trail("acme", "t-2", "g-1", "fail")).await {
        Err(StorageError::Conflict { .. }) => {}
        other => panic!("a second trail for one gauntlet run: {other:?}"),
    }
    assert!(matches!(store.save_trail(&trail("acme", "t-1", "g-9", "fail")).await, Err(StorageError::Conflict { .. })), "write-once");
    assert_eq!(store.get_trail(&acme, "t-1").await.expect("get").map(|t| t.verdict), Some("pass".into()), "the first stays");
    let mut receipt = trail("acme", "r-1", "g-1", "pass");
    receipt.risk_level = Some("low".into());
    store.save_receipt(&receipt).await.expect("receipt");
    let linked = store.link_trail_to_receipt(&acme, "t-1", "r-1").await.expect("link");
    assert_eq!(linked.linked_id.as_deref(), Some("r-1"));
    assert!(matches!(store.link_trail_to_receipt(&acme, "t-1", "r-2").await, Err(StorageError::Conflict { .. })), "linked once");
    store.link_trail_to_receipt(&acme, "t-1", "r-1").await.expect("the same link again is fine");
    assert_eq!(store.link_receipt_to_trail(&acme, "r-1", "t-1").await.expect("link").linked_id.as_deref(), Some("t-1"));
    assert_eq!(store.get_receipt_by_gauntlet(&acme, "g-1").await.expect("by gauntlet").map(|r| r.id), Some("r-1".into()));
    let folded = s.store::<storage_core::Receipts>().get(&acme, "r-1").await.expect("get").expect("one receipt store");
    assert_eq!(
        (folded.audit_trail_id.as_deref(), folded.risk_level.as_str()),
        (Some("t-1"), "low"),
        "the trail's receipt is the receipt store's"
    );
    let mut bad = trail("acme", "t-3", "g-3", "pass");
    bad.confidence = 1.5;
    assert_invalid(store.save_trail(&bad).await, "confidence");
    bad.confidence = f64::NAN;
    assert_invalid(store.save_trail(&bad).await, "confidence");
}

pub async fn lists_count_and_retention(s: &Subject) {
    let store = s.store::<AuditTrails>();
    let acme = tenant("acme");
    for (i, verdict) in ["pass", "fail", "pass"].iter().enumerate() {
        store.save_trail(&trail("acme", &format!("t-{i}"), &format!("g-{i}"), verdict)).await.expect("save");
        let mut receipt = trail("acme", &format!("r-{i}"), &format!("g-{i}"), verdict);
        receipt.risk_level = Some(if i == 1 { "high" } else { "low" }.into());
        store.save_receipt(&receipt).await.expect("receipt");
        s.clock.advance(TimeDelta::days(100));
    }
    let all = collect_all(2, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.list_trails(acme, &ArtifactQuery::default(), &p).await }
    })
    .await;
    assert_eq!(all.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["t-2", "t-1", "t-0"], "newest first");
    let passed = ArtifactQuery { verdict: Some("pass".into()), ..ArtifactQuery::default() };
    assert_eq!(store.count_trails(&acme, &passed).await.expect("count"), 2);
    let high = ArtifactQuery { risk_level: Some("high".into()), ..ArtifactQuery::default() };
    assert_eq!(
        collect_all(5, |p| {
            let (store, acme, high) = (&store, &acme, &high);
            async move { store.list_receipts(acme, high, &p).await }
        })
        .await
        .len(),
        1
    );
    assert_eq!(store.count_receipts(&acme, &ArtifactQuery::default()).await.expect("count"), 3);
    // Now is 300 days after the first save; a 250-day retention removes the first run's pair,
    // but not a receipt under legal hold; the receipt's deletion is logged.
    let receipts = s.store::<storage_core::Receipts>();
    receipts.place_legal_hold(&acme, "r-1", "litigation", "counsel", None).await.expect("hold");
    assert_eq!(store.cleanup_expired(TimeDelta::days(250)).await.expect("cleanup"), 2);
    assert_eq!(store.cleanup_expired(TimeDelta::days(150)).await.expect("cleanup"), 1, "the trail goes, the held receipt stays");
    assert!(store.get_receipt(&acme, "r-1").await.expect("get").is_some());
    let logged =
        receipts.deletions(&acme, &storage_core::DeletionQuery::default(), &storage_core::PageRequest::first(10)).await.expect("log");
    assert_eq!(logged.items.iter().map(|d| d.receipt_id.as_str()).collect::<Vec<_>>(), ["r-0"]);
    assert!(store.get_trail(&acme, "t-0").await.expect("get").is_none());
    assert!(store.cleanup_expired(TimeDelta::days(-1)).await.is_err());
}

pub async fn a_trail_altered_behind_the_store_is_refused(s: &Subject) {
    let store = s.store::<AuditTrails>();
    let acme = tenant("acme");
    let saved = store.save_trail(&trail("acme", "t-1", "g-1", "fail")).await.expect("save");
    let table = &<storage_core::stores::audit_trail::TrailRecord as storage_core::Document>::TABLE;
    let rows = s.engine.tables().get(table, &acme, &["t-1".to_owned()], s.clock.now()).await.expect("raw");
    let body = rows.into_iter().next().expect("row").body.replace("\"fail\"", "\"pass\"");
    let record = storage_core::stores::audit_trail::TrailRecord(saved);
    let row = storage_core::RowWrite {
        table,
        tenant: acme.clone(),
        id: "t-1".into(),
        indexes: storage_core::Document::index_values(&record),
        expires_at: None,
        body,
        search: None,
    };
    s.engine.tables().apply(&acme, vec![Change::Write { row, mode: WriteMode::Upsert }], s.clock.now()).await.expect("tamper");
    assert!(matches!(store.get_trail(&acme, "t-1").await, Err(StorageError::Backend { .. })), "the checksum no longer matches");
}
