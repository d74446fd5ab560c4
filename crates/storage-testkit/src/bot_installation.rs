//! Conformance cases of `BotInstallationStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{
    BotInstallation, BotInstallationStore, BotInstallations, Clock, PageRequest, Platform, Secret, StorageError, TokenRefresh,
};

fn installation(s: &Subject, t: &str, platform: Platform, id: &str) -> BotInstallation {
    let mut installation = BotInstallation::new(tenant(t), platform, id, format!("{id} workspace"), format!("xoxb-{id}"), s.clock.now());
    installation.scopes = vec!["chat:write".into(), "commands".into()];
    installation.signing_secret = Some(Secret::from(format!("signing-{id}")));
    installation
}

fn refresh(token: &str, s: &Subject) -> TokenRefresh {
    TokenRefresh {
        access_token: Secret::from(token.to_owned()),
        refresh_token: Some(Secret::from(format!("r-{token}"))),
        token_expiry: s.clock.now() + TimeDelta::hours(12),
    }
}

pub async fn an_inbound_event_finds_its_installation_without_a_tenant(s: &Subject) {
    let store = s.store::<BotInstallations>();
    let saved = store.save(&installation(s, "acme", Platform::Slack, "T0001")).await.expect("save");
    store.save(&installation(s, "globex", Platform::Teams, "T0001")).await.expect("the same id on another platform");
    s.clock.advance(TimeDelta::minutes(1));
    store.save(&installation(s, "acme", Platform::Discord, "G0042")).await.expect("save");
    let found = store.get(Platform::Slack, "T0001").await.expect("get").expect("found without a tenant");
    assert_eq!((found.tenant.as_str(), found.name.as_str()), ("acme", "T0001 workspace"));
    assert_eq!(found.access_token.expose(), "xoxb-T0001");
    assert_eq!(found.signing_secret.as_ref().map(|s| s.expose().as_str()), Some("signing-T0001"));
    assert_eq!(store.get(Platform::Teams, "T0001").await.expect("get").map(|i| i.tenant.as_str().to_owned()), Some("globex".into()));
    assert!(store.get(Platform::Discord, "T0001").await.expect("get").is_none());
    let stolen = store.save(&installation(s, "globex", Platform::Slack, "T0001")).await;
    assert!(matches!(stolen, Err(StorageError::Conflict { .. })), "another tenant cannot take an installed workspace: {stolen:?}");
    let reinstalled = store.save(&installation(s, "acme", Platform::Slack, "T0001")).await.expect("a re-install by its tenant");
    assert_eq!((reinstalled.created_at, reinstalled.version), (saved.created_at, 2));
    let acme = collect_all(1, |p| {
        let store = &store;
        async move { store.get_by_tenant(&tenant("acme"), None, &p).await }
    })
    .await;
    assert_eq!(acme.iter().map(|i| i.external_id.as_str()).collect::<Vec<_>>(), ["T0001", "G0042"], "newest first: the re-install");
    assert!(
        store.get_by_tenant(&tenant("initech"), None, &PageRequest::first(5)).await.expect("list").items.is_empty(),
        "tenants are isolated"
    );
    assert_eq!(store.count(None, true).await.expect("count"), 3);
    assert_eq!(store.count(Some(Platform::Slack), true).await.expect("count"), 1);
    let revoked = store.revoke_token(Platform::Slack, "T0001").await.expect("revoke");
    assert!(!revoked.is_active && revoked.access_token.expose().is_empty() && revoked.signing_secret.is_none());
    let kept = store.get(Platform::Slack, "T0001").await.expect("get").expect("metadata kept");
    assert_eq!((kept.name.as_str(), kept.scopes.len(), kept.access_token.expose().as_str()), ("T0001 workspace", 2, ""));
    assert_eq!(store.count(Some(Platform::Slack), true).await.expect("count"), 0);
    assert_eq!(store.count(Some(Platform::Slack), false).await.expect("count"), 1);
    assert!(!store.deactivate(Platform::Teams, "T0001").await.expect("deactivate").is_active);
    let active = collect_all(5, |p| {
        let store = &store;
        async move { store.list_active(None, &p).await }
    })
    .await;
    assert_eq!(active.iter().map(|i| i.external_id.as_str()).collect::<Vec<_>>(), ["G0042"]);
    assert!(store.delete(Platform::Slack, "T0001").await.expect("delete"));
    assert!(!store.delete(Platform::Slack, "T0001").await.expect("delete again"));
    store.save(&installation(s, "globex", Platform::Slack, "T0001")).await.expect("once uninstalled, another tenant may install it");
    assert!(matches!(store.deactivate(Platform::Slack, "T9999").await, Err(StorageError::NotFound { .. })));
    let mut tokenless = installation(s, "acme", Platform::Slack, "T0002");
    tokenless.access_token = Secret::default();
    assert_invalid(store.save(&tokenless).await, "access_token");
    assert_invalid(store.get(Platform::Slack, "bad\nid").await, "external_id");
    assert!(store.get(Platform::Slack, "T0002").await.expect("get").is_none(), "nothing written");
}

