//! Conformance cases of `UserStore`.

use crate::{Subject, assert_invalid, collect_all};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{
    Clock, LockoutPolicy, Mfa, NewUser, OrganizationStore, Organizations, Role, StorageError, UserChanges, UserQuery, UserStore, Users,
};

pub(crate) async fn user(store: &Users, email: &str) -> storage_core::User {
    store.create_user(NewUser::new(email, "Ada").with_password("hash-1", "salt-1")).await.expect("create user")
}

pub async fn users_are_found_by_id_and_by_email_in_any_case(s: &Subject) {
    let store = s.store::<Users>();
    let created = user(&store, "Ada@Example.COM").await;
    assert_eq!(created.email, "ada@example.com", "emails are stored lower-cased");
    assert_eq!((created.version, created.created_at), (1, s.clock.now()));
    assert_eq!(created.password_hash.as_ref().map(|h| h.expose().as_str()), Some("hash-1"));
    let by_id = store.get_user_by_id(&created.id).await.expect("get").expect("present");
    assert_eq!(by_id, created);
    assert_eq!(by_id.password_salt.as_ref().map(|h| h.expose().as_str()), Some("salt-1"), "sealed fields read back");
    let by_email = store.get_user_by_email("ADA@example.com").await.expect("by email").expect("present");
    assert_eq!(by_email.id, created.id);
    assert!(store.get_user_by_email("bob@example.com").await.expect("by email").is_none());
    let other = user(&store, "bob@example.com").await;
    let batch = store.get_users_batch(&[&other.id, "missing", &created.id]).await.expect("batch");
    assert_eq!(batch.keys().cloned().collect::<Vec<_>>(), {
        let mut ids = vec![other.id.clone(), created.id.clone()];
        ids.sort();
        ids
    });
    match store.create_user(NewUser::new("ADA@EXAMPLE.COM", "Imposter")).await {
        Err(StorageError::Conflict { .. }) => {}
        other => panic!("a second account with the same email in another case: {other:?}"),
    }
    assert_invalid(store.create_user(NewUser::new("not-an-email", "X")).await, "email");
    assert_invalid(store.create_user(NewUser::new("a\u{0}@b.c", "X")).await, "email");
    assert_eq!(store.count_users(&UserQuery::default()).await.expect("count"), 2, "nothing else was written");
}

