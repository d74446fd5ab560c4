//! Conformance cases of `PlaidCredentialStore`.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{Clock, PlaidCredentialStore, PlaidCredentials, Secret, StorageError};

pub async fn items_are_linked_relinked_and_listed_without_tokens(s: &Subject) {
    let store = s.store::<PlaidCredentials>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let linked_at = s.clock.now();
    let first =
        store.save_credentials(&acme, "ada", "item-1", Secret::from("access-1".to_owned()), "ins_1", "First Bank").await.expect("link");
    assert_eq!((first.linked_at, first.last_sync, first.access_token.expose().as_str()), (linked_at, None, "access-1"));
    s.clock.advance(TimeDelta::minutes(5));
    let synced = store.update_last_sync(&acme, "ada", "item-1").await.expect("sync");
    assert_eq!(synced.last_sync, Some(s.clock.now()));
    s.clock.advance(TimeDelta::minutes(5));
    let relinked = store
        .save_credentials(&acme, "ada", "item-1", Secret::from("access-2".to_owned()), "ins_1", "First Bank NA")
        .await
        .expect("relink");
    assert_eq!(
        (
            relinked.linked_at,
            relinked.last_sync,
            relinked.created_at,
            relinked.access_token.expose().as_str(),
            relinked.institution_name.as_str()
        ),
        (linked_at, synced.last_sync, first.created_at, "access-2", "First Bank NA"),
        "a re-link replaces the token and keeps when it was linked and synced"
    );
    store.save_credentials(&acme, "ada", "item-2", Secret::from("access-3".to_owned()), "ins_2", "Second Bank").await.expect("link");
    store.save_credentials(&acme, "bob", "item-3", Secret::from("access-4".to_owned()), "ins_2", "Second Bank").await.expect("link");
    // Ids that would collide if joined naively stay apart.
    store.save_credentials(&acme, "ad", "aitem-1", Secret::from("access-5".to_owned()), "ins_3", "Third").await.expect("link");
    assert_eq!(store.get_credentials(&acme, "ada", "item-1").await.expect("get").expect("present").access_token.expose(), "access-2");
    let listed = store.list_credentials(&acme, "ada").await.expect("list");
    assert_eq!(listed.iter().map(|c| c.item_id.as_str()).collect::<Vec<_>>(), ["item-2", "item-1"], "newest first");
    assert!(listed.iter().all(|c| c.access_token.expose().is_empty()), "lists carry no token");
    assert!(store.get_credentials(&globex, "ada", "item-1").await.expect("get").is_none(), "tenants are isolated");
    assert!(store.list_credentials(&globex, "ada").await.expect("list").is_empty());
    assert!(store.delete_credentials(&acme, "ada", "item-1").await.expect("delete"));
    assert!(!store.delete_credentials(&acme, "ada", "item-1").await.expect("delete again"));
    assert!(matches!(store.update_last_sync(&acme, "ada", "item-1").await, Err(StorageError::NotFound { .. })));
    assert_invalid(store.save_credentials(&acme, "ada", "item-9", Secret::default(), "ins_1", "Bank").await, "access_token");
    assert_invalid(store.get_credentials(&acme, "ada", "bad\u{7}").await, "item_id");
    assert!(store.get_credentials(&acme, "ada", "item-9").await.expect("get").is_none(), "nothing written");
}

pub async fn concurrent_links_of_one_item_keep_one_record(s: &Subject) {
    let store = Arc::new(s.store::<PlaidCredentials>());
    let acme = tenant("acme");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            tokio::spawn(async move {
                store.save_credentials(&acme, "ada", "item-1", Secret::from(format!("access-{i}")), "ins_1", "Bank").await.expect("link")
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.expect("task").access_token.expose().clone());
    }
    let stored = store.get_credentials(&acme, "ada", "item-1").await.expect("get").expect("present");
    assert!(tokens.contains(stored.access_token.expose()), "the last write's token");
    assert_eq!(stored.version, 16, "one record, written 16 times");
    assert_eq!(store.list_credentials(&acme, "ada").await.expect("list").len(), 1);
}
