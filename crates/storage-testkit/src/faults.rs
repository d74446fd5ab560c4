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
/// failures are only `Unavailable` or `Timeout`, the stream recovers without a new process, and
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
            Err(e @ (StorageError::Unavailable { .. } | StorageError::Timeout { .. })) => {
                assert!(e.is_retryable());
                report.retryable_failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("a fault must surface as Unavailable or Timeout, got {e:?}"),
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
