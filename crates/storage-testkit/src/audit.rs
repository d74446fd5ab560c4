//! Conformance cases of `AuditStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{
    Audit, AuditEntry, AuditEvent, AuditQuery, AuditStore, Change, Clock, Document, PageRequest, StorageError, Store, TenantId, UsageEvent,
    WriteMode,
};

async fn seed(store: &Audit, t: &TenantId) {
    let events = [
        AuditEvent::new("user.login").actor("ada").client(Some("10.0.0.1".into()), Some("curl/8".into())),
        AuditEvent::new("user.update").actor("ada").resource("user", "ada").change(Some("old".into()), Some("new".into())),
        AuditEvent::new("org.member_added").actor("bob").resource("org", "acme").with("role", "admin"),
        AuditEvent::new("password.reset").actor("bob"),
        AuditEvent::new("users.export").actor("ada"),
    ];
    for event in events {
        store.log_event(t, event).await.expect("log");
    }
}

pub async fn entries_chain_and_answer_queries_newest_first(s: &Subject) {
    let store = s.store::<Audit>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let start = s.clock.now();
    seed(&store, &acme).await;
    let first = store.get_entry(&acme, 1).await.expect("get").expect("present");
    assert_eq!((first.seq, first.event.ip_address.as_deref(), first.event.user_agent.as_deref()), (1, Some("10.0.0.1"), Some("curl/8")));
    assert_eq!(first.prev_hash, storage_core::stores::audit::GENESIS_HASH);
    let second = store.get_entry(&acme, 2).await.expect("get").expect("present");
    assert_eq!(second.prev_hash, first.hash, "each entry names the one before");
    assert_eq!(second.hash, second.compute_hash());
    let other = store.log_event(&globex, AuditEvent::new("user.login").actor("zed")).await.expect("log");
    assert_eq!(other.seq, 1, "each tenant has its own chain");
    let all = collect_all(2, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.get_log(acme, &AuditQuery::default(), &p).await }
    })
    .await;
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4, 3, 2, 1], "newest first");
    let query = |q: AuditQuery| {
        let (store, acme) = (&store, &acme);
        async move {
            collect_all(10, |p| {
                let q = q.clone();
                async move { store.get_log(acme, &q, &p).await }
            })
            .await
        }
    };
    let by_ada = query(AuditQuery { actor_id: Some("ada".into()), ..AuditQuery::default() }).await;
    assert_eq!(by_ada.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 2, 1]);
    let user_actions = query(AuditQuery { action: Some("user.*".into()), ..AuditQuery::default() }).await;
    assert_eq!(
        user_actions.iter().map(|e| e.event.action.as_str()).collect::<Vec<_>>(),
        ["user.update", "user.login"],
        "a prefix, not `users.`"
    );
    // `_` is a character, not a wildcard (the original's LIKE prefix let `api_*` match `apixkey.`);
    // `%` is not an action character at all.
    let wild = tenant("wildcards");
    for action in ["api_key.created", "apixkey.created"] {
        store.log_event(&wild, AuditEvent::new(action).actor("ada")).await.expect("log");
    }
    assert_invalid(store.log_event(&wild, AuditEvent::new("api%.created")).await, "action");
    for (prefix, expected) in [("api_*", 1), ("api*", 2)] {
        let q = AuditQuery { action: Some(prefix.into()), ..AuditQuery::default() };
        assert_eq!(store.get_log_count(&wild, &q).await.expect("count"), expected, "{prefix}");
    }
    let on_acme = query(AuditQuery { resource_type: Some("org".into()), resource_id: Some("acme".into()), ..AuditQuery::default() }).await;
    assert_eq!(on_acme.len(), 1);
    assert_eq!(
        store.get_log_count(&acme, &AuditQuery { action: Some("user.login".into()), ..AuditQuery::default() }).await.expect("count"),
        1
    );
    let security = collect_all(10, |p| {
        let (store, acme) = (&store, &acme);
        async move { store.get_security_events(acme, None, &p).await }
    })
    .await;
    assert_eq!(security.iter().map(|e| e.event.action.as_str()).collect::<Vec<_>>(), ["password.reset"]);
    s.clock.advance(TimeDelta::hours(3));
    store.log_event(&acme, AuditEvent::new("login.failed").actor("ada")).await.expect("log");
    let recent = store.get_recent_activity(&acme, Some("ada"), 1, 10).await.expect("recent");
    assert_eq!(recent.iter().map(|e| e.seq).collect::<Vec<_>>(), [6]);
    let window = AuditQuery { since: Some(start), until: Some(start + TimeDelta::hours(1)), ..AuditQuery::default() };
    assert_eq!(store.get_log_count(&acme, &window).await.expect("count"), 5);
    assert_invalid(store.log_event(&acme, AuditEvent::new("Bad Action")).await, "action");
    assert_invalid(store.log_event(&acme, AuditEvent::new("x").actor("a\u{0}")).await, "actor_id");
    assert_eq!(store.verify(&acme, None, None).await.expect("verify").checked, 6, "nothing else was written");
}

