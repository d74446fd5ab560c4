//! Conformance cases of `UnifiedInboxStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{
    AccountChanges, Clock, InboxAccount, InboxMessage, MessageFilter, PageRequest, PriorityTier, Secret, StorageError, TenantId,
    TriageResult, UnifiedInbox, UnifiedInboxStore,
};

fn account(s: &Subject, t: &TenantId, id: &str) -> InboxAccount {
    InboxAccount::new(t.clone(), id, "gmail", &format!("{id}@example.com"), s.clock.now())
}

fn message(s: &Subject, t: &TenantId, account: &str, external: &str, subject: &str) -> InboxMessage {
    let mut message = InboxMessage::new(t.clone(), account, external, subject, "Grace Hopper <grace@example.com>", s.clock.now());
    message.snippet = format!("about {subject}");
    message.body_preview = Secret::new(format!("the body of {external}"));
    message
}

fn subjects(messages: &[InboxMessage]) -> Vec<String> {
    messages.iter().map(|m| m.subject.clone()).collect()
}

async fn counts(store: &UnifiedInbox, t: &TenantId, account: &str) -> (u64, u64) {
    let account = store.get_account(t, account).await.expect("account").expect("present");
    (account.total_messages, account.unread_count)
}

pub async fn messages_are_deduplicated_ranked_and_counted_with_their_account(s: &Subject) {
    let store = s.store::<UnifiedInbox>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    store.save_account(&account(s, &acme, "work")).await.expect("work");
    store.save_account(&account(s, &acme, "home")).await.expect("home");
    let mut urgent = message(s, &acme, "work", "m-1", "Outage");
    (urgent.priority_score, urgent.priority_tier) = (0.9, PriorityTier::Critical);
    let (saved, inserted) = store.save_message(&urgent).await.expect("save");
    assert!(inserted && saved.version == 1);
    assert_eq!(saved.body_preview.expose(), "the body of m-1");
    s.clock.advance(TimeDelta::minutes(1));
    let mut read = message(s, &acme, "work", "m-2", "Lunch");
    (read.priority_score, read.is_read) = (0.2, true);
    store.save_message(&read).await.expect("save");
    s.clock.advance(TimeDelta::minutes(1));
    let mut newer = message(s, &acme, "work", "m-3", "Invoice");
    (newer.priority_score, newer.priority_tier) = (0.2, PriorityTier::Medium);
    store.save_message(&newer).await.expect("save");
    store.save_message(&message(s, &acme, "home", "m-1", "Family")).await.expect("another account's m-1 is another message");
    assert_eq!(counts(&store, &acme, "work").await, (3, 2));

    let again = store.save_message(&InboxMessage { subject: "changed".into(), ..urgent.clone() }).await.expect("again");
    assert_eq!((again.0.subject.as_str(), again.1), ("Outage", false), "a duplicate reports the stored message");
    assert_eq!(counts(&store, &acme, "work").await, (3, 2), "and moves no counter");

    // Ranked: priority first, then newest; filters; totals; pages.
    let all = MessageFilter::default();
    let (page, total) = store.list_messages(&acme, &all, &PageRequest::first(10)).await.expect("list");
    assert_eq!((subjects(&page.items), total), (vec!["Outage".into(), "Invoice".into(), "Lunch".into(), "Family".into()], 4));
    let work_unread = MessageFilter { account_id: Some("work".into()), unread_only: true, ..MessageFilter::default() };
    let (page, total) = store.list_messages(&acme, &work_unread, &PageRequest::first(10)).await.expect("list");
    assert_eq!((subjects(&page.items), total), (vec!["Outage".into(), "Invoice".into()], 2));
    let critical = MessageFilter { priority_tier: Some(PriorityTier::Critical), ..MessageFilter::default() };
    assert_eq!(store.list_messages(&acme, &critical, &PageRequest::first(10)).await.expect("list").1, 1);
    let (store_ref, acme_ref, all_ref) = (&store, &acme, &all);
    let paged = collect_all(1, |page| async move { store_ref.list_messages(acme_ref, all_ref, &page).await.map(|(p, _)| p) }).await;
    assert_eq!(subjects(&paged), ["Outage", "Invoice", "Lunch", "Family"]);

    // Flags and deletes move the counters with them.
    let id = urgent.message_id();
    store.update_message_flags(&acme, &id, Some(true), Some(true)).await.expect("read");
    store.update_message_flags(&acme, &id, Some(true), None).await.expect("read again");
    assert_eq!(counts(&store, &acme, "work").await, (3, 1));
    let triaged = store.update_message_triage(&acme, &id, "escalate", "production is down").await.expect("triage");
    assert_eq!((triaged.triage_action.as_deref(), triaged.is_starred), (Some("escalate"), true));
    let result = TriageResult {
        tenant: acme.clone(),
        message_id: id.clone(),
        account_id: "work".into(),
        recommended_action: "escalate".into(),
        confidence: 0.8,
        rationale: "outage".into(),
        suggested_response: None,
        delegate_to: Some("oncall".into()),
        schedule_for: None,
        agents_involved: vec!["claude".into()],
        debate_summary: None,
        version: 0,
        created_at: s.clock.now(),
        updated_at: s.clock.now(),
    };
    store.save_triage_result(&result).await.expect("triage result");
    assert_eq!(store.get_triage_result(&acme, &id).await.expect("get").map(|r| r.delegate_to), Some(Some("oncall".into())));
    let orphan = TriageResult { message_id: "nope".into(), ..result.clone() };
    assert!(matches!(store.save_triage_result(&orphan).await, Err(StorageError::NotFound { .. })));
    assert!(store.delete_message(&acme, &newer.message_id()).await.expect("delete"));
    assert!(!store.delete_message(&acme, &newer.message_id()).await.expect("delete again"));
    assert_eq!(counts(&store, &acme, "work").await, (2, 0));
    store.increment_account_counts(&acme, "work", -5, -5, 2).await.expect("clamped");
    let work = store.get_account(&acme, "work").await.expect("get").expect("present");
    assert_eq!((work.total_messages, work.unread_count, work.sync_errors), (0, 0, 2), "counters stop at zero");
    let renamed = AccountChanges { display_name: Some("Work".into()), status: Some("syncing".into()), ..AccountChanges::default() };
    store.update_account_fields(&acme, "work", renamed).await.expect("fields");
    let resaved = store.save_account(&InboxAccount { status: "connected".into(), ..account(s, &acme, "work") }).await.expect("resave");
    assert_eq!((resaved.sync_errors, resaved.status.as_str()), (2, "connected"), "a re-save keeps the store's counters");

    // Bad input, unknown accounts and other tenants.
    let mut bad = message(s, &acme, "work", "m-9", "Bad");
    bad.priority_score = 1.5;
    assert_invalid(store.save_message(&bad).await, "priority_score");
    bad.priority_score = f64::NAN;
    assert_invalid(store.save_message(&bad).await, "priority_score");
    assert!(matches!(store.save_message(&message(s, &acme, "nowhere", "m-1", "x")).await, Err(StorageError::NotFound { .. })));
    assert_invalid(store.save_account(&InboxAccount { email_address: "not-an-address".into(), ..account(s, &acme, "x") }).await, "email");
    assert!(store.get_message(&globex, &id).await.expect("get").is_none());
    assert!(store.list_accounts(&globex).await.expect("list").is_empty());
    assert!(matches!(store.update_message_flags(&globex, &id, Some(false), None).await, Err(StorageError::NotFound { .. })));

    // Deleting an account deletes its messages and their triage, and nothing else.
    assert!(store.delete_account(&acme, "work").await.expect("delete account"));
    assert!(store.get_message(&acme, &id).await.expect("get").is_none());
    assert!(store.get_triage_result(&acme, &id).await.expect("get").is_none());
    let (left, total) = store.list_messages(&acme, &all, &PageRequest::first(10)).await.expect("list");
    assert_eq!((subjects(&left.items), total), (vec!["Family".to_owned()], 1));
    assert_eq!(store.list_accounts(&acme).await.expect("accounts").len(), 1);
    assert!(!store.delete_account(&acme, "work").await.expect("again"));
}

