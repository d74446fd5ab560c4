//! PostgreSQL behind the fault proxy: connections reset mid-stream and a network down for a
//! second. Nothing is acknowledged that did not commit, every failure is retryable, and the pool
//! serves again within 5 s of the fault ending.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage_core::stores::integration::IntegrationConfig;
use storage_core::{Engine, Filter, Scope};
use storage_postgres::PostgresBackend;
use storage_router::PoolSettings;
use storage_testkit::proxy::{Fault, FaultProxy};
use storage_testkit::server::fresh_postgres_database;

/// A backend on `url` through a proxy, and one straight to the server for checking.
async fn behind_proxy() -> (FaultProxy, PostgresBackend, PostgresBackend) {
    let url = fresh_postgres_database().await;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).expect("url");
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", options.get_port()).parse().expect("address")).await;
    let proxied = url.replacen(&format!(":{}/", options.get_port()), &format!(":{}/", proxy.port()), 1);
    let ring = Arc::new(storage_crypto::KeyRing::single(storage_crypto::EncryptionKey::generate().expect("key")).expect("ring"));
    let pool = PoolSettings { acquire_timeout: Duration::from_secs(2), max_connections: 4, ..PoolSettings::default() };
    let through = PostgresBackend::builder(proxied).pool(pool).sealer(ring.clone()).connect().await.expect("connect through the proxy");
    let direct = PostgresBackend::builder(url).sealer(ring).connect().await.expect("connect");
    (proxy, through, direct)
}

/// Writes `count` records one after another while `fault` is switched on at the 100th for
/// `lasting`; what each write answered, and how long after the fault ended writes succeeded again.
async fn stream_across(
    proxy: &FaultProxy,
    backend: &PostgresBackend,
    fault: Fault,
    lasting: Duration,
) -> (BTreeMap<usize, bool>, Duration) {
    let engine: &dyn Engine = backend;
    let table = engine.table::<IntegrationConfig>();
    let tenant = storage_testkit::tenant("network");
    let mut answers = BTreeMap::new();
    let (mut ended, mut recovered) = (None, None);
    let mut started = None;
    for i in 0..600usize {
        if i == 100 {
            proxy.set(fault);
            started = Some(Instant::now());
        }
        if started.is_some_and(|at| at.elapsed() >= lasting) && ended.is_none() {
            proxy.set(Fault::None);
            ended = Some(Instant::now());
        }
        let doc = IntegrationConfig::new(tenant.clone(), format!("n-{i:04}"), "slack").with_setting("i", i);
        match table.insert(&doc).await {
            Ok(_) => {
                answers.insert(i, true);
                if let (Some(at), None) = (ended, recovered) {
                    recovered = Some(at.elapsed());
                }
            }
            Err(e) => {
                assert!(e.is_retryable(), "a network fault surfaces as a retryable error, got {e:?}");
                answers.insert(i, false);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    (answers, recovered.expect("writes succeeded again after the fault"))
}

async fn check(direct: &PostgresBackend, answers: &BTreeMap<usize, bool>) {
    let engine: &dyn Engine = direct;
    let table = engine.table::<IntegrationConfig>();
    let tenant = storage_testkit::tenant("network");
    for (i, acknowledged) in answers {
        let found = table.get(&tenant, &format!("n-{i:04}")).await.expect("read");
        if *acknowledged {
            let doc = found.unwrap_or_else(|| panic!("write {i} was acknowledged but is not there"));
            assert_eq!(doc.settings.get("i"), Some(&(*i).into()));
        }
    }
    let failed = answers.values().filter(|ok| !**ok).count();
    assert!(failed > 0, "the fault must have failed some writes");
    let stored = table.count(Scope::Tenant(&tenant), Filter::all()).await.expect("count");
    assert!(stored as usize >= answers.len() - failed, "every acknowledged write is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reset_mid_stream_lose_no_acknowledged_write() {
    let (proxy, through, direct) = behind_proxy().await;
    let (answers, recovered) = stream_across(&proxy, &through, Fault::Reset, Duration::from_millis(300)).await;
    check(&direct, &answers).await;
    assert!(recovered < Duration::from_secs(5), "the pool serves again {recovered:?} after the fault");
    println!("reset: {} failed of {}, recovered after {recovered:?}", answers.values().filter(|ok| !**ok).count(), answers.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_down_for_a_second_loses_no_acknowledged_write() {
    let (proxy, through, direct) = behind_proxy().await;
    let (answers, recovered) = stream_across(&proxy, &through, Fault::Down, Duration::from_secs(1)).await;
    check(&direct, &answers).await;
    assert!(recovered < Duration::from_secs(5), "the pool serves again {recovered:?} after the fault");
    println!("down 1 s: {} failed of {}, recovered after {recovered:?}", answers.values().filter(|ok| !**ok).count(), answers.len());
}

/// Every store family under every fault of the proxy, in windows (gate 12). A blackhole stalls
/// calls until it ends: sqlx has no client-side statement deadline (see docs/operations.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_family_survives_every_network_fault() {
    let (proxy, through, direct) = behind_proxy().await;
    storage_testkit::network::assert_every_family_survives("postgresql", &proxy, &through, &direct).await;
}
