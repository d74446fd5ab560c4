//! Conformance cases of `EmailStore`.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{
    Clock, EmailStore, Emails, MessageStatus, NewDecision, NewRoutingRule, NewSharedInbox, PageRequest, SharedInboxChanges, SharedMessage,
    StorageError, TenantId,
};

fn members(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn shared(id: &str, names: &[&str]) -> NewSharedInbox {
    NewSharedInbox { id: id.to_owned(), name: format!("{id} inbox"), members: members(names), ..NewSharedInbox::default() }
}

fn message(s: &Subject, t: &TenantId, inbox: &str, id: &str, subject: &str) -> SharedMessage {
    SharedMessage {
        tenant: t.clone(),
        id: id.to_owned(),
        inbox_id: inbox.to_owned(),
        external_id: None,
        subject: subject.to_owned(),
        from_address: "customer@example.com".to_owned(),
        snippet: format!("regarding {subject}"),
        status: MessageStatus::Open,
        priority: None,
        assigned_to: None,
        tags: BTreeSet::new(),
        metadata: serde_json::Map::new(),
        received_at: s.clock.now(),
        version: 0,
        created_at: s.clock.now(),
        updated_at: s.clock.now(),
    }
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|item| id(item).to_owned()).collect()
}

pub async fn settings_and_vip_senders_are_per_user_and_workspace(s: &Subject) {
    let store = s.store::<Emails>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let config = json!({"tiers": 3, "quiet_hours": [22, 7]}).as_object().cloned().expect("object");
    store.save_user_config(&acme, "ada", config.clone()).await.expect("save");
    store.save_user_config(&acme, "bob", serde_json::Map::new()).await.expect("save");
    let saved = store.save_user_config(&acme, "ada", config.clone()).await.expect("save again");
    assert_eq!((saved.version, saved.config), (2, config));
    assert_eq!(ids(&store.list_workspace_configs(&acme).await.expect("list"), |c| &c.user_id), ["ada", "bob"]);
    assert!(store.get_user_config(&globex, "ada").await.expect("get").is_none(), "workspaces are apart");
    assert!(store.delete_user_config(&acme, "bob").await.expect("delete"));
    assert!(!store.delete_user_config(&acme, "bob").await.expect("delete again"));

    store.add_vip_sender(&acme, "ada", "CEO@Example.com", Some("The CEO")).await.expect("vip");
    store.add_vip_sender(&acme, "ada", "ceo@example.com", Some("Our CEO")).await.expect("the same vip, renamed");
    store.add_vip_sender(&acme, "ada", "board@example.com", None).await.expect("vip");
    let vips = store.get_vip_senders(&acme, "ada").await.expect("vips");
    assert_eq!(ids(&vips, |v| &v.email), ["board@example.com", "ceo@example.com"]);
    assert_eq!(vips[1].name.as_deref(), Some("Our CEO"));
    assert!(store.is_vip_sender(&acme, "ada", "Ceo@EXAMPLE.com").await.expect("is vip"), "in any case");
    assert!(!store.is_vip_sender(&acme, "bob", "ceo@example.com").await.expect("is vip"), "per user");
    assert!(!store.is_vip_sender(&globex, "ada", "ceo@example.com").await.expect("is vip"), "per workspace");
    assert!(store.remove_vip_sender(&acme, "ada", "CEO@example.com").await.expect("remove"));
    assert!(!store.is_vip_sender(&acme, "ada", "ceo@example.com").await.expect("is vip"));
    assert_invalid(store.add_vip_sender(&acme, "ada", "not an address", None).await, "email");
    assert_invalid(store.save_user_config(&acme, "bad\u{7}", serde_json::Map::new()).await, "user_id");
}

