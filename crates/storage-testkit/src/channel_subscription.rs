//! Conformance cases of `ChannelSubscriptionStore`.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{
    ChannelSubscription, ChannelSubscriptionStore, ChannelSubscriptions, ChannelType, NewSubscription, StorageError, SubscriptionChanges,
};

fn subscription(channel_type: ChannelType, channel_id: &str, events: &[&str]) -> NewSubscription {
    NewSubscription {
        channel_type,
        channel_id: channel_id.to_owned(),
        workspace_id: Some("T1".to_owned()),
        channel_name: Some(format!("#{channel_id}")),
        event_types: events.iter().map(|e| (*e).to_owned()).collect(),
        created_by: Some("ada".to_owned()),
        config: [("token".to_owned(), format!("secret-of-{channel_id}"))].into(),
    }
}

fn channels(found: &[ChannelSubscription]) -> Vec<String> {
    found.iter().map(|s| s.channel_id.clone()).collect()
}

pub async fn one_subscription_per_channel_found_by_event_type(s: &Subject) {
    let store = s.store::<ChannelSubscriptions>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let general =
        store.create(&acme, subscription(ChannelType::Slack, "general", &["debate.completed", "receipt.signed"])).await.expect("general");
    assert!(general.is_active && general.version == 1);
    assert_eq!(general.config.get("token").map(String::as_str), Some("secret-of-general"));
    s.clock.advance(TimeDelta::seconds(1));
    store.create(&acme, subscription(ChannelType::Teams, "ops", &["debate.completed"])).await.expect("ops");
    s.clock.advance(TimeDelta::seconds(1));
    store.create(&acme, subscription(ChannelType::Slack, "all", &["*"])).await.expect("all");
    // The same channel id on another platform, or in another organisation, is another channel.
    store.create(&acme, subscription(ChannelType::Discord, "general", &["receipt.signed"])).await.expect("discord general");
    store.create(&globex, subscription(ChannelType::Slack, "general", &["debate.completed"])).await.expect("globex general");
    let again = store.create(&acme, subscription(ChannelType::Slack, "general", &["x"])).await;
    assert!(matches!(again, Err(StorageError::Conflict { .. })), "one active subscription per channel: {again:?}");

    let read = store.get(&acme, ChannelType::Slack, "general").await.expect("get").expect("present");
    assert_eq!(read.config, general.config, "the sealed config reads back");
    assert_eq!(channels(&store.get_for_event(&acme, "debate.completed").await.expect("event")), ["general", "ops", "all"], "oldest first");
    assert_eq!(
        channels(&store.get_by_org(&acme, Some(ChannelType::Slack), Some("receipt.signed"), true).await.expect("slack receipts")),
        ["general", "all"]
    );
    assert_eq!(channels(&store.get_by_org(&acme, Some(ChannelType::Slack), None, false).await.expect("slack")), ["general", "all"]);
    assert_eq!(store.count_by_org(&acme, false).await.expect("count"), 4);

    // Deactivation frees the channel for a new subscription, and takes it off every event.
    assert!(store.deactivate(&acme, ChannelType::Slack, "general").await.expect("deactivate"));
    assert!(!store.deactivate(&acme, ChannelType::Slack, "general").await.expect("deactivate again"));
    assert!(!store.deactivate(&acme, ChannelType::Slack, "nowhere").await.expect("deactivate missing"));
    assert_eq!(channels(&store.get_for_event(&acme, "receipt.signed").await.expect("event")), ["all", "general"]);
    assert_eq!(store.count_by_org(&acme, true).await.expect("count active"), 3);
    assert_eq!(store.get_by_org(&acme, None, Some("receipt.signed"), false).await.expect("with inactive").len(), 3);
    let renewed = store.create(&acme, subscription(ChannelType::Slack, "general", &["gauntlet.failed"])).await.expect("renew");
    assert!(renewed.is_active && renewed.version > general.version);
    assert!(
        store
            .get_for_event(&acme, "receipt.signed")
            .await
            .expect("event")
            .iter()
            .all(|s| s.channel_type != ChannelType::Slack || s.channel_id != "general")
    );
    assert_eq!(channels(&store.get_for_event(&acme, "gauntlet.failed").await.expect("event")), ["all", "general"]);

    let changes =
        SubscriptionChanges { event_types: Some(BTreeSet::from(["receipt.signed".to_owned()])), ..SubscriptionChanges::default() };
    store.update(&acme, ChannelType::Teams, "ops", changes).await.expect("update");
    assert_eq!(channels(&store.get_for_event(&acme, "debate.completed").await.expect("event")), ["all"]);

    // Every call is scoped to the organisation: no id reaches another organisation's channel.
    assert_eq!(channels(&store.get_for_event(&globex, "debate.completed").await.expect("globex")), ["general"]);
    assert!(store.get(&globex, ChannelType::Teams, "ops").await.expect("get").is_none());
    assert!(matches!(
        store.update(&globex, ChannelType::Teams, "ops", SubscriptionChanges::default()).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(!store.delete(&globex, ChannelType::Teams, "ops").await.expect("delete elsewhere"));

    // Bad input is refused and nothing is written.
    assert_invalid(store.create(&acme, subscription(ChannelType::Slack, "bad\u{7}", &["a"])).await, "channel_id");
    assert_invalid(store.create(&acme, subscription(ChannelType::Slack, "new", &[])).await, "event_types");
    assert_invalid(store.create(&acme, subscription(ChannelType::Slack, "new", &["no spaces"])).await, "event_types");
    assert_invalid(store.get_by_org(&acme, None, Some("a b"), false).await, "event_type");
    assert!(store.get(&acme, ChannelType::Slack, "new").await.expect("get").is_none());

    assert!(store.delete(&acme, ChannelType::Teams, "ops").await.expect("delete"));
    assert_eq!(store.clear(&acme).await.expect("clear"), 3);
    assert_eq!(store.count_by_org(&acme, false).await.expect("count"), 0);
    assert!(store.get_for_event(&acme, "receipt.signed").await.expect("event").is_empty());
    assert_eq!(store.count_by_org(&globex, false).await.expect("globex count"), 1, "a clear stays in its organisation");
}

pub async fn concurrent_subscriptions_of_one_channel_have_one_winner(s: &Subject) {
    let store = Arc::new(s.store::<ChannelSubscriptions>());
    let acme = tenant("acme");
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            tokio::spawn(async move { store.create(&acme, subscription(ChannelType::Slack, "general", &[&format!("e{n}")])).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(created) => winners.push(created),
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one subscription per channel");
    let event = winners[0].event_types.iter().next().cloned().expect("an event");
    assert_eq!(channels(&store.get_for_event(&acme, &event).await.expect("event")), ["general"]);
    let listed: usize = found_under_any_event(&store, &acme).await;
    assert_eq!(listed, 1, "only the winner's event finds it");
}

async fn found_under_any_event(store: &ChannelSubscriptions, acme: &storage_core::TenantId) -> usize {
    let mut found = 0;
    for n in 0..16 {
        found += store.get_for_event(acme, &format!("e{n}")).await.expect("event").len();
    }
    found
}
