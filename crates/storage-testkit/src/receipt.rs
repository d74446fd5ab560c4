//! Conformance cases of `ReceiptStore`.

use crate::{Subject, assert_invalid, collect_all, overwrite, raw_body, tenant};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::TimeDelta;
use futures::StreamExt;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{
    AuditEntry, Clock, DeletionQuery, DeletionReason, Direction, Document, PageRequest, Receipt, ReceiptQuery, ReceiptSort, ReceiptStore,
    Receipts, Secret, SignatureAlgorithm, SignatureCheck, StorageError, Store, TenantId, VerifyingKey,
};

fn receipt(t: &TenantId, n: u32) -> Receipt {
    let mut r = Receipt::new(
        t.clone(),
        format!("r-{n:05}"),
        format!("g-{n:05}"),
        ["APPROVED", "REJECTED", "NEEDS_REVIEW"][n as usize % 3],
        json!({"task": format!("review contract {n}"), "reasoning": if n.is_multiple_of(2) { "indemnity clause acceptable" } else { "liability uncapped" }}),
    );
    r.confidence = f64::from(n % 10) / 10.0;
    r.risk_score = f64::from((n * 7) % 10) / 10.0;
    r.risk_level = ["LOW", "MEDIUM", "HIGH"][n as usize % 3].to_owned();
    r
}

pub async fn a_receipt_is_written_once_and_checked_on_every_read(s: &Subject) {
    let store = s.store::<Receipts>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let saved = store.save(&receipt(&acme, 1)).await.expect("save");
    assert!(saved.is_intact() && saved.retain_until > s.clock.now());
    assert_eq!(saved.issued_at, Some(s.clock.now()), "issued now unless given");

    let mut again = receipt(&acme, 1);
    again.receipt_id = "r-other".into();
    again.verdict = "REJECTED".into();
    assert!(matches!(store.save(&again).await, Err(StorageError::Conflict { .. })), "one receipt per gauntlet run, never replaced");
    assert!(matches!(store.save(&receipt(&acme, 1)).await, Err(StorageError::Conflict { .. })));
    assert_eq!(store.get(&acme, "r-00001").await.expect("get").expect("kept").verdict, saved.verdict, "the first stays");
    assert_eq!(store.get(&acme, "r-other").await.expect("get"), None, "nothing else was written");
    assert_eq!(store.get_by_gauntlet(&acme, "g-00001").await.expect("by run").map(|r| r.receipt_id).as_deref(), Some("r-00001"));
    assert_eq!(store.get(&globex, "r-00001").await.expect("get"), None, "tenants are apart");
    assert_eq!(store.get_by_gauntlet(&globex, "g-00001").await.expect("by run"), None);
    store.save(&receipt(&globex, 1)).await.expect("another tenant's run of the same id");

    let mut bad = receipt(&acme, 2);
    bad.confidence = 1.5;
    assert_invalid(store.save(&bad).await, "confidence");
    let mut bad = receipt(&acme, 2);
    bad.risk_score = f64::NAN;
    assert_invalid(store.save(&bad).await, "risk_score");
    let mut bad = receipt(&acme, 2);
    bad.gauntlet_id = "g\u{7}".into();
    assert_invalid(store.save(&bad).await, "gauntlet_id");
    assert_eq!(store.count(&acme, &ReceiptQuery::default()).await.expect("count"), 1, "no partial write");

    // Altered behind the store's back: every read refuses it, verify says so.
    let body = raw_body::<Receipt>(s, &acme, "r-00001").await.replace("liability uncapped", "liability capped");
    assert_ne!(body, raw_body::<Receipt>(s, &acme, "r-00001").await);
    overwrite(s, &acme, &saved, body).await;
    assert!(store.get(&acme, "r-00001").await.is_err(), "a receipt that no longer matches its checksum is not returned");
    let report = store.verify(&acme, "r-00001", None).await.expect("verify");
    assert!(!report.intact);
    assert!(store.place_legal_hold(&acme, "r-00001", "audit", "legal", None).await.is_err(), "no change to an altered receipt");
}