pub async fn shared_inboxes_keep_members_messages_and_their_search_together(s: &Subject) {
    let store = Arc::new(s.store::<Emails>());
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    store.create_shared_inbox(&acme, shared("support", &["ada", "bob"])).await.expect("support");
    store.create_shared_inbox(&acme, shared("sales", &["bob"])).await.expect("sales");
    store.create_shared_inbox(&globex, shared("support", &["ada"])).await.expect("globex support");
    assert!(matches!(store.create_shared_inbox(&acme, shared("sales", &[])).await, Err(StorageError::Conflict { .. })));
    assert_eq!(ids(&store.list_shared_inboxes(&acme, Some("bob")).await.expect("bob's"), |i| &i.id), ["sales", "support"]);
    assert_eq!(ids(&store.list_shared_inboxes(&acme, Some("ada")).await.expect("ada's"), |i| &i.id), ["support"]);
    let moved = SharedInboxChanges { members: Some(members(&["ada", "cy"])), ..SharedInboxChanges::default() };
    store.update_shared_inbox(&acme, "support", moved).await.expect("members");
    assert_eq!(ids(&store.list_shared_inboxes(&acme, Some("bob")).await.expect("bob's"), |i| &i.id), ["sales"], "membership follows");
    assert_eq!(store.list_shared_inboxes(&acme, Some("cy")).await.expect("cy's").len(), 1);
    assert_eq!(store.list_shared_inboxes(&acme, None).await.expect("all").len(), 2);
    assert_invalid(store.create_shared_inbox(&acme, shared("ops", &["bad\u{7}member"])).await, "members");

    store.save_message(&message(s, &acme, "support", "m-1", "Refund request")).await.expect("save");
    s.clock.advance(TimeDelta::seconds(1));
    store.save_message(&message(s, &acme, "support", "m-2", "Login broken")).await.expect("save");
    store.save_message(&message(s, &acme, "sales", "m-3", "Refund policy question")).await.expect("save");
    store.save_message(&message(s, &globex, "support", "m-1", "Refund elsewhere")).await.expect("save");
    assert!(matches!(store.save_message(&message(s, &acme, "nowhere", "m-9", "x")).await, Err(StorageError::NotFound { .. })));
    let newest = store.list_inbox_messages(&acme, "support", None, None, &PageRequest::first(10)).await.expect("list");
    assert_eq!(ids(&newest.items, |m| &m.id), ["m-2", "m-1"], "newest first");
    store.update_message_status(&acme, "m-1", MessageStatus::Assigned, Some("ada")).await.expect("assign");
    let ada = store.list_inbox_messages(&acme, "support", Some(MessageStatus::Assigned), Some("ada"), &PageRequest::first(10)).await;
    assert_eq!(ids(&ada.expect("ada's").items, |m| &m.id), ["m-1"]);
    let stats = store.get_inbox_stats(&acme, "support").await.expect("stats");
    assert_eq!((stats[&MessageStatus::Open], stats[&MessageStatus::Assigned], stats[&MessageStatus::Closed]), (1, 1, 0));

    // Sixteen concurrent tags: none lost.
    let tags: Vec<_> = (0..16)
        .map(|n| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            tokio::spawn(async move { store.add_message_tag(&acme, "m-2", &format!("tag-{n}")).await.expect("tag") })
        })
        .collect();
    for task in tags {
        task.await.expect("task");
    }
    assert_eq!(store.get_message(&acme, "m-2").await.expect("get").expect("present").tags.len(), 16);

    // Search: in the inbox, in the workspace, with filters.
    let search = |inbox: &'static str, query: &'static str, status: Option<MessageStatus>| {
        let (store, acme) = (Arc::clone(&store), acme.clone());
        async move { store.search_messages(&acme, inbox, query, status, None, 10, 0).await.expect("search") }
    };
    let (found, total) = search("support", "refund", None).await;
    assert_eq!((ids(&found, |m| &m.id), total), (vec!["m-1".to_owned()], 1), "neither another inbox nor another workspace");
    assert_eq!(search("support", "customer@example.com", None).await.1, 2, "the sender");
    assert_eq!(search("support", "refund", Some(MessageStatus::Open)).await.1, 0, "with a status");
    assert_eq!(search("sales", "refund policy", None).await.1, 1);

    assert!(store.delete_shared_inbox(&acme, "support").await.expect("delete"));
    assert!(store.get_message(&acme, "m-1").await.expect("get").is_none(), "its messages go with it");
    assert_eq!(search("support", "refund", None).await.1, 0);
    assert!(store.list_shared_inboxes(&acme, Some("cy")).await.expect("cy's").is_empty());
    assert!(store.get_message(&acme, "m-3").await.expect("get").is_some());
    assert!(store.get_message(&globex, "m-1").await.expect("get").is_some());
}

