//! Store operations in memory beside the same work done by hand on a `RwLock<HashMap>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use storage_core::Store;
use storage_core::{GmailTokenStore, GmailUserState, IntegrationConfig, IntegrationStore};
use storage_memory::MemoryBackend;
use storage_memory::{InMemoryGmailTokenStore, InMemoryIntegrationStore, InMemoryWebhookStore};
use storage_testkit::bench::fixtures::{KEYS, bench_tenant, gmail, integration};
use storage_testkit::bench::{Baselines, Op, Reference, Scenario, op};

fn map_get<V: Clone + Send + Sync + 'static>(map: &Arc<RwLock<HashMap<String, V>>>, prefix: &'static str) -> Op {
    let map = Arc::clone(map);
    op(move |i| {
        let value = map.read().expect("lock").get(&format!("{prefix}{:04}", i % KEYS)).cloned();
        assert!(value.is_some());
        async {}
    })
}

fn map_set<V: Clone + Send + Sync + 'static>(map: &Arc<RwLock<HashMap<String, V>>>, prefix: &'static str, make: fn(u64) -> V) -> Op {
    let map = Arc::clone(map);
    op(move |i| {
        let value = make(i);
        map.write().expect("lock").insert(format!("{prefix}{:04}", i % KEYS), value.clone());
        async {}
    })
}

async fn scenarios() -> Vec<Scenario> {
    let backend = MemoryBackend::new();
    let (integrations, webhooks, tokens) = (
        Arc::new(InMemoryIntegrationStore::on(&backend)),
        Arc::new(InMemoryWebhookStore::on(&backend)),
        Arc::new(InMemoryGmailTokenStore::on(&backend)),
    );
    let raw_integrations: Arc<RwLock<HashMap<String, IntegrationConfig>>> = Arc::default();
    let raw_tokens: Arc<RwLock<HashMap<String, GmailUserState>>> = Arc::default();
    for i in 0..KEYS {
        integrations.set(&integration(i)).await.expect("preload");
        tokens.set(&gmail(i)).await.expect("preload");
        map_set(&raw_integrations, "key-", integration)(i).await;
        map_set(&raw_tokens, "user-", gmail)(i).await;
    }
    let raw_events: Arc<Mutex<HashMap<String, (uuid::Uuid, bool)>>> = Arc::default();
    let raw_claim = op(move |i| {
        let mut events = raw_events.lock().expect("lock");
        let token = uuid::Uuid::new_v4();
        assert!(events.insert(format!("raw-{i}"), (token, false)).is_none());
        if let Some(entry) = events.get_mut(&format!("raw-{i}")) {
            entry.1 = true;
        }
        async {}
    });
    let _tenant = bench_tenant();
    storage_testkit::bench::scenarios(
        "memory",
        integrations,
        webhooks,
        tokens,
        Baselines {
            integration_get: map_get(&raw_integrations, "key-"),
            integration_set: map_set(&raw_integrations, "key-", integration),
            webhook_claim_complete: raw_claim,
            gmail_token_get: map_get(&raw_tokens, "user-"),
            gmail_token_set: map_set(&raw_tokens, "user-", gmail),
        },
    )
}

fn main() {
    storage_testkit::bench::main(scenarios, || async { Vec::<Reference>::new() });
}