pub async fn concurrent_appends_form_one_unbroken_chain(s: &Subject) {
    let t = tenant("acme");
    // Two stores on one backend stand for two processes: they share nothing but the database.
    let (one, two) = (Arc::new(s.store::<Audit>()), Arc::new(Audit::on(s.engine.as_ref())));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = if i % 2 == 0 { Arc::clone(&one) } else { Arc::clone(&two) };
            let t = t.clone();
            tokio::spawn(async move { store.log_event(&t, AuditEvent::new("task.ran").actor(format!("task-{i}"))).await.expect("log").seq })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for task in tasks {
        assert!(seqs.insert(task.await.expect("task")), "a sequence number was given twice");
    }
    assert_eq!(seqs, (1..=64).collect::<BTreeSet<u64>>(), "nothing lost, nothing twice");
    let verified = one.verify(&t, None, None).await.expect("verify");
    assert_eq!((verified.checked, verified.broken), (64, None));
}

/// Rewrites entry `seq`'s stored row with `body`, behind the store's back.
async fn overwrite(s: &Subject, t: &TenantId, entry: &AuditEntry, id: &str, body: String) {
    let row = storage_core::RowWrite {
        table: &AuditEntry::TABLE,
        tenant: t.clone(),
        id: id.to_owned(),
        indexes: entry.index_values(),
        expires_at: None,
        body,
        search: None,
    };
    s.engine.tables().apply(t, vec![Change::Write { row, mode: WriteMode::Upsert }], s.clock.now()).await.expect("overwrite");
}

async fn raw_body(s: &Subject, t: &TenantId, seq: u64) -> String {
    let rows = s.engine.tables().get(&AuditEntry::TABLE, t, &[format!("{seq:020}")], s.clock.now()).await.expect("raw");
    rows.into_iter().next().expect("row").body
}

pub async fn verify_names_the_first_altered_removed_or_reordered_entry(s: &Subject) {
    let store = s.store::<Audit>();
    for (name, tamper) in [("altered", 0), ("removed", 1), ("reordered", 2), ("truncated", 3), ("appended", 4)] {
        let t = tenant(name);
        for i in 0..6 {
            store.log_event(&t, AuditEvent::new("doc.edit").actor(format!("u{i}"))).await.expect("log");
        }
        assert_eq!(store.verify(&t, None, None).await.expect("verify").broken, None, "{name}: clean before");
        let third = store.get_entry(&t, 3).await.expect("get").expect("present");
        let expected = match tamper {
            0 => {
                let body = raw_body(s, &t, 3).await.replace("\"u2\"", "\"mallory\"");
                overwrite(s, &t, &third, &third.id(), body).await;
                3
            }
            1 => {
                s.engine
                    .tables()
                    .apply(&t, vec![Change::Delete { table: &AuditEntry::TABLE, id: third.id() }], s.clock.now())
                    .await
                    .expect("delete");
                3
            }
            2 => {
                let fourth = store.get_entry(&t, 4).await.expect("get").expect("present");
                let (body3, body4) = (raw_body(s, &t, 3).await, raw_body(s, &t, 4).await);
                overwrite(s, &t, &third, &fourth.id(), body3).await;
                overwrite(s, &t, &fourth, &third.id(), body4).await;
                3
            }
            3 => {
                s.engine
                    .tables()
                    .apply(&t, vec![Change::Delete { table: &AuditEntry::TABLE, id: format!("{:020}", 6) }], s.clock.now())
                    .await
                    .expect("delete");
                6
            }
            _ => {
                let mut forged = store.get_entry(&t, 6).await.expect("get").expect("present");
                forged.seq = 7;
                forged.prev_hash = forged.hash.clone();
                forged.hash = forged.compute_hash();
                let body = raw_body(s, &t, 6).await.replace("\"seq\":6", "\"seq\":7");
                overwrite(s, &t, &forged, &forged.id(), body).await;
                7
            }
        };
        let verified = store.verify(&t, None, None).await.expect("verify");
        let broken = verified.broken.unwrap_or_else(|| panic!("{name}: the tampering went unnoticed"));
        assert_eq!(broken.seq, expected, "{name}: {}", broken.reason);
    }
}

