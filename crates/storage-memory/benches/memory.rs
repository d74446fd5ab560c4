//! Peak resident memory of a process holding 100,000 integration records in the memory backend
//! (`ARAGORA_BENCH_RECORDS` changes the count).

use storage_core::{IntegrationConfig, IntegrationStore};
use storage_memory::InMemoryIntegrationStore;
use storage_testkit::bench::fixtures::bench_tenant;
use storage_testkit::bench::{MEMORY_PREFIX, emit, memory_kib};

#[derive(serde::Serialize)]
struct Held {
    name: &'static str,
    records: u64,
    baseline_kib: u64,
    peak_kib: u64,
    bytes_per_record: f64,
}

fn main() {
    let records: u64 = std::env::var("ARAGORA_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let (baseline, _) = memory_kib();
    runtime.block_on(async {
        let store = InMemoryIntegrationStore::new();
        for i in 0..records {
            let config = IntegrationConfig::new(bench_tenant(), format!("workspace-{i:07}"), "slack")
                .with_user(format!("user-{:05}", i % 10_000))
                .with_credential("token", format!("xoxb-{i:020}"))
                .with_setting("channel", "#general");
            store.set(&config).await.expect("set");
        }
        let (peak, _) = memory_kib();
        emit(
            MEMORY_PREFIX,
            &Held {
                name: "memory backend holding integrations",
                records,
                baseline_kib: baseline,
                peak_kib: peak,
                bytes_per_record: (peak.saturating_sub(baseline) * 1024) as f64 / records as f64,
            },
        );
    });
}
