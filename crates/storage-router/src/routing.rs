//! Read routing: which pool serves a read, given the replicas' health, replay position and lag.
//!
//! A background task checks every replica each [`RoutingSettings::health_interval`] (plus the
//! round's own time): whether it answers within the timeout and is in recovery, how far it has
//! replayed (`pg_last_wal_replay_lsn`), and how far behind the primary it is — zero when it has
//! replayed the primary's position (`pg_current_wal_insert_lsn`, read first in the same round),
//! else the smaller of the age of its last replayed transaction and the time since a round found
//! it caught up. A replica that fails a check gets no reads until a check succeeds again.
//!
//! Read-your-writes without a round trip per write: every write through the router (success or
//! failure) stamps the moment it ended, for the router and for the task's session
//! ([`with_session`]). A read that must see the session's writes may go to a replica only if a
//! health round that began after the session's last write found the primary at some position
//! and the replica has replayed at least that far — so it holds every write the session had
//! finished. Otherwise the read goes to the primary. A failed write counts too: a compare-and-set
//! that lost to another writer re-reads from the primary, not from a replica that may not have
//! seen the winner.

use crate::{RouterConfig, RoutingSettings, connect_pool};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use storage_core::{Result, StorageError};
use storage_schema::sqlx_error;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// What a read may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Everything committed anywhere: the read runs on the primary.
    Strong,
    /// Everything the task's session has written ([`with_session`]; outside one, everything the
    /// router has written) and everything committed before that, possibly more: on a healthy
    /// replica that has replayed past that write and lags at most `max_lag`, else on the
    /// primary.
    #[default]
    ReadYourWrites,
    /// A state at most `max_lag` old: on any healthy replica within the lag, else on the primary.
    /// A read may not see this router's own latest writes.
    Eventual,
}

tokio::task_local! {
    static CONSISTENCY: Consistency;
    static SESSION: Arc<AtomicU64>;
}

/// Runs `work` with its reads at `consistency` (in this task; tasks it spawns take the router's
/// default again).
pub async fn with_consistency<F: Future>(consistency: Consistency, work: F) -> F::Output {
    CONSISTENCY.scope(consistency, work).await
}

/// Runs `work` as one session (a request, a job): its [`Consistency::ReadYourWrites`] reads wait
/// for its own writes only, so other sessions' writes do not send them to the primary. Outside
/// any session a read waits for every write through the router.
pub async fn with_session<F: Future>(work: F) -> F::Output {
    SESSION.scope(Arc::new(AtomicU64::new(0)), work).await
}

/// A replica's last known state, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `replica-<i>`.
    pub name: String,
    /// Its share of reads.
    pub weight: u32,
    /// Whether its last check succeeded.
    pub healthy: bool,
    /// How far behind the primary it was at its last check.
    pub lag: Duration,
    /// Reads it has served.
    pub reads: u64,
}

/// Where reads went, since the router started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouterMetrics {
    /// Reads on the primary.
    pub primary_reads: u64,
    /// Reads that would have gone to a replica but found none that qualified.
    pub fallbacks: u64,
    /// Reads that failed on a replica and ran again on the primary.
    pub failovers: u64,
    /// Each replica, in configuration order.
    pub replicas: Vec<ReplicaStatus>,
}

#[derive(Debug)]
struct Replica {
    name: String,
    pool: PgPool,
    weight: u32,
    healthy: AtomicBool,
    /// Replayed position at the last successful check.
    replay_lsn: AtomicU64,
    /// When a round last found it caught up with the primary (the round's start; 0: never).
    caught_up_at: AtomicU64,
    /// When its last successful check began (0: never).
    checked_at: AtomicU64,
    lag_ms: AtomicU64,
    reads: AtomicU64,
}

/// The primary's position, read by a health round that began at `began` (nanoseconds since the
/// router started).
#[derive(Debug, Clone, Copy)]
struct PrimaryPosition {
    began: u64,
    lsn: u64,
}