pub async fn a_thousand_clean_chains_verify_clean(s: &Subject) {
    let store = Arc::new(s.store::<Audit>());
    let tasks: Vec<_> = (0..16)
        .map(|worker| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut flagged = 0;
                for i in (worker..1_000).step_by(16) {
                    let t = tenant(&format!("chain-{i}"));
                    store.log_event(&t, AuditEvent::new("a.b").actor("x")).await.expect("log");
                    store.log_event(&t, AuditEvent::new("a.c").with("n", i)).await.expect("log");
                    if store.verify(&t, None, None).await.expect("verify").broken.is_some() {
                        flagged += 1;
                    }
                }
                flagged
            })
        })
        .collect();
    let mut flagged = 0;
    for task in tasks {
        flagged += task.await.expect("task");
    }
    assert_eq!(flagged, 0, "false alarms");
}

pub async fn retention_moves_the_anchor_and_leaves_an_entry(s: &Subject) {
    let store = s.store::<Audit>();
    let t = tenant("acme");
    for _ in 0..10 {
        store.log_event(&t, AuditEvent::new("old.event")).await.expect("log");
    }
    s.clock.advance(TimeDelta::days(10));
    for _ in 0..5 {
        store.log_event(&t, AuditEvent::new("new.event")).await.expect("log");
    }
    assert_eq!(store.cleanup_old_entries(TimeDelta::days(5)).await.expect("cleanup"), 10);
    assert!(store.get_entry(&t, 10).await.expect("get").is_none());
    let verified = store.verify(&t, None, None).await.expect("verify");
    assert_eq!((verified.checked, verified.broken), (6, None), "5 new entries and the retention entry");
    let retention = store.get_entry(&t, 16).await.expect("get").expect("retention entry");
    assert_eq!(retention.event.action, "audit.retention");
    assert_eq!(retention.event.metadata["through_seq"], 10);
    assert_eq!(store.cleanup_old_entries(TimeDelta::days(5)).await.expect("again"), 0, "idempotent");
    assert_eq!(store.log_event(&t, AuditEvent::new("later")).await.expect("log").seq, 17, "the chain goes on");
    assert!(store.verify(&t, Some(12), Some(14)).await.expect("range").broken.is_none());
    assert!(store.cleanup_old_entries(TimeDelta::seconds(-1)).await.is_err());
}

pub async fn an_audited_change_and_its_entry_commit_together(s: &Subject) {
    let store = s.store::<Audit>();
    let t = tenant("acme");
    let events = s.engine.table::<UsageEvent>();
    let event = UsageEvent {
        tenant: t.clone(),
        id: "e-1".into(),
        event_type: "debate".into(),
        count: 1,
        metadata: Default::default(),
        at: s.clock.now(),
        version: 0,
        created_at: s.clock.now(),
        updated_at: s.clock.now(),
    };
    let entry = store.log_with(&t, AuditEvent::new("usage.recorded"), |unit| unit.insert(&events, &event)).await.expect("both");
    assert_eq!(entry.seq, 1);
    assert!(events.get(&t, "e-1").await.expect("get").is_some());
    // The same insert again conflicts: neither it nor the entry is written.
    let again = store.log_with(&t, AuditEvent::new("usage.recorded"), |unit| unit.insert(&events, &event)).await;
    assert!(matches!(again, Err(StorageError::Conflict { .. })), "{again:?}");
    assert!(store.get_entry(&t, 2).await.expect("get").is_none(), "no entry without its change");
    assert_eq!(store.log_event(&t, AuditEvent::new("next")).await.expect("log").seq, 2);
    let page = store.get_log(&t, &AuditQuery::default(), &PageRequest::first(10)).await.expect("log");
    assert_eq!(page.items.len(), 2);
}

/// Six entries in `t`, by actors `u0` … `u5`, for a backend's own tests that tamper with its rows
/// by hand (SQL); the chain verifies clean.
pub async fn six_entries_to_tamper_with(engine: &dyn storage_core::Engine, t: &TenantId) {
    let store: Audit = Audit::on(engine);
    for i in 0..6 {
        store.log_event(t, AuditEvent::new("doc.edit").actor(format!("u{i}"))).await.expect("log");
    }
    assert_eq!(store.verify(t, None, None).await.expect("verify").broken, None, "clean before");
}

/// The sequence number `verify` names as the first broken link of `t`'s chain.
pub async fn first_broken_link(engine: &dyn storage_core::Engine, t: &TenantId) -> Option<u64> {
    let store: Audit = Audit::on(engine);
    store.verify(t, None, None).await.expect("verify").broken.map(|b| b.seq)
}