pub async fn routing_rules_run_by_priority_and_count_every_match(s: &Subject) {
    let store = Arc::new(s.store::<Emails>());
    let acme = tenant("acme");
    let rule = |name: &str, inbox: Option<&str>, priority: i64, enabled: bool| NewRoutingRule {
        inbox_id: inbox.map(str::to_owned),
        name: name.to_owned(),
        priority,
        enabled,
        conditions: json!({"from": "*@vip.example"}),
        actions: json!({"assign": "ada"}),
    };
    store.create_routing_rule(&acme, rule("global-low", None, 1, true)).await.expect("rule");
    s.clock.advance(TimeDelta::seconds(1));
    store.create_routing_rule(&acme, rule("support-high", Some("support"), 50, true)).await.expect("rule");
    s.clock.advance(TimeDelta::seconds(1));
    store.create_routing_rule(&acme, rule("support-high-later", Some("support"), 50, true)).await.expect("rule");
    let off = store.create_routing_rule(&acme, rule("global-off", None, 90, false)).await.expect("rule");
    store.create_routing_rule(&acme, rule("sales", Some("sales"), 99, true)).await.expect("rule");
    let names = |rules: Vec<storage_core::RoutingRule>| rules.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_routing_rules(&acme, Some("support"), false).await.expect("rules")),
        ["global-off", "support-high", "support-high-later", "global-low"],
        "its own and every inbox's, highest first, then oldest"
    );
    assert_eq!(
        names(store.list_routing_rules(&acme, Some("support"), true).await.expect("rules")),
        ["support-high", "support-high-later", "global-low"]
    );
    assert_eq!(store.list_routing_rules(&acme, None, false).await.expect("all").len(), 5);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, acme, id) = (Arc::clone(&store), acme.clone(), off.id.clone());
            tokio::spawn(async move { store.increment_rule_match_count(&acme, &id).await.expect("match") })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let counted = store.get_routing_rule(&acme, &off.id).await.expect("get").expect("present");
    assert_eq!((counted.match_count, counted.last_matched_at.is_some()), (32, true), "every match counted");
    let changes = storage_core::RoutingRuleChanges { priority: Some(0), enabled: Some(true), ..Default::default() };
    store.update_routing_rule(&acme, &off.id, changes).await.expect("update");
    assert_eq!(names(store.list_routing_rules(&acme, Some("sales"), true).await.expect("rules")), ["sales", "global-low", "global-off"]);
    assert_invalid(store.create_routing_rule(&acme, rule("too high", None, 100_001, true)).await, "priority");
    assert!(store.delete_routing_rule(&acme, &off.id).await.expect("delete"));
    assert!(store.get_routing_rule(&tenant("globex"), &counted.id).await.expect("get").is_none());
}

pub async fn decisions_take_feedback_on_the_latest_and_report_accuracy(s: &Subject) {
    let store = s.store::<Emails>();
    let acme = tenant("acme");
    let decision = |email: &str, priority: &str| NewDecision {
        user_id: "ada".into(),
        email_id: email.into(),
        tier_used: 1,
        priority: priority.into(),
        confidence: 0.7,
        score: 0.5,
        rationale: "sender".into(),
        factors: json!({"vip": true}),
        context_boosts: json!([]),
    };
    store.record_prioritization_decision(&acme, decision("e-1", "low")).await.expect("decide");
    s.clock.advance(TimeDelta::seconds(1));
    let latest = store.record_prioritization_decision(&acme, decision("e-1", "high")).await.expect("decide again");
    for n in 2..6 {
        store.record_prioritization_decision(&acme, decision(&format!("e-{n}"), "medium")).await.expect("decide");
    }
    let judged = store.record_user_feedback(&acme, "ada", "e-1", true).await.expect("feedback").expect("a decision");
    assert_eq!((judged.id, judged.priority.as_str(), judged.user_feedback), (latest.id, "high", Some(true)), "the latest decision");
    store.record_user_feedback(&acme, "ada", "e-2", false).await.expect("feedback");
    store.record_user_feedback(&acme, "ada", "e-3", true).await.expect("feedback");
    assert!(store.record_user_feedback(&acme, "ada", "e-99", true).await.expect("feedback").is_none());
    let stats = store.get_feedback_stats(&acme, "ada", 30).await.expect("stats");
    assert_eq!((stats.decisions, stats.with_feedback, stats.correct), (6, 3, 2));
    assert!((stats.accuracy.expect("accuracy") - 2.0 / 3.0).abs() < 1e-9);
    s.clock.advance(TimeDelta::days(31));
    store.record_prioritization_decision(&acme, decision("e-7", "low")).await.expect("decide");
    let stats = store.get_feedback_stats(&acme, "ada", 30).await.expect("stats");
    assert_eq!((stats.decisions, stats.with_feedback, stats.accuracy), (1, 0, None), "only the window");
    let mut bad = decision("e-8", "low");
    bad.confidence = 2.0;
    assert_invalid(store.record_prioritization_decision(&acme, bad).await, "confidence");
    assert_eq!(store.get_feedback_stats(&tenant("globex"), "ada", 30).await.expect("stats").decisions, 0);
}
