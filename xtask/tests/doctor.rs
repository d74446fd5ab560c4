//! `cargo xtask doctor` shows the configuration without its secrets.

use std::process::Command;

#[test]
fn doctor_redacts_secrets_and_reports_the_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("doctor.db");
    let migrate = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["migrate", "--backend", "sqlite", "--sqlite-path", db.to_str().expect("utf-8")])
        .output()
        .expect("migrate");
    assert!(migrate.status.success());
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("doctor")
        .current_dir(dir.path())
        .env("SQLITE_PATH", &db)
        .env("DATABASE_BACKEND", "sqlite")
        .env("DATABASE_URL", "postgres://app:hunter2-secret@db.example/app")
        .env("ENCRYPTION_KEY", "ab".repeat(32))
        .env("ARAGORA_ENV", "development")
        .output()
        .expect("doctor");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    assert!(!text.contains("hunter2") && !text.contains(&"ab".repeat(32)), "a secret leaked:\n{text}");
    assert!(text.contains("[REDACTED]"), "{text}");
    assert!(
        text.contains(&format!("schema version {0} of {0}", storage_schema::embedded::SQLITE.len())) && text.contains("primary key id"),
        "{text}"
    );
}
