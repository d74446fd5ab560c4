//! Conformance cases of `ProvenanceStore`.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use serde_json::json;
use storage_core::{
    Change, Citation, CitationsOf, Clock, Document, EvidenceRecord, NewEvidence, PageRequest, Provenance, ProvenanceStore, StorageError,
    TenantId, WriteMode,
};

fn evidence(s: &Subject, n: usize) -> Vec<NewEvidence> {
    (0..n)
        .map(|i| {
            let mut e = NewEvidence::new(
                format!("ev-{i}"),
                "web",
                format!("https://example.com/{i}"),
                format!("fact {i}"),
                s.clock.now() + TimeDelta::seconds(i as i64),
            );
            e.verified = i % 2 == 0;
            e
        })
        .collect()
}

async fn overwrite(s: &Subject, t: &TenantId, record: &EvidenceRecord, body: String) {
    let row = storage_core::RowWrite {
        table: &EvidenceRecord::TABLE,
        tenant: t.clone(),
        id: record.id(),
        indexes: record.index_values(),
        expires_at: None,
        body,
        search: None,
    };
    s.engine.tables().apply(t, vec![Change::Write { row, mode: WriteMode::Upsert }], s.clock.now()).await.expect("overwrite");
}

pub async fn a_chain_is_saved_whole_replaced_whole_and_deleted_whole(s: &Subject) {
    let store = s.store::<Provenance>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let chain = store.save_chain(&acme, "chain-1", "debate-1", json!({"topic": "rates"}), evidence(s, 5)).await.expect("save");
    assert_eq!(chain.record_count, 5);
    let (loaded, records) = store.load_chain(&acme, "chain-1").await.expect("load").expect("present");
    assert_eq!(loaded, chain);
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2, 3, 4], "in sequence, not by timestamp text");
    assert_eq!(records[0].previous_hash, storage_core::stores::provenance::GENESIS);
    assert_eq!(records[1].previous_hash, records[0].chain_hash, "each record names the one before");
    assert_eq!(chain.head_hash.as_deref(), Some(records[4].chain_hash.as_str()));
    store.save_citation(&Citation::new(acme.clone(), "chain-1", "claim-1", "ev-1")).await.expect("cite");
    store.save_citation(&Citation::new(acme.clone(), "chain-1", "claim-1", "ev-2")).await.expect("cite");
    assert!(matches!(
        store.save_citation(&Citation::new(acme.clone(), "chain-9", "claim-1", "ev-1")).await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(store.citations(&acme, CitationsOf::Claim("claim-1")).await.expect("citations").len(), 2);
    assert_eq!(store.citations(&acme, CitationsOf::Evidence("ev-2")).await.expect("citations").len(), 1);

    // A re-save with fewer records leaves none of the old ones behind.
    store.save_chain(&acme, "chain-1", "debate-1", json!({}), evidence(s, 3)).await.expect("resave");
    let (_, records) = store.load_chain(&acme, "chain-1").await.expect("load").expect("present");
    assert_eq!(records.len(), 3);
    assert_eq!(store.get_record(&acme, "chain-1", "ev-4").await.expect("get"), None, "no stale record");
    // A new chain for the same debate replaces the old one whole: no orphans.
    store.save_chain(&acme, "chain-2", "debate-1", json!({}), evidence(s, 2)).await.expect("new chain");
    assert_eq!(store.load_chain(&acme, "chain-1").await.expect("load"), None);
    assert_eq!(store.get_record(&acme, "chain-1", "ev-0").await.expect("get"), None);
    assert_eq!(store.citations(&acme, CitationsOf::Chain("chain-1")).await.expect("citations").len(), 0);
    let (by_debate, _) = store.get_chain_by_debate(&acme, "debate-1").await.expect("by debate").expect("present");
    assert_eq!(by_debate.chain_id, "chain-2");
    let stats = store.get_stats(&acme).await.expect("stats");
    assert_eq!((stats.chains, stats.records, stats.citations), (1, 2, 0));

    store.save_citation(&Citation::new(acme.clone(), "chain-2", "claim-2", "ev-0")).await.expect("cite");
    assert!(store.delete_chain(&acme, "chain-2").await.expect("delete"));
    assert!(!store.delete_chain(&acme, "chain-2").await.expect("once"));
    let stats = store.get_stats(&acme).await.expect("stats");
    assert_eq!((stats.chains, stats.records, stats.citations), (0, 0, 0), "the cascade works");
    assert_eq!(store.get_chain_by_debate(&globex, "debate-1").await.expect("get"), None, "tenants are apart");

    let mut twice = evidence(s, 2);
    twice[1].record_id = "ev-0".into();
    assert_invalid(store.save_chain(&acme, "chain-3", "debate-3", json!({}), twice).await, "record_id");
    let mut bad = evidence(s, 2);
    bad[1].confidence = 1.5;
    assert_invalid(store.save_chain(&acme, "chain-3", "debate-3", json!({}), bad).await, "confidence");
    let too_many = evidence(s, storage_core::stores::provenance::MAX_CHAIN_RECORDS + 1);
    assert_invalid(store.save_chain(&acme, "chain-3", "debate-3", json!({}), too_many).await, "records");
    assert_eq!(store.load_chain(&acme, "chain-3").await.expect("load"), None, "nothing partial");
}

pub async fn verify_names_the_first_altered_or_removed_record(s: &Subject) {
    let store = s.store::<Provenance>();
    let t = tenant("acme");
    store.save_chain(&t, "chain-1", "debate-1", json!({}), evidence(s, 6)).await.expect("save");
    let clean = store.verify_chain(&t, "chain-1").await.expect("verify");
    assert_eq!((clean.checked, clean.broken), (6, None));
    let third = store.get_record(&t, "chain-1", "ev-2").await.expect("get").expect("present");
    let rows = s.engine.tables().get(&EvidenceRecord::TABLE, &t, &[third.id()], s.clock.now()).await.expect("raw");
    let body = rows.into_iter().next().expect("row").body.replace("fact 2", "fact 2, edited");
    overwrite(s, &t, &third, body).await;
    let report = store.verify_chain(&t, "chain-1").await.expect("verify");
    assert_eq!(report.broken.map(|b| b.seq), Some(2), "the altered record is named");

    store.save_chain(&t, "chain-2", "debate-2", json!({}), evidence(s, 4)).await.expect("save");
    let second = store.get_record(&t, "chain-2", "ev-1").await.expect("get").expect("present");
    s.engine
        .tables()
        .apply(&t, vec![Change::Delete { table: &EvidenceRecord::TABLE, id: second.id() }], s.clock.now())
        .await
        .expect("remove");
    assert_eq!(store.verify_chain(&t, "chain-2").await.expect("verify").broken.map(|b| b.seq), Some(1), "the removed record is named");
    assert!(matches!(store.verify_chain(&t, "chain-9").await, Err(StorageError::NotFound { .. })));

    let verified = store.search_records(&t, Some("web"), None, true, &PageRequest::first(50)).await.expect("search");
    assert!(verified.items.iter().all(|r| r.evidence.verified));
    assert_eq!(
        store.list_chains(&t, &PageRequest::first(10)).await.expect("list").items.first().map(|c| c.chain_id.as_str()),
        Some("chain-2")
    );
}