pub async fn concurrent_upserts_of_one_message_insert_it_once(s: &Subject) {
    let store = Arc::new(s.store::<UnifiedInbox>());
    let acme = tenant("acme");
    store.save_account(&account(s, &acme, "work")).await.expect("account");
    let one = message(s, &acme, "work", "same", "Same");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, one) = (Arc::clone(&store), one.clone());
            tokio::spawn(async move { store.save_message(&one).await.expect("save").1 })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        inserted += usize::from(task.await.expect("task"));
    }
    assert_eq!(inserted, 1, "one insert among 32 upserts");
    assert_eq!(counts(&store, &acme, "work").await, (1, 1), "the counters moved once");
    let tasks: Vec<_> = (0..32)
        .map(|n| {
            let (store, m) = (Arc::clone(&store), message(s, &acme, "work", &format!("m-{n}"), "Many"));
            tokio::spawn(async move {
                store.save_message(&m).await.expect("save");
                if n % 2 == 0 {
                    store.update_message_flags(&m.tenant, &m.message_id(), Some(true), None).await.expect("read");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(counts(&store, &acme, "work").await, (33, 17), "every insert and read counted exactly");
}

pub async fn search_finds_words_of_subject_sender_and_snippet_in_its_tenant(s: &Subject) {
    let store = s.store::<UnifiedInbox>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    for t in [&acme, &globex] {
        store.save_account(&account(s, t, "work")).await.expect("account");
    }
    let mut budget = message(s, &acme, "work", "m-1", "Q3 budget review");
    budget.snippet = "Please check the draft budget before Friday".into();
    budget.body_preview = Secret::new("confidential merger details".into());
    store.save_message(&budget).await.expect("save");
    let mut read = message(s, &acme, "work", "m-2", "Budget approved");
    read.is_read = true;
    store.save_message(&read).await.expect("save");
    store.save_message(&message(s, &acme, "work", "m-3", "Team offsite")).await.expect("save");
    store.save_message(&message(s, &globex, "work", "m-1", "Globex budget secrets")).await.expect("save");

    let all = MessageFilter::default();
    let found = |query: &'static str, filter: MessageFilter| {
        let (store, acme) = (&store, &acme);
        async move {
            let (items, total) = store.search_messages(acme, query, &filter, 10, 0).await.expect("search");
            assert_eq!(items.len() as u64, total);
            subjects(&items).into_iter().collect::<BTreeSet<_>>()
        }
    };
    let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    assert_eq!(found("budget", all.clone()).await, set(&["Q3 budget review", "Budget approved"]), "any case");
    assert_eq!(found("draft budget", all.clone()).await, set(&["Q3 budget review"]), "every term");
    assert_eq!(found("grace@example.com", all.clone()).await.len(), 3, "the sender");
    assert_eq!(found("budget", MessageFilter { unread_only: true, ..all.clone() }).await, set(&["Q3 budget review"]), "with a filter");
    assert!(found("merger", all.clone()).await.is_empty(), "a sealed body is not searchable");
    assert!(found("globex", all.clone()).await.is_empty(), "a term of another tenant never matches");
    assert!(found("budget NOT approved", all.clone()).await.is_empty(), "operators are words");
    assert!(found("", all.clone()).await.is_empty());
    assert!(found(" \"*\" -- ()", all.clone()).await.is_empty());
    let (first, total) = store.search_messages(&acme, "budget", &all, 1, 0).await.expect("page 1");
    let (second, _) = store.search_messages(&acme, "budget", &all, 1, 1).await.expect("page 2");
    assert_eq!((first.len(), second.len(), total), (1, 1, 2));
    assert_ne!(first[0].message_id(), second[0].message_id());

    // The index follows every write: an insert, a delete, a deleted account.
    store.save_message(&message(s, &acme, "work", "m-9", "Later budget")).await.expect("save");
    assert_eq!(found("later", all.clone()).await, set(&["Later budget"]));
    store.delete_message(&acme, &budget.message_id()).await.expect("delete");
    assert_eq!(found("budget", all.clone()).await, set(&["Budget approved", "Later budget"]));
    store.delete_account(&acme, "work").await.expect("delete account");
    assert!(found("budget", all.clone()).await.is_empty());
    assert_invalid(store.search_messages(&acme, "x", &all, 0, 0).await, "limit");
    assert_invalid(store.search_messages(&acme, "x", &all, 10, 10_001).await, "offset");
}

pub async fn generated_queries_never_fail_and_known_phrases_are_found(s: &Subject) {
    let store = Arc::new(s.store::<UnifiedInbox>());
    let acme = tenant("acme");
    store.save_account(&account(s, &acme, "work")).await.expect("account");
    for i in 0..200 {
        let (text, _) = crate::fts::phrase(i);
        let mut m = message(s, &acme, "work", &format!("p-{i}"), &format!("Message {i}"));
        m.snippet = text;
        store.save_message(&m).await.expect("save");
    }
    for i in 0..200 {
        let (_, query) = crate::fts::phrase(i);
        let (found, _) = store.search_messages(&acme, &query, &MessageFilter::default(), 10, 0).await.expect("search");
        assert!(found.iter().any(|m| m.external_id == format!("p-{i}")), "`{query}` finds its message, got {:?}", subjects(&found));
    }
    let mut queries = Vec::new();
    crate::fts::for_each_query(10_000, |q| queries.push(q.to_owned()));
    let chunks: Vec<Vec<String>> = queries.chunks(1_250).map(<[String]>::to_vec).collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            tokio::spawn(async move {
                for query in chunk {
                    if let Err(e) = store.search_messages(&acme, &query, &MessageFilter::default(), 5, 0).await {
                        panic!("`{}` failed: {e}", query.escape_debug());
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no query fails");
    }
}