pub async fn concurrent_sign_ups_with_one_email_have_one_winner(s: &Subject) {
    let store = Arc::new(s.store::<Users>());
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&store);
            let email = if i % 2 == 0 { "race@example.com" } else { "RACE@Example.com" };
            tokio::spawn(async move { store.create_user(NewUser::new(email, format!("user {i}"))).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one account per email");
    assert_eq!(store.count_users(&UserQuery::default()).await.expect("count"), 1);
}

pub async fn updates_change_only_what_the_change_set_names(s: &Subject) {
    let store = s.store::<Users>();
    let ada = user(&store, "ada@example.com").await;
    let bob = user(&store, "bob@example.com").await;
    s.clock.advance(TimeDelta::seconds(5));
    let changes = UserChanges {
        name: Some("Ada L.".into()),
        email: Some("Ada.L@Example.com".into()),
        mfa: Some(Some(Mfa { secret: "totp-secret".into(), backup_codes: vec!["code-1".into(), "code-2".into()] })),
        last_login_at: Some(s.clock.now()),
        ..UserChanges::default()
    };
    let updated = store.update_user(&ada.id, &changes).await.expect("update");
    assert_eq!((updated.name.as_str(), updated.email.as_str(), updated.version), ("Ada L.", "ada.l@example.com", 2));
    let read = store.get_user_by_id(&ada.id).await.expect("get").expect("present");
    assert!(read.mfa_enabled);
    assert_eq!(read.mfa_secret.as_ref().map(|s| s.expose().as_str()), Some("totp-secret"));
    assert_eq!(read.mfa_backup_codes.iter().map(|c| c.expose().as_str()).collect::<Vec<_>>(), ["code-1", "code-2"]);
    assert_eq!(read.password_hash.as_ref().map(|h| h.expose().as_str()), Some("hash-1"), "untouched fields stay");
    assert!(store.get_user_by_email("ada@example.com").await.expect("old email").is_none());
    let taken = UserChanges { email: Some("BOB@example.com".into()), ..UserChanges::default() };
    assert!(matches!(store.update_user(&ada.id, &taken).await, Err(StorageError::Conflict { .. })));
    assert_eq!(store.get_user_by_id(&ada.id).await.expect("get").expect("present").email, "ada.l@example.com");
    assert!(matches!(store.update_user("missing", &UserChanges::default()).await, Err(StorageError::NotFound { .. })));
    assert_invalid(store.update_user(&ada.id, &UserChanges { email: Some("nope".into()), ..UserChanges::default() }).await, "email");
    let off = UserChanges { mfa: Some(None), ..UserChanges::default() };
    let read = store.update_user(&ada.id, &off).await.expect("mfa off");
    assert!(!read.mfa_enabled && read.mfa_secret.is_none() && read.mfa_backup_codes.is_empty());
    // A batch applies all or nothing.
    let deactivate = UserChanges { is_active: Some(false), ..UserChanges::default() };
    let missing = store.update_users_batch(&[(&bob.id, deactivate.clone()), ("missing", deactivate.clone())]).await;
    assert!(matches!(missing, Err(StorageError::NotFound { .. })));
    assert!(store.get_user_by_id(&bob.id).await.expect("get").expect("present").is_active, "nothing of a failed batch applies");
    let both = store.update_users_batch(&[(&bob.id, deactivate.clone()), (&ada.id, deactivate)]).await.expect("batch");
    assert!(both.iter().all(|u| !u.is_active && u.version >= 2));
    let mut preferences = serde_json::Map::new();
    preferences.insert("theme".into(), "dark".into());
    store.set_user_preferences(&bob.id, preferences.clone()).await.expect("preferences");
    assert_eq!(store.get_user_preferences(&bob.id).await.expect("preferences"), Some(preferences));
    assert_eq!(store.get_user_preferences("missing").await.expect("preferences"), None);
}

pub async fn api_keys_are_found_by_key_until_they_expire_or_are_revoked(s: &Subject) {
    let store = s.store::<Users>();
    let ada = user(&store, "ada@example.com").await;
    let expires = s.clock.now() + TimeDelta::hours(1);
    let issued = store.issue_api_key(&ada.id, vec!["debates:read".into()], Some(expires)).await.expect("issue");
    let key = issued.key.expose().clone();
    let info = issued.user.api_key.clone().expect("key info");
    assert!(key.starts_with("ara_") && key.starts_with(&info.prefix) && info.prefix.len() == 12);
    assert_ne!(info.digest, key, "only a digest is stored");
    assert!(!serde_json::to_string(&issued.user).expect("json").contains(&key), "the record never holds the key");
    let found = store.get_user_by_api_key(&key).await.expect("lookup").expect("found");
    assert_eq!(
        (found.id.as_str(), found.api_key.as_ref().map(|k| k.scopes.clone())),
        (ada.id.as_str(), Some(vec!["debates:read".to_owned()]))
    );
    assert!(store.get_user_by_api_key("ara_not-a-key").await.expect("lookup").is_none());
    s.clock.advance(TimeDelta::hours(2));
    assert!(store.get_user_by_api_key(&key).await.expect("lookup").is_none(), "an expired key finds nobody");
    let second = store.issue_api_key(&ada.id, vec![], None).await.expect("reissue");
    assert!(store.get_user_by_api_key(second.key.expose()).await.expect("lookup").is_some());
    assert!(store.get_user_by_api_key(&key).await.expect("lookup").is_none(), "a new key replaces the old");
    store.revoke_api_key(&ada.id).await.expect("revoke");
    assert!(store.get_user_by_api_key(second.key.expose()).await.expect("lookup").is_none());
    assert!(matches!(store.issue_api_key("missing", vec![], None).await, Err(StorageError::NotFound { .. })));
}

pub async fn token_versions_increment_atomically(s: &Subject) {
    let store = Arc::new(s.store::<Users>());
    let ada = user(&store, "ada@example.com").await;
    assert_eq!(store.increment_token_version(&ada.id).await.expect("bump"), 1);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, id) = (Arc::clone(&store), ada.id.clone());
            tokio::spawn(async move { store.increment_token_version(&id).await.expect("bump") })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.expect("task"));
    }
    seen.sort_unstable();
    assert_eq!(seen, (2..=17).collect::<Vec<u64>>(), "every bump got its own version");
    assert_eq!(store.get_user_by_id(&ada.id).await.expect("get").expect("present").token_version, 17);
    assert!(matches!(store.increment_token_version("missing").await, Err(StorageError::NotFound { .. })));
}

