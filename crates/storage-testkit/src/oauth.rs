//! Conformance cases of `OAuthLinkStore`.

use crate::{Subject, assert_invalid};
use std::sync::Arc;
use storage_core::{OAuthLinkStore, OAuthLinks, StorageError};

pub async fn a_provider_identity_is_never_moved_to_another_user(s: &Subject) {
    let store = s.store::<OAuthLinks>();
    let link = store.link_oauth_provider("ada", "github", "gh-1", Some("Ada@Example.com")).await.expect("link");
    assert_eq!((link.user_id.as_str(), link.email.as_deref()), ("ada", Some("ada@example.com")));
    assert_eq!(store.link_oauth_provider("ada", "github", "gh-1", None).await.expect("again").version, 1, "idempotent");
    match store.link_oauth_provider("mallory", "github", "gh-1", None).await {
        Err(StorageError::Conflict { .. }) => {}
        other => panic!("an identity moved to another user: {other:?}"),
    }
    assert_eq!(store.get_user_by_oauth("github", "gh-1").await.expect("lookup").map(|l| l.user_id), Some("ada".to_owned()));
    assert!(
        matches!(store.link_oauth_provider("ada", "github", "gh-2", None).await, Err(StorageError::Conflict { .. })),
        "one per provider"
    );
    store.link_oauth_provider("ada", "google", "g-1", None).await.expect("second provider");
    let providers: Vec<String> = store.get_user_oauth_providers("ada").await.expect("providers").into_iter().map(|l| l.provider).collect();
    assert_eq!(providers, ["github", "google"]);
    assert!(store.has_provider("ada", "google").await.expect("has"));
    assert!(store.unlink_oauth_provider("ada", "github").await.expect("unlink"));
    assert!(!store.unlink_oauth_provider("ada", "github").await.expect("unlink again"));
    assert!(!store.has_provider("ada", "github").await.expect("has"));
    store.link_oauth_provider("bob", "github", "gh-1", None).await.expect("a freed identity can be linked again");
    assert_invalid(store.link_oauth_provider("ada", "Git Hub", "x", None).await, "provider");
    assert_invalid(store.link_oauth_provider("ada", "gitlab", "x\u{0}", None).await, "provider_user_id");
    assert!(store.get_user_oauth_providers("nobody").await.expect("providers").is_empty());
}

pub async fn concurrent_links_of_one_identity_have_one_winner(s: &Subject) {
    let store = Arc::new(s.store::<OAuthLinks>());
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.link_oauth_provider(&format!("user-{i}"), "github", "contested", None).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(link) => winners.push(link.user_id),
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(store.get_user_by_oauth("github", "contested").await.expect("lookup").map(|l| l.user_id), winners.pop());
}
