//! PostgreSQL restarted and killed under a stream of writes, on a dedicated throwaway server.

use std::sync::Arc;
use std::time::Duration;
use storage_core::Store;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_postgres::PostgresBackend;
use storage_postgres::PostgresIntegrationStore;
use storage_router::PoolSettings;
use storage_testkit::faults::writes_survive_a_server_fault;
use storage_testkit::server::{PgServer, create_database};

async fn backend(server: &PgServer) -> PostgresBackend {
    let url = create_database(&server.url("postgres")).await;
    let pool = PoolSettings { acquire_timeout: Duration::from_secs(2), max_connections: 4, ..PoolSettings::default() };
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    PostgresBackend::builder(url).pool(pool).sealer(Arc::new(ring)).connect().await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_writes_survive_a_postgres_restart() {
    let server = Arc::new(PgServer::start());
    let store = Arc::new(PostgresIntegrationStore::on(&backend(&server).await));
    let target = Arc::clone(&server);
    let report = writes_survive_a_server_fault(store, move || target.restart()).await;
    println!("postgres restart: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_writes_survive_a_postgres_kill_9() {
    let server = Arc::new(PgServer::start());
    let store = Arc::new(PostgresIntegrationStore::on(&backend(&server).await));
    let target = Arc::clone(&server);
    let report = writes_survive_a_server_fault(store, move || {
        target.kill9();
        std::thread::sleep(Duration::from_millis(500));
        target.start_again();
    })
    .await;
    println!("postgres kill -9: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_lookups_fail_closed_while_postgres_is_down() {
    let server = Arc::new(PgServer::start());
    let blacklist = Arc::new(<storage_core::TokenBlacklist>::on(&backend(&server).await));
    let (down, up) = (Arc::clone(&server), Arc::clone(&server));
    storage_testkit::faults::revocations_fail_closed_across_a_crash(blacklist, move || down.kill9(), move || up.start_again()).await;
}

/// A stream of units of work, each run through `retry` and made idempotent the documented way
/// (an attempt first checks whether an earlier one committed after all), across a PostgreSQL
/// restart (stopped for a second, then started): every unit completes exactly once — the tally each unit bumps in the same transaction
/// equals the number of records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_units_complete_exactly_once_across_a_restart() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use storage_core::stores::integration::IntegrationConfig;
    use storage_core::{Engine, RetryPolicy, retry};

    let server = Arc::new(PgServer::start());
    let backend = backend(&server).await;
    let engine: &dyn Engine = &backend;
    let table = engine.table::<IntegrationConfig>();
    let tenant = storage_testkit::tenant("retried");
    table.insert(&IntegrationConfig::new(tenant.clone(), "tally", "tally")).await.expect("tally");

    const UNITS: u64 = 400;
    let attempts = AtomicU64::new(0);
    let policy = RetryPolicy { deadline: Duration::from_secs(60), ..RetryPolicy::default() };
    let restarter = Arc::clone(&server);
    let mut restart = None;
    for i in 0..UNITS {
        if i == 100 {
            // Down for a second, so units keep arriving while it is: some attempts must fail.
            let server = Arc::clone(&restarter);
            restart = Some(tokio::task::spawn_blocking(move || {
                server.stop();
                std::thread::sleep(Duration::from_secs(1));
                server.start_again();
            }));
        }
        let id = format!("unit-{i:04}");
        retry(&policy, || async {
            attempts.fetch_add(1, Ordering::Relaxed);
            if table.get(&tenant, &id).await?.is_some() {
                return Ok(()); // an earlier attempt committed; its answer was lost
            }
            let mut tally = table.get(&tenant, "tally").await?.expect("tally");
            tally.messages_sent += 1;
            let mut unit = table.unit(&tenant);
            unit.insert(&table, &IntegrationConfig::new(tenant.clone(), id.clone(), "unit"))?;
            unit.update(&table, &tally)?;
            unit.commit().await.map(|_| ())
        })
        .await
        .unwrap_or_else(|e| panic!("unit {i} did not complete: {e}"));
    }
    restart.expect("restarted").await.expect("restart");
    let attempts = attempts.load(Ordering::Relaxed);
    assert!(attempts > UNITS, "the restart must have failed some attempts ({attempts} attempts for {UNITS} units)");
    let tally = table.get(&tenant, "tally").await.expect("read").expect("tally");
    let records = table.count(storage_core::Scope::Tenant(&tenant), storage_core::Filter::all()).await.expect("count");
    assert_eq!((tally.messages_sent, records), (UNITS, UNITS + 1), "each unit applied once");
    println!("retried units across a restart: {UNITS} units, {attempts} attempts");
}

/// The circuit breaker opens on connection failures only: 1,000 constraint violations leave it
/// closed, a stopped server opens it, and it closes once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_for_a_stopped_server_not_for_constraint_violations() {
    use storage_core::stores::integration::IntegrationConfig;
    use storage_core::{BreakerSettings, BreakerState, CircuitBreaker, DatabaseBackend, Engine, StorageError};

    let server = Arc::new(PgServer::start());
    let backend = backend(&server).await;
    let engine: &dyn Engine = &backend;
    let table = engine.table::<IntegrationConfig>();
    let tenant = storage_testkit::tenant("breaker");
    let doc = IntegrationConfig::new(tenant.clone(), "taken", "slack");
    table.insert(&doc).await.expect("first");
    let breaker = CircuitBreaker::new(DatabaseBackend::Postgresql, BreakerSettings { failures: 3, cooldown: Duration::from_secs(1) });
    for _ in 0..1_000 {
        let outcome = breaker.call(|| table.insert(&doc)).await;
        assert!(matches!(outcome, Err(StorageError::Conflict { .. })), "{outcome:?}");
    }
    assert_eq!(breaker.state(), BreakerState::Closed, "constraint violations are answers");

    let stopper = Arc::clone(&server);
    tokio::task::spawn_blocking(move || stopper.stop()).await.expect("stop");
    for _ in 0..3 {
        let outcome = breaker.call(|| table.get(&tenant, "taken")).await;
        assert!(outcome.as_ref().is_err_and(StorageError::is_retryable), "{outcome:?}");
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let refused = breaker.call(|| table.get(&tenant, "taken")).await;
    assert!(
        matches!(&refused, Err(StorageError::Unavailable { source, .. }) if source.to_string().contains("circuit breaker")),
        "{refused:?}"
    );
    // After the breaker's checks: the probe may wait out the pool's acquire timeout.
    let down = engine.health().await;
    assert!(!down.reachable && down.error.is_some(), "health sees the stopped server: {down:?}");

    let starter = Arc::clone(&server);
    tokio::task::spawn_blocking(move || starter.start_again()).await.expect("start");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if breaker.call(|| table.get(&tenant, "taken")).await.is_ok_and(|found| found.is_some()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the breaker never closed after the server returned");
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    let up = engine.health().await;
    assert!(up.reachable && up.error.is_none(), "{up:?}");
    assert!(up.pool.is_some_and(|pool| pool.max == 4 && pool.size >= 1 && pool.waiting.is_none()), "{up:?}");
}
