//! What only SQLite can show: bytes at rest, rows moved by hand, migrations racing on one file.

use rusqlite::Connection;
use std::sync::Arc;
use storage_core::Store;
use storage_core::{IntegrationConfig, IntegrationStore, StorageError, TenantId};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_sqlite::SQLiteIntegrationStore;
use storage_sqlite::SqliteBackend;

fn ring(key: &EncryptionKey) -> Arc<KeyRing> {
    Arc::new(KeyRing::single(key.clone()).expect("ring"))
}

fn raw(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).expect("raw connection");
    conn.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
    conn
}

#[tokio::test]
async fn secrets_never_reach_the_file_or_the_wal_in_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("at-rest.db");
    let key = EncryptionKey::generate().expect("key");
    let backend = SqliteBackend::builder(&path).sealer(ring(&key)).connect().await.expect("open");
    let tenant = TenantId::new("acme").expect("tenant");
    let config = IntegrationConfig::new(tenant.clone(), "ws", "slack").with_credential("token", "xoxb-at-rest-canary-token");
    SQLiteIntegrationStore::on(&backend).set(&config).await.expect("set");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        if bytes.windows(b"xoxb-at-rest-canary-token".len()).any(|w| w == b"xoxb-at-rest-canary-token") {
            found.push(bytes.len());
        }
    }
    assert!(found.is_empty(), "the token is in clear in a database file");
    let read = SQLiteIntegrationStore::on(&backend).get(&tenant, "ws").await.expect("get").expect("present");
    assert_eq!(read.credentials["token"].expose(), "xoxb-at-rest-canary-token");
    backend.close().await;
    let reopened = SqliteBackend::builder(&path).sealer(ring(&key)).connect().await.expect("reopen");
    let read = SQLiteIntegrationStore::on(&reopened).get(&tenant, "ws").await.expect("get").expect("persisted");
    assert_eq!(read.credentials["token"].expose(), "xoxb-at-rest-canary-token", "readable after a restart");
}

#[tokio::test]
async fn a_body_copied_to_another_row_or_tenant_is_refused_not_leaked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("moved.db");
    let backend = SqliteBackend::builder(&path).sealer(ring(&EncryptionKey::generate().expect("key"))).connect().await.expect("open");
    let store = SQLiteIntegrationStore::on(&backend);
    let (a, b) = (TenantId::new("tenant-a").expect("t"), TenantId::new("tenant-b").expect("t"));
    store.set(&IntegrationConfig::new(a.clone(), "victim", "slack").with_credential("token", "secret-of-a")).await.expect("set");
    store.set(&IntegrationConfig::new(b.clone(), "attacker", "slack").with_credential("token", "secret-of-b")).await.expect("set");
    let conn = raw(&path);
    conn.execute("UPDATE integrations SET body = (SELECT body FROM integrations WHERE id = 'victim') WHERE id = 'attacker'", [])
        .expect("tamper");
    let err = store.get(&b, "attacker").await.expect_err("a moved body must not decode");
    assert!(!err.to_string().contains("secret-of-a"));
    // Move only the sealed token, keeping the attacker's identity fields: the AAD refuses it.
    conn.execute(
        "UPDATE integrations SET body = json_set((SELECT body FROM integrations WHERE id = 'victim'), '$.r.tenant', 'tenant-b', '$.r.key', 'attacker') WHERE id = 'attacker'",
        [],
    )
    .expect("tamper");
    match store.get(&b, "attacker").await {
        Err(StorageError::Crypto { .. }) => {}
        other => panic!("expected a Crypto error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_key_is_a_crypto_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wrong-key.db");
    let tenant = TenantId::new("acme").expect("tenant");
    let writer = SqliteBackend::builder(&path).sealer(ring(&EncryptionKey::generate().expect("key"))).connect().await.expect("open");
    SQLiteIntegrationStore::on(&writer)
        .set(&IntegrationConfig::new(tenant.clone(), "ws", "slack").with_credential("token", "t"))
        .await
        .expect("set");
    writer.close().await;
    let reader = SqliteBackend::builder(&path).sealer(ring(&EncryptionKey::generate().expect("key"))).connect().await.expect("open");
    assert!(matches!(SQLiteIntegrationStore::on(&reader).get(&tenant, "ws").await, Err(StorageError::Crypto { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrators_apply_each_migration_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("race.db");
    let key = EncryptionKey::generate().expect("key");
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let (path, ring) = (path.clone(), ring(&key));
            tokio::spawn(async move { SqliteBackend::builder(path).sealer(ring).connect().await })
        })
        .collect();
    for open in opens {
        open.await.expect("task").expect("every migrator succeeds");
    }
    let conn = raw(&path);
    let mut statement = conn.prepare("SELECT version, count(*) FROM aragora_schema_migrations GROUP BY version").expect("prepare");
    let rows: Vec<(i64, i64)> =
        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).expect("query").collect::<Result<_, _>>().expect("bookkeeping");
    assert_eq!(rows.len(), storage_schema::embedded::SQLITE.len());
    assert!(rows.iter().all(|(_, n)| *n == 1), "{rows:?}");
}

#[tokio::test]
async fn an_edited_migration_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("edited.db");
    let key = EncryptionKey::generate().expect("key");
    SqliteBackend::builder(&path).sealer(ring(&key)).connect().await.expect("open").close().await;
    raw(&path).execute("UPDATE aragora_schema_migrations SET checksum = 'deadbeefdeadbeef' WHERE version = 1", []).expect("edit");
    let err = SqliteBackend::builder(&path).sealer(ring(&key)).connect().await.expect_err("edited");
    let message = err.to_string();
    assert!(matches!(err, StorageError::Schema { .. }) && message.contains("0001_initial") && message.contains("edited"), "{message}");
}

