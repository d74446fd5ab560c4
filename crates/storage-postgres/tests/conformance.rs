//! The conformance suite on PostgreSQL: a throwaway server for this test binary, a fresh
//! database per case.

use std::sync::Arc;
use storage_core::ManualClock;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_postgres::PostgresBackend;
use storage_testkit::Subject;
use storage_testkit::server::fresh_postgres_database;

async fn setup() -> Subject {
    let url = fresh_postgres_database().await;
    let clock = ManualClock::at_system_time();
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    let backend = PostgresBackend::builder(url).clock(clock.shared()).sealer(Arc::new(ring)).connect().await.expect("connect postgres");
    let ddl: String = storage_testkit::engine::PROBE_TABLES
        .iter()
        .map(|t| storage_schema::ddl::create_table(storage_schema::Dialect::Postgres, t))
        .collect();
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl)).execute(backend.router().write_pool()).await.expect("probe tables");
    Subject { engine: Arc::new(backend), clock, guard: None }
}

storage_testkit::conformance_tests!(crate::setup);