pub async fn expiring_tokens_are_found_across_tenants(s: &Subject) {
    let store = s.store::<BotInstallations>();
    let now = s.clock.now();
    for (t, id, minutes, refreshable, active) in [
        ("org-b", "G1", 30, true, true),
        ("org-a", "G2", 90, true, true),
        ("org-a", "G3", 10, true, true),
        ("org-a", "G4", -5, true, true),
        ("org-c", "G5", 5, false, true),
        ("org-c", "G6", 5, true, false),
    ] {
        let mut installation = installation(s, t, Platform::Discord, id);
        installation.token_expires_at = Some(now + TimeDelta::minutes(minutes));
        if refreshable {
            installation = installation.with_refresh("refresh", now + TimeDelta::minutes(minutes));
        }
        installation.is_active = active;
        store.save(&installation).await.expect("save");
    }
    let due = collect_all(2, |p| {
        let store = &store;
        async move { store.get_expiring_tokens(TimeDelta::hours(1), &p).await }
    })
    .await;
    let found: Vec<(&str, &str)> = due.iter().map(|i| (i.tenant.as_str(), i.external_id.as_str())).collect();
    assert_eq!(found, [("org-a", "G4"), ("org-a", "G3"), ("org-b", "G1")], "active, refreshable, due; tenant by tenant, soonest first");
    assert!(due[0].is_token_expired(now, TimeDelta::zero()));
    assert!(due[1].is_token_expired(now, TimeDelta::minutes(15)) && !due[1].is_token_expired(now, TimeDelta::minutes(5)));
    let updated = store.update_tokens(Platform::Discord, "G4", refresh("fresh", s)).await.expect("update");
    assert_eq!((updated.access_token.expose().as_str(), updated.token_expires_at), ("fresh", Some(now + TimeDelta::hours(12))));
    assert_eq!(updated.refresh_token.map(|t| t.expose().clone()), Some("r-fresh".into()));
    assert_eq!(store.get_expiring_tokens(TimeDelta::hours(1), &PageRequest::first(10)).await.expect("due").items.len(), 2);
    assert_invalid(store.get_expiring_tokens(TimeDelta::minutes(-1), &PageRequest::first(10)).await, "within");
    let empty = TokenRefresh { access_token: Secret::default(), refresh_token: None, token_expiry: now };
    assert_invalid(store.update_tokens(Platform::Discord, "G4", empty).await, "access_token");
}