#[tokio::test]
async fn migration_status_and_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = Connection::open(dir.path().join("s.db")).expect("open");
    let status = storage_schema::check_schema_version(&mut conn).await.expect("status");
    assert_eq!((status.current, status.pending.len()), (0, storage_schema::embedded::SQLITE.len()));
    assert!(matches!(storage_schema::run_migrations(&mut conn, Some(999)).await, Err(StorageError::InvalidInput { .. })));
    assert_eq!(storage_schema::run_migrations(&mut conn, Some(1)).await.expect("run").len(), 1);
    assert!(storage_schema::run_migrations(&mut conn, None).await.expect("rerun").len() < storage_schema::embedded::SQLITE.len());
    let status = storage_schema::check_schema_version(&mut conn).await.expect("status");
    assert!(status.is_current());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_units_from_two_processes_lose_no_increment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("counter.db");
    let key = EncryptionKey::generate().expect("key");
    // Two backends on one file stand for two processes: each has its own writer connection, and
    // each write unit is a read-then-write inside a BEGIN IMMEDIATE batch.
    let a = SqliteBackend::builder(&path).sealer(ring(&key)).connect().await.expect("open a");
    let b = SqliteBackend::builder(&path).sealer(ring(&key)).connect().await.expect("open b");
    a.write(|conn| {
        conn.execute_batch("CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0);")
            .map_err(storage_schema::sqlite_error)
    })
    .await
    .expect("create");
    let tasks: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .map(|backend| {
            tokio::spawn(async move {
                for _ in 0..100 {
                    backend
                        .write(|conn| {
                            let n: i64 =
                                conn.query_row("SELECT n FROM counter", [], |row| row.get(0)).map_err(storage_schema::sqlite_error)?;
                            conn.execute("UPDATE counter SET n = ?1", [n + 1]).map_err(storage_schema::sqlite_error)
                        })
                        .await
                        .expect("a write unit never fails with SQLITE_BUSY");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let n: i64 = a
        .read(|conn| conn.query_row("SELECT n FROM counter", [], |row| row.get(0)).map_err(storage_schema::sqlite_error))
        .await
        .expect("read");
    assert_eq!(n, 400, "every read-then-write increment landed exactly once");
}

#[tokio::test]
async fn a_done_event_without_completed_at_reads_as_completed_at_its_expiry() {
    use storage_core::{ClaimOutcome, WebhookStore};
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = SqliteBackend::builder(dir.path().join("legacy.db"))
        .sealer(ring(&EncryptionKey::generate().expect("key")))
        .connect()
        .await
        .expect("open");
    let expires = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    let micros = storage_core::clock::truncate_micros(expires).timestamp_micros();
    backend
        .write(move |conn| {
            conn.execute(
                "INSERT INTO webhook_events (tenant, event_id, state, result, expires_at) VALUES ('acme', 'evt', 'done', 'ok', ?1)",
                [micros],
            )
            .map_err(storage_schema::sqlite_error)
        })
        .await
        .expect("legacy row");
    let store = storage_sqlite::SQLiteWebhookStore::on(&backend);
    match store.try_claim(&TenantId::new("acme").expect("tenant"), "evt", chrono::TimeDelta::seconds(30)).await.expect("claim") {
        ClaimOutcome::AlreadyDone(delivery) => assert_eq!(delivery.completed_at, delivery.expires_at, "the same answer as PostgreSQL"),
        other => panic!("expected AlreadyDone, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_an_endless_stream_of_writes() {
    // Checkpoints that run beside a writer that never pauses can never catch up with it; unless
    // the writer finishes one now and then, the WAL is never rewound and grows without bound
    // (gigabytes after a few hundred thousand writes, found by the benchmark's claim stream).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stream.db");
    let backend = SqliteBackend::builder(&path).sealer(ring(&EncryptionKey::generate().expect("key"))).connect().await.expect("open");
    let store = SQLiteIntegrationStore::on(&backend);
    let tenant = TenantId::new("acme").expect("tenant");
    let wal_size = || std::fs::metadata(dir.path().join("stream.db-wal")).map(|m| m.len()).unwrap_or(0);
    let mut largest = 0;
    for i in 0..20_000u64 {
        let mut config = IntegrationConfig::new(tenant.clone(), format!("k-{}", i % 500), "slack");
        config.messages_sent = i;
        store.set(&config).await.expect("set");
        if i % 500 == 0 {
            largest = largest.max(wal_size());
        }
    }
    largest = largest.max(wal_size());
    eprintln!("largest WAL: {} KiB", largest / 1024);
    // Unbounded, 20,000 writes of several 4 KiB pages each would leave hundreds of MiB.
    assert!(largest <= 80 * 1024 * 1024, "the WAL grew to {} MiB", largest / 1024 / 1024);
}

#[tokio::test]
async fn no_secret_is_in_any_file_in_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("identity.db");
    let backend = SqliteBackend::builder(&path).sealer(ring(&EncryptionKey::generate().expect("key"))).connect().await.expect("open");
    let secrets = storage_testkit::at_rest::plant_secrets(&backend).await;
    let mut dump = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        dump.extend(std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    storage_testkit::at_rest::assert_no_secret_in(&secrets, &dump, "the database file and its WAL");
}

#[tokio::test]
async fn audit_rows_edited_deleted_or_swapped_with_sql_are_named_by_verify() {
    use storage_testkit::audit::{first_broken_link, six_entries_to_tamper_with};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.db");
    let backend = SqliteBackend::builder(&path).sealer(ring(&EncryptionKey::generate().expect("key"))).connect().await.expect("open");
    let attacks = [
        ("edited", "UPDATE audit_log SET body = replace(body, '\"u2\"', '\"mallory\"') WHERE tenant = ?1 AND seq = 3"),
        ("deleted", "DELETE FROM audit_log WHERE tenant = ?1 AND seq = 3"),
        (
            "swapped",
            "UPDATE audit_log SET body = (SELECT o.body FROM audit_log o WHERE o.tenant = audit_log.tenant AND o.seq = 7 - audit_log.seq) \
             WHERE tenant = ?1 AND seq IN (3, 4)",
        ),
    ];
    for (name, sql) in attacks {
        let t = TenantId::new(name).expect("tenant");
        six_entries_to_tamper_with(&backend, &t).await;
        let changed = raw(&path).execute(sql, [t.as_str()]).expect(name);
        assert!(changed >= 1, "{name}: no row changed");
        assert_eq!(first_broken_link(&backend, &t).await, Some(3), "{name}");
    }
}

#[test]
fn fts5_queries_built_from_any_input_are_never_syntax_errors_and_find_their_phrases() {
    use storage_core::build_fts_match_query;
    use storage_testkit::fts::{for_each_query, phrase};
    let conn = Connection::open_in_memory().expect("memory database");
    conn.execute_batch("CREATE VIRTUAL TABLE docs USING fts5(body)").expect("fts5");
    for i in 0..200 {
        conn.execute("INSERT INTO docs (rowid, body) VALUES (?1, ?2)", (i64::from(i), phrase(i).0)).expect("insert");
    }
    let mut statement = conn.prepare("SELECT count(*) FROM docs WHERE docs MATCH ?1").expect("prepare");
    let (mut queries, mut built) = (0, 0);
    for_each_query(10_000, |query| {
        queries += 1;
        for prefix in [false, true] {
            if let Some(expression) = build_fts_match_query(query, prefix) {
                built += 1;
                let counted: rusqlite::Result<i64> = statement.query_row([&expression], |r| r.get(0));
                assert!(counted.is_ok(), "{query:?} as {expression:?}: {counted:?}");
            }
        }
    });
    assert_eq!(queries, 10_000);
    assert!(built > 15_000, "most inputs have terms: {built}");
    let mut find = conn.prepare("SELECT rowid FROM docs WHERE docs MATCH ?1").expect("prepare");
    for i in 0..200 {
        let expression = build_fts_match_query(&phrase(i).1, false).expect("terms");
        let rows: Vec<i64> = find.query_map([&expression], |r| r.get(0)).expect("search").collect::<rusqlite::Result<_>>().expect("rows");
        assert_eq!(rows, [i64::from(i)], "phrase {i} finds exactly its text");
    }
}
