//! Store operations on Redis beside what a hand-written store would send through redis-rs on the
//! same connection (the record and its index in one `MULTI`; `SET NX PX` for a claim); then
//! redis-benchmark on the same server for reference.

use chrono::{TimeDelta, Utc};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use storage_core::clock::to_micros;
use storage_core::document::Document;
use storage_core::{ClaimOutcome, GmailTokenStore, IntegrationStore, WebhookStore};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::RedisBackend;
use storage_testkit::bench::fixtures::{KEYS, bench_tenant, gmail, integration};
use storage_testkit::bench::{Reference, Scenario, number_after, op, tool_output};
use storage_testkit::server::RedisServer;

static SERVER: OnceLock<RedisServer> = OnceLock::new();

async fn scenarios() -> Vec<Scenario> {
    let server = SERVER.get_or_init(RedisServer::start);
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let backend = RedisBackend::builder(server.url()).sealer(ring.clone()).connect().await.expect("connect");
    let (integrations, webhooks, tokens) =
        (Arc::new(backend.integration_store()), Arc::new(backend.webhook_store()), Arc::new(backend.gmail_token_store()));
    for i in 0..KEYS {
        integrations.set(&integration(i)).await.expect("preload");
        tokens.set(&gmail(i)).await.expect("preload");
    }
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
    let set = |store: &'static str, prefix: &'static str, index: &'static str, body: String, time_index: bool| {
        let (conn, keys, tenant) = (backend.conn(), keys.clone(), tenant.clone());
        op(move |i| {
            let mut conn = conn.clone();
            let id = format!("{prefix}{:04}", i % KEYS);
            let now = to_micros(Utc::now());
            let (record, all) = (keys.record(&tenant, store, &id), keys.all(&tenant, store));
            let (index_key, score) = if time_index {
                (keys.time_index(&tenant, store, index), to_micros(Utc::now() + TimeDelta::hours(1)))
            } else {
                (keys.text_index(&tenant, store, index, &format!("user-{:03}", i % 97)), 0)
            };
            let body = body.clone();
            async move {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("HSET")
                    .arg(&record)
                    .arg(&["v", "1", "c"][..])
                    .arg(now)
                    .arg("u")
                    .arg(now)
                    .arg("b")
                    .arg(body)
                    .ignore()
                    .cmd("ZADD")
                    .arg(all)
                    .arg(0)
                    .arg(&id)
                    .ignore()
                    .cmd("ZADD")
                    .arg(index_key)
                    .arg(score)
                    .arg(&id)
                    .ignore();
                pipe.query_async::<()>(&mut conn).await.expect("raw set");
            }
        })
    };
    let raw_claim = {
        let (conn, keys, tenant) = (backend.conn(), keys.clone(), tenant.clone());
        op(move |i| {
            let (mut conn, key) = (conn.clone(), keys.record(&tenant, "raw_webhooks", &format!("raw-{i}")));
            async move {
                let claimed: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(uuid::Uuid::new_v4().to_string())
                    .arg("NX")
                    .arg("PX")
                    .arg(30_000)
                    .query_async(&mut conn)
                    .await
                    .expect("raw claim");
                assert!(claimed.is_some());
                let _: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg("done:ok")
                    .arg("XX")
                    .arg("PX")
                    .arg(86_400_000)
                    .query_async(&mut conn)
                    .await
                    .expect("raw complete");
            }
        })
    };
    let integration_body = integration(0).encode(ring.as_ref()).expect("encode").to_string();
    let gmail_body = gmail(0).encode(ring.as_ref()).expect("encode").to_string();

    let (i1, i2, w, g1, g2) = (integrations.clone(), integrations, webhooks, tokens.clone(), tokens);
    let (t1, t2, t3) = (tenant.clone(), tenant.clone(), tenant.clone());
    vec![
        Scenario {
            operation: "integration.get",
            backend: "redis",
            store: op(move |i| {
                let (s, t) = (i1.clone(), t1.clone());
                async move {
                    s.get(&t, &format!("key-{:04}", i % KEYS)).await.expect("get").expect("present");
                }
            }),
            raw: get("integrations", "key-"),
        },
        Scenario {
            operation: "integration.set",
            backend: "redis",
            store: op(move |i| {
                let s = i2.clone();
                async move {
                    s.set(&integration(i)).await.expect("set");
                }
            }),
            raw: set("integrations", "key-", "user_id", integration_body, false),
        },
        Scenario {
            operation: "webhook.claim+complete",
            backend: "redis",
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
            backend: "redis",
            store: op(move |i| {
                let (s, t) = (g1.clone(), t3.clone());
                async move {
                    s.get(&t, &format!("user-{:04}", i % KEYS)).await.expect("get").expect("present");
                }
            }),
            raw: get("gmail_tokens", "user-"),
        },
        Scenario {
            operation: "gmail_token.set",
            backend: "redis",
            store: op(move |i| {
                let s = g2.clone();
                async move {
                    s.set(&gmail(i)).await.expect("set");
                }
            }),
            raw: set("gmail_tokens", "user-", "token_expiry", gmail_body, true),
        },
    ]
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
