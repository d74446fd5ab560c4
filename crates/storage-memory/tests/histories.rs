//! Concurrent histories of webhook claims, job leases, token consumes and compare-and-set
//! updates on the memory backend, checked for linearizability (100 histories; 1,000 with
//! `ARAGORA_FAULTS=full`).

use std::sync::Arc;
use storage_core::ManualClock;
use storage_memory::MemoryBackend;
use storage_testkit::history::{check_histories, histories_to_run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_are_linearizable() {
    let clock = ManualClock::at_system_time();
    let engine = Arc::new(MemoryBackend::with_clock(clock.shared()));
    let report = check_histories(engine, histories_to_run(), 0x6d656d, |_| {}).await;
    println!("memory: {report}");
    assert_eq!(report.violations, 0, "{}", report.first_violation.unwrap_or_default());
    assert_eq!(report.histories, histories_to_run());
}
