//! Read routing against real streaming replicas of a throwaway primary: one replica applying
//! changes as they come, one applying them 2 s late. The cases share the servers and take turns
//! (they stop and start replicas).

use std::sync::Arc;
use std::time::{Duration, Instant};
use storage_core::{IntegrationConfig, IntegrationStore, Store, TenantId};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_postgres::{PostgresBackend, PostgresIntegrationStore};
use storage_router::{ConnectionRouter, Consistency, PoolSettings, ReplicaConfig, RoutingSettings, with_consistency, with_session};
use storage_testkit::server::{PgServer, create_database};
use tokio::sync::{Mutex, OnceCell};

/// How often the tests' routers check their replicas.
const INTERVAL: Duration = Duration::from_millis(200);
/// How long a check may take: generous, so a busy machine does not take a replica out.
const TIMEOUT: Duration = Duration::from_secs(2);

struct Servers {
    _primary: PgServer,
    fast: PgServer,
    slow: PgServer,
    primary_url: String,
    database: String,
    ring: Arc<KeyRing>,
}

static SERVERS: OnceCell<Servers> = OnceCell::const_new();
/// The cases stop and start replicas: one at a time.
static TURN: Mutex<()> = Mutex::const_new(());

async fn servers() -> &'static Servers {
    SERVERS
        .get_or_init(|| async {
            let primary = PgServer::start();
            let primary_url = create_database(&primary.url("postgres")).await;
            let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
            // Migrate before the base backups, so the replicas start with the schema.
            PostgresBackend::builder(primary_url.clone()).sealer(ring.clone()).connect().await.expect("migrate").close().await;
            let database = primary_url.rsplit('/').next().expect("database name").to_owned();
            let fast = primary.start_replica(Duration::ZERO);
            let slow = primary.start_replica(Duration::from_secs(2));
            Servers { _primary: primary, fast, slow, primary_url, database, ring }
        })
        .await
}

/// A backend on the primary with `replicas` (server, weight), checked every [`INTERVAL`].
async fn routed(replicas: &[(&PgServer, u32)], consistency: Consistency) -> PostgresBackend {
    let s = servers().await;
    let replicas = replicas.iter().map(|(server, weight)| ReplicaConfig { dsn: server.url(&s.database).into(), weight: *weight }).collect();
    let routing = RoutingSettings {
        health_interval: INTERVAL,
        health_timeout: TIMEOUT,
        max_lag: Duration::from_secs(10),
        default_consistency: consistency,
    };
    let pool = PoolSettings { acquire_timeout: Duration::from_secs(2), max_connections: 8, ..PoolSettings::default() };
    let backend = PostgresBackend::builder(s.primary_url.clone())
        .pool(pool)
        .replicas(replicas)
        .routing(routing)
        .sealer(s.ring.clone())
        .migrate(false)
        .connect()
        .await
        .expect("connect");
    wait_for(backend.router(), "every replica healthy", Duration::from_secs(30), |r| r.metrics().replicas.iter().all(|r| r.healthy)).await;
    backend
}