pub async fn receipts_list_in_four_orders_both_ways_with_counts_and_search(s: &Subject) {
    let store = s.store::<Receipts>();
    let t = tenant("acme");
    for n in 0..24 {
        store.save(&receipt(&t, n)).await.expect("save");
        s.clock.advance(TimeDelta::minutes(1));
        if n.is_multiple_of(4) {
            store
                .update_signature(&t, &format!("r-{n:05}"), &STANDARD.encode([n as u8; 8]), SignatureAlgorithm::Ed25519, "k1")
                .await
                .expect("sign");
        }
    }
    for sort in [ReceiptSort::IssuedAt, ReceiptSort::Confidence, ReceiptSort::RiskScore, ReceiptSort::SignedAt] {
        for direction in [Direction::Asc, Direction::Desc] {
            let query = ReceiptQuery { sort, direction, ..ReceiptQuery::default() };
            let all = collect_all(5, |p| {
                let (store, t, query) = (&store, &t, query.clone());
                async move { store.list(t, &query, &p).await }
            })
            .await;
            let expected = if sort == ReceiptSort::SignedAt { 6 } else { 24 };
            assert_eq!(all.len(), expected, "{sort:?} {direction:?}");
            let key = |r: &Receipt| match sort {
                ReceiptSort::IssuedAt => r.issued_at.expect("issued").timestamp_micros(),
                ReceiptSort::Confidence => (r.confidence * 1000.0).round() as i64,
                ReceiptSort::RiskScore => (r.risk_score * 1000.0).round() as i64,
                ReceiptSort::SignedAt => r.signature.as_ref().expect("signed").signed_at.timestamp_micros(),
            };
            let keys: Vec<(i64, String)> = all.iter().map(|r| (key(r), r.receipt_id.clone())).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            if direction == Direction::Desc {
                sorted.reverse();
            }
            assert_eq!(keys, sorted, "{sort:?} {direction:?}: ordered by the key, then id");
        }
    }
    let count = |query: ReceiptQuery| {
        let (store, t) = (&store, &t);
        async move { store.count(t, &query).await.expect("count") }
    };
    assert_eq!(count(ReceiptQuery { verdict: Some("APPROVED".into()), ..ReceiptQuery::default() }).await, 8);
    assert_eq!(
        count(ReceiptQuery { risk_level: Some("HIGH".into()), verdict: Some("NEEDS_REVIEW".into()), ..ReceiptQuery::default() }).await,
        8
    );
    assert_eq!(count(ReceiptQuery { signed_only: true, ..ReceiptQuery::default() }).await, 6);
    let start = store.get(&t, "r-00000").await.expect("get").expect("first").issued_at;
    let tenth = store.get(&t, "r-00009").await.expect("get").expect("tenth").issued_at;
    assert_eq!(count(ReceiptQuery { from: start, to: tenth, ..ReceiptQuery::default() }).await, 10, "both ends included");
    let newest_approved = store
        .list(
            &t,
            &ReceiptQuery { verdict: Some("APPROVED".into()), direction: Direction::Desc, ..ReceiptQuery::default() },
            &PageRequest::first(2),
        )
        .await
        .expect("list");
    assert_eq!(newest_approved.items.iter().map(|r| r.receipt_id.as_str()).collect::<Vec<_>>(), ["r-00021", "r-00018"]);

    let (found, total) = store.search(&t, "liability", &ReceiptQuery::default(), 5, 0).await.expect("search");
    assert_eq!((found.len(), total), (5, 12), "odd receipts say liability");
    let (found, total) = store
        .search(&t, "liability", &ReceiptQuery { verdict: Some("REJECTED".into()), ..ReceiptQuery::default() }, 100, 0)
        .await
        .expect("search");
    assert_eq!(total, 4);
    assert!(found.iter().all(|r| r.verdict == "REJECTED" && r.receipt_id.ends_with(['1', '3', '5', '7', '9'])));
    assert_eq!(store.search(&t, "contract 7", &ReceiptQuery::default(), 100, 0).await.expect("search").1, 1, "a phrase");
    assert_eq!(store.search(&t, "li", &ReceiptQuery::default(), 100, 0).await.expect("search").1, 0, "too short to search");
    assert_eq!(store.search(&t, "100% \"' OR 1=1 --", &ReceiptQuery::default(), 100, 0).await.expect("never a syntax error").1, 0);
    assert_eq!(store.search(&tenant("globex"), "liability", &ReceiptQuery::default(), 100, 0).await.expect("search").1, 0);
}

