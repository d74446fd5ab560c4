//! What operators see: metrics per store and operation, spans with a hashed tenant, health per
//! backend, and stores placed on another backend than the default.

use aragora_storage::{IntegrationConfig, MemoryBackend, Storage, StorageConfig, TenantId};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use std::sync::{Arc, Mutex};
use storage_core::DatabaseBackend;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

#[test]
fn every_operation_is_counted_timed_and_classified_without_tenant_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let storage = Storage::on(Arc::new(MemoryBackend::new()));
            let store = storage.integration_store();
            let acme = TenantId::new("acme-secret-customer").expect("tenant");
            store.set(&IntegrationConfig::new(acme.clone(), "k", "slack")).await.expect("set");
            store.get(&acme, "k").await.expect("get");
            let _ = store.create(&IntegrationConfig::new(acme.clone(), "k", "slack")).await;
        })
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let find = |name: &str, op: &str, extra: Option<(&str, &str)>| {
        snapshot.iter().find(|(key, _, _, _)| {
            let key = key.key();
            key.name() == name
                && key.labels().any(|l| l.key() == "store" && l.value() == "integrations")
                && key.labels().any(|l| l.key() == "op" && l.value() == op)
                && key.labels().any(|l| l.key() == "backend" && l.value() == "memory")
                && extra.is_none_or(|(k, v)| key.labels().any(|l| l.key() == k && l.value() == v))
        })
    };
    let Some((_, _, _, DebugValue::Counter(gets))) = find("aragora_storage_operations_total", "get", None) else {
        panic!("no get counter in {snapshot:?}")
    };
    assert!(*gets >= 1);
    assert!(matches!(find("aragora_storage_operation_seconds", "apply", None), Some((_, _, _, DebugValue::Histogram(h))) if !h.is_empty()));
    assert!(
        matches!(find("aragora_storage_errors_total", "apply", Some(("kind", "conflict"))), Some((_, _, _, DebugValue::Counter(1)))),
        "the refused create is counted by kind: {snapshot:?}"
    );
    for (key, _, _, _) in &snapshot {
        assert!(!key.key().labels().any(|l| l.value().contains("acme")), "no tenant label unless asked: {key:?}");
    }
}

/// A writer the span output goes to.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_operation_has_a_span_naming_the_store_and_a_hashed_tenant() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("aragora_storage=debug")
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(async {
            let storage = Storage::on(Arc::new(MemoryBackend::new()));
            let acme = TenantId::new("acme-secret-customer").expect("tenant");
            storage.integration_store().get(&acme, "k").await.expect("get");
        })
    });
    let output = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(output.contains("storage{backend=\"memory\" store=\"integrations\" op=\"get\" tenant="), "{output}");
    assert!(!output.contains("acme"), "the tenant is hashed: {output}");
}

#[tokio::test]
async fn a_store_placed_on_another_backend_lives_there_and_both_report_health() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = StorageConfig { sqlite_path: dir.path().join("app.db"), ..StorageConfig::default() };
    config.store_backends.insert("integration".into(), DatabaseBackend::Memory);
    let storage = Storage::connect(&config).await.expect("connect");
    assert_eq!(storage.engines().iter().map(|e| e.backend()).collect::<Vec<_>>(), [DatabaseBackend::Sqlite, DatabaseBackend::Memory]);
    let acme = TenantId::new("acme").expect("tenant");
    storage.integration_store().set(&IntegrationConfig::new(acme.clone(), "k", "slack")).await.expect("set");
    storage.gmail_token_store().get(&acme, "u").await.expect("gmail on sqlite");

    let health = storage.health().await;
    assert_eq!(health.len(), 2);
    assert!(health.iter().all(|h| h.reachable), "{health:?}");
    assert!(health[0].pool.is_some_and(|p| p.size >= 2 && p.in_use == 0), "SQLite reports its connections: {health:?}");
    storage.close().await;

    // The integration lived in memory: the SQLite file never saw it.
    config.store_backends.clear();
    let sqlite_only = Storage::connect(&config).await.expect("reopen");
    assert!(sqlite_only.integration_store().get(&acme, "k").await.expect("get").is_none());
    sqlite_only.close().await;
}
