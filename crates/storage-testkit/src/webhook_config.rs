//! Conformance cases of `WebhookConfigStore`.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{Clock, Scope, StorageError, WebhookChanges, WebhookConfig, WebhookConfigStore, WebhookConfigs, WebhookRegistration};

fn events(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn registration(url: &str, names: &[&str]) -> WebhookRegistration {
    WebhookRegistration { url: url.to_owned(), events: events(names), ..WebhookRegistration::default() }
}

fn urls(configs: &[WebhookConfig]) -> BTreeSet<String> {
    configs.iter().map(|c| c.url.clone()).collect()
}

fn set(urls: &[&str]) -> BTreeSet<String> {
    urls.iter().map(|url| (*url).to_owned()).collect()
}

pub async fn webhooks_register_list_update_and_rotate_their_secret(s: &Subject) {
    let store = s.store::<WebhookConfigs>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let first = WebhookRegistration {
        user_id: Some("ada".to_owned()),
        name: Some("CI".to_owned()),
        ..registration("https://a.example/hook", &["debate.completed"])
    };
    let first = store.register(&acme, first).await.expect("register");
    assert!(first.secret.expose().starts_with("whsec_") && first.secret.expose().len() > 40, "a fresh random secret");
    assert!(first.active && first.delivery_count == 0 && first.version == 1);
    s.clock.advance(TimeDelta::seconds(1));
    let second = store.register(&acme, registration("http://b.example:8080/in?x=1", &["*"])).await.expect("register");
    assert_ne!(first.secret, second.secret);
    let read = store.get(&acme, &first.id).await.expect("get").expect("present");
    assert_eq!(read.secret, first.secret, "the secret reads back as registered, not as its ciphertext");
    assert_eq!((read.url.as_str(), read.user_id.as_deref(), read.name.as_deref()), ("https://a.example/hook", Some("ada"), Some("CI")));

    let listed = store.list(&acme, None, false).await.expect("list");
    assert_eq!(listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [second.id.as_str(), first.id.as_str()], "newest first");
    assert!(listed.iter().all(|c| c.secret.expose().is_empty()), "lists carry no secret");
    assert_eq!(store.list(&acme, Some("ada"), false).await.expect("list").len(), 1);
    let paused = store.update(&acme, &second.id, WebhookChanges { active: Some(false), ..WebhookChanges::default() }).await.expect("pause");
    assert!(!paused.active);
    assert_eq!(store.list(&acme, None, true).await.expect("list").len(), 1, "active only");
    let changed = WebhookChanges {
        url: Some("https://a.example/v2".to_owned()),
        events: Some(events(&["debate.started", "debate.completed"])),
        description: Some("both".to_owned()),
        ..WebhookChanges::default()
    };
    let changed = store.update(&acme, &first.id, changed).await.expect("update");
    assert_eq!((changed.url.as_str(), changed.events.len(), changed.secret.clone()), ("https://a.example/v2", 2, first.secret.clone()));

    // Rotation: the old secret verifies during the overlap only.
    let rotated = store.rotate_secret(&acme, &first.id, TimeDelta::hours(1)).await.expect("rotate");
    assert_ne!(rotated.secret, first.secret);
    let now = s.clock.now();
    assert_eq!(rotated.signing_secrets(now), [&rotated.secret, &first.secret], "the new one signs; both verify");
    let reread = store.get(&acme, &first.id).await.expect("get").expect("present");
    assert_eq!((reread.secret.clone(), reread.previous_secret.clone()), (rotated.secret.clone(), first.secret.clone()));
    s.clock.advance(TimeDelta::hours(2));
    assert_eq!(reread.signing_secrets(s.clock.now()), [&rotated.secret], "the overlap is over");
    let hard = store.rotate_secret(&acme, &first.id, TimeDelta::zero()).await.expect("rotate now");
    assert_eq!(hard.signing_secrets(s.clock.now()).len(), 1);
    assert!(hard.previous_secret.expose().is_empty(), "no overlap keeps no old secret");
    assert_invalid(store.rotate_secret(&acme, &first.id, TimeDelta::days(31)).await, "overlap");
    assert_invalid(store.rotate_secret(&acme, &first.id, TimeDelta::seconds(-1)).await, "overlap");

    // Bad input is refused, and nothing is written.
    for (url, names, field) in [
        ("ftp://a.example/x", vec!["a"], "url"),
        ("https://", vec!["a"], "url"),
        ("https://a.example/has space", vec!["a"], "url"),
        ("https://a.example/x", vec![], "events"),
        ("https://a.example/x", vec!["bad event"], "events"),
        ("https://a.example/x", vec!["e\u{0}"], "events"),
    ] {
        assert_invalid(store.register(&acme, registration(url, &names)).await, field);
    }
    let many: Vec<String> = (0..65).map(|n| format!("e{n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_invalid(store.register(&acme, registration("https://a.example/x", &many)).await, "events");
    let long = format!("https://a.example/{}", "x".repeat(2_100));
    assert_invalid(store.register(&acme, registration(&long, &["a"])).await, "url");
    assert_invalid(
        store.update(&acme, &first.id, WebhookChanges { events: Some(BTreeSet::new()), ..WebhookChanges::default() }).await,
        "events",
    );
    assert_eq!(store.list(&acme, None, false).await.expect("list").len(), 2, "nothing written");
    assert_invalid(store.get_for_event(Scope::Tenant(&acme), "no spaces please").await, "event");

    // Tenants are isolated.
    assert!(store.get(&globex, &first.id).await.expect("get").is_none());
    assert!(matches!(store.update(&globex, &first.id, WebhookChanges::default()).await, Err(StorageError::NotFound { .. })));
    assert!(!store.delete(&globex, &first.id).await.expect("delete elsewhere"));
    assert!(store.list(&globex, None, false).await.expect("list").is_empty());
    assert!(store.delete(&acme, &first.id).await.expect("delete"));
    assert!(!store.delete(&acme, &first.id).await.expect("delete again"));
    assert!(store.get(&acme, &first.id).await.expect("get").is_none());
}

pub async fn an_event_finds_its_webhooks_in_a_tenant_and_across_tenants(s: &Subject) {
    let store = s.store::<WebhookConfigs>();
    let (acme, globex, initech) = (tenant("acme"), tenant("globex"), tenant("initech"));
    let a = store.register(&acme, registration("https://a.example/", &["push", "pull"])).await.expect("a");
    let b = store.register(&acme, registration("https://b.example/", &["*"])).await.expect("b");
    store.register(&acme, registration("https://c.example/", &["pull"])).await.expect("c");
    store.register(&globex, registration("https://d.example/", &["push"])).await.expect("d");
    let e = store.register(&initech, registration("https://e.example/", &["push"])).await.expect("e");
    store.update(&initech, &e.id, WebhookChanges { active: Some(false), ..WebhookChanges::default() }).await.expect("pause e");

    let in_acme = store.get_for_event(Scope::Tenant(&acme), "push").await.expect("acme push");
    assert_eq!(urls(&in_acme), set(&["https://a.example/", "https://b.example/"]), "named or `*`, in the tenant");
    assert!(in_acme.iter().all(|c| !c.secret.expose().is_empty()), "the deliverer gets the secrets");
    assert_eq!(in_acme.iter().find(|c| c.id == a.id).map(|c| c.secret.clone()), Some(a.secret.clone()));
    let everywhere = store.get_for_event(Scope::AllTenants, "push").await.expect("all push");
    assert_eq!(urls(&everywhere), set(&["https://a.example/", "https://b.example/", "https://d.example/"]), "never an inactive one");
    assert_eq!(everywhere.iter().filter(|c| c.tenant == acme).count(), 2);
    assert_eq!(urls(&store.get_for_event(Scope::AllTenants, "merge").await.expect("merge")), set(&["https://b.example/"]));
    assert!(store.get_for_event(Scope::Tenant(&globex), "pull").await.expect("globex pull").is_empty(), "no term crosses tenants");

    // Changes move webhooks between events at once.
    store.update(&acme, &a.id, WebhookChanges { events: Some(events(&["pull"])), ..WebhookChanges::default() }).await.expect("narrow");
    store.update(&acme, &b.id, WebhookChanges { active: Some(false), ..WebhookChanges::default() }).await.expect("pause b");
    store.update(&initech, &e.id, WebhookChanges { active: Some(true), ..WebhookChanges::default() }).await.expect("resume e");
    let everywhere = store.get_for_event(Scope::AllTenants, "push").await.expect("all push");
    assert_eq!(urls(&everywhere), set(&["https://d.example/", "https://e.example/"]));
    assert!(store.delete(&globex, &everywhere.iter().find(|c| c.tenant == globex).expect("d").id).await.expect("delete d"));
    assert_eq!(urls(&store.get_for_event(Scope::AllTenants, "push").await.expect("push")), set(&["https://e.example/"]));
    assert_eq!(
        urls(&store.get_for_event(Scope::Tenant(&acme), "pull").await.expect("pull")),
        set(&["https://a.example/", "https://c.example/"])
    );
}

pub async fn concurrent_deliveries_and_event_changes_lose_nothing(s: &Subject) {
    let store = Arc::new(s.store::<WebhookConfigs>());
    let acme = tenant("acme");
    let hook = store.register(&acme, registration("https://a.example/", &["e0"])).await.expect("register");
    let deliveries: Vec<_> = (0..32_u16)
        .map(|n| {
            let (store, acme, id) = (Arc::clone(&store), acme.clone(), hook.id.clone());
            tokio::spawn(async move { store.record_delivery(&acme, &id, if n % 4 == 0 { 500 } else { 200 }, n % 4 != 0).await })
        })
        .collect();
    let changes: Vec<_> = (0..8)
        .map(|n| {
            let (store, acme, id) = (Arc::clone(&store), acme.clone(), hook.id.clone());
            tokio::spawn(async move {
                store.update(&acme, &id, WebhookChanges { events: Some(events(&[&format!("e{n}")])), ..WebhookChanges::default() }).await
            })
        })
        .collect();
    for task in deliveries.into_iter().chain(changes) {
        task.await.expect("task").expect("write");
    }
    let stored = store.get(&acme, &hook.id).await.expect("get").expect("present");
    assert_eq!((stored.delivery_count, stored.failure_count), (32, 8), "every delivery counted once");
    assert_eq!(stored.version, 1 + 32 + 8);
    assert!(stored.last_delivery_status.is_some() && stored.last_delivery_at.is_some());
    // The index lists the webhook under exactly its final event.
    for n in 0..8 {
        let event = format!("e{n}");
        let found = store.get_for_event(Scope::AllTenants, &event).await.expect("for event");
        assert_eq!(found.len(), usize::from(stored.events.contains(&event)), "{event} with final events {:?}", stored.events);
    }
    assert!(matches!(store.record_delivery(&acme, "wh_missing", 200, true).await, Err(StorageError::NotFound { .. })));
}
