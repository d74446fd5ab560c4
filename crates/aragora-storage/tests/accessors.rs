//! The seed's accessors and backend selection, each scenario in a child process with its own
//! environment (the accessors are process-wide, and changing the environment in-process is unsafe).

use aragora_storage::{
    DatabaseBackend, InMemoryIntegrationStore, IntegrationConfig, IntegrationStore, StorageError, TenantId, get_database_backend,
    get_integration_store, get_webhook_store, reset_integration_store, set_integration_store,
};
use std::process::Command;
use std::sync::Arc;

const CHILD: &str = "ARAGORA_TEST_CHILD";

/// Runs `test` in a child process with `env`; passes if the child passes.
fn in_child(test: &str, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new(exe)
        .args(["--exact", test, "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("DATABASE_BACKEND")
        .env_remove("ARAGORA_DATABASE_BACKEND")
        .env_remove("ENCRYPTION_KEY")
        .env_remove("ARAGORA_ENCRYPTION_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("run child");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && text.contains("1 passed"), "child `{test}` failed:\n{text}");
}

fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

#[test]
fn accessors_follow_the_environment_and_overrides() {
    in_child("child_memory_accessors", &[("DATABASE_BACKEND", "memory"), ("ARAGORA_ENV", "test")]);
}

#[test]
fn a_refused_configuration_is_never_cached() {
    in_child("child_refused_configuration", &[("ARAGORA_ENV", "production"), ("DATABASE_BACKEND", "memory")]);
}

#[test]
fn sqlite_is_the_default_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("accessors.db");
    in_child("child_sqlite_default", &[("SQLITE_PATH", path.to_str().expect("utf-8 path")), ("ARAGORA_ENV", "development")]);
    assert!(path.exists(), "the database was created");
    assert!(dir.path().join("accessors.db.key").exists(), "the development key was kept beside it");
}

#[tokio::test]
#[ignore = "a scenario of the test above, run in a child process with its own environment"]
async fn child_memory_accessors() {
    assert!(is_child(), "run through its parent test");
    assert_eq!(get_database_backend().expect("backend"), DatabaseBackend::Memory);
    let tenant = TenantId::new("acme").expect("tenant");
    let configured = get_integration_store().await.expect("configured store");
    configured.set(&IntegrationConfig::new(tenant.clone(), "k", "slack")).await.expect("set");
    assert!(Arc::ptr_eq(&configured, &get_integration_store().await.expect("again")), "one store per process");

    let custom: Arc<dyn IntegrationStore> = Arc::new(InMemoryIntegrationStore::new());
    set_integration_store(Arc::clone(&custom));
    let current = get_integration_store().await.expect("custom");
    assert!(Arc::ptr_eq(&custom, &current));
    assert!(current.get(&tenant, "k").await.expect("get").is_none(), "the custom store is a different one");

    reset_integration_store();
    let back = get_integration_store().await.expect("configured again");
    assert!(back.get(&tenant, "k").await.expect("get").is_some(), "reset returns to the configured store");
    get_webhook_store().await.expect("the other accessors share the configured backend");
}

#[tokio::test]
#[ignore = "a scenario of the test above, run in a child process with its own environment"]
async fn child_refused_configuration() {
    assert!(is_child(), "run through its parent test");
    for _ in 0..2 {
        match get_integration_store().await {
            Err(StorageError::Config { message, .. }) => assert!(message.contains("ENCRYPTION_KEY"), "{message}"),
            other => panic!("production without a key must be refused every time, got {other:?}"),
        }
    }
}

#[tokio::test]
#[ignore = "a scenario of the test above, run in a child process with its own environment"]
async fn child_sqlite_default() {
    assert!(is_child(), "run through its parent test");
    assert_eq!(get_database_backend().expect("backend"), DatabaseBackend::Sqlite);
    assert!(aragora_storage::POSTGRESQL_AVAILABLE == cfg!(feature = "postgres"));
    let store = get_integration_store().await.expect("sqlite store");
    let tenant = TenantId::new("acme").expect("tenant");
    store.set(&IntegrationConfig::new(tenant.clone(), "k", "slack").with_credential("token", "t")).await.expect("set");
    assert_eq!(store.get(&tenant, "k").await.expect("get").expect("present").credentials["token"].expose(), "t");
}
