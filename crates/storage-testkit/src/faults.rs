//! Fault scenarios shared by the server backends: the server is stopped, restarted or killed in
//! the middle of a stream of operations.

use crate::tenant;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use storage_core::{IntegrationConfig, IntegrationStore, StorageError};

/// What one fault run saw.
#[derive(Debug, Default)]
pub struct FaultReport {
    /// Writes the store acknowledged.
    pub acknowledged: usize,
    /// Writes that failed with a retryable error.
    pub retryable_failures: usize,
    /// Acknowledged writes after the fault was over.
    pub after_recovery: usize,
}

/// Streams upserts while `fault` runs on a blocking thread, then checks the outcome:
/// failures are only `Unavailable`, `Indeterminate` or `Timeout`, the stream recovers without a new process, and
/// every acknowledged write reads back with its acknowledged value.
pub async fn writes_survive_a_server_fault(store: Arc<dyn IntegrationStore>, fault: impl FnOnce() + Send + 'static) -> FaultReport {
    let t = tenant("faults");
    let mut report = FaultReport::default();
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    let write = |i: u64| {
        let store = Arc::clone(&store);
        let t = t.clone();
        async move {
            let mut config =
                IntegrationConfig::new(t, format!("key-{:03}", i % 50), "slack").with_credential("token", format!("token-{i}"));
            config.messages_sent = i;
            store.set(&config).await.map(|_| (config.key, i))
        }
    };
    let mut i = 0u64;
    for _ in 0..50 {
        let (key, value) = write(i).await.expect("writes before the fault succeed");
        acknowledged.insert(key, value);
        report.acknowledged += 1;
        i += 1;
    }
    let fault_done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&fault_done);
    let fault = tokio::task::spawn_blocking(move || {
        fault();
        flag.store(true, Ordering::SeqCst);
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while report.after_recovery < 50 {
        assert!(Instant::now() < deadline, "the store did not recover within 120 s: {report:?}");
        let done_before = fault_done.load(Ordering::SeqCst);
        match write(i).await {
            Ok((key, value)) => {
                acknowledged.insert(key, value);
                report.acknowledged += 1;
                if done_before {
                    report.after_recovery += 1;
                }
            }
            Err(e @ (StorageError::Unavailable { .. } | StorageError::Indeterminate { .. } | StorageError::Timeout { .. })) => {
                assert!(e.is_retryable());
                report.retryable_failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("a fault must surface as Unavailable, Indeterminate or Timeout, got {e:?}"),
        }
        i += 1;
    }
    fault.await.expect("fault thread");
    for (key, value) in &acknowledged {
        let read = store.get(&t, key).await.expect("read after recovery").unwrap_or_else(|| panic!("acknowledged write {key} was lost"));
        assert!(read.messages_sent >= *value, "{key}: acknowledged {value}, read {}", read.messages_sent);
        assert_eq!(read.credentials["token"].expose(), &format!("token-{}", read.messages_sent), "{key}: the record is whole");
    }
    report
}

/// Revokes a token, takes the server down with `down` (on a blocking thread), checks that every
/// lookup then fails — a revocation check never answers "not revoked" because it cannot ask —
/// brings it back with `up`, and checks the revocation is still there once the client reconnects.
pub async fn revocations_fail_closed_across_a_crash(
    blacklist: Arc<dyn storage_core::TokenBlacklistStore>,
    down: impl FnOnce() + Send + 'static,
    up: impl FnOnce() + Send + 'static,
) {
    let until = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    blacklist.revoke("jwt-revoked-before-the-crash", until).await.expect("revoke");
    tokio::task::spawn_blocking(down).await.expect("down");
    for token in ["jwt-revoked-before-the-crash", "jwt-never-revoked"] {
        match blacklist.is_revoked(token).await {
            Err(e) => assert!(e.is_retryable(), "a lookup without a server is a retryable error, got {e}"),
            Ok(answer) => panic!("a lookup without a server answered {answer}"),
        }
    }
    tokio::task::spawn_blocking(up).await.expect("up");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match blacklist.is_revoked("jwt-revoked-before-the-crash").await {
            Ok(revoked) => {
                assert!(revoked, "an acknowledged revocation survives the crash");
                return;
            }
            Err(e) if Instant::now() < deadline => {
                assert!(e.is_retryable(), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no reconnection within 15 s: {e}"),
        }
    }
}

/// What one failover run saw.
#[derive(Debug, Default)]
pub struct FailoverReport {
    /// Writes the store acknowledged.
    pub acknowledged: usize,
    /// Writes that failed with a retryable error (and were not acknowledged).
    pub retryable_failures: usize,
    /// Acknowledged writes that were not there afterwards (Redis replicates asynchronously).
    pub lost: usize,
    /// Of those, the ones acknowledged after the promotion was reported.
    pub lost_after_promotion: usize,
    /// From the fault to the promotion of a new master, as the servers reported it.
    pub promotion: Duration,
    /// From the promotion to the first write acknowledged after it.
    pub resumed_after_promotion: Duration,
}

/// Streams writes of distinct records while `fault` runs on a blocking thread; `fault` returns
/// how long after it began the servers reported a new master. Checks that every failure is
/// retryable and that writes resume; measures when, and counts the acknowledged writes that the
/// failover lost, and those of them acknowledged after the promotion was reported.
pub async fn writes_across_a_failover(
    store: Arc<dyn IntegrationStore>,
    fault: impl FnOnce() -> Duration + Send + 'static,
) -> FailoverReport {
    let t = tenant("failover");
    let mut report = FailoverReport::default();
    let write = |i: u64| {
        let store = Arc::clone(&store);
        let t = t.clone();
        async move {
            let mut config = IntegrationConfig::new(t, format!("key-{i:06}"), "slack").with_credential("token", format!("token-{i}"));
            config.messages_sent = i;
            store.set(&config).await.map(|_| config.key)
        }
    };
    let mut acknowledged: Vec<(String, u64, Instant)> = Vec::new();
    let mut i = 0u64;
    for _ in 0..50 {
        acknowledged.push((write(i).await.expect("writes before the fault succeed"), i, Instant::now()));
        i += 1;
    }
    let started = Instant::now();
    let fault = tokio::task::spawn_blocking(fault);
    let deadline = started + Duration::from_secs(120);
    let mut after_fault = 0;
    while !fault.is_finished() || after_fault < 50 {
        assert!(Instant::now() < deadline, "no recovery within 120 s: {report:?}");
        let done_before = fault.is_finished();
        match write(i).await {
            Ok(key) => {
                acknowledged.push((key, i, Instant::now()));
                after_fault += usize::from(done_before);
            }
            Err(e @ (StorageError::Unavailable { .. } | StorageError::Indeterminate { .. } | StorageError::Timeout { .. })) => {
                assert!(e.is_retryable());
                report.retryable_failures += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("a failover must surface as Unavailable, Indeterminate or Timeout, got {e:?}"),
        }
        i += 1;
    }
    report.promotion = fault.await.expect("fault thread");
    let promoted_at = started + report.promotion;
    let first_after = acknowledged.iter().map(|(_, _, at)| *at).find(|at| *at > promoted_at).expect("writes resumed");
    report.resumed_after_promotion = first_after.duration_since(promoted_at);
    report.acknowledged = acknowledged.len();
    for (key, value, at) in &acknowledged {
        let read = store.get(&t, key).await.expect("read after the failover");
        match read {
            Some(read) => assert_eq!(read.messages_sent, *value, "{key} is whole"),
            None => {
                report.lost += 1;
                report.lost_after_promotion += usize::from(*at > promoted_at);
            }
        }
    }
    report
}