pub async fn failed_sign_ins_lock_by_one_policy(s: &Subject) {
    let store = s.store::<Users>();
    user(&store, "ada@example.com").await;
    for n in 1..=4 {
        let info = store.record_failed_login("ADA@example.com").await.expect("fail").expect("known");
        assert_eq!((info.failed_attempts, info.locked, info.just_locked), (n, false, false));
    }
    let fifth = store.record_failed_login("ada@example.com").await.expect("fail").expect("known");
    assert!(fifth.locked && fifth.just_locked);
    assert_eq!(fifth.lockout_until, Some(s.clock.now() + TimeDelta::minutes(15)));
    assert!(store.is_account_locked("ada@example.com").await.expect("locked"));
    s.clock.advance(TimeDelta::minutes(16));
    assert!(!store.is_account_locked("ada@example.com").await.expect("locked"), "the lock lapses");
    for _ in 6..=10 {
        store.record_failed_login("ada@example.com").await.expect("fail");
    }
    let info = store.get_lockout_info("ada@example.com").await.expect("info").expect("known");
    assert_eq!((info.failed_attempts, info.lockout_until), (10, Some(s.clock.now() + TimeDelta::hours(1))));
    assert!(store.reset_failed_login_attempts("ada@example.com").await.expect("reset"));
    let info = store.get_lockout_info("ada@example.com").await.expect("info").expect("known");
    assert_eq!((info.failed_attempts, info.lockout_until, info.locked), (0, None, false));
    assert_eq!(store.record_failed_login("nobody@example.com").await.expect("unknown"), None);
    assert!(!store.reset_failed_login_attempts("nobody@example.com").await.expect("unknown"));
    assert!(LockoutPolicy::new([(5, TimeDelta::minutes(1)), (3, TimeDelta::minutes(2))]).is_err(), "steps must grow");
}

pub async fn concurrent_failed_sign_ins_lock_once_and_count_exactly(s: &Subject) {
    let policy = LockoutPolicy::new([(5, TimeDelta::minutes(15))]).expect("policy");
    let store = Arc::new(s.store::<Users>().with_lockout_policy(policy));
    user(&store, "ada@example.com").await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.record_failed_login("ada@example.com").await.expect("fail").expect("known") })
        })
        .collect();
    let mut locks = 0;
    let mut counts = Vec::new();
    for task in tasks {
        let info = task.await.expect("task");
        locks += usize::from(info.just_locked);
        counts.push(info.failed_attempts);
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=32).collect::<Vec<u32>>(), "each failure counted once");
    assert_eq!(locks, 1, "one lockout");
    assert_eq!(store.get_lockout_info("ada@example.com").await.expect("info").expect("known").failed_attempts, 32);
}

pub async fn admins_list_count_and_summarise_users(s: &Subject) {
    let store = s.store::<Users>();
    let orgs = s.store::<Organizations>();
    let owner = user(&store, "owner@example.com").await;
    let org = orgs.create_organization("Acme", &owner.id, None, "pro").await.expect("org");
    let mut ids = vec![owner.id.clone()];
    for i in 0..7 {
        let new = NewUser::new(format!("u{i}@example.com"), "U");
        let new = if i < 4 { new.in_org(&org.id, if i == 0 { Role::Admin } else { Role::Member }) } else { new };
        let created = store.create_user(new).await.expect("create");
        if i % 3 == 0 {
            store.update_user(&created.id, &UserChanges { is_active: Some(false), ..UserChanges::default() }).await.expect("deactivate");
        }
        ids.push(created.id);
    }
    assert_invalid(store.create_user(NewUser::new("x@example.com", "X").in_org("no\u{1}org", Role::Member)).await, "org_id");
    assert!(matches!(
        store.create_user(NewUser::new("x@example.com", "X").in_org("missing-org", Role::Member)).await,
        Err(StorageError::NotFound { .. })
    ));
    let all = collect_all(3, |page| {
        let store = &store;
        async move { store.list_all_users(&UserQuery::default(), &page).await }
    })
    .await;
    assert_eq!(all.len(), 8);
    let in_org = UserQuery { org_id: Some(org.id.clone()), ..UserQuery::default() };
    assert_eq!(store.count_users(&in_org).await.expect("count"), 5);
    let members = UserQuery { role: Some(Role::Member), ..in_org.clone() };
    assert_eq!(
        collect_all(2, |page| {
            let (store, members) = (&store, &members);
            async move { store.list_all_users(members, &page).await }
        })
        .await
        .len(),
        3
    );
    let active = UserQuery { active_only: true, ..in_org };
    assert_eq!(store.count_users(&active).await.expect("count"), 3, "owner, u1, u2");
    let stats = store.get_admin_stats().await.expect("stats");
    assert_eq!((stats.total, stats.active, stats.email_verified), (8, 5, 0));
}

pub async fn deleting_a_user_keeps_every_organisation_owned(s: &Subject) {
    let store = s.store::<Users>();
    let orgs = s.store::<Organizations>();
    let owner = user(&store, "owner@example.com").await;
    let org = orgs.create_organization("Acme", &owner.id, None, "free").await.expect("org");
    assert!(matches!(store.delete_user(&owner.id).await, Err(StorageError::Conflict { .. })), "the last owner stays");
    let member = store.create_user(NewUser::new("m@example.com", "M").in_org(&org.id, Role::Owner)).await.expect("second owner");
    assert!(store.delete_user(&owner.id).await.expect("delete"));
    assert!(!store.delete_user(&owner.id).await.expect("delete again"));
    let org = orgs.get_organization_by_id(&org.id).await.expect("get").expect("present");
    assert_eq!((org.owner_count, org.owner_id.as_str()), (1, member.id.as_str()), "the remaining owner becomes primary");
}
