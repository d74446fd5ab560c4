//! Conformance cases of `ExternalIdentityStore`.

use crate::{Subject, assert_invalid};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{Clock, ExternalIdentities, ExternalIdentityStore, ExternalProfile, StorageError};

fn profile(external_id: &str, idp_tenant: Option<&str>) -> ExternalProfile {
    let mut claims = serde_json::Map::new();
    claims.insert("id_token".into(), "eyJ-secret-token".into());
    ExternalProfile {
        provider: "okta".into(),
        external_id: external_id.into(),
        idp_tenant: idp_tenant.map(str::to_owned),
        email: Some("Ada@Example.com".into()),
        display_name: Some("Ada".into()),
        raw_claims: claims,
    }
}

pub async fn identities_link_once_per_subject_and_never_move(s: &Subject) {
    let store = s.store::<ExternalIdentities>();
    let created = store.create("ada", &profile("sub-1", None)).await.expect("create");
    assert!(created.id.starts_with("ext-") && created.is_active);
    assert_eq!(created.email.as_deref(), Some("ada@example.com"));
    let read = store.get(&created.id).await.expect("get").expect("present");
    assert_eq!(read.raw_claims["id_token"], "eyJ-secret-token", "sealed claims read back");
    assert!(
        matches!(store.create("ada", &profile("sub-1", None)).await, Err(StorageError::Conflict { .. })),
        "no IdP tenant is a tenant too"
    );
    store.create("bob", &profile("sub-1", Some("idp-a"))).await.expect("another IdP tenant is another subject");
    assert_eq!(store.get_by_external_id("okta", "sub-1", None).await.expect("lookup").map(|i| i.user_id), Some("ada".into()));
    assert_eq!(store.get_by_external_id("okta", "sub-1", Some("idp-a")).await.expect("lookup").map(|i| i.user_id), Some("bob".into()));
    assert!(store.get_by_external_id("okta", "sub-1", Some("idp-b")).await.expect("lookup").is_none());
    s.clock.advance(TimeDelta::minutes(5));
    let mut changed = profile("sub-1", None);
    changed.display_name = Some("Ada L.".into());
    let updated = store.link_or_update("ada", &changed).await.expect("sign in again");
    assert_eq!(
        (updated.id.as_str(), updated.display_name.as_deref(), updated.last_seen_at),
        (created.id.as_str(), Some("Ada L."), Some(s.clock.now()))
    );
    assert!(matches!(store.link_or_update("mallory", &changed).await, Err(StorageError::Conflict { .. })), "never moved");
    assert_eq!(store.get_by_user_id("ada", None).await.expect("by user").len(), 1);
    assert_eq!(store.get_by_email("ADA@example.com", Some("okta")).await.expect("by email").len(), 2);
    assert!(store.get_by_email("ada@example.com", Some("azure")).await.expect("by email").is_empty());
    let deactivated = store.deactivate(&created.id).await.expect("deactivate");
    assert!(!deactivated.is_active);
    assert!(store.get_by_external_id("okta", "sub-1", None).await.expect("lookup").is_none());
    let relinked = store.link_or_update("carol", &profile("sub-1", None)).await.expect("a deactivated identity does not block");
    assert_ne!(relinked.id, created.id);
    assert_eq!(store.update_last_seen(&relinked.id).await.expect("seen").last_seen_at, Some(s.clock.now()));
    assert!(store.delete(&created.id).await.expect("delete"));
    assert!(!store.delete(&created.id).await.expect("delete again"));
    let mut bad = profile("x", None);
    bad.provider = "O K".into();
    assert_invalid(store.create("ada", &bad).await, "provider");
    let mut bad = profile("x", None);
    bad.email = Some("not an email".into());
    assert_invalid(store.create("ada", &bad).await, "email");
}

pub async fn concurrent_first_sign_ins_create_one_identity(s: &Subject) {
    let store = Arc::new(s.store::<ExternalIdentities>());
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            let user = if i < 8 { "ada".to_owned() } else { format!("other-{i}") };
            tokio::spawn(async move { (user.clone(), store.link_or_update(&user, &profile("sub-9", None)).await) })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut owners = std::collections::BTreeSet::new();
    for task in tasks {
        match task.await.expect("task") {
            (user, Ok(identity)) => {
                assert_eq!(identity.user_id, user);
                ids.insert(identity.id);
                owners.insert(user);
            }
            (_, Err(StorageError::Conflict { .. })) => {}
            (_, Err(other)) => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!((ids.len(), owners.len()), (1, 1), "one identity, one owner");
}
