//! The conformance suite on SQLite, each case on a fresh database file.

use std::sync::Arc;
use storage_core::ManualClock;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_sqlite::SqliteBackend;
use storage_testkit::Subject;

async fn setup() -> Subject {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::at_system_time();
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    let backend = SqliteBackend::builder(dir.path().join("conformance.db"))
        .clock(clock.shared())
        .sealer(Arc::new(ring))
        .connect()
        .await
        .expect("open sqlite");
    let ddl: String = storage_testkit::engine::PROBE_TABLES
        .iter()
        .map(|t| storage_schema::ddl::create_table(storage_schema::Dialect::Sqlite, t))
        .collect();
    backend.write(move |conn| conn.execute_batch(&ddl).map_err(storage_schema::sqlite_error)).await.expect("probe tables");
    Subject { engine: Arc::new(backend), clock, guard: Some(Box::new(dir)) }
}

storage_testkit::conformance_tests!(crate::setup);
