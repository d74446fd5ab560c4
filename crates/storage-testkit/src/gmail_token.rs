//! Conformance cases of `GmailTokenStore`.

use crate::{Subject, assert_each_once, assert_invalid, collect_all, page_under_churn, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{
    Clock, GmailSyncJob, GmailTokenStore, GmailTokens, GmailUserState, PageRequest, Secret, StorageError, SyncStatus, TokenRefresh,
};

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

pub async fn sync_jobs_round_trip(s: &Subject) {
    let store = s.store::<GmailTokens>();
    let t = tenant("org-1");
    let mut job = GmailSyncJob::new(t.clone(), "u");
    job.status = SyncStatus::Running;
    job.progress = 40;
    job.messages_synced = 1_234;
    job.started_at = Some(s.clock.now());
    let stored = store.save_sync_job(&job).await.expect("save");
    assert_eq!(store.get_sync_job(&t, "u").await.expect("get"), Some(stored.clone()));
    job.status = SyncStatus::Failed;
    job.error = Some("quota".into());
    let failed = store.save_sync_job(&job).await.expect("save");
    assert_eq!((failed.version, failed.created_at), (2, stored.created_at));
    assert!(store.get_sync_job(&tenant("org-2"), "u").await.expect("get").is_none());
    assert!(store.delete_sync_job(&t, "u").await.expect("delete"));
    assert!(store.get_sync_job(&t, "u").await.expect("get").is_none());
    job.progress = 101;
    assert_invalid(store.save_sync_job(&job).await, "progress");
}

pub async fn list_expiring_everywhere_spans_tenants_soonest_first(s: &Subject) {
    let store = s.store::<GmailTokens>();
    for (org, user, minutes) in [("org-b", "x", 5), ("org-a", "y", 9), ("org-a", "z", 1), ("org-c", "later", 60), ("org-a", "w", -3)] {
        store.set(&state(s, org, user, TimeDelta::minutes(minutes))).await.expect("set");
    }
    let due = collect_all(2, |p| {
        let store = &store;
        async move { store.list_expiring_everywhere(TimeDelta::minutes(10), &p).await }
    })
    .await;
    let found: Vec<(&str, &str)> = due.iter().map(|st| (st.org_id.as_str(), st.user_id.as_str())).collect();
    assert_eq!(found, [("org-a", "w"), ("org-a", "z"), ("org-a", "y"), ("org-b", "x")]);
    assert_invalid(store.list_expiring_everywhere(TimeDelta::MAX, &PageRequest::first(5)).await, "within");
}

pub async fn concurrent_patches_are_delayed_never_refused(s: &Subject) {
    let store = Arc::new(s.store::<GmailTokens>());
    let t = tenant("org-1");
    store.set(&state(s, "org-1", "u", TimeDelta::minutes(1))).await.expect("set");
    let tasks: Vec<_> = (0..16u64)
        .map(|i| {
            let (store, t) = (Arc::clone(&store), t.clone());
            let expiry = s.clock.now() + TimeDelta::hours(1);
            tokio::spawn(async move {
                for n in 0..15u64 {
                    if (i + n) % 2 == 0 {
                        let refresh =
                            TokenRefresh { access_token: Secret::from(format!("ya29.{i}-{n}")), refresh_token: None, token_expiry: expiry };
                        store.refresh_tokens(&t, "u", refresh).await.expect("a contended refresh still lands");
                    } else {
                        store.record_sync(&t, "u", &format!("h-{i}-{n}"), n, 100).await.expect("a contended sync still lands");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let read = store.get(&t, "u").await.expect("get").expect("present");
    assert_eq!(read.version, 1 + 16 * 15, "every patch applied exactly once");
}

pub async fn instants_outside_the_stored_range_are_refused(s: &Subject) {
    let store = s.store::<GmailTokens>();
    let t = tenant("org-1");
    for at in [chrono::DateTime::<chrono::Utc>::MAX_UTC, chrono::DateTime::<chrono::Utc>::MIN_UTC] {
        let mut far = GmailUserState::new(t.clone(), "far", "far@example.com");
        far.token_expiry = Some(at);
        assert_invalid(store.set(&far).await, "token_expiry");
    }
    assert!(store.get(&t, "far").await.expect("get").is_none());
    assert_invalid(store.list_expiring(&t, TimeDelta::MAX, &PageRequest::first(5)).await, "within");
    let mut close = GmailUserState::new(t.clone(), "nanos", "n@example.com");
    close.token_expiry = Some(s.clock.now() + TimeDelta::nanoseconds(1_500));
    let stored = store.set(&close).await.expect("set");
    let due = store.list_expiring(&t, TimeDelta::microseconds(1), &PageRequest::first(5)).await.expect("list");
    assert_eq!(due.items.len(), 1, "index instants are cut to microseconds on every backend");
    assert_eq!(store.get(&t, "nanos").await.expect("get"), Some(stored));
}

pub async fn every_list_pages_whole_under_churn(s: &Subject) {
    let store = &s.store::<GmailTokens>();
    let t = &tenant("org-1");
    let mut keep = Vec::new();
    for i in 0..17 {
        let user = format!("keep-{i:02}");
        store.set(&state(s, "org-1", &user, TimeDelta::minutes(i - 8))).await.expect("set");
        keep.push(user);
    }
    let churn = |round: u32| async move {
        for k in 0..3 {
            let user = format!("churn-{round:03}-{k}");
            store.set(&state(s, "org-1", &user, TimeDelta::minutes(i64::from(k) - 1))).await.expect("churn");
        }
        if let Some(before) = round.checked_sub(1) {
            store.delete(t, &format!("churn-{before:03}-1")).await.expect("churn delete");
        }
    };
    let user = |st: &GmailUserState| st.user_id.clone();
    let seen = page_under_churn(4, |p| async move { store.list(t, &p).await }, user, churn).await;
    assert_each_once(&seen, keep.clone(), "list");
    let seen = page_under_churn(3, |p| async move { store.list_expiring(t, TimeDelta::hours(1), &p).await }, user, churn).await;
    assert_each_once(&seen, keep.clone(), "list_expiring");
    let seen = page_under_churn(3, |p| async move { store.list_expiring_everywhere(TimeDelta::hours(1), &p).await }, user, churn).await;
    assert_each_once(&seen, keep, "list_expiring_everywhere");
}
