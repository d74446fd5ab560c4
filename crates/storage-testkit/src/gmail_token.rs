//! Conformance cases of `GmailTokenStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{Clock, GmailTokenStore, GmailTokens, GmailUserState, PageRequest, Secret, StorageError, TokenRefresh};

fn state(s: &Subject, org: &str, user: &str, expires_in: TimeDelta) -> GmailUserState {
    GmailUserState::new(tenant(org), user, format!("{user}@example.com")).with_tokens(
        "ya29.access",
        "1//refresh",
        s.clock.now() + expires_in,
    )
}

pub async fn set_then_get_keeps_the_tenant_and_tokens(s: &Subject) {
    let stored = s.store::<GmailTokens>().set(&state(s, "org-1", "user-123", TimeDelta::hours(1))).await.expect("set");
    let read = s.store::<GmailTokens>().get(&tenant("org-1"), "user-123").await.expect("get").expect("present");
    assert_eq!(read, stored);
    assert_eq!(read.org_id.as_str(), "org-1", "the tenant survives a round trip");
    assert_eq!(read.access_token.expose(), "ya29.access");
    assert_eq!(read.refresh_token.expose(), "1//refresh");
    assert!(read.is_connected());
    assert!(s.store::<GmailTokens>().delete(&tenant("org-1"), "user-123").await.expect("delete"));
    assert!(s.store::<GmailTokens>().get(&tenant("org-1"), "user-123").await.expect("get").is_none());
}

pub async fn set_keeps_created_at_and_bumps_the_version(s: &Subject) {
    let first = s.store::<GmailTokens>().set(&state(s, "org-1", "u", TimeDelta::hours(1))).await.expect("set");
    s.clock.advance(TimeDelta::minutes(5));
    let mut next = first.clone();
    next.history_id = "h-2".into();
    let second = s.store::<GmailTokens>().set(&next).await.expect("set");
    assert_eq!((second.version, second.created_at), (2, first.created_at));
    assert_eq!(second.updated_at, s.clock.now());
}

pub async fn list_expiring_finds_tokens_to_refresh(s: &Subject) {
    let t = tenant("org-1");
    for (user, minutes) in [("expired", -5), ("soon", 4), ("edge", 10), ("later", 60)] {
        s.store::<GmailTokens>().set(&state(s, "org-1", user, TimeDelta::minutes(minutes))).await.expect("set");
    }
    s.store::<GmailTokens>().set(&GmailUserState::new(t.clone(), "no-token", "n@example.com")).await.expect("set");
    s.store::<GmailTokens>().set(&state(s, "org-2", "other-tenant", TimeDelta::minutes(1))).await.expect("set");
    let due = collect_all(1, |p| {
        let t = t.clone();
        async move { s.store::<GmailTokens>().list_expiring(&t, TimeDelta::minutes(10), &p).await }
    })
    .await;
    let users: Vec<_> = due.iter().map(|st| st.user_id.as_str()).collect();
    assert_eq!(users, ["edge", "expired", "soon"]);
    assert_invalid(s.store::<GmailTokens>().list_expiring(&t, TimeDelta::minutes(-1), &PageRequest::first(10)).await, "within");
    let all = collect_all(2, |p| {
        let t = t.clone();
        async move { s.store::<GmailTokens>().list(&t, &p).await }
    })
    .await;
    assert_eq!(all.len(), 5);
}

pub async fn refresh_and_sync_progress_never_lose_each_other(s: &Subject) {
    let t = tenant("org-1");
    s.store::<GmailTokens>().set(&state(s, "org-1", "u", TimeDelta::minutes(1))).await.expect("set");
    let mut tasks = Vec::new();
    for i in 0..10u64 {
        let store = Arc::new(s.store::<GmailTokens>());
        let (t1, t2) = (t.clone(), t.clone());
        let expiry = s.clock.now() + TimeDelta::hours(1);
        let store2 = Arc::new(s.store::<GmailTokens>());
        tasks.push(tokio::spawn(async move {
            let refresh = TokenRefresh { access_token: Secret::from(format!("ya29.new-{i}")), refresh_token: None, token_expiry: expiry };
            store.refresh_tokens(&t1, "u", refresh).await.map(|_| ())
        }));
        tasks.push(tokio::spawn(async move { store2.record_sync(&t2, "u", &format!("h-{i}"), i, 100).await.map(|_| ()) }));
    }
    for task in tasks {
        task.await.expect("task").expect("atomic update");
    }
    let read = s.store::<GmailTokens>().get(&t, "u").await.expect("get").expect("present");
    assert!(read.access_token.expose().starts_with("ya29.new-"), "a refresh landed");
    assert_eq!(read.refresh_token.expose(), "1//refresh", "an absent refresh token keeps the stored one");
    assert!(read.history_id.starts_with("h-"), "a sync landed");
    assert_eq!(read.token_expiry, Some(s.clock.now() + TimeDelta::hours(1)));
    assert_eq!(read.version, 21, "each of the 20 updates was applied exactly once");
    let missing = TokenRefresh { access_token: Secret::from("x"), refresh_token: None, token_expiry: s.clock.now() };
    assert!(matches!(s.store::<GmailTokens>().refresh_tokens(&t, "nobody", missing).await, Err(StorageError::NotFound { .. })));
}

pub async fn tenants_are_isolated(s: &Subject) {
    s.store::<GmailTokens>().set(&state(s, "org-1", "u", TimeDelta::hours(1))).await.expect("set");
    assert!(s.store::<GmailTokens>().get(&tenant("org-2"), "u").await.expect("get").is_none());
    assert!(s.store::<GmailTokens>().list(&tenant("org-2"), &PageRequest::first(10)).await.expect("list").items.is_empty());
    assert!(!s.store::<GmailTokens>().delete(&tenant("org-2"), "u").await.expect("delete"));
    assert!(s.store::<GmailTokens>().get(&tenant("org-1"), "u").await.expect("get").is_some());
}

pub async fn bad_input_is_refused_and_nothing_is_written(s: &Subject) {
    let t = tenant("org-1");
    assert_invalid(s.store::<GmailTokens>().set(&state(s, "org-1", "", TimeDelta::hours(1))).await, "user_id");
    assert_invalid(s.store::<GmailTokens>().set(&GmailUserState::new(t.clone(), "u", "not-an-email")).await, "email_address");
    assert_invalid(s.store::<GmailTokens>().get(&t, "\0").await, "user_id");
    let empty = TokenRefresh { access_token: Secret::from(""), refresh_token: None, token_expiry: s.clock.now() };
    assert_invalid(s.store::<GmailTokens>().refresh_tokens(&t, "u", empty).await, "access_token");
    assert!(s.store::<GmailTokens>().list(&t, &PageRequest::first(10)).await.expect("list").items.is_empty(), "nothing was written");
}