pub async fn one_worker_at_a_time_holds_a_refresh_lease(s: &Subject) {
    let store = Arc::new(s.store::<BotInstallations>());
    let now = s.clock.now();
    store.save(&installation(s, "acme", Platform::Teams, "aad-1").with_refresh("r0", now + TimeDelta::minutes(5))).await.expect("save");
    let tasks: Vec<_> = (0..16)
        .map(|worker| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .acquire_refresh_lease(Platform::Teams, "aad-1", &format!("worker-{worker}"), TimeDelta::seconds(30))
                    .await
                    .expect("ask")
            })
        })
        .collect();
    let mut leases = Vec::new();
    for task in tasks {
        leases.extend(task.await.expect("task"));
    }
    assert_eq!(leases.len(), 1, "one worker holds the lease");
    let first = leases.remove(0);
    assert!(store.acquire_refresh_lease(Platform::Teams, "aad-1", "late", TimeDelta::seconds(30)).await.expect("ask").is_none());
    // The holder stalls past its lease; another worker takes over and refreshes.
    s.clock.advance(TimeDelta::seconds(31));
    let second =
        store.acquire_refresh_lease(Platform::Teams, "aad-1", "worker-x", TimeDelta::seconds(30)).await.expect("ask").expect("lapsed");
    let stale = store.complete_refresh(&first, refresh("stale", s)).await;
    assert!(matches!(stale, Err(StorageError::Conflict { .. })), "the stalled holder is fenced: {stale:?}");
    assert!(!store.release_refresh_lease(&first).await.expect("release"), "not the holder");
    let done = store.complete_refresh(&second, refresh("new", s)).await.expect("complete");
    assert_eq!((done.access_token.expose().as_str(), done.refresh_lease.as_ref()), ("new", None));
    assert!(
        matches!(store.complete_refresh(&second, refresh("twice", s)).await, Err(StorageError::Conflict { .. })),
        "a lease completes once"
    );
    let third =
        store.acquire_refresh_lease(Platform::Teams, "aad-1", "worker-y", TimeDelta::seconds(30)).await.expect("ask").expect("free again");
    assert!(store.release_refresh_lease(&third).await.expect("release"));
    assert!(
        store.acquire_refresh_lease(Platform::Teams, "aad-1", "worker-z", TimeDelta::seconds(30)).await.expect("ask").is_some(),
        "released"
    );
    assert_eq!(store.get(Platform::Teams, "aad-1").await.expect("get").expect("present").access_token.expose(), "new");
    assert_invalid(store.acquire_refresh_lease(Platform::Teams, "aad-1", "w", TimeDelta::zero()).await, "ttl");
    assert!(matches!(
        store.acquire_refresh_lease(Platform::Teams, "missing", "w", TimeDelta::seconds(1)).await,
        Err(StorageError::NotFound { .. })
    ));
}

pub async fn the_seed_platform_stores_see_only_their_platform(s: &Subject) {
    let slack = s.store::<storage_core::SlackWorkspaceStore>();
    let teams = s.store::<storage_core::TeamsTenantStore>();
    let discord = s.store::<storage_core::DiscordGuildStore>();
    let acme = tenant("acme");
    let now = s.clock.now();
    let workspace = BotInstallation::new(acme.clone(), Platform::Slack, "T-SAME", "Acme Slack", "xoxb-1", now);
    slack.save(&workspace).await.expect("slack");
    teams.save(&BotInstallation::new(acme.clone(), Platform::Teams, "T-SAME", "Acme Teams", "eyJ-1", now)).await.expect("teams");
    assert_invalid(discord.save(&workspace).await, "platform");
    assert_eq!(slack.get("T-SAME").await.expect("get").map(|i| i.name), Some("Acme Slack".to_owned()));
    assert_eq!(teams.get("T-SAME").await.expect("get").map(|i| i.name), Some("Acme Teams".to_owned()));
    assert!(discord.get("T-SAME").await.expect("get").is_none());
    assert_eq!((slack.count(true).await.expect("count"), discord.count(false).await.expect("count")), (1, 0));
    assert_eq!(teams.get_by_tenant(&acme, &storage_core::PageRequest::first(10)).await.expect("page").items.len(), 1);
    assert!(slack.delete("T-SAME").await.expect("delete"));
    assert!(teams.get("T-SAME").await.expect("get").is_some(), "another platform's id stays");
}
