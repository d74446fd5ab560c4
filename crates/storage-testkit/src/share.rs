//! Conformance cases of `ShareStore` (debate links) and `ReceiptShareStore`.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{Clock, ReceiptShareStore, ReceiptShares, ShareSettings, ShareStore, Shares, StorageError, Visibility};

fn settings(debate: &str, visibility: Visibility) -> ShareSettings {
    ShareSettings {
        debate_id: debate.to_owned(),
        visibility,
        owner_id: "owner-1".to_owned(),
        expires_at: None,
        max_views: None,
        allow_comments: true,
        allow_forking: false,
    }
}

pub async fn a_debate_link_opens_counts_views_and_survives_resaves(s: &Subject) {
    let store = s.store::<Shares>();
    let t = tenant("acme");
    let saved = store.save(&t, settings("d1", Visibility::Public)).await.expect("save");
    let token = saved.token.expect("the first save mints a link");
    assert!(token.expose().starts_with("shr_"));
    assert_eq!(saved.share.view_count, 0);
    assert_eq!(store.open(token.expose()).await.expect("open").view_count, 1);
    assert_eq!(store.open(token.expose()).await.expect("open").view_count, 2);
    assert_eq!(store.get_by_token(token.expose()).await.expect("peek").map(|s| s.view_count), Some(2), "a peek counts nothing");
    let resaved = store.save(&t, ShareSettings { allow_forking: true, ..settings("d1", Visibility::Team) }).await.expect("resave");
    assert!(resaved.token.is_none(), "the link is kept");
    assert_eq!((resaved.share.view_count, resaved.share.allow_forking), (2, true));
    store.open(token.expose()).await.expect("still opens");
    let revoked = store.revoke_token(&t, "d1").await.expect("revoke");
    assert_eq!(revoked.token_digest, None);
    assert!(matches!(store.open(token.expose()).await, Err(StorageError::NotFound { .. })));
    assert!(store.get_by_token(token.expose()).await.expect("peek").is_none());
    let renewed = store.save(&t, settings("d1", Visibility::Public)).await.expect("save after revoke");
    let new_token = renewed.token.expect("a save after a revocation returns the new link");
    assert_ne!(new_token.expose(), token.expose());
    store.open(new_token.expose()).await.expect("the new link opens");
    assert!(store.get(&tenant("other"), "d1").await.expect("get").is_none(), "tenants are apart");
    let stats = store.stats(&t).await.expect("stats");
    assert_eq!((stats.public, stats.team, stats.private, stats.with_link), (1, 0, 0, 1));
    assert!(store.delete(&t, "d1").await.expect("delete"));
    assert!(matches!(store.open(new_token.expose()).await, Err(StorageError::NotFound { .. })));
}

pub async fn private_and_expired_links_do_not_open(s: &Subject) {
    let store = s.store::<Shares>();
    let t = tenant("acme");
    let private = store.save(&t, settings("d1", Visibility::Private)).await.expect("save").token.expect("token");
    assert!(matches!(store.open(private.expose()).await, Err(StorageError::NotFound { .. })), "a private debate's link does not open");
    let expiring = ShareSettings { expires_at: Some(s.clock.now() + TimeDelta::hours(1)), ..settings("d2", Visibility::Public) };
    let token = store.save(&t, expiring).await.expect("save").token.expect("token");
    store.open(token.expose()).await.expect("opens before expiry");
    s.clock.advance(TimeDelta::hours(1));
    assert!(matches!(store.open(token.expose()).await, Err(StorageError::NotFound { .. })));
    assert_eq!(store.cleanup_expired().await.expect("cleanup"), 1);
    assert!(store.get(&t, "d2").await.expect("get").is_none());
    assert!(store.get(&t, "d1").await.expect("get").is_some(), "a link without expiry stays");
}