pub async fn signatures_timestamps_and_holds_change_only_what_they_may(s: &Subject) {
    let store = s.store::<Receipts>();
    let t = tenant("acme");
    let saved = store.save(&receipt(&t, 1)).await.expect("save");
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
    let public = VerifyingKey::Ed25519(ring::signature::KeyPair::public_key(&pair).as_ref().to_vec());
    let signature = STANDARD.encode(pair.sign(saved.checksum.as_bytes()).as_ref());
    assert_eq!(store.verify(&t, "r-00001", Some(&public)).await.expect("verify").signature, SignatureCheck::NotSigned);
    let signed = store.update_signature(&t, "r-00001", &signature, SignatureAlgorithm::Ed25519, "ed-1").await.expect("sign");
    assert_eq!(signed.checksum, saved.checksum, "signing changes no content");
    let report = store.verify(&t, "r-00001", Some(&public)).await.expect("verify");
    assert!(report.intact && report.signature == SignatureCheck::Valid, "{report:?}");
    let other = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    let other = ring::signature::Ed25519KeyPair::from_pkcs8(other.as_ref()).expect("pair");
    let stranger = VerifyingKey::Ed25519(ring::signature::KeyPair::public_key(&other).as_ref().to_vec());
    assert!(matches!(store.verify(&t, "r-00001", Some(&stranger)).await.expect("verify").signature, SignatureCheck::Invalid(_)));
    let hmac = VerifyingKey::HmacSha256(Secret::new(b"shared".to_vec()));
    assert!(
        matches!(store.verify(&t, "r-00001", Some(&hmac)).await.expect("verify").signature, SignatureCheck::Invalid(_)),
        "the caller's key picks the algorithm, not the stored one"
    );
    assert!(matches!(
        store.update_signature(&t, "r-00001", &signature, SignatureAlgorithm::Ed25519, "ed-1").await,
        Err(StorageError::Conflict { .. })
    ));
    assert_invalid(store.update_signature(&t, "r-00001", "not base64!", SignatureAlgorithm::Ed25519, "ed-1").await, "signature");

    // HMAC: a signature over another receipt's checksum does not verify.
    let second = store.save(&receipt(&t, 2)).await.expect("save");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"shared");
    let wrong = STANDARD.encode(ring::hmac::sign(&key, saved.checksum.as_bytes()).as_ref());
    store.update_signature(&t, "r-00002", &wrong, SignatureAlgorithm::HmacSha256, "h-1").await.expect("sign");
    assert!(matches!(store.verify(&t, "r-00002", Some(&hmac)).await.expect("verify").signature, SignatureCheck::Invalid(_)));
    assert!(second.is_intact());

    let stamped = store.add_timestamp(&t, "r-00001", &STANDARD.encode(b"tsa response"), "https://tsa.example").await.expect("stamp");
    assert_eq!(stamped.timestamp.as_ref().map(|ts| ts.tsa_url.as_str()), Some("https://tsa.example"));
    assert!(stamped.signature.is_some(), "a timestamp keeps the signature");

    let held = store.place_legal_hold(&t, "r-00001", "litigation", "counsel", Some("m-7")).await.expect("hold");
    assert_eq!(held.legal_hold.as_ref().map(|h| h.matter_id.as_deref()), Some(Some("m-7")));
    assert!(held.timestamp.is_some() && held.signature.is_some(), "a hold keeps the rest");
    let read = store.get(&t, "r-00001").await.expect("get").expect("present");
    assert!(read.legal_hold.is_some() && read.timestamp.is_some() && read.signature.is_some(), "reads return the hold and the timestamp");
    assert!(matches!(store.place_legal_hold(&t, "r-00001", "again", "counsel", None).await, Err(StorageError::Conflict { .. })));
    let under = store.list_under_legal_hold(&t, Some("m-7"), &PageRequest::first(10)).await.expect("held");
    assert_eq!(under.items.len(), 1);
    assert_eq!(store.list_under_legal_hold(&t, Some("m-8"), &PageRequest::first(10)).await.expect("held").items.len(), 0);
    store.remove_legal_hold(&t, "r-00001").await.expect("release");
    assert!(matches!(store.remove_legal_hold(&t, "r-00001").await, Err(StorageError::Conflict { .. })));

    for missing in [
        store.place_legal_hold(&t, "r-missing", "x", "counsel", None).await.map(|_| ()),
        store.remove_legal_hold(&t, "r-missing").await.map(|_| ()),
        store.add_timestamp(&t, "r-missing", &STANDARD.encode(b"x"), "https://tsa.example").await.map(|_| ()),
        store.update_signature(&t, "r-missing", &signature, SignatureAlgorithm::Ed25519, "ed-1").await.map(|_| ()),
        store.verify(&t, "r-missing", None).await.map(|_| ()),
    ] {
        assert!(matches!(missing, Err(StorageError::NotFound { .. })), "a missing receipt is not found, never `true`: {missing:?}");
    }
    assert!(matches!(store.place_legal_hold(&tenant("globex"), "r-00002", "x", "counsel", None).await, Err(StorageError::NotFound { .. })));
}

