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

async fn identity_backend() -> PostgresBackend {
    let url = fresh_postgres_database().await;
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    PostgresBackend::builder(url).sealer(ring).connect().await.expect("connect")
}

#[tokio::test]
async fn no_secret_is_in_any_table_in_clear() {
    let backend = identity_backend().await;
    let secrets = storage_testkit::at_rest::plant_secrets(&backend).await;
    // Every row of every table, as PostgreSQL renders it (`query_to_xml`, one document per table).
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT query_to_xml(format('SELECT * FROM public.%I', tablename), true, false, '')::text FROM pg_tables WHERE schemaname = 'public'",
    )
    .fetch_all(backend.router().write_pool())
    .await
    .expect("dump");
    let dump = tables.concat();
    storage_testkit::at_rest::assert_no_secret_in(&secrets, dump.as_bytes(), "a dump of every table");
}

#[tokio::test]
async fn audit_rows_edited_deleted_or_swapped_with_sql_are_named_by_verify() {
    use storage_testkit::audit::{first_broken_link, six_entries_to_tamper_with};
    let backend = identity_backend().await;
    let attacks = [
        ("edited", "UPDATE audit_log SET body = replace(body, '\"u2\"', '\"mallory\"') WHERE tenant = $1 AND seq = 3"),
        ("deleted", "DELETE FROM audit_log WHERE tenant = $1 AND seq = 3"),
        (
            "swapped",
            "UPDATE audit_log a SET body = o.body FROM audit_log o WHERE a.tenant = $1 AND o.tenant = $1 AND a.seq IN (3, 4) AND o.seq = 7 - a.seq",
        ),
    ];
    for (name, sql) in attacks {
        let t = TenantId::new(name).expect("tenant");
        six_entries_to_tamper_with(&backend, &t).await;
        let changed = sqlx::query(sql).bind(t.as_str()).execute(backend.router().write_pool()).await.expect(name).rows_affected();
        assert!(changed >= 1, "{name}: no row changed");
        assert_eq!(first_broken_link(&backend, &t).await, Some(3), "{name}");
    }
}

#[tokio::test]
async fn tsqueries_built_from_any_input_are_never_syntax_errors_and_find_their_phrases() {
    use storage_core::build_tsquery;
    use storage_testkit::fts::{for_each_query, phrase};
    let backend = identity_backend().await;
    let pool = backend.router().write_pool();
    sqlx::raw_sql("CREATE TABLE fts_docs (id INT PRIMARY KEY, body TEXT NOT NULL)").execute(pool).await.expect("table");
    for i in 0..200 {
        sqlx::query("INSERT INTO fts_docs VALUES ($1, $2)")
            .bind(i32::try_from(i).expect("id"))
            .bind(phrase(i).0)
            .execute(pool)
            .await
            .expect("insert");
    }
    let mut expressions = Vec::new();
    for_each_query(10_000, |query| {
        expressions.extend([false, true].into_iter().filter_map(|prefix| build_tsquery(query, prefix).map(|e| (query.to_owned(), e))))
    });
    assert!(expressions.len() > 15_000, "most inputs have terms: {}", expressions.len());
    let mut conn = pool.acquire().await.expect("connection");
    // In batches (one round trip each); a batch that fails is checked one by one, to name the input.
    for batch in expressions.chunks(500) {
        let texts: Vec<&str> = batch.iter().map(|(_, e)| e.as_str()).collect();
        let parsed = sqlx::query_scalar::<_, i64>("SELECT count(to_tsquery('simple', q)) FROM unnest($1::text[]) AS q")
            .bind(&texts)
            .fetch_one(&mut *conn)
            .await;
        if parsed.is_err() {
            for (query, expression) in batch {
                let one =
                    sqlx::query_scalar::<_, String>("SELECT to_tsquery('simple', $1)::text").bind(expression).fetch_one(&mut *conn).await;
                assert!(one.is_ok(), "{query:?} as {expression:?}: {one:?}");
            }
        }
    }
    for i in 0..200 {
        let expression = build_tsquery(&phrase(i).1, false).expect("terms");
        let rows: Vec<i32> = sqlx::query_scalar("SELECT id FROM fts_docs WHERE to_tsvector('simple', body) @@ to_tsquery('simple', $1)")
            .bind(&expression)
            .fetch_all(&mut *conn)
            .await
            .expect("search");
        assert_eq!(rows, [i32::try_from(i).expect("id")], "phrase {i} finds exactly its text");
    }
}
