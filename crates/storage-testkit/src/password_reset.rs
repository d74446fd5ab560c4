//! Conformance cases of `PasswordResetStore`.

use crate::{Subject, assert_invalid};
use chrono::DurationRound;
use std::sync::Arc;
use storage_core::stores::password_reset::{RATE_WINDOW, RESET_TOKEN_TTL, RESETS_PER_WINDOW};
use storage_core::{Clock, PasswordResetStore, PasswordResets, ResetRequest, Secret, StorageError};

async fn issue(s: &Subject, email: &str) -> Secret<String> {
    match s.store::<PasswordResets>().create_token(email).await.expect("create") {
        ResetRequest::Issued { token, expires_at } => {
            assert_eq!(expires_at, s.clock.now() + RESET_TOKEN_TTL);
            assert!(token.expose().len() >= 43, "at least 256 bits, base64url");
            token
        }
        ResetRequest::RateLimited { retry_after } => panic!("rate-limited until {retry_after}"),
    }
}

/// Puts the clock at the start of a rate window, so a test's requests share one.
fn window_start(s: &Subject) {
    let now = s.clock.now();
    let start = now.duration_trunc(RATE_WINDOW).expect("trunc");
    s.clock.advance(RATE_WINDOW - (now - start));
}

pub async fn a_token_is_validated_then_consumed_once(s: &Subject) {
    window_start(s);
    let store = s.store::<PasswordResets>();
    let token = issue(s, "Ada@Example.com").await;
    assert_eq!(store.validate_token(token.expose()).await.expect("validate").as_deref(), Some("ada@example.com"));
    assert_eq!(store.validate_token(token.expose()).await.expect("validating does not use it").as_deref(), Some("ada@example.com"));
    assert_eq!(store.consume_token(token.expose()).await.expect("consume"), "ada@example.com");
    assert!(matches!(store.consume_token(token.expose()).await, Err(StorageError::Conflict { .. })), "used once");
    assert_eq!(store.validate_token(token.expose()).await.expect("validate"), None);
    assert!(matches!(store.consume_token("rst_unknown").await, Err(StorageError::NotFound { .. })));
    let other = issue(s, "ada@example.com").await;
    assert_ne!(other.expose(), token.expose());
    assert_eq!(store.invalidate_tokens_for_email("ADA@example.com").await.expect("invalidate"), 2);
    assert!(matches!(store.consume_token(other.expose()).await, Err(StorageError::NotFound { .. })), "invalidated");
}

pub async fn tokens_expire(s: &Subject) {
    window_start(s);
    let store = s.store::<PasswordResets>();
    let token = issue(s, "ada@example.com").await;
    s.clock.advance(RESET_TOKEN_TTL);
    assert_eq!(store.validate_token(token.expose()).await.expect("validate"), None);
    assert!(matches!(store.consume_token(token.expose()).await, Err(StorageError::NotFound { .. })));
    assert!(store.cleanup().await.expect("cleanup") >= 1);
}

pub async fn the_rate_limit_counts_issued_tokens_not_surviving_rows(s: &Subject) {
    window_start(s);
    let store = s.store::<PasswordResets>();
    for _ in 0..RESETS_PER_WINDOW {
        let token = issue(s, "ada@example.com").await;
        store.consume_token(token.expose()).await.expect("consume");
    }
    assert_eq!(store.invalidate_tokens_for_email("ada@example.com").await.expect("invalidate"), 3, "every token row is gone");
    assert_eq!(store.count_recent_requests("ada@example.com").await.expect("count"), 3, "but they were issued");
    match store.create_token("ada@example.com").await.expect("create") {
        ResetRequest::RateLimited { retry_after } => assert!(retry_after > s.clock.now()),
        ResetRequest::Issued { .. } => panic!("a fourth token in the window"),
    }
    issue(s, "grace@example.com").await;
    s.clock.advance(RATE_WINDOW);
    issue(s, "ada@example.com").await;
    assert_eq!(store.count_recent_requests("ada@example.com").await.expect("count"), 1);
}

pub async fn concurrent_consumes_of_one_token_succeed_once(s: &Subject) {
    window_start(s);
    let store = Arc::new(s.store::<PasswordResets>());
    let token = issue(s, "ada@example.com").await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, token) = (Arc::clone(&store), token.expose().clone());
            tokio::spawn(async move { store.consume_token(&token).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(email) => {
                assert_eq!(email, "ada@example.com");
                won += 1;
            }
            Err(StorageError::Conflict { .. }) => {}
            Err(e) => panic!("consume: {e}"),
        }
    }
    assert_eq!(won, 1, "exactly one of 32 concurrent consumes");
}

pub async fn bad_input_is_refused(s: &Subject) {
    let store = s.store::<PasswordResets>();
    assert_invalid(store.create_token("not an email").await, "email");
    assert_invalid(store.consume_token("").await, "token");
    assert_invalid(store.validate_token("a\u{7}").await, "token");
    assert_invalid(store.invalidate_tokens_for_email("").await, "email");
    assert_eq!(store.count_recent_requests("ada@example.com").await.expect("count"), 0, "nothing was counted");
}
