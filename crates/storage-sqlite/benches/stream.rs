//! Memory of a process streaming webhook claims into SQLite: it must stay flat (no unbounded
//! buffers, caches or statement growth). `ARAGORA_BENCH_STREAM` sets the count (1,000,000).

use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::Store;
use storage_core::{ClaimOutcome, WebhookStore};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_sqlite::SQLiteWebhookStore;
use storage_sqlite::SqliteBackend;
use storage_testkit::bench::{MEMORY_PREFIX, emit, fixtures::bench_tenant, memory_kib};

#[derive(serde::Serialize)]
struct Stream {
    name: &'static str,
    claims: u64,
    seconds: f64,
    /// (claims done, resident KiB) at each tenth of the run.
    rss_kib: Vec<(u64, u64)>,
    peak_kib: u64,
}

fn main() {
    let total: u64 = std::env::var("ARAGORA_BENCH_STREAM").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
        let backend = SqliteBackend::builder(dir.path().join("stream.db")).sealer(ring).connect().await.expect("open");
        let store = SQLiteWebhookStore::on(&backend);
        let tenant = bench_tenant();
        let start = std::time::Instant::now();
        let mut samples = Vec::new();
        for i in 0..total {
            let ClaimOutcome::Acquired(lease) = store.try_claim(&tenant, &format!("evt-{i}"), TimeDelta::seconds(30)).await.expect("claim")
            else {
                panic!("fresh events are acquired")
            };
            store.complete(&tenant, &lease, "ok").await.expect("complete");
            if (i + 1) % (total / 10).max(1) == 0 {
                samples.push((i + 1, memory_kib().1));
            }
        }
        let result = Stream {
            name: "sqlite webhook claim+complete stream",
            claims: total,
            seconds: start.elapsed().as_secs_f64(),
            rss_kib: samples,
            peak_kib: memory_kib().0,
        };
        emit(MEMORY_PREFIX, &result);
    });
}
