//! Conformance cases of `IntegrationStore`.

use crate::{Subject, assert_each_once, assert_invalid, collect_all, page_under_churn, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{Clock, IntegrationConfig, IntegrationStore, Integrations, PageRequest, StorageError, UserIdMapping};

fn slack(t: &str, key: &str) -> IntegrationConfig {
    IntegrationConfig::new(tenant(t), key, "slack")
        .with_user("user-1")
        .with_credential("token", "xoxb-secret-token")
        .with_setting("channel", "#general")
}

pub async fn set_then_get_round_trips(s: &Subject) {
    let store = &s.store::<Integrations>();
    let now = s.clock.now();
    let stored = store.set(&slack("acme", "workspace-123")).await.expect("set");
    assert_eq!((stored.version, stored.created_at, stored.updated_at), (1, now, now));
    let read = store.get(&tenant("acme"), "workspace-123").await.expect("get").expect("present");
    assert_eq!(read, stored);
    assert_eq!(read.credentials["token"].expose(), "xoxb-secret-token");
    assert_eq!(read.settings["channel"], "#general");
    assert!(store.get(&tenant("acme"), "missing").await.expect("get").is_none());
}

pub async fn set_keeps_created_at_and_bumps_the_version(s: &Subject) {
    let store = &s.store::<Integrations>();
    let first = store.set(&slack("acme", "k")).await.expect("set");
    s.clock.advance(TimeDelta::seconds(90));
    let mut changed = first.clone();
    changed.enabled = false;
    let second = store.set(&changed).await.expect("set again");
    assert_eq!(second.version, 2);
    assert_eq!(second.created_at, first.created_at, "created_at survives set");
    assert_eq!(second.updated_at, first.created_at + TimeDelta::seconds(90));
    let read = store.get(&tenant("acme"), "k").await.expect("get").expect("present");
    assert!(!read.enabled);
    assert_eq!(read.created_at, first.created_at);
}

pub async fn create_never_overwrites(s: &Subject) {
    let store = &s.store::<Integrations>();
    store.create(&slack("acme", "k")).await.expect("create");
    let other = IntegrationConfig::new(tenant("acme"), "k", "discord");
    assert!(matches!(store.create(&other).await, Err(StorageError::Conflict { .. })));
    let read = store.get(&tenant("acme"), "k").await.expect("get").expect("present");
    assert_eq!(read.integration_type, "slack", "the first record is untouched");
}

pub async fn update_checks_the_version(s: &Subject) {
    let store = &s.store::<Integrations>();
    let v1 = store.create(&slack("acme", "k")).await.expect("create");
    let mut a = v1.clone();
    a.messages_sent = 10;
    let v2 = store.update(&a).await.expect("first update wins");
    assert_eq!(v2.version, 2);
    let mut stale = v1.clone();
    stale.messages_sent = 99;
    match store.update(&stale).await {
        Err(StorageError::VersionMismatch { expected: 1, actual: 2, .. }) => {}
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    assert_eq!(store.get(&tenant("acme"), "k").await.expect("get").expect("present").messages_sent, 10);
    let missing = slack("acme", "nope");
    assert!(matches!(store.update(&missing).await, Err(StorageError::NotFound { .. })));
}

pub async fn delete_reports_whether_it_existed(s: &Subject) {
    let store = &s.store::<Integrations>();
    store.set(&slack("acme", "k")).await.expect("set");
    assert!(store.delete(&tenant("acme"), "k").await.expect("delete"));
    assert!(!store.delete(&tenant("acme"), "k").await.expect("delete again"));
    assert!(store.get(&tenant("acme"), "k").await.expect("get").is_none());
}

pub async fn lists_paginate_in_key_order(s: &Subject) {
    let store = &s.store::<Integrations>();
    let t = &tenant("acme");
    for i in (0..25).rev() {
        let kind = if i % 2 == 0 { "slack" } else { "discord" };
        let config = IntegrationConfig::new(t.clone(), format!("key-{i:02}"), kind).with_user(if i < 20 { "alice" } else { "bob" });
        store.set(&config).await.expect("set");
    }
    let alice = collect_all(7, |p| async move { store.list_by_user(t, "alice", &p).await }).await;
    let keys: Vec<_> = alice.iter().map(|c| c.key.clone()).collect();
    let expected: Vec<_> = (0..20).map(|i| format!("key-{i:02}")).collect();
    assert_eq!(keys, expected, "every record once, in key order");
    let slack = collect_all(5, |p| async move { store.list_by_type(t, "slack", &p).await }).await;
    assert_eq!(slack.len(), 13);
    assert!(slack.iter().all(|c| c.integration_type == "slack"));
    let first = store.list_by_user(t, "bob", &PageRequest::first(100)).await.expect("list");
    assert_eq!((first.items.len(), first.next), (5, None));
    let capped = store.list_by_user(t, "alice", &PageRequest::first(u32::MAX)).await.expect("list");
    assert_eq!(capped.items.len(), 20, "a huge limit is capped, not an error");
}

pub async fn index_changes_move_records_between_lists(s: &Subject) {
    let store = &s.store::<Integrations>();
    let t = tenant("acme");
    let stored = store.set(&slack("acme", "k")).await.expect("set");
    let mut moved = stored.with_user("user-2");
    moved.integration_type = "teams".into();
    store.set(&moved).await.expect("set");
    let page = PageRequest::first(10);
    assert!(store.list_by_user(&t, "user-1", &page).await.expect("list").items.is_empty(), "old index entry is gone");
    assert!(store.list_by_type(&t, "slack", &page).await.expect("list").items.is_empty());
    assert_eq!(store.list_by_user(&t, "user-2", &page).await.expect("list").items.len(), 1);
    assert_eq!(store.list_by_type(&t, "teams", &page).await.expect("list").items.len(), 1);
    store.delete(&t, "k").await.expect("delete");
    assert!(store.list_by_user(&t, "user-2", &page).await.expect("list").items.is_empty(), "deleted records leave every list");
}

pub async fn tenants_are_isolated(s: &Subject) {
    let store = &s.store::<Integrations>();
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    store.set(&slack("tenant-a", "shared-key")).await.expect("set a");
    assert!(store.get(&b, "shared-key").await.expect("get").is_none());
    assert!(store.list_by_user(&b, "user-1", &PageRequest::first(10)).await.expect("list").items.is_empty());
    assert!(!store.delete(&b, "shared-key").await.expect("delete"));
    let other = IntegrationConfig::new(b.clone(), "shared-key", "discord");
    store.create(&other).await.expect("the same key in another tenant is another record");
    assert_eq!(store.get(&a, "shared-key").await.expect("get").expect("a").integration_type, "slack");
    // A tenant whose name is a prefix of another's sees nothing of it.
    store.set(&slack("tenant", "k")).await.expect("set");
    assert_eq!(store.list_by_user(&tenant("tenant"), "user-1", &PageRequest::first(10)).await.expect("list").items.len(), 1);
}

pub async fn user_mappings_round_trip(s: &Subject) {
    let store = &s.store::<Integrations>();
    let t = &tenant("acme");
    let mut m = UserIdMapping::new(t.clone(), "slack", "U:123", "user-1");
    m.email = Some("a@example.com".into());
    let stored = store.save_user_mapping(&m).await.expect("save");
    assert_eq!(stored.version, 1);
    let read = store.get_user_mapping(t, "slack", "U:123").await.expect("get").expect("present");
    assert_eq!(read, stored);
    store.save_user_mapping(&UserIdMapping::new(t.clone(), "discord", "D1", "user-1")).await.expect("save");
    store.save_user_mapping(&UserIdMapping::new(t.clone(), "slack", "U2", "user-2")).await.expect("save");
    let slack = collect_all(1, |p| async move { store.list_user_mappings(t, Some("slack"), &p).await }).await;
    assert_eq!(slack.iter().map(|m| m.platform_user_id.as_str()).collect::<Vec<_>>(), ["U2", "U:123"]);
    assert_eq!(collect_all(10, |p| async move { store.list_user_mappings(t, None, &p).await }).await.len(), 3);
    let mine = collect_all(10, |p| async move { store.list_user_mappings_for_user(t, "user-1", &p).await }).await;
    assert_eq!(mine.len(), 2);
    assert!(store.delete_user_mapping(t, "slack", "U:123").await.expect("delete"));
    assert!(store.get_user_mapping(t, "slack", "U:123").await.expect("get").is_none());
    assert!(store.get_user_mapping(&tenant("other"), "slack", "U2").await.expect("get").is_none());
}

pub async fn bad_input_is_refused_and_nothing_is_written(s: &Subject) {
    let store = &s.store::<Integrations>();
    let t = tenant("acme");
    assert_invalid(store.set(&slack("acme", "")).await, "key");
    assert_invalid(store.set(&slack("acme", &"k".repeat(256))).await, "key");
    assert_invalid(store.set(&slack("acme", "a\0b")).await, "key");
    assert_invalid(store.set(&IntegrationConfig::new(t.clone(), "k", "Slack Bot")).await, "integration_type");
    assert_invalid(
        store.set(&IntegrationConfig::new(t.clone(), "k", "slack").with_setting("bot_token", "xoxb-leak")).await,
        "settings.bot_token",
    );
    assert_invalid(store.get(&t, "").await, "key");
    assert_invalid(store.list_by_user(&t, "alice", &PageRequest::first(0)).await, "limit");
    let bogus = PageRequest::first(10).after(storage_core::Cursor::from_string("%%%"));
    assert_invalid(store.list_by_user(&t, "alice", &bogus).await, "cursor");
    assert_invalid(store.save_user_mapping(&UserIdMapping::new(t.clone(), "slack", "", "u")).await, "platform_user_id");
    assert!(tenant_ids_refuse_bad_input());
    let all = store.list_by_type(&t, "slack", &PageRequest::first(100)).await.expect("list");
    assert!(all.items.is_empty(), "nothing was written: {:?}", all.items);
}

fn tenant_ids_refuse_bad_input() -> bool {
    ["", "a\0", "{hash}", &"t".repeat(256)].iter().all(|bad| storage_core::TenantId::new(*bad).is_err())
}

pub async fn concurrent_updates_lose_nothing(s: &Subject) {
    let store = Arc::new(s.store::<Integrations>());
    store.set(&slack("acme", "counter")).await.expect("set");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut done = 0;
                while done < 5 {
                    let mut current = store.get(&tenant("acme"), "counter").await.expect("get").expect("present");
                    current.messages_sent += 1;
                    match store.update(&current).await {
                        Ok(_) => done += 1,
                        Err(StorageError::VersionMismatch { .. }) => continue,
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let read = store.get(&tenant("acme"), "counter").await.expect("get").expect("present");
    assert_eq!(read.messages_sent, 40, "every increment landed exactly once");
    assert_eq!(read.version, 41);
}

pub async fn lists_by_tenant_user_and_type(s: &Subject) {
    let store = &s.store::<Integrations>();
    let t = &tenant("acme");
    for (key, user, kind) in [("a", "alice", "slack"), ("b", "alice", "teams"), ("c", "bob", "slack"), ("d", "alice", "slack")] {
        store.set(&IntegrationConfig::new(t.clone(), key, kind).with_user(user)).await.expect("set");
    }
    store.set(&IntegrationConfig::new(tenant("other"), "e", "slack").with_user("alice")).await.expect("set");
    let all = collect_all(3, |p| async move { store.list(t, &p).await }).await;
    assert_eq!(all.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    let mine = collect_all(1, |p| async move { store.list_by_user_and_type(t, "alice", "slack", &p).await }).await;
    assert_eq!(mine.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["a", "d"]);
    assert_invalid(store.list_by_user_and_type(t, "alice", "Slack!", &PageRequest::first(5)).await, "integration_type");
}

pub async fn counters_are_atomic_increments(s: &Subject) {
    let store = Arc::new(s.store::<Integrations>());
    let t = tenant("acme");
    let stored = store.set(&slack("acme", "k")).await.expect("set");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, t) = (Arc::clone(&store), t.clone());
            tokio::spawn(async move {
                for _ in 0..5 {
                    store.record_messages(&t, "k", 2).await.expect("count messages");
                    if i % 4 == 0 {
                        store.record_errors(&t, "k", 1).await.expect("count errors");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let read = store.get(&t, "k").await.expect("get").expect("present");
    assert_eq!((read.messages_sent, read.errors_24h), (160, 20), "every increment landed once");
    assert_eq!(read.version, stored.version + 80 + 20);
    assert_eq!(read.credentials["token"].expose(), "xoxb-secret-token", "the rest of the record is untouched");
    assert!(matches!(store.record_messages(&t, "missing", 1).await, Err(StorageError::NotFound { .. })));
    assert_invalid(store.record_messages(&t, "k", u64::MAX).await, "n");
}

pub async fn user_mappings_are_found_by_email_whatever_its_case(s: &Subject) {
    let store = &s.store::<Integrations>();
    let t = &tenant("acme");
    let mut m = UserIdMapping::new(t.clone(), "slack", "U1", "user-1");
    m.email = Some("Ada@Example.com".into());
    store.save_user_mapping(&m).await.expect("save");
    let mut other = UserIdMapping::new(t.clone(), "teams", "T1", "user-1");
    other.email = Some("ada@example.com".into());
    store.save_user_mapping(&other).await.expect("save");
    let found = store.get_user_mapping_by_email(t, "slack", "ADA@example.COM").await.expect("by email").expect("found");
    assert_eq!(found.platform_user_id, "U1");
    assert_eq!(
        store.get_user_mapping_by_email(t, "teams", "ada@example.com").await.expect("by email").map(|m| m.platform_user_id),
        Some("T1".into())
    );
    assert!(store.get_user_mapping_by_email(t, "discord", "ada@example.com").await.expect("by email").is_none());
    assert!(store.get_user_mapping_by_email(&tenant("other"), "slack", "ada@example.com").await.expect("by email").is_none());
}

pub async fn settings_round_trip_whatever_their_text_and_refuse_what_could_not(s: &Subject) {
    let store = &s.store::<Integrations>();
    let t = tenant("acme");
    let text = "nul \u{0} bell \u{7} quote \" backslash \\ emoji 🦀 rtl \u{202e} null-word null";
    let config = IntegrationConfig::new(t.clone(), "k", "slack")
        .with_setting("text", text)
        .with_setting("numbers", serde_json::json!([u64::MAX, i64::MIN, 1.5e300, -0.0]))
        .with_setting("empty", serde_json::json!({ "list": [], "map": {} }))
        .with_credential("pass\u{e9}", "sécret \u{0}");
    let stored = store.set(&config).await.expect("set");
    let read = store.get(&t, "k").await.expect("get").expect("present");
    assert_eq!(read, stored, "text with NUL, control and non-ASCII characters reads back exactly");
    let mut nested = serde_json::json!(1);
    for _ in 0..100 {
        nested = serde_json::json!([nested]);
    }
    assert_invalid(store.set(&IntegrationConfig::new(t.clone(), "deep", "slack").with_setting("deep", nested)).await, "record");
    let secret = serde_json::json!({ "smtp": { "host": "mail", "Password": "hunter2" } });
    assert_invalid(
        store.set(&IntegrationConfig::new(t.clone(), "nested", "slack").with_setting("mail", secret)).await,
        "settings.mail.smtp.Password",
    );
    let in_list = serde_json::json!([{ "api_key": "k" }]);
    assert_invalid(
        store.set(&IntegrationConfig::new(t.clone(), "listed", "slack").with_setting("hooks", in_list)).await,
        "settings.hooks[0].api_key",
    );
    let mut huge = IntegrationConfig::new(t.clone(), "huge", "slack");
    huge.messages_sent = u64::MAX;
    assert_invalid(store.set(&huge).await, "messages_sent");
    for key in ["deep", "nested", "listed", "huge"] {
        assert!(store.get(&t, key).await.expect("get").is_none(), "{key}: nothing was written");
    }
}

pub async fn every_list_pages_whole_under_churn(s: &Subject) {
    let store = &s.store::<Integrations>();
    let t = &tenant("acme");
    let mut keep = Vec::new();
    for i in 0..23 {
        let key = format!("keep-{i:02}");
        store.set(&IntegrationConfig::new(t.clone(), &key, "slack").with_user("alice")).await.expect("set");
        let mut m = UserIdMapping::new(t.clone(), "slack", format!("U-keep-{i:02}"), "alice");
        m.email = Some(format!("keep{i}@example.com"));
        store.save_user_mapping(&m).await.expect("save");
        keep.push(key);
    }
    let churn = |round: u32| async move {
        for k in 0..3 {
            let key = format!("churn-{round:03}-{k}");
            store.set(&IntegrationConfig::new(t.clone(), &key, "slack").with_user("alice")).await.expect("churn");
            store.save_user_mapping(&UserIdMapping::new(t.clone(), "slack", format!("U-{key}"), "alice")).await.expect("churn");
        }
        if let Some(before) = round.checked_sub(1) {
            store.delete(t, &format!("churn-{before:03}-0")).await.expect("churn delete");
            store.delete_user_mapping(t, "slack", &format!("U-churn-{before:03}-0")).await.expect("churn delete");
        }
    };
    let key = |c: &IntegrationConfig| c.key.clone();
    let seen = page_under_churn(4, |p| async move { store.list(t, &p).await }, key, churn).await;
    assert_each_once(&seen, keep.clone(), "list");
    let seen = page_under_churn(4, |p| async move { store.list_by_user(t, "alice", &p).await }, key, churn).await;
    assert_each_once(&seen, keep.clone(), "list_by_user");
    let seen = page_under_churn(5, |p| async move { store.list_by_type(t, "slack", &p).await }, key, churn).await;
    assert_each_once(&seen, keep.clone(), "list_by_type");
    let seen = page_under_churn(3, |p| async move { store.list_by_user_and_type(t, "alice", "slack", &p).await }, key, churn).await;
    assert_each_once(&seen, keep.clone(), "list_by_user_and_type");
    let mapped: Vec<String> = (0..23).map(|i| format!("U-keep-{i:02}")).collect();
    let id = |m: &UserIdMapping| m.platform_user_id.clone();
    let seen = page_under_churn(4, |p| async move { store.list_user_mappings(t, Some("slack"), &p).await }, id, churn).await;
    assert_each_once(&seen, mapped.clone(), "list_user_mappings(slack)");
    let seen = page_under_churn(6, |p| async move { store.list_user_mappings(t, None, &p).await }, id, churn).await;
    assert_each_once(&seen, mapped.clone(), "list_user_mappings");
    let seen = page_under_churn(4, |p| async move { store.list_user_mappings_for_user(t, "alice", &p).await }, id, churn).await;
    assert_each_once(&seen, mapped, "list_user_mappings_for_user");
}
