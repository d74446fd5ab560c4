//! Store operations in memory beside the same work done by hand on a `RwLock<HashMap>`.

use chrono::{TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use storage_core::{ClaimOutcome, GmailTokenStore, GmailUserState, IntegrationConfig, IntegrationStore, WebhookStore};
use storage_memory::MemoryBackend;
use storage_testkit::bench::fixtures::{KEYS, bench_tenant, gmail, integration};
use storage_testkit::bench::{Op, Reference, Scenario, op};

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
    let (integrations, webhooks, tokens) =
        (Arc::new(backend.integration_store()), Arc::new(backend.webhook_store()), Arc::new(backend.gmail_token_store()));
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
    let tenant = bench_tenant();
    let (i1, i2, w, g1, g2) = (integrations.clone(), integrations, webhooks, tokens.clone(), tokens);
    let (t1, t2, t3) = (tenant.clone(), tenant.clone(), tenant);
    let _ = Utc::now();
    vec![
        Scenario {
            operation: "integration.get",
            backend: "memory",
            store: op(move |i| {
                let (s, t) = (i1.clone(), t1.clone());
                async move {
                    s.get(&t, &format!("key-{:04}", i % KEYS)).await.expect("get").expect("present");
                }
            }),
            raw: map_get(&raw_integrations, "key-"),
        },
        Scenario {
            operation: "integration.set",
            backend: "memory",
            store: op(move |i| {
                let s = i2.clone();
                async move {
                    s.set(&integration(i)).await.expect("set");
                }
            }),
            raw: map_set(&raw_integrations, "key-", integration),
        },
        Scenario {
            operation: "webhook.claim+complete",
            backend: "memory",
            store: op(move |i| {
                let (s, t) = (w.clone(), t2.clone());
                async move {
                    let ClaimOutcome::Acquired(lease) = s.try_claim(&t, &format!("evt-{i}"), TimeDelta::seconds(30)).await.expect("claim")
                    else {
                        panic!("fresh event ids are always acquired")
                    };
                    s.complete(&t, &lease, "ok").await.expect("complete");
                }
            }),
            raw: raw_claim,
        },
        Scenario {
            operation: "gmail_token.get",
            backend: "memory",
            store: op(move |i| {
                let (s, t) = (g1.clone(), t3.clone());
                async move {
                    s.get(&t, &format!("user-{:04}", i % KEYS)).await.expect("get").expect("present");
                }
            }),
            raw: map_get(&raw_tokens, "user-"),
        },
        Scenario {
            operation: "gmail_token.set",
            backend: "memory",
            store: op(move |i| {
                let s = g2.clone();
                async move {
                    s.set(&gmail(i)).await.expect("set");
                }
            }),
            raw: map_set(&raw_tokens, "user-", gmail),
        },
    ]
}

fn main() {
    storage_testkit::bench::main(scenarios, || async { Vec::<Reference>::new() });
}