pub async fn a_view_once_link_opens_once_under_contention(s: &Subject) {
    let store = Arc::new(s.store::<Shares>());
    let debate_token = store
        .save(&tenant("acme"), ShareSettings { max_views: Some(1), ..settings("d1", Visibility::Public) })
        .await
        .expect("save")
        .token
        .expect("token");
    let receipts = Arc::new(s.store::<ReceiptShares>());
    let receipt_token = receipts.create(&tenant("acme"), "r1", TimeDelta::hours(1), Some(1), Some("alice")).await.expect("create").token;
    for token in [debate_token.expose().clone(), receipt_token.expose().clone()] {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (store, receipts, token) = (Arc::clone(&store), Arc::clone(&receipts), token.clone());
                tokio::spawn(async move {
                    if token.starts_with("shr_") { store.open(&token).await.map(|_| ()) } else { receipts.access(&token).await.map(|_| ()) }
                })
            })
            .collect();
        let mut opened = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => opened += 1,
                Err(StorageError::Conflict { .. }) => {}
                Err(e) => panic!("open: {e}"),
            }
        }
        assert_eq!(opened, 1, "a single-use link opens once of 32 concurrent requests");
    }
}

pub async fn receipt_links_count_accesses_expire_and_are_revoked(s: &Subject) {
    let store = s.store::<ReceiptShares>();
    let t = tenant("acme");
    let three = store.create(&t, "r1", TimeDelta::hours(1), Some(3), Some("alice")).await.expect("create");
    assert!(three.token.expose().starts_with("rcs_"));
    let open = store.create(&t, "r1", TimeDelta::hours(2), None, None).await.expect("create");
    let other = store.create(&t, "r2", TimeDelta::hours(1), None, None).await.expect("create");
    for n in 1..=3 {
        assert_eq!(store.access(three.token.expose()).await.expect("access").access_count, n);
    }
    assert!(matches!(store.access(three.token.expose()).await, Err(StorageError::Conflict { .. })), "used up");
    assert_eq!(store.get_by_token(three.token.expose()).await.expect("peek").map(|s| s.access_count), Some(3));
    let listed = store.list_for_receipt(&t, "r1").await.expect("list");
    assert_eq!(listed.len(), 2);
    assert!(store.list_for_receipt(&tenant("other"), "r1").await.expect("list").is_empty());
    assert!(store.revoke(&t, &open.share.id).await.expect("revoke"));
    assert!(matches!(store.access(open.token.expose()).await, Err(StorageError::NotFound { .. })));
    s.clock.advance(TimeDelta::hours(1));
    assert!(matches!(store.access(other.token.expose()).await, Err(StorageError::NotFound { .. })), "expired");
    assert_eq!(store.cleanup_expired().await.expect("cleanup"), 2);
    let again = store.create(&t, "r3", TimeDelta::hours(1), None, None).await.expect("create");
    store.create(&t, "r3", TimeDelta::hours(1), None, None).await.expect("create");
    assert_eq!(store.delete_by_receipt(&t, "r3").await.expect("delete"), 2);
    assert!(store.get_by_token(again.token.expose()).await.expect("peek").is_none());
}

pub async fn bad_input_is_refused(s: &Subject) {
    let t = tenant("acme");
    let shares = s.store::<Shares>();
    assert_invalid(shares.save(&t, settings("", Visibility::Public)).await, "debate_id");
    assert_invalid(shares.save(&t, ShareSettings { max_views: Some(0), ..settings("d", Visibility::Public) }).await, "max_views");
    assert_invalid(shares.open("").await, "token");
    let receipts = s.store::<ReceiptShares>();
    assert_invalid(receipts.create(&t, "r", TimeDelta::zero(), None, None).await, "ttl");
    assert_invalid(receipts.create(&t, "", TimeDelta::hours(1), None, None).await, "receipt_id");
    assert_invalid(receipts.create(&t, "r", TimeDelta::hours(1), Some(0), None).await, "max_accesses");
    assert_invalid(receipts.access("a\u{7}").await, "token");
    assert!(shares.get(&t, "d").await.expect("get").is_none(), "nothing was written");
    assert!(receipts.list_for_receipt(&t, "r").await.expect("list").is_empty());
}
