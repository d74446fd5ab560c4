//! Store operations in memory beside the same work done by hand on a `RwLock<HashMap>`: the
//! record encoded as JSON with its secrets sealed together (AES-256-GCM) on write, decoded and
//! opened on read — what the memory backend stores, as every backend does.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use storage_core::{Document, GmailTokenStore, IntegrationStore, SealContext, Sealer, Store};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_memory::{InMemoryGmailTokenStore, InMemoryIntegrationStore, InMemoryWebhookStore, MemoryBackend};
use storage_testkit::bench::fixtures::{KEYS, gmail, integration};
use storage_testkit::bench::{Baselines, Op, Reference, Scenario, op};

/// Encoded bodies and sealed secrets by key.
type Encoded = Arc<RwLock<HashMap<String, (String, String)>>>;

fn context(id: &str) -> SealContext<'_> {
    SealContext { store: "bench", tenant: "bench", record_id: id, field: "*" }
}

fn map_get<D: Document + DeserializeOwned>(map: &Encoded, ring: &Arc<KeyRing>, prefix: &'static str) -> Op {
    let (map, ring) = (Arc::clone(map), Arc::clone(ring));
    op(move |i| {
        let id = format!("{prefix}{:04}", i % KEYS);
        let (body, sealed) = map.read().expect("lock").get(&id).cloned().expect("present");
        let record: D = serde_json::from_str(&body).expect("decode");
        let clear = ring.open(&context(&id), &sealed).expect("open");
        let secrets: BTreeMap<String, String> = serde_json::from_str(clear.expose()).expect("secrets");
        std::hint::black_box((record, secrets));
        async {}
    })
}

fn map_set<D: Document + Serialize>(map: &Encoded, ring: &Arc<KeyRing>, prefix: &'static str, make: fn(u64) -> D) -> Op {
    let (map, ring) = (Arc::clone(map), Arc::clone(ring));
    op(move |i| {
        let id = format!("{prefix}{:04}", i % KEYS);
        let record = make(i);
        let secrets: BTreeMap<String, String> = record.secrets().into_iter().map(|(k, v)| (k, v.into_inner())).collect();
        let body = serde_json::to_string(&record).expect("encode");
        let sealed = ring.seal(&context(&id), &serde_json::to_string(&secrets).expect("secrets")).expect("seal");
        map.write().expect("lock").insert(id, (body, sealed));
        async {}
    })
}

async fn scenarios() -> Vec<Scenario> {
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let backend = MemoryBackend::new().sealer(ring.clone());
    let (integrations, webhooks, tokens) = (
        Arc::new(InMemoryIntegrationStore::on(&backend)),
        Arc::new(InMemoryWebhookStore::on(&backend)),
        Arc::new(InMemoryGmailTokenStore::on(&backend)),
    );
    let (raw_integrations, raw_tokens): (Encoded, Encoded) = (Arc::default(), Arc::default());
    for i in 0..KEYS {
        integrations.set(&integration(i)).await.expect("preload");
        tokens.set(&gmail(i)).await.expect("preload");
        map_set(&raw_integrations, &ring, "key-", integration)(i).await;
        map_set(&raw_tokens, &ring, "user-", gmail)(i).await;
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
    storage_testkit::bench::scenarios(
        "memory",
        integrations,
        webhooks,
        tokens,
        Baselines {
            integration_get: map_get::<storage_core::IntegrationConfig>(&raw_integrations, &ring, "key-"),
            integration_set: map_set(&raw_integrations, &ring, "key-", integration),
            webhook_claim_complete: raw_claim,
            gmail_token_get: map_get::<storage_core::GmailUserState>(&raw_tokens, &ring, "user-"),
            gmail_token_set: map_set(&raw_tokens, &ring, "user-", gmail),
        },
    )
}

fn main() {
    storage_testkit::bench::main(scenarios, || async { Vec::<Reference>::new() });
}
