//! Riding out a backend that goes away: [`retry`] re-runs a unit of work on retryable errors with
//! backoff, jitter and a deadline, and a [`CircuitBreaker`] stops calling a backend that keeps
//! failing to answer, so callers fail fast instead of piling up on a dead connection pool.
//!
//! Both judge errors by kind. `retry` re-runs [`StorageError::is_retryable`] errors
//! (`Unavailable`, `Indeterminate`, `Timeout`, `Contended`); the breaker counts only connection
//! failures ([`StorageError::is_connection_failure`]: `Unavailable`, `Indeterminate`, `Timeout`). A deadlock, a constraint
//! violation, a version mismatch or bad input is an answer from a healthy backend.

use crate::{DatabaseBackend, Result, StorageError};
use backon::{ExponentialBuilder, Retryable};
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How [`retry`] re-runs a unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The pause before the first retry; each next one doubles, with full jitter.
    pub first_delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
    /// No attempt starts after this long since the first began.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// 50 ms doubling to 2 s, for up to 30 s: long enough for a PostgreSQL restart or a Redis
    /// failover, short enough for a request handler's budget.
    fn default() -> Self {
        Self { first_delay: Duration::from_millis(50), max_delay: Duration::from_secs(2), deadline: Duration::from_secs(30) }
    }
}

/// Runs `work` until it succeeds, fails with an error that is not retryable, or `policy`'s
/// deadline passes (then the last error is returned). An attempt in flight is never cut short: a
/// unit whose outcome is unknown is not abandoned halfway.
///
/// `work` must be safe to run again: a unit of work that commits atomically (a [`crate::Unit`],
/// one store call) and whose effect is idempotent or checked (an insert that reports `Conflict`
/// when an earlier attempt committed after all).
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, work: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let started = Instant::now();
    let backoff =
        ExponentialBuilder::new().with_jitter().with_min_delay(policy.first_delay).with_max_delay(policy.max_delay).without_max_times();
    work.retry(backoff)
        .when(|e: &StorageError| e.is_retryable() && started.elapsed() < policy.deadline)
        .notify(|e: &StorageError, pause: Duration| {
            metrics::counter!("aragora_storage_retries_total", "kind" => e.kind()).increment(1);
            tracing::debug!(target: "aragora_storage", error = %e, pause_ms = pause.as_millis(), "retrying a unit of work");
        })
        .await
}

/// How a [`CircuitBreaker`] judges a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive connection-class failures that open it.
    pub failures: u32,
    /// How long it stays open before letting one call through to probe.
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { failures: 5, cooldown: Duration::from_secs(5) }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once with `Unavailable`, until the cooldown passes.
    Open,
    /// One call is probing the backend; the others fail at once until it answers.
    HalfOpen,
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        since: Instant,
    },
    /// One call is probing; the others are refused until it reports (or its caller drops it).
    Probing,
}

/// Stops calls to a backend that keeps failing to answer, and lets them through again once it
/// answers: closed → open after [`BreakerSettings::failures`] consecutive connection-class
/// failures → after the cooldown, one probe (half-open) → closed when the probe gets any answer,
/// open again when it does not (or when its caller gives up on it). Only `Unavailable` and
/// `Timeout` count as failures: a thousand constraint violations are a thousand answers.
#[derive(Debug)]
pub struct CircuitBreaker {
    backend: DatabaseBackend,
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker in front of `backend`.
    pub fn new(backend: DatabaseBackend, settings: BreakerSettings) -> Self {
        Self { backend, settings, inner: Mutex::new(Inner::Closed { failures: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where it stands now.
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { since } if since.elapsed() < self.settings.cooldown => BreakerState::Open,
            Inner::Open { .. } | Inner::Probing => BreakerState::HalfOpen,
        }
    }

    /// Runs `work` if the breaker lets it through, and learns from its outcome; otherwise fails
    /// at once with [`StorageError::Unavailable`] (retryable: [`retry`] waits and tries again).
    pub async fn call<T, F, Fut>(&self, work: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let probe = self.admit()?;
        let outcome = work().await;
        probe.disarm();
        self.learn(outcome.as_ref().err());
        outcome
    }

    /// Lets a call through, or refuses it; a probe comes back with a guard that reopens the
    /// breaker if its caller drops the call before it reports.
    fn admit(&self) -> Result<Probe<'_>> {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => Ok(Probe(None)),
            Inner::Open { since } if since.elapsed() >= self.settings.cooldown => {
                *inner = Inner::Probing;
                Ok(Probe(Some(self)))
            }
            Inner::Open { .. } | Inner::Probing => {
                metrics::counter!("aragora_storage_breaker_rejections_total", "backend" => self.backend.name()).increment(1);
                Err(StorageError::unavailable(
                    self.backend,
                    format!("circuit breaker open after {} consecutive connection failures", self.settings.failures),
                ))
            }
        }
    }

    fn learn(&self, error: Option<&StorageError>) {
        let mut inner = self.lock();
        let failed = error.is_some_and(StorageError::is_connection_failure);
        *inner = match (&*inner, failed) {
            (_, false) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, true) if failures.saturating_add(1) < self.settings.failures => {
                Inner::Closed { failures: failures.saturating_add(1) }
            }
            (Inner::Open { since }, true) => Inner::Open { since: *since },
            (Inner::Closed { .. } | Inner::Probing, true) => {
                metrics::counter!("aragora_storage_breaker_opened_total", "backend" => self.backend.name()).increment(1);
                tracing::warn!(target: "aragora_storage", backend = self.backend.name(), "circuit breaker opened");
                Inner::Open { since: Instant::now() }
            }
        };
    }
}

