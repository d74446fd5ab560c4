//! Store operations on SQLite beside the same statements issued through sqlx on the same pools.

use chrono::{TimeDelta, Utc};
use sqlx::Row;
use std::sync::Arc;
use storage_core::clock::to_micros;
use storage_core::document::Document;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_sqlite::SqliteBackend;
use storage_testkit::bench::fixtures::{KEYS, bench_tenant, gmail, integration, owner};
use storage_testkit::bench::{Baselines, Reference, Scenario, op};

const GET: &str = "SELECT id, version, created_at, updated_at, body FROM {t} WHERE tenant = ?1 AND id = ?2";

async fn scenarios() -> Vec<Scenario> {
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let backend = SqliteBackend::builder(dir.path().join("bench.db")).sealer(ring.clone()).readers(4).connect().await.expect("open");
    let (integrations, webhooks, tokens) =
        (Arc::new(backend.integration_store()), Arc::new(backend.webhook_store()), Arc::new(backend.gmail_token_store()));
    storage_testkit::bench::preload(integrations.as_ref(), tokens.as_ref()).await;
    let tenant = bench_tenant();
    let integration_body = integration(0).encode(ring.as_ref()).expect("encode").to_json().expect("json");
    let gmail_body = gmail(0).encode(ring.as_ref()).expect("encode").to_json().expect("json");

    let get = |table: &'static str, prefix: &'static str| {
        let (reader, tenant) = (backend.reader().clone(), tenant.clone());
        let sql: &'static str = Box::leak(GET.replace("{t}", table).into_boxed_str());
        op(move |i| {
            let (reader, tenant) = (reader.clone(), tenant.clone());
            async move {
                let row = sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(format!("{prefix}{:04}", i % KEYS))
                    .fetch_one(&reader)
                    .await
                    .expect("raw get");
                let _: (String, i64, i64, i64, String) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            }
        })
    };
    let upsert = |sql: &'static str, prefix: &'static str, index: fn(u64) -> (Option<String>, Option<i64>), body: String| {
        let (writer, tenant) = (backend.writer().clone(), tenant.clone());
        op(move |i| {
            let (writer, tenant, body) = (writer.clone(), tenant.clone(), body.clone());
            async move {
                let now = to_micros(Utc::now());
                let (a, b) = index(i);
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(format!("{prefix}{:04}", i % KEYS))
                    .bind(a)
                    .bind(b)
                    .bind(now)
                    .bind(now)
                    .bind(body)
                    .execute(&writer)
                    .await
                    .expect("raw upsert");
            }
        })
    };
    const UPSERT_INTEGRATION: &str = "INSERT INTO integrations (tenant, id, user_id, integration_type, version, created_at, updated_at, body) \
        VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7) ON CONFLICT (tenant, id) DO UPDATE SET user_id = excluded.user_id, \
        integration_type = excluded.integration_type, version = integrations.version + 1, updated_at = excluded.updated_at, body = excluded.body \
        RETURNING version, created_at";
    const UPSERT_GMAIL: &str = "INSERT INTO gmail_tokens (tenant, id, email_address, token_expiry, version, created_at, updated_at, body) \
        VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7) ON CONFLICT (tenant, id) DO UPDATE SET email_address = excluded.email_address, \
        token_expiry = excluded.token_expiry, version = gmail_tokens.version + 1, updated_at = excluded.updated_at, body = excluded.body \
        RETURNING version, created_at";

    let claim_raw = {
        let (writer, tenant) = (backend.writer().clone(), tenant.clone());
        op(move |i| {
            let (writer, tenant) = (writer.clone(), tenant.clone());
            async move {
                let (event, token, now) = (format!("raw-{i}"), uuid::Uuid::new_v4().to_string(), Utc::now());
                sqlx::query(
                    "INSERT INTO webhook_events (tenant, event_id, state, token, expires_at) VALUES (?1, ?2, 'in_flight', ?3, ?4) \
                     ON CONFLICT (tenant, event_id) DO UPDATE SET state = 'in_flight', token = excluded.token, result = NULL, completed_at = NULL, \
                     expires_at = excluded.expires_at WHERE webhook_events.expires_at <= ?5 RETURNING token",
                )
                .bind(tenant.as_str())
                .bind(&event)
                .bind(&token)
                .bind(to_micros(now + TimeDelta::seconds(30)))
                .bind(to_micros(now))
                .fetch_optional(&writer)
                .await
                .expect("raw claim");
                sqlx::query(
                    "UPDATE webhook_events SET state = 'done', token = NULL, result = ?1, completed_at = ?2, expires_at = ?3 \
                     WHERE tenant = ?4 AND event_id = ?5 AND state = 'in_flight' AND token = ?6",
                )
                .bind("ok")
                .bind(to_micros(now))
                .bind(to_micros(now + TimeDelta::hours(24)))
                .bind(tenant.as_str())
                .bind(&event)
                .bind(&token)
                .execute(&writer)
                .await
                .expect("raw complete");
            }
        })
    };

    let _t = tenant.clone();
    storage_testkit::bench::scenarios(
        "sqlite",
        integrations,
        webhooks,
        tokens,
        Baselines {
            integration_get: get("integrations", "key-"),
            integration_set: upsert(UPSERT_INTEGRATION, "key-", |i| (Some(owner(i)), None), integration_body),
            webhook_claim_complete: claim_raw,
            gmail_token_get: get("gmail_tokens", "user-"),
            gmail_token_set: upsert(
                UPSERT_GMAIL,
                "user-",
                |i| (Some(format!("user{}@example.com", i % KEYS)), Some(to_micros(Utc::now() + TimeDelta::hours(1)))),
                gmail_body,
            ),
        },
    )
}

fn main() {
    storage_testkit::bench::main(scenarios, || async { Vec::<Reference>::new() });
}