/// Waits until `ready` holds; how long it took.
async fn wait_for(router: &ConnectionRouter, what: &str, limit: Duration, ready: impl Fn(&ConnectionRouter) -> bool) -> Duration {
    let start = Instant::now();
    while !ready(router) {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?} ({:?})", router.metrics());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Runs a server command off the runtime's threads (it blocks until the server has stopped or
/// started), so the router's checks go on meanwhile.
async fn blocking(command: impl FnOnce() + Send + 'static) {
    tokio::task::spawn_blocking(command).await.expect("server command");
}

fn tenant() -> TenantId {
    TenantId::new("replicas").expect("tenant")
}

fn config(key: &str, version: u64) -> IntegrationConfig {
    IntegrationConfig::new(tenant(), key, "slack").with_setting("seq", version)
}

/// Waits until every replica has replayed everything written so far: a round that began after
/// the last write finds each caught up with the primary.
async fn settle(router: &ConnectionRouter) {
    let start = Instant::now();
    loop {
        router.check_now().await;
        if router.metrics().replicas.iter().all(|r| r.healthy && r.lag.is_zero()) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "replicas did not catch up: {:?}", router.metrics());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn reads(router: &ConnectionRouter) -> Vec<u64> {
    router.metrics().replicas.iter().map(|r| r.reads).collect()
}

/// Eventual reads spread over healthy replicas by weight (1:3), none on the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_spread_by_weight() {
    let _turn = TURN.lock().await;
    let s = servers().await;
    let backend = routed(&[(&s.fast, 1), (&s.slow, 3)], Consistency::Eventual).await;
    let store = PostgresIntegrationStore::on(&backend);
    store.set(&config("weights", 1)).await.expect("set");
    settle(backend.router()).await;
    let before = backend.router().metrics();
    for _ in 0..4_000 {
        store.get(&tenant(), "weights").await.expect("get");
    }
    let after = backend.router().metrics();
    let spread: Vec<u64> = after.replicas.iter().zip(&before.replicas).map(|(a, b)| a.reads - b.reads).collect();
    println!(
        "4,000 eventual reads at weights 1:3 → replica-0 {}, replica-1 {}, primary {}",
        spread[0],
        spread[1],
        after.primary_reads - before.primary_reads
    );
    assert_eq!(after.primary_reads, before.primary_reads, "no read fell back to the primary");
    assert_eq!(spread.iter().sum::<u64>(), 4_000);
    assert!((900..=1_100).contains(&spread[0]) && (2_900..=3_100).contains(&spread[1]), "{spread:?}");
    backend.close().await;
}

/// A stopped replica gets no reads within about a check interval, reads keep succeeding on the
/// primary, and it gets reads again soon after it restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replica_is_taken_out_and_put_back() {
    let _turn = TURN.lock().await;
    let s = servers().await;
    let backend = routed(&[(&s.fast, 1)], Consistency::Eventual).await;
    let (router, store) = (backend.router().clone(), PostgresIntegrationStore::on(&backend));
    store.set(&config("outage", 1)).await.expect("set");
    wait_for(&router, "the write replayed", Duration::from_secs(10), |r| r.metrics().replicas[0].lag.is_zero()).await;
    store.get(&tenant(), "outage").await.expect("get");
    assert!(reads(&router)[0] > 0, "the replica serves reads");

    let stopped = Instant::now();
    blocking(|| s.fast.stop()).await;
    // Reads while it is down never fail: a read that meets the dead replica runs on the primary.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut n = 0_u64;
            while stopped.elapsed() < Duration::from_secs(1) {
                store.get(&tenant(), "outage").await.expect("a read while the replica is down");
                n += 1;
            }
            n
        })
    };
    wait_for(&router, "replica taken out", Duration::from_secs(5), |r| !r.metrics().replicas[0].healthy).await;
    let out = stopped.elapsed();
    let served = reads(&router)[0];
    let during = reader.await.expect("reader");
    assert_eq!(reads(&router)[0], served, "no read reached the stopped replica once it was out");
    for _ in 0..100 {
        store.get(&tenant(), "outage").await.expect("every replica down: reads on the primary");
    }
    let restarted = Instant::now();
    blocking(|| s.fast.start_again()).await;
    let up = restarted.elapsed();
    wait_for(&router, "replica put back", Duration::from_secs(30), |r| r.metrics().replicas[0].healthy).await;
    let back = restarted.elapsed();
    store.get(&tenant(), "outage").await.expect("get");
    assert!(reads(&router)[0] > served, "it serves reads again");

    // Stopped while nothing reads it: the health check alone takes it out.
    let idle = Instant::now();
    blocking(|| s.fast.stop()).await;
    wait_for(&router, "replica taken out by its check", Duration::from_secs(5), |r| !r.metrics().replicas[0].healthy).await;
    let quiet = idle.elapsed();
    blocking(|| s.fast.start_again()).await;
    wait_for(&router, "replica put back", Duration::from_secs(30), |r| r.metrics().replicas[0].healthy).await;
    println!(
        "replica stopped under reads: out of rotation after {out:?} ({during} reads meanwhile, none failed); \
         stopped while idle: out after {quiet:?}; restarted: accepting connections after {up:?}, back in rotation after {back:?}"
    );
    assert!(quiet <= INTERVAL + TIMEOUT + Duration::from_secs(1), "taken out within a round and a timeout of stopping: {quiet:?}");
    assert!(back <= up + INTERVAL + TIMEOUT, "put back within a round of accepting connections: {back:?}");
    backend.close().await;
}

