//! What only PostgreSQL can show: rows written by hand.

use std::sync::Arc;
use storage_core::{ClaimOutcome, Store, TenantId, WebhookStore};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_postgres::{PostgresBackend, PostgresWebhookStore};
use storage_testkit::server::fresh_postgres_database;

#[tokio::test]
async fn a_done_event_without_completed_at_reads_as_completed_at_its_expiry() {
    let url = fresh_postgres_database().await;
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let backend = PostgresBackend::builder(url).sealer(ring).connect().await.expect("connect");
    let expires = storage_core::clock::truncate_micros(chrono::Utc::now() + chrono::TimeDelta::hours(1));
    sqlx::query("INSERT INTO webhook_events (tenant, event_id, state, result, expires_at) VALUES ('acme', 'evt', 'done', 'ok', $1)")
        .bind(expires)
        .execute(backend.router().write_pool())
        .await
        .expect("legacy row");
    let store = PostgresWebhookStore::on(&backend);
    match store.try_claim(&TenantId::new("acme").expect("tenant"), "evt", chrono::TimeDelta::seconds(30)).await.expect("claim") {
        ClaimOutcome::AlreadyDone(delivery) => assert_eq!(delivery.completed_at, delivery.expires_at, "the same answer as SQLite"),
        other => panic!("expected AlreadyDone, got {other:?}"),
    }
}
