//! `cargo xtask migrate` as a user runs it: several at once against one fresh database.

use sqlx::{Connection, PgConnection};
use std::process::{Command, Output, Stdio};
use storage_testkit::server::{PgServer, create_database};

fn xtask(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.args(args).env_remove("DATABASE_URL").env_remove("ARAGORA_DATABASE_URL");
    command
}

fn check(output: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "xtask failed:\n{text}");
    text
}

#[tokio::test]
async fn four_concurrent_postgres_migrators_apply_each_migration_once() {
    let server = PgServer::start();
    let url = create_database(&server.url("postgres")).await;
    let children: Vec<_> = (0..4)
        .map(|_| {
            xtask(&["migrate", "--backend", "postgresql", "--database-url", &url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn xtask")
        })
        .collect();
    for child in children {
        check(&child.wait_with_output().expect("xtask exit"));
    }
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let counts: Vec<(i64, i64)> =
        sqlx::query_as("SELECT version, count(*) FROM aragora_schema_migrations GROUP BY version ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .expect("bookkeeping");
    assert_eq!(counts.len(), storage_schema::embedded::POSTGRES.len());
    assert!(counts.iter().all(|(_, n)| *n == 1), "{counts:?}");
    let status = check(&xtask(&["migrate", "status", "--database-url", &url]).output().expect("status"));
    assert!(status.contains("pending: nothing"), "{status}");
}

#[test]
fn sqlite_migrate_and_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.db");
    let path = path.to_str().expect("utf-8");
    let before = check(&xtask(&["migrate", "--backend", "sqlite", "--sqlite-path", path, "--target", "0"]).output().expect("run"));
    assert!(before.contains("schema version 0"), "{before}");
    let applied = check(&xtask(&["migrate", "--backend", "sqlite", "--sqlite-path", path]).output().expect("run"));
    assert!(applied.contains("applied: 0001_initial"), "{applied}");
    let again = check(&xtask(&["migrate", "--backend", "sqlite", "--sqlite-path", path]).output().expect("run"));
    assert!(again.contains("applied: nothing"), "{again}");
    let bad = xtask(&["migrate", "--backend", "mongodb"]).output().expect("run");
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("mongodb"));
}
