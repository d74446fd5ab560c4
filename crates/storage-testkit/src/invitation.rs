//! Conformance cases of `InvitationStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{Clock, InvitationStatus, InvitationStore, Invitations, Role, StorageError};

pub async fn invitations_are_found_by_token_email_and_org(s: &Subject) {
    let store = s.store::<Invitations>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let issued = store.create_invitation(&acme, "Bob@Example.com", Role::Admin, "alice", None).await.expect("invite");
    let token = issued.token.expose().clone();
    let invitation = issued.invitation;
    assert!(token.starts_with("inv_") && invitation.token_digest != token);
    assert!(!serde_json::to_string(&invitation).expect("json").contains(&token), "the record never holds the token");
    assert_eq!(
        (invitation.email.as_str(), invitation.status, invitation.expires_at),
        ("bob@example.com", InvitationStatus::Pending, s.clock.now() + TimeDelta::days(7))
    );
    assert_eq!(store.get_invitation_by_token(&token).await.expect("by token"), Some(invitation.clone()));
    assert!(store.get_invitation_by_token("inv_unknown").await.expect("by token").is_none());
    assert_eq!(store.get_invitation_by_id(&acme, &invitation.id).await.expect("by id"), Some(invitation.clone()));
    assert!(store.get_invitation_by_id(&globex, &invitation.id).await.expect("other org").is_none(), "tenants are isolated");
    assert_eq!(store.get_invitation_by_email(&acme, "BOB@example.com").await.expect("by email").map(|i| i.id), Some(invitation.id.clone()));
    assert!(store.get_invitation_by_email(&globex, "bob@example.com").await.expect("by email").is_none());
    store.create_invitation(&globex, "bob@example.com", Role::Member, "carol", Some(TimeDelta::hours(1))).await.expect("second org");
    let pending = collect_all(1, |p| {
        let store = &store;
        async move { store.get_pending_invitations_by_email("bob@example.com", &p).await }
    })
    .await;
    assert_eq!(pending.len(), 2, "across organisations");
    assert_eq!(
        collect_all(5, |p| {
            let (store, acme) = (&store, &acme);
            async move { store.get_invitations_for_org(acme, &p).await }
        })
        .await
        .len(),
        1
    );
    assert_invalid(store.create_invitation(&acme, "nobody", Role::Member, "alice", None).await, "email");
    assert_invalid(store.create_invitation(&acme, "x@example.com", Role::Member, "alice", Some(TimeDelta::zero())).await, "ttl");
    assert_invalid(store.create_invitation(&acme, "x@example.com", Role::Member, "alice", Some(TimeDelta::MAX)).await, "ttl");
}

pub async fn an_invitation_is_accepted_once_before_it_expires(s: &Subject) {
    let store = s.store::<Invitations>();
    let acme = tenant("acme");
    let issued = store.create_invitation(&acme, "bob@example.com", Role::Member, "alice", Some(TimeDelta::hours(1))).await.expect("invite");
    let token = issued.token.expose().clone();
    let accepted = store.accept_invitation(&token, "bob").await.expect("accept");
    assert_eq!(
        (accepted.status, accepted.accepted_by.as_deref(), accepted.accepted_at),
        (InvitationStatus::Accepted, Some("bob"), Some(s.clock.now()))
    );
    assert!(matches!(store.accept_invitation(&token, "eve").await, Err(StorageError::Conflict { .. })), "accepted once");
    assert!(matches!(store.accept_invitation("inv_unknown", "eve").await, Err(StorageError::NotFound { .. })));
    let late = store.create_invitation(&acme, "carol@example.com", Role::Member, "alice", Some(TimeDelta::hours(1))).await.expect("invite");
    s.clock.advance(TimeDelta::hours(2));
    assert_eq!(late.invitation.status_at(s.clock.now()), InvitationStatus::Expired);
    assert!(matches!(store.accept_invitation(late.token.expose(), "carol").await, Err(StorageError::Conflict { .. })), "expired");
    assert!(store.get_invitation_by_email(&acme, "carol@example.com").await.expect("by email").is_none(), "expired is not pending");
    let revoked = store.create_invitation(&acme, "dave@example.com", Role::Member, "alice", None).await.expect("invite");
    assert_eq!(store.revoke_invitation(&acme, &revoked.invitation.id).await.expect("revoke").status, InvitationStatus::Revoked);
    assert!(matches!(store.accept_invitation(revoked.token.expose(), "dave").await, Err(StorageError::Conflict { .. })));
    assert!(matches!(store.revoke_invitation(&acme, &revoked.invitation.id).await, Err(StorageError::Conflict { .. })));
    assert_eq!(store.cleanup_expired_invitations().await.expect("cleanup"), 1, "only the expired pending one");
    assert!(store.get_invitation_by_id(&acme, &late.invitation.id).await.expect("get").is_none());
    assert!(store.get_invitation_by_id(&acme, &accepted.id).await.expect("get").is_some(), "accepted ones stay");
    assert!(store.delete_invitation(&acme, &accepted.id).await.expect("delete"));
    assert!(!store.delete_invitation(&acme, &accepted.id).await.expect("delete again"));
}

pub async fn concurrent_accepts_have_one_winner(s: &Subject) {
    let store = Arc::new(s.store::<Invitations>());
    let issued = store.create_invitation(&tenant("acme"), "bob@example.com", Role::Member, "alice", None).await.expect("invite");
    let token = issued.token.expose().clone();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, token) = (Arc::clone(&store), token.clone());
            tokio::spawn(async move { store.accept_invitation(&token, &format!("user-{i}")).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(invitation) => winners.push(invitation.accepted_by),
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one transition");
    let stored = store.get_invitation_by_token(&token).await.expect("get").expect("present");
    assert_eq!((stored.accepted_by, stored.version), (winners.pop().flatten(), 2));
}