pub async fn deletion_is_logged_atomically_and_refused_under_hold(s: &Subject) {
    let store = s.store::<Receipts>();
    let (t, globex) = (tenant("acme"), tenant("globex"));
    for n in 0..5 {
        let mut r = receipt(&t, n);
        r.subject_id = Some(if n < 4 { "user-ada".into() } else { "user-bob".into() });
        store.save(&r).await.expect("save");
    }
    store.place_legal_hold(&t, "r-00000", "litigation", "counsel", None).await.expect("hold");
    assert!(matches!(store.delete(&t, "r-00000", DeletionReason::AdminAction, "ops").await, Err(StorageError::Conflict { .. })));
    assert!(!store.delete(&globex, "r-00001", DeletionReason::AdminAction, "ops").await.expect("delete"), "not another tenant's");
    assert!(store.delete(&t, "r-00001", DeletionReason::DataCorrection, "ops").await.expect("delete"));
    assert!(!store.delete(&t, "r-00001", DeletionReason::DataCorrection, "ops").await.expect("delete"), "once");
    assert_eq!(store.get(&t, "r-00001").await.expect("get"), None);
    assert_eq!(store.get_by_gauntlet(&t, "g-00001").await.expect("get"), None);
    assert_invalid(store.delete(&t, "r-00002", DeletionReason::AdminAction, "o\u{7}").await, "operator");

    let page = store.get_by_subject(&t, "user-ada", &PageRequest::first(10)).await.expect("access request");
    assert_eq!(page.items.len(), 3);
    assert_eq!(store.erase_subject(&t, "user-ada", "dpo").await.expect("erase"), (2, 1), "the held one stays");
    assert_eq!(store.get_by_subject(&t, "user-ada", &PageRequest::first(10)).await.expect("left").items.len(), 1);
    assert!(store.get(&t, "r-00004").await.expect("get").is_some(), "another subject's receipt stays");

    let log = store.deletions(&t, &DeletionQuery::default(), &PageRequest::first(10)).await.expect("log");
    let ids: Vec<&str> = log.items.iter().map(|d| d.receipt_id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert!(log.items.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    assert_eq!(
        log.items.last().map(|d| (d.receipt_id.as_str(), d.reason, d.operator.as_str())),
        Some(("r-00001", DeletionReason::DataCorrection, "ops"))
    );
    assert!(log.items.iter().all(|d| d.checksum.len() == 64 && d.gauntlet_id.starts_with("g-")));
    let stats = store.deletion_stats(&t).await.expect("stats");
    assert_eq!(
        (stats[&DeletionReason::GdprErasure], stats[&DeletionReason::DataCorrection], stats[&DeletionReason::AdminAction]),
        (2, 1, 0)
    );
    let by_receipt = DeletionQuery { receipt_id: Some("r-00001".into()), ..DeletionQuery::default() };
    assert_eq!(store.count_deletions(&t, &by_receipt).await.expect("count"), 1);
    let by_operator = DeletionQuery { operator: Some("dpo".into()), ..DeletionQuery::default() };
    assert_eq!(store.count_deletions(&t, &by_operator).await.expect("count"), 2);
    assert_eq!(store.count_deletions(&globex, &DeletionQuery::default()).await.expect("count"), 0);
    assert_eq!(store.verify_deletion_log(&t).await.expect("verify").broken, None);
    let stats = store.get_stats(&t).await.expect("stats");
    assert_eq!((stats.total, stats.held), (2, 1));
}

/// Retention over many receipts, some held: the held ones remain, every other one is gone and
/// logged once, and the log's chain verifies until a row of it is altered.
pub async fn retention_keeps_held_receipts_and_logs_every_deletion(s: &Subject) {
    const TOTAL: u32 = 10_000;
    let store = Arc::new(s.store::<Receipts>().with_retention(TimeDelta::days(30)).expect("retention"));
    let tenants = [tenant("acme"), tenant("globex")];
    futures::stream::iter(0..TOTAL)
        .map(|n| {
            let (store, t) = (Arc::clone(&store), tenants[n as usize % 2].clone());
            async move { store.save(&receipt(&t, n)).await.expect("save") }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    // 50 per tenant: n = 0, 101, 200, 301, ...
    let held: BTreeSet<u32> = (0..TOTAL).filter(|n| n % 100 == (n / 100) % 2).collect();
    for n in &held {
        store.place_legal_hold(&tenants[*n as usize % 2], &format!("r-{n:05}"), "litigation", "counsel", Some("m-1")).await.expect("hold");
    }
    assert_eq!(store.cleanup_expired("retention-job").await.expect("nothing due"), 0);
    s.clock.advance(TimeDelta::days(31));
    let deleted = store.cleanup_expired("retention-job").await.expect("cleanup");
    assert_eq!(deleted, u64::from(TOTAL) - held.len() as u64);
    let mut logged = BTreeSet::new();
    for t in &tenants {
        let remaining = store.count(t, &ReceiptQuery::default()).await.expect("count");
        assert_eq!(remaining, 50, "{t}: only the held receipts remain");
        let log = collect_all(1000, |p| {
            let (store, t) = (&store, t);
            async move { store.deletions(t, &DeletionQuery::default(), &p).await }
        })
        .await;
        for entry in log {
            assert_eq!(entry.reason, DeletionReason::RetentionExpired);
            assert!(logged.insert(entry.receipt_id.clone()), "`{}` logged twice", entry.receipt_id);
        }
        assert_eq!(store.verify_deletion_log(t).await.expect("verify").broken, None);
    }
    let expected: BTreeSet<String> = (0..TOTAL).filter(|n| !held.contains(n)).map(|n| format!("r-{n:05}")).collect();
    assert_eq!(logged, expected, "every deleted receipt has its log entry");
    for n in &held {
        assert!(store.get(&tenants[*n as usize % 2], &format!("r-{n:05}")).await.expect("get").is_some());
    }
    assert_eq!(store.cleanup_expired("retention-job").await.expect("again"), 0);

    // Alter one log row: verify names it.
    let t = &tenants[0];
    let entry = storage_core::AuditStore::get_entry(&storage_core::Audit::<dyn storage_core::Engine>::on(s.engine.as_ref()), t, 77)
        .await
        .expect("get")
        .expect("entry");
    let rows = s.engine.tables().get(&AuditEntry::TABLE, t, &[entry.id()], s.clock.now()).await.expect("raw");
    let body = rows.into_iter().next().expect("row").body.replace("retention-job", "someone-else");
    overwrite(s, t, &entry, body).await;
    let report = store.verify_deletion_log(t).await.expect("verify");
    assert_eq!(report.broken.map(|b| b.seq), Some(77));
}

/// Holds placed while retention runs: a receipt whose hold was placed is never deleted, and one
/// that was deleted first refuses the hold; every receipt is kept or logged, never both.
pub async fn a_hold_placed_during_retention_wins_or_finds_the_receipt_gone(s: &Subject) {
    let store = Arc::new(s.store::<Receipts>().with_retention(TimeDelta::days(1)).expect("retention"));
    let t = tenant("acme");
    for n in 0..400 {
        store.save(&receipt(&t, n)).await.expect("save");
    }
    s.clock.advance(TimeDelta::days(2));
    let cleanup = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.cleanup_expired("retention-job").await })
    };
    let mut holds = Vec::new();
    for n in (0..400).rev().step_by(3) {
        let (store, t) = (Arc::clone(&store), t.clone());
        holds.push(tokio::spawn(async move { (n, store.place_legal_hold(&t, &format!("r-{n:05}"), "late", "counsel", None).await) }));
    }
    let deleted = cleanup.await.expect("join").expect("cleanup");
    let mut held = BTreeSet::new();
    for hold in holds {
        let (n, outcome) = hold.await.expect("join");
        match outcome {
            Ok(_) => {
                held.insert(format!("r-{n:05}"));
            }
            Err(StorageError::NotFound { .. }) => {}
            Err(e) => panic!("a hold failed otherwise: {e}"),
        }
    }
    let log = collect_all(1000, |p| {
        let (store, t) = (&store, &t);
        async move { store.deletions(t, &DeletionQuery::default(), &p).await }
    })
    .await;
    let logged: BTreeSet<String> = log.iter().map(|d| d.receipt_id.clone()).collect();
    assert_eq!(logged.len(), log.len(), "nothing logged twice");
    assert_eq!(logged.len() as u64, deleted);
    for n in 0..400 {
        let id = format!("r-{n:05}");
        let present = store.get(&t, &id).await.expect("get").is_some();
        assert!(present != logged.contains(&id), "`{id}` is either kept or logged as deleted (present {present})");
        if held.contains(&id) {
            assert!(present, "`{id}` was held and must remain");
        }
    }
}