/// With a replica 2 s behind, 1,000 write-then-read sequences of one session each read their own
/// write, while other sessions' reads on the same router are still served by that replica; a
/// read after a health round has seen the write waits for the replica to replay it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_reads_its_writes_while_others_read_the_lagging_replica() {
    let _turn = TURN.lock().await;
    let s = servers().await;
    let backend = routed(&[(&s.slow, 1)], Consistency::ReadYourWrites).await;
    let (router, store) = (backend.router().clone(), PostgresIntegrationStore::on(&backend));
    with_session(store.set(&config("ryw", 0))).await.expect("set");
    settle(&router).await;
    let (primary_before, replica_before) = (router.metrics().primary_reads, reads(&router)[0]);
    let (stale, others) = with_session(async {
        let (mut stale, mut others) = (0, 0);
        for n in 1..=1_000_u64 {
            store.set(&config("ryw", n)).await.expect("set");
            let read = store.get(&tenant(), "ryw").await.expect("get").expect("present");
            if read.settings.get("seq") != Some(&serde_json::json!(n)) {
                stale += 1;
            }
            if n % 10 == 0 {
                // Another session (another request): it wrote nothing, the lagging replica serves it.
                let before = reads(&router)[0];
                with_session(store.get(&tenant(), "ryw")).await.expect("get");
                others += reads(&router)[0] - before;
            }
        }
        (stale, others)
    })
    .await;
    let writer_primary = router.metrics().primary_reads - primary_before;
    println!(
        "1,000 write-then-read sequences with a 2 s replica: {stale} stale reads, the writer's reads on the primary: {writer_primary}; \
         100 other sessions' reads, on the replica: {others}"
    );
    assert_eq!(stale, 0, "every read saw its own write");
    assert_eq!(others, 100, "the other sessions' reads stay on the replica");
    assert_eq!(reads(&router)[0] - replica_before, 100, "and only theirs");

    // A round after the write knows the primary's position: the read waits for the replica to
    // replay past it (the primary serves it meanwhile), then the replica does.
    with_session(async {
        store.set(&config("ryw", 5_000)).await.expect("set");
        router.check_now().await;
        let (primary, replica) = (router.metrics().primary_reads, reads(&router)[0]);
        let read = store.get(&tenant(), "ryw").await.expect("get").expect("present");
        assert_eq!(read.settings.get("seq"), Some(&serde_json::json!(5_000)));
        assert_eq!((router.metrics().primary_reads, reads(&router)[0]), (primary + 1, replica), "not replayed yet: the primary");
        settle(&router).await;
        let read = store.get(&tenant(), "ryw").await.expect("get").expect("present");
        assert_eq!(read.settings.get("seq"), Some(&serde_json::json!(5_000)));
        assert_eq!(reads(&router)[0], replica + 1, "caught up: the replica serves the session again");
    })
    .await;
    // Strong reads always go to the primary.
    let primary = router.metrics().primary_reads;
    with_consistency(Consistency::Strong, store.get(&tenant(), "ryw")).await.expect("strong read");
    assert_eq!(router.metrics().primary_reads, primary + 1);
    backend.close().await;
}