/// A probe in flight: dropped before it reports (its caller gave up), it reopens the breaker,
/// so the next call after another cooldown probes instead of the breaker staying half-open.
struct Probe<'a>(Option<&'a CircuitBreaker>);

impl Probe<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.0 {
            let mut inner = breaker.lock();
            if matches!(*inner, Inner::Probing) {
                *inner = Inner::Open { since: Instant::now() };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> StorageError {
        StorageError::unavailable(DatabaseBackend::Postgresql, "connection refused")
    }

    #[tokio::test]
    async fn answers_that_are_errors_never_open_the_breaker() {
        let breaker = CircuitBreaker::new(DatabaseBackend::Postgresql, BreakerSettings { failures: 3, cooldown: Duration::from_secs(60) });
        for i in 0..1_000 {
            let outcome: Result<()> = breaker.call(|| async move { Err(StorageError::conflict("user", i.to_string(), "taken")) }).await;
            assert!(matches!(outcome, Err(StorageError::Conflict { .. })));
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        for _ in 0..3 {
            let _ = breaker.call(|| async { Err::<(), _>(down()) }).await;
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        let ran = std::sync::atomic::AtomicBool::new(false);
        let refused = breaker
            .call(|| async {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert!(matches!(refused, Err(StorageError::Unavailable { .. })) && !ran.into_inner(), "an open breaker does not call");
    }

    #[tokio::test]
    async fn a_probe_that_gets_an_answer_closes_it_one_that_does_not_reopens_it() {
        let breaker = CircuitBreaker::new(DatabaseBackend::Redis, BreakerSettings { failures: 1, cooldown: Duration::from_millis(20) });
        let _ = breaker.call(|| async { Err::<(), _>(down()) }).await;
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let _ = breaker.call(|| async { Err::<(), _>(down()) }).await;
        assert_eq!(breaker.state(), BreakerState::Open, "a failed probe opens it again");
        tokio::time::sleep(Duration::from_millis(30)).await;
        let answer: Result<()> = breaker.call(|| async { Err(StorageError::not_found("user", "u1")) }).await;
        assert!(matches!(answer, Err(StorageError::NotFound { .. })));
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn half_open_lets_one_probe_through_and_a_dropped_probe_reopens_it() {
        let breaker =
            CircuitBreaker::new(DatabaseBackend::Postgresql, BreakerSettings { failures: 1, cooldown: Duration::from_millis(20) });
        let _ = breaker.call(|| async { Err::<(), _>(down()) }).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let slow_probe = breaker.call(|| async move {
            let _ = wait.await;
            Ok(())
        });
        let second = async {
            tokio::task::yield_now().await;
            let refused = breaker.call(|| async { Ok(()) }).await;
            let _ = release.send(());
            refused
        };
        let (probed, refused) = tokio::join!(slow_probe, second);
        assert!(probed.is_ok());
        assert!(matches!(refused, Err(StorageError::Unavailable { .. })), "one probe at a time: {refused:?}");
        assert_eq!(breaker.state(), BreakerState::Closed);

        let _ = breaker.call(|| async { Err::<(), _>(down()) }).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let abandoned = breaker.call(std::future::pending::<Result<()>>);
        assert!(tokio::time::timeout(Duration::from_millis(5), abandoned).await.is_err(), "the probe's caller gives up");
        assert_eq!(breaker.state(), BreakerState::Open, "a dropped probe reopens the breaker");
        tokio::time::sleep(Duration::from_millis(30)).await;
        breaker.call(|| async { Ok(()) }).await.expect("the next probe goes through");
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn contention_is_retried_but_never_opens_the_breaker() {
        let breaker = CircuitBreaker::new(DatabaseBackend::Postgresql, BreakerSettings { failures: 2, cooldown: Duration::from_secs(60) });
        let deadlock = || StorageError::Contended { backend: DatabaseBackend::Postgresql, source: "deadlock detected".into() };
        for _ in 0..10 {
            let _ = breaker.call(|| async { Err::<(), _>(deadlock()) }).await;
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        let policy =
            RetryPolicy { first_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2), deadline: Duration::from_secs(5) };
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let outcome = retry(&policy, || async {
            if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 { Err(deadlock()) } else { Ok(()) }
        })
        .await;
        assert!(outcome.is_ok() && attempts.into_inner() == 3);
    }

    #[tokio::test]
    async fn retry_stops_at_an_answer_and_at_the_deadline() {
        let policy = RetryPolicy {
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            deadline: Duration::from_millis(100),
        };
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let outcome: Result<u32> = retry(&policy, || async {
            let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n < 3 { Err(down()) } else { Ok(n) }
        })
        .await;
        assert_eq!(outcome.expect("succeeds on the fourth attempt"), 3);

        attempts.store(0, std::sync::atomic::Ordering::SeqCst);
        let conflict: Result<()> = retry(&policy, || async {
            attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(StorageError::conflict("user", "u1", "taken"))
        })
        .await;
        assert!(matches!(conflict, Err(StorageError::Conflict { .. })));
        assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 1, "an answer is not retried");

        let started = Instant::now();
        let gave_up: Result<()> = retry(&policy, || async { Err(down()) }).await;
        assert!(matches!(gave_up, Err(StorageError::Unavailable { .. })));
        let took = started.elapsed();
        assert!(took >= policy.deadline && took < policy.deadline + Duration::from_secs(1), "gave up after {took:?}");
    }
}