#[derive(Debug)]
struct Inner {
    primary: PgPool,
    replicas: Vec<Replica>,
    settings: RoutingSettings,
    started: Instant,
    /// When the last write through the router ended (nanoseconds since `started`; 0: none).
    last_write: AtomicU64,
    position: Mutex<Option<PrimaryPosition>>,
    next: AtomicU64,
    primary_reads: AtomicU64,
    fallbacks: AtomicU64,
    failovers: AtomicU64,
    checker: Mutex<Option<JoinHandle<()>>>,
}

/// What a read passed to [`ConnectionRouter::read`] returns.
pub type ReadFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// A primary connection that records its write when dropped.
#[derive(Debug)]
pub struct WriteConnection {
    conn: PoolConnection<Postgres>,
    _writing: Writing,
}

/// Records a write through the router when dropped (see [`ConnectionRouter::writing`]).
#[derive(Debug)]
pub struct Writing {
    router: ConnectionRouter,
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.router.wrote();
    }
}

impl Deref for WriteConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for WriteConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// The pools of one PostgreSQL deployment: the primary for writes and for reads that must see
/// them, replicas for the others. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectionRouter {
    inner: Arc<Inner>,
}

impl ConnectionRouter {
    /// Opens the pools `config` describes and, with replicas, starts checking them (in the
    /// current tokio runtime). Connections are made lazily: only a bad URL fails here, and a
    /// replica that is down at start gets reads once it answers.
    pub fn new(config: &RouterConfig) -> Result<Self> {
        if !config.replicas.is_empty() && tokio::runtime::Handle::try_current().is_err() {
            return Err(StorageError::config("a router with replicas must be opened inside a tokio runtime (it checks them in a task)"));
        }
        let primary = connect_pool("ARAGORA_POSTGRES_PRIMARY_DSN", config.primary_dsn.expose(), &config.pool)?;
        let replicas = config
            .replicas
            .iter()
            .enumerate()
            .map(|(i, replica)| {
                let name = format!("replica-{i}");
                let pool = connect_pool(&format!("ARAGORA_POSTGRES_REPLICA_DSNS[{i}]"), replica.dsn.expose(), &config.pool)?;
                Ok(Replica {
                    name,
                    pool,
                    weight: replica.weight,
                    healthy: AtomicBool::new(false),
                    replay_lsn: AtomicU64::new(0),
                    caught_up_at: AtomicU64::new(0),
                    checked_at: AtomicU64::new(0),
                    lag_ms: AtomicU64::new(u64::MAX),
                    reads: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::build(primary, replicas, config.routing))
    }

    /// Routes over an existing primary pool, without replicas.
    pub fn from_pool(primary: PgPool) -> Self {
        Self::build(primary, Vec::new(), RoutingSettings::default())
    }

    fn build(primary: PgPool, replicas: Vec<Replica>, settings: RoutingSettings) -> Self {
        let inner = Arc::new(Inner {
            primary,
            replicas,
            settings,
            started: Instant::now(),
            last_write: AtomicU64::new(0),
            position: Mutex::new(None),
            next: AtomicU64::new(0),
            primary_reads: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            checker: Mutex::new(None),
        });
        if !inner.replicas.is_empty() {
            let checker = tokio::spawn(check_forever(Arc::downgrade(&inner)));
            *inner.checker.lock().unwrap_or_else(PoisonError::into_inner) = Some(checker);
        }
        Self { inner }
    }

    /// The pool for writes and for reads that must see them. A caller that writes through it
    /// directly calls [`Self::wrote`] after each write, so reads see it.
    pub fn write_pool(&self) -> &PgPool {
        &self.inner.primary
    }

    /// Records that a write through [`Self::write_pool`] has ended (committed or not), for the
    /// router and for the task's session (see [`with_session`]).
    pub fn wrote(&self) {
        let now = self.inner.elapsed().max(1);
        self.inner.last_write.fetch_max(now, Ordering::SeqCst);
        // Outside a session there is nothing more to stamp.
        let _ = SESSION.try_with(|session| session.fetch_max(now, Ordering::SeqCst));
    }

    /// A primary connection for writes; when it is dropped, after the write, the write is
    /// recorded (see [`Self::wrote`]).
    pub async fn write_connection(&self) -> Result<WriteConnection> {
        let conn = self.inner.primary.acquire().await.map_err(sqlx_error)?;
        Ok(WriteConnection { conn, _writing: self.writing() })
    }

    /// A guard for writes through [`Self::write_pool`]: when it is dropped, after them, they are
    /// recorded (see [`Self::wrote`]).
    pub fn writing(&self) -> Writing {
        Writing { router: self.clone() }
    }

    /// Runs `read` where the read's [`Consistency`] allows (the task's, else the router's
    /// default). A read that cannot run on the replica runs again on the primary — so `read` may
    /// run twice and must not have effects of its own: when the replica's connection failed (the
    /// replica is then taken out until its next check succeeds), when no connection came in
    /// time, or when the replica cancelled it (a conflict with recovery, too many connections).
    /// A statement timeout is returned as it is.
    pub async fn read<T, F>(&self, mut read: F) -> Result<T>
    where
        F: for<'c> FnMut(&'c mut PgConnection) -> ReadFuture<'c, T> + Send,
    {
        let consistency = CONSISTENCY.try_with(|c| *c).unwrap_or(self.inner.settings.default_consistency);
        if let Some(replica) = self.inner.choose(consistency) {
            let span = tracing::trace_span!("replica_read", replica = %replica.name);
            let attempt = async {
                match replica.pool.acquire().await {
                    Ok(mut conn) => read(&mut conn).await,
                    Err(e) => Err(sqlx_error(e)),
                }
            }
            .instrument(span)
            .await;
            match attempt {
                Err(e) if retry_on_primary(&e) => {
                    if connection_lost(&e) {
                        self.inner.replica_failed(replica);
                    } else {
                        self.inner.failovers.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(replica = %replica.name, error = %e, "a read could not run on the replica; it runs on the primary");
                    }
                }
                other => {
                    replica.reads.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("aragora_storage_reads_total", "target" => replica.name.clone()).increment(1);
                    return other;
                }
            }
        }
        self.inner.primary_reads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("aragora_storage_reads_total", "target" => "primary").increment(1);
        let mut conn = self.inner.primary.acquire().await.map_err(sqlx_error)?;
        read(&mut conn).await
    }

    /// A connection for a read the application runs itself, where the read's [`Consistency`]
    /// allows; a replica that cannot give one is taken out and the primary gives it instead.
    pub async fn read_connection(&self) -> Result<PoolConnection<Postgres>> {
        let consistency = CONSISTENCY.try_with(|c| *c).unwrap_or(self.inner.settings.default_consistency);
        if let Some(replica) = self.inner.choose(consistency) {
            match replica.pool.acquire().await.map_err(sqlx_error) {
                Ok(conn) => {
                    replica.reads.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("aragora_storage_reads_total", "target" => replica.name.clone()).increment(1);
                    return Ok(conn);
                }
                Err(e) if connection_lost(&e) => self.inner.replica_failed(replica),
                Err(_) => {
                    self.inner.failovers.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.inner.primary_reads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("aragora_storage_reads_total", "target" => "primary").increment(1);
        self.inner.primary.acquire().await.map_err(sqlx_error)
    }

    /// Where reads went, and each replica's last known state.
    pub fn metrics(&self) -> RouterMetrics {
        RouterMetrics {
            primary_reads: self.inner.primary_reads.load(Ordering::Relaxed),
            fallbacks: self.inner.fallbacks.load(Ordering::Relaxed),
            failovers: self.inner.failovers.load(Ordering::Relaxed),
            replicas: self
                .inner
                .replicas
                .iter()
                .map(|r| ReplicaStatus {
                    name: r.name.clone(),
                    weight: r.weight,
                    healthy: r.healthy.load(Ordering::SeqCst),
                    lag: Duration::from_millis(r.lag_ms.load(Ordering::SeqCst)),
                    reads: r.reads.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }

    /// Checks every replica now, instead of waiting for the next round.
    pub async fn check_now(&self) {
        check_round(&self.inner).await;
    }

    /// Checks that the primary answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.inner.primary).await.map_err(sqlx_error)?;
        Ok(())
    }

    /// Stops the checks and closes every pool.
    pub async fn close(&self) {
        if let Some(checker) = self.inner.checker.lock().unwrap_or_else(PoisonError::into_inner).take() {
            checker.abort();
        }
        self.inner.primary.close().await;
        for replica in &self.inner.replicas {
            replica.pool.close().await;
        }
    }
}

impl Inner {
    /// Takes a replica out after a read failed on it, until its next check succeeds.
    fn replica_failed(&self, replica: &Replica) {
        replica.healthy.store(false, Ordering::SeqCst);
        self.failovers.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("aragora_storage_replica_failovers_total", "replica" => replica.name.clone()).increment(1);
        tracing::warn!(replica = %replica.name, "a read failed on the replica; it gets no reads until its next check succeeds");
    }

    fn elapsed(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The replica a read at `consistency` goes to, by weight among those that qualify; `None`
    /// for the primary.
    fn choose(&self, consistency: Consistency) -> Option<&Replica> {
        if self.replicas.is_empty() || consistency == Consistency::Strong {
            return None;
        }
        let max_lag = u64::try_from(self.settings.max_lag.as_millis()).unwrap_or(u64::MAX);
        let needed = match consistency {
            Consistency::ReadYourWrites => {
                let last =
                    SESSION.try_with(|session| session.load(Ordering::SeqCst)).unwrap_or_else(|_| self.last_write.load(Ordering::SeqCst));
                match last {
                    0 => Some(0),
                    // A round that began after the write ended (strictly: equal instants are
                    // unordered) read a primary position at or past it.
                    last => self.position.lock().unwrap_or_else(PoisonError::into_inner).filter(|p| p.began > last).map(|p| p.lsn),
                }
            }
            _ => Some(0),
        };
        // A state older than two rounds and a timeout is not trusted: a stopped checker must not
        // leave a replica in rotation.
        let now = self.elapsed();
        let fresh = u64::try_from(self.settings.health_interval.saturating_mul(2).saturating_add(self.settings.health_timeout).as_nanos())
            .unwrap_or(u64::MAX);
        let qualifying: Vec<&Replica> = self
            .replicas
            .iter()
            .filter(|r| {
                r.weight > 0
                    && r.healthy.load(Ordering::SeqCst)
                    && now.saturating_sub(r.checked_at.load(Ordering::SeqCst)) <= fresh
                    && r.lag_ms.load(Ordering::SeqCst) <= max_lag
                    && needed.is_some_and(|lsn| r.replay_lsn.load(Ordering::SeqCst) >= lsn)
            })
            .collect();
        let total: u64 = qualifying.iter().map(|r| u64::from(r.weight)).sum();
        let Some(mut pick) = self.next.fetch_add(1, Ordering::Relaxed).checked_rem(total) else {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("aragora_storage_replica_fallbacks_total").increment(1);
            tracing::trace!(?consistency, "no replica qualifies: the read goes to the primary");
            return None;
        };
        for replica in qualifying {
            let weight = u64::from(replica.weight);
            if pick < weight {
                return Some(replica);
            }
            pick = pick.saturating_sub(weight);
        }
        None
    }
}

/// `X/Y` (a `pg_lsn` as text) as a number.
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    Some(high.checked_shl(32)? | low)
}

async fn check_forever(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let interval = strong.settings.health_interval;
        check_round(&strong).await;
        drop(strong);
        tokio::time::sleep(interval).await;
    }
}

/// One health round: the primary's position, then every replica.
async fn check_round(inner: &Inner) {
    let timeout = inner.settings.health_timeout;
    let began = inner.elapsed();
    let primary = tokio::time::timeout(
        timeout,
        sqlx::query_scalar::<_, String>("SELECT pg_current_wal_insert_lsn()::text").fetch_one(&inner.primary),
    )
    .await;
    let primary_lsn = match primary {
        Ok(Ok(text)) => parse_lsn(&text),
        _ => {
            tracing::warn!("the primary's WAL position could not be read: read-your-writes reads go to the primary until it can");
            None
        }
    };
    if let Some(lsn) = primary_lsn {
        *inner.position.lock().unwrap_or_else(PoisonError::into_inner) = Some(PrimaryPosition { began, lsn });
    }
    // Concurrently: one hung replica must not delay the others' checks.
    futures::future::join_all(inner.replicas.iter().map(|replica| check_replica(inner, replica, primary_lsn, began))).await;
}

/// Checks one replica against the primary's position `primary_lsn`, read by the round that began
/// at `began`.
async fn check_replica(inner: &Inner, replica: &Replica, primary_lsn: Option<u64>, began: u64) {
    let timeout = inner.settings.health_timeout;
    let check = sqlx::query_as::<_, (bool, Option<String>, Option<f64>)>(
        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, \
         extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8",
    )
    .fetch_one(&replica.pool);
    let checked = tokio::time::timeout(timeout, check).instrument(tracing::debug_span!("replica_check", replica = %replica.name));
    let state = match checked.await {
        Ok(Ok((true, Some(replayed), age))) => parse_lsn(&replayed).map(|replayed| (replayed, age)),
        _ => None,
    };
    let was_healthy = replica.healthy.load(Ordering::SeqCst);
    match state {
        Some((replayed, age)) => {
            let caught_up = primary_lsn.is_some_and(|lsn| replayed >= lsn);
            let lag_ms = if caught_up {
                replica.caught_up_at.store(began.max(1), Ordering::SeqCst);
                0
            } else {
                // Behind the primary (or the primary unknown). Two bounds on how stale it
                // is, the tighter wins: the age of its last replayed transaction, and the time
                // since a round found it caught up (quiet primaries write WAL without
                // transactions, so the first alone would call a replica hours behind).
                let to_ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                let by_age = age.and_then(|a| Duration::try_from_secs_f64(a.max(0.0)).ok()).map_or(u64::MAX, to_ms);
                let since = match replica.caught_up_at.load(Ordering::SeqCst) {
                    0 => u64::MAX,
                    at => to_ms(Duration::from_nanos(inner.elapsed().saturating_sub(at))),
                };
                by_age.min(since)
            };
            // As found, not the highest seen: a replica rebuilt from an older backup must
            // not pass for one that has replayed further.
            replica.replay_lsn.store(replayed, Ordering::SeqCst);
            replica.checked_at.store(began.max(1), Ordering::SeqCst);
            replica.lag_ms.store(lag_ms, Ordering::SeqCst);
            replica.healthy.store(true, Ordering::SeqCst);
            metrics::gauge!("aragora_storage_replica_lag_seconds", "replica" => replica.name.clone())
                .set(Duration::from_millis(lag_ms.min(86_400_000)).as_secs_f64());
            if !was_healthy {
                tracing::info!(replica = %replica.name, lag_ms, "replica is healthy: it gets reads");
            }
        }
        None => {
            replica.healthy.store(false, Ordering::SeqCst);
            if was_healthy {
                tracing::warn!(replica = %replica.name, "replica failed its check: it gets no reads");
            }
        }
    }
}

/// The driver error inside `error`, if it is one.
fn driver_error(error: &StorageError) -> Option<&sqlx::Error> {
    match error {
        StorageError::Unavailable { source, .. }
        | StorageError::Indeterminate { source, .. }
        | StorageError::Timeout { source, .. }
        | StorageError::Contended { source, .. }
        | StorageError::Backend { source, .. } => source.downcast_ref::<sqlx::Error>(),
        _ => None,
    }
}

/// Whether the connection to the server was lost or refused (by the driver's error kind, or a
/// server code of class 08, or 57P01–57P03: the server is shutting down or starting).
fn connection_lost(error: &StorageError) -> bool {
    match driver_error(error) {
        Some(
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_),
        ) => true,
        Some(sqlx::Error::Database(db)) => {
            db.code().is_some_and(|code| code.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&code.as_ref()))
        }
        _ => false,
    }
}

/// Whether a read that failed on a replica may run again on the primary: the connection was lost,
/// none came in time, or the replica cancelled the read (a conflict with recovery, 40001; too many
/// connections, 53300). Not a statement timeout: that read would be as slow again.
fn retry_on_primary(error: &StorageError) -> bool {
    connection_lost(error)
        || match driver_error(error) {
            Some(sqlx::Error::PoolTimedOut) => true,
            Some(sqlx::Error::Database(db)) => db.code().is_some_and(|code| ["40001", "53300"].contains(&code.as_ref())),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_parse_as_numbers_in_wal_order() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        assert_eq!(parse_lsn("nonsense"), None);
        assert_eq!(parse_lsn("G/0"), None);
    }
}
