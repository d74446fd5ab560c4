//! Store operations on Redis beside the same commands (the stores' own scripts, with the same
//! `KEYS` and `ARGV`) sent straight through redis-rs on the same connection; then
//! redis-benchmark on the same server for reference.

use chrono::{TimeDelta, Utc};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use storage_core::clock::to_micros;
use storage_core::document::Document;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::RedisBackend;
use storage_testkit::bench::fixtures::{KEYS, bench_tenant, gmail, integration, owner};
use storage_testkit::bench::{Baselines, Reference, Scenario, number_after, op, tool_output};
use storage_testkit::server::RedisServer;

static SERVER: OnceLock<RedisServer> = OnceLock::new();

async fn scenarios() -> Vec<Scenario> {
    let server = SERVER.get_or_init(RedisServer::start);
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let backend = RedisBackend::builder(server.url()).sealer(ring.clone()).connect().await.expect("connect");
    let (integrations, webhooks, tokens) =
        (Arc::new(backend.integration_store()), Arc::new(backend.webhook_store()), Arc::new(backend.gmail_token_store()));
    storage_testkit::bench::preload(integrations.as_ref(), tokens.as_ref()).await;
    let tenant = bench_tenant();
    let keys = backend.keys().clone();

    let get = |store: &'static str, prefix: &'static str| {
        let (conn, keys, tenant) = (backend.conn(), keys.clone(), tenant.clone());
        op(move |i| {
            let (mut conn, key) = (conn.clone(), keys.record(&tenant, store, &format!("{prefix}{:04}", i % KEYS)));
            async move {
                let fields: Vec<Option<String>> =
                    redis::cmd("HMGET").arg(key).arg(&["v", "c", "u", "b"][..]).query_async(&mut conn).await.expect("raw get");
                assert!(fields[3].is_some());
            }
        })
    };
    // The same scripts the stores run, with the same KEYS and ARGV, straight through redis-rs.
    let write = Arc::new(redis::Script::new(storage_redis::scripts::WRITE_RECORD));
    type Entries = fn(&storage_redis::Keys, &storage_core::TenantId, u64) -> Vec<(String, i64)>;
    let set = |store: &'static str, prefix: &'static str, entries: Entries, body: String| {
        let (conn, keys, tenant, write) = (backend.conn(), keys.clone(), tenant.clone(), Arc::clone(&write));
        op(move |i| {
            let mut conn = conn.clone();
            let id = format!("{prefix}{:04}", i % KEYS);
            let now = to_micros(Utc::now());
            let entries = entries(&keys, &tenant, i);
            let list = serde_json::to_string(&entries.iter().map(|(key, _)| key).collect::<Vec<_>>()).expect("json");
            let (record, all, write, body) = (keys.record(&tenant, store, &id), keys.all(&tenant, store), Arc::clone(&write), body.clone());
            async move {
                let mut call = write.prepare_invoke();
                call.key(record).key(all);
                for _side in ["old", "new"] {
                    for (key, _) in &entries {
                        call.key(key);
                    }
                }
                call.arg("upsert").arg(&list).arg("0").arg(now).arg(body).arg(&id).arg(entries.len()).arg(entries.len());
                for (_, score) in &entries {
                    call.arg(*score);
                }
                call.arg(&list);
                let reply: Vec<String> = call.invoke_async(&mut conn).await.expect("raw set");
                assert_eq!(reply[0], "ok", "{reply:?}");
            }
        })
    };
    let (claim, finish) = (
        Arc::new(redis::Script::new(storage_redis::scripts::CLAIM_EVENT)),
        Arc::new(redis::Script::new(storage_redis::scripts::FINISH_EVENT)),
    );
    let raw_claim = {
        let (conn, keys, tenant) = (backend.conn(), keys.clone(), tenant.clone());
        op(move |i| {
            let mut conn = conn.clone();
            let (event, token, now) = (format!("raw-{i}"), uuid::Uuid::new_v4().to_string(), Utc::now());
            let (key, expiries) =
                (keys.record(&tenant, "webhook_events", &event), keys.time_index(&tenant, "webhook_events", "expires_at"));
            let (lease_until, done_until) = (to_micros(now + TimeDelta::seconds(30)), to_micros(now + TimeDelta::hours(24)));
            let (claim, finish) = (Arc::clone(&claim), Arc::clone(&finish));
            async move {
                let mut claim_call = claim.prepare_invoke();
                claim_call.key(&key).key(&expiries).arg(to_micros(now)).arg(&token).arg(lease_until).arg(&event).arg(3_630_000);
                let mut finish_call = finish.prepare_invoke();
                finish_call.key(&key).key(&expiries).arg(&token).arg("ok").arg(to_micros(now)).arg(done_until).arg(&event).arg(90_000_000);
                let claimed: Vec<String> = claim_call.invoke_async(&mut conn).await.expect("raw claim");
                assert_eq!(claimed[0], "acquired");
                let done: i64 = finish_call.invoke_async(&mut conn).await.expect("raw complete");
                assert_eq!(done, 1);
            }
        })
    };
    let integration_body = integration(0).encode(ring.as_ref()).expect("encode").to_json().expect("json");
    let gmail_body = gmail(0).encode(ring.as_ref()).expect("encode").to_json().expect("json");

    storage_testkit::bench::scenarios(
        "redis",
        integrations,
        webhooks,
        tokens,
        Baselines {
            integration_get: get("integrations", "key-"),
            integration_set: set(
                "integrations",
                "key-",
                |keys, t, i| {
                    vec![
                        (keys.text_index(t, "integrations", "user_id", &owner(i)), 0),
                        (keys.text_index(t, "integrations", "integration_type", "slack"), 0),
                    ]
                },
                integration_body,
            ),
            webhook_claim_complete: raw_claim,
            gmail_token_get: get("gmail_tokens", "user-"),
            gmail_token_set: set(
                "gmail_tokens",
                "user-",
                |keys, t, i| {
                    vec![
                        (keys.text_index(t, "gmail_tokens", "email_address", &format!("user{}@example.com", i % KEYS)), 0),
                        (keys.time_index(t, "gmail_tokens", "token_expiry"), to_micros(Utc::now() + TimeDelta::hours(1))),
                    ]
                },
                gmail_body,
            ),
        },
    )
}

/// redis-benchmark on the same server: GET and SET, 16 clients.
async fn references() -> Vec<Reference> {
    let Some(server) = SERVER.get() else { return Vec::new() };
    let requests = if std::env::var("ARAGORA_BENCH_TABLE").as_deref() == Ok("quick") { "100000" } else { "400000" };
    let output = tool_output(Command::new("redis-benchmark").args([
        "-p",
        &server.port().to_string(),
        "-c",
        "16",
        "-n",
        requests,
        "-t",
        "get,set",
        "-q",
    ]));
    let figure = |label: &str| {
        // -q prints e.g. `GET: 98039.22 requests per second, p50=0.087 msec`.
        let line = output.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_default().replace('\r', "\n");
        number_after(line.lines().last().unwrap_or_default(), &format!("{label}: "))
    };
    vec![
        Reference {
            name: "redis-benchmark GET".into(),
            backend: "redis".into(),
            concurrency: 16,
            ops_per_sec: figure("GET"),
            compare_to: "integration.get".into(),
        },
        Reference {
            name: "redis-benchmark SET".into(),
            backend: "redis".into(),
            concurrency: 16,
            ops_per_sec: figure("SET"),
            compare_to: "integration.set".into(),
        },
    ]
}

fn main() {
    storage_testkit::bench::main(scenarios, references);
}
