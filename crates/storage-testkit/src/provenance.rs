//! Conformance cases of `ProvenanceStore`.

use crate::{Subject, assert_invalid, overwrite, raw_body, tenant};
use chrono::TimeDelta;
use serde_json::json;
use std::sync::Arc;
use storage_core::{
    Change, Citation, CitationsOf, Clock, Document, EvidenceRecord, NewEvidence, PageRequest, Provenance, ProvenanceStore, StorageError,
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
    assert!(
        matches!(
            store.save_citation(&Citation::new(acme.clone(), "chain-1", "claim-1", "ev-77")).await,
            Err(StorageError::NotFound { .. })
        ),
        "a citation of evidence the chain lacks"
    );
    store.save_citation(&Citation::new(acme.clone(), "chain-1", "claim-4", "ev-4")).await.expect("cite");

    // A re-save with fewer records leaves none of the old ones behind.
    store.save_chain(&acme, "chain-1", "debate-1", json!({}), evidence(s, 3)).await.expect("resave");
    let (_, records) = store.load_chain(&acme, "chain-1").await.expect("load").expect("present");
    assert_eq!(records.len(), 3);
    assert_eq!(store.get_record(&acme, "chain-1", "ev-4").await.expect("get"), None, "no stale record");
    assert_eq!(store.citations(&acme, CitationsOf::Claim("claim-4")).await.expect("citations"), vec![], "its citation went with it");
    assert_eq!(store.citations(&acme, CitationsOf::Chain("chain-1")).await.expect("citations").len(), 2, "the others stay");
    assert_eq!(store.verify_chain(&acme, "chain-1").await.expect("verify").broken, None);
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
    let body = raw_body::<EvidenceRecord>(s, &t, &third.id()).await.replace("fact 2", "fact 2, edited");
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

/// Records are listed by their integer place, whatever their timestamps say (here they run
/// backwards and a tenth record would sort before the second as text).
pub async fn records_are_listed_by_sequence_not_by_timestamp(s: &Subject) {
    let store = s.store::<Provenance>();
    let t = tenant("acme");
    let mut records = evidence(s, 12);
    for (i, record) in records.iter_mut().enumerate() {
        record.timestamp = s.clock.now() - TimeDelta::seconds(i as i64);
    }
    store.save_chain(&t, "chain-1", "debate-1", json!({}), records).await.expect("save");
    let listed = store.get_records_by_chain(&t, "chain-1").await.expect("records");
    assert_eq!(listed.iter().map(|r| r.seq).collect::<Vec<_>>(), (0..12).collect::<Vec<u64>>());
    assert_eq!(
        listed.iter().map(|r| r.evidence.record_id.clone()).collect::<Vec<_>>(),
        (0..12).map(|i| format!("ev-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(store.verify_chain(&t, "chain-1").await.expect("verify").checked, 12);
    assert!(store.get_records_by_chain(&t, "chain-9").await.expect("records").is_empty());
    assert_invalid(store.get_records_by_chain(&t, "").await, "chain_id");
    let mut multiline = evidence(s, 1);
    multiline[0].content = "line one\nline two".into();
    store.save_chain(&t, "chain-2", "debate-2", json!({}), multiline).await.expect("evidence may hold lines");
    let mut bad = evidence(s, 1);
    bad[0].content = "nul\0".into();
    assert_invalid(store.save_chain(&t, "chain-3", "debate-3", json!({}), bad).await, "content");
    assert_invalid(store.save_chain(&t, "chain-3", "", json!({}), evidence(s, 1)).await, "debate_id");
    assert_invalid(store.save_chain(&t, "", "debate-3", json!({}), evidence(s, 1)).await, "chain_id");
    let mut bad = evidence(s, 2);
    bad[1].source_type = String::new();
    assert_invalid(store.save_chain(&t, "chain-3", "debate-3", json!({}), bad).await, "source_type");
    let mut bad = Citation::new(t.clone(), "chain-1", "claim-1", "ev-1");
    bad.relevance = -0.5;
    assert_invalid(store.save_citation(&bad).await, "relevance");
    assert_eq!(store.get_stats(&t).await.expect("stats").chains, 2, "nothing refused was written");
}

/// Saves of one debate's chain under different ids, at once: one chain survives, with exactly
/// its own records.
pub async fn concurrent_saves_of_one_debate_leave_one_chain_and_no_orphans(s: &Subject) {
    let store = Arc::new(s.store::<Provenance>());
    let t = tenant("acme");
    let tasks: Vec<_> = (0..8usize)
        .map(|i| {
            let (store, t, records) = (Arc::clone(&store), t.clone(), evidence(s, 3 + i));
            tokio::spawn(async move { store.save_chain(&t, &format!("chain-{i}"), "debate-1", json!({}), records).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("save");
    }
    let (chain, records) = store.get_chain_by_debate(&t, "debate-1").await.expect("get").expect("present");
    assert_eq!(records.len() as u64, chain.record_count);
    let stats = store.get_stats(&t).await.expect("stats");
    assert_eq!((stats.chains, stats.records), (1, chain.record_count), "no orphan record of a replaced chain");
    assert_eq!(store.verify_chain(&t, &chain.chain_id).await.expect("verify").broken, None);
}

/// A tenant's chains, records and citations are invisible and untouchable from another, even
/// under the same ids.
pub async fn tenants_never_see_or_change_each_others_chains(s: &Subject) {
    let store = s.store::<Provenance>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    store.save_chain(&acme, "chain-1", "debate-1", json!({"who": "acme"}), evidence(s, 3)).await.expect("save");
    store.save_citation(&Citation::new(acme.clone(), "chain-1", "claim-1", "ev-1")).await.expect("cite");
    assert_eq!(store.load_chain(&globex, "chain-1").await.expect("load"), None);
    assert_eq!(store.get_record(&globex, "chain-1", "ev-0").await.expect("get"), None);
    assert!(store.get_records_by_chain(&globex, "chain-1").await.expect("records").is_empty());
    assert!(store.citations(&globex, CitationsOf::Claim("claim-1")).await.expect("citations").is_empty());
    assert!(store.search_records(&globex, None, None, false, &PageRequest::first(10)).await.expect("search").items.is_empty());
    assert!(store.list_chains(&globex, &PageRequest::first(10)).await.expect("list").items.is_empty());
    assert_eq!(store.get_stats(&globex).await.expect("stats"), Default::default());
    assert!(matches!(
        store.save_citation(&Citation::new(globex.clone(), "chain-1", "claim-1", "ev-1")).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(store.verify_chain(&globex, "chain-1").await, Err(StorageError::NotFound { .. })));
    assert!(!store.delete_chain(&globex, "chain-1").await.expect("delete"), "another tenant's chain is not there to delete");

    // The same ids in another tenant are another chain; saving or deleting it leaves acme's be.
    store.save_chain(&globex, "chain-1", "debate-1", json!({"who": "globex"}), evidence(s, 1)).await.expect("save");
    assert!(store.delete_chain(&globex, "chain-1").await.expect("delete"));
    let (chain, records) = store.load_chain(&acme, "chain-1").await.expect("load").expect("present");
    assert_eq!((chain.data, records.len()), (json!({"who": "acme"}), 3));
    assert_eq!(store.citations(&acme, CitationsOf::Chain("chain-1")).await.expect("citations").len(), 1);
    assert_eq!(store.verify_chain(&acme, "chain-1").await.expect("verify").broken, None);
}
