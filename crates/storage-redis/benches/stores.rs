//! Store operations on Redis beside the same commands (the stores' own scripts, with the same
//! `KEYS` and `ARGV`) sent straight through redis-rs on the same connection; then
//! redis-benchmark on the same server for reference.

use chrono::{TimeDelta, Utc};
use redis::aio::ConnectionLike;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use storage_core::Store;
use storage_core::clock::to_micros;
use storage_core::{
    Change, Document, Engine, GmailUserState, IntegrationConfig, Invoice, LedgerEntry, Receipt, RowWrite, TableDef, Value, WriteMode,
};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::{Keys, RedisBackend, RedisHAConfig};
use storage_redis::{RedisGmailTokenStore, RedisIntegrationStore, RedisWebhookStore};
use storage_testkit::bench::fixtures::{KEYS, bench_tenant, gmail, integration, owner};
use storage_testkit::bench::{Baselines, Op, Reference, Scenario, money, number_after, op, tool_output};
use storage_testkit::server::{RedisCluster, RedisSentinelGroup, RedisServer, SENTINEL_MASTER};

static SERVER: OnceLock<RedisServer> = OnceLock::new();

async fn scenarios() -> Vec<Scenario> {
    let server = SERVER.get_or_init(RedisServer::start);
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let backend = RedisBackend::builder(server.url()).sealer(ring.clone()).connect().await.expect("connect");
    let (integrations, webhooks, tokens) = (
        Arc::new(RedisIntegrationStore::on(&backend)),
        Arc::new(RedisWebhookStore::on(&backend)),
        Arc::new(RedisGmailTokenStore::on(&backend)),
    );
    storage_testkit::bench::preload(integrations.as_ref(), tokens.as_ref()).await;
    let tenant = bench_tenant();
    let keys = backend.keys().clone();

    let get = |store: &'static str, prefix: &'static str, fields: &'static [&'static str]| {
        raw_get(backend.conn(), keys.clone(), store, prefix, fields)
    };
    // The same script the stores run, with the same KEYS and ARGV, straight through redis-rs: the
    // request is built by the engine itself, once per call, without validation, sealing or
    // reply decoding.
    let apply = Arc::new(redis::Script::new(&format!("{}{}", storage_redis::scripts::PRELUDE, storage_redis::scripts::APPLY)));
    let set = |table: &'static TableDef, prefix: &'static str, indexes: fn(u64) -> Vec<Option<Value>>, body: String| {
        raw_set(backend.conn(), &backend, &apply, table, prefix, indexes, body)
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
            let (key, expiries) = (keys.record(&tenant, "webhook_events", &event), keys.expiries(&tenant, "webhook_events"));
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
    let engine: &dyn Engine = &backend;
    let integration_body = engine.table::<IntegrationConfig>().encode_body(&integration(0)).expect("encode");
    let gmail_body = engine.table::<GmailUserState>().encode_body(&gmail(0)).expect("encode");

    let money = money_baselines(&backend, &apply).await;
    let mut scenarios = storage_testkit::bench::scenarios(
        "redis",
        integrations,
        webhooks,
        tokens,
        Baselines {
            integration_get: get("integrations", "key-", &["v", "c", "u", "e", "b", "i3", "i4"]),
            integration_set: set(&IntegrationConfig::TABLE, "key-", integration_indexes, integration_body),
            webhook_claim_complete: raw_claim,
            gmail_token_get: get("gmail_tokens", "user-", &["v", "c", "u", "e", "b"]),
            gmail_token_set: set(
                &GmailUserState::TABLE,
                "user-",
                |i| {
                    let expiry = storage_core::clock::truncate_micros(Utc::now() + TimeDelta::hours(1));
                    vec![Some(Value::Text(format!("user{}@example.com", i % KEYS))), Some(Value::Time(expiry))]
                },
                gmail_body,
            ),
        },
    );
    let (receipts, invoices) = storage_testkit::bench::preload_money(engine).await;
    scenarios.extend(storage_testkit::bench::money_scenarios("redis", &receipts, &invoices, money));
    let tokens = storage_testkit::bench::preload_tokens(engine).await;
    scenarios.extend(storage_testkit::bench::token_scenarios("redis", &tokens, token_baselines(&backend)));
    let archive = storage_testkit::bench::preload_archive(engine).await;
    scenarios.push(storage_testkit::bench::archive_scenario("redis", &archive, archive_baseline(&backend, &archive.1)));
    scenarios.extend(high_availability_scenarios(&apply).await);
    scenarios
}

/// The permalink baseline: the slug's directory entry, the record's fields, then the view counted
/// atomically with the record's version and its counter index (`MULTI`), as the engine's script
/// does (the baseline's counter is a field of its own, so the store's stays exact).
fn archive_baseline(backend: &RedisBackend, slugs: &Arc<Vec<String>>) -> storage_testkit::bench::Op {
    let (conn, keys, slugs) = (backend.conn(), backend.keys().clone(), Arc::clone(slugs));
    let directory = keys.directory("archived_debates", "slug");
    op(move |i| {
        let (mut conn, keys, directory) = (conn.clone(), keys.clone(), directory.clone());
        let slug = slugs[(i % storage_testkit::bench::archive::DEBATES) as usize].clone();
        async move {
            let owner: String = redis::cmd("HGET").arg(&directory).arg(&slug).query_async(&mut conn).await.expect("raw directory");
            let (tenant, id) = owner.split_once('\0').expect("tenant and id");
            let tenant = storage_core::TenantId::new(tenant).expect("tenant");
            let key = keys.record(&tenant, "archived_debates", id);
            let got: Vec<Option<String>> =
                redis::cmd("HMGET").arg(&key).arg(&["v", "c", "u", "e", "b", "i4"]).query_async(&mut conn).await.expect("raw get");
            assert!(got[4].is_some());
            let (views, _, _): (i64, i64, i64) = redis::pipe()
                .atomic()
                .hincr(&key, "raw_views", 1)
                .hincr(&key, "v", 1)
                .zadd(keys.index(&tenant, "archived_debates", "raw_views"), id, 0)
                .query_async(&mut conn)
                .await
                .expect("raw view");
            assert!(views > 0);
        }
    })
}

/// The receipt and invoice baselines, by the stores' own script: a receipt insert; a payment as
/// the ledger does it — read the invoice, then insert the payment and write the invoice back at
/// the version read, in one `APPLY`. (The newest-by-verdict list has no hand-written equivalent
/// worth the name on these indexes: its row is measured on SQLite and PostgreSQL.)
async fn money_baselines(backend: &RedisBackend, apply: &Arc<redis::Script>) -> [Option<storage_testkit::bench::Op>; 3] {
    let engine: &dyn Engine = backend;
    let raw = money::raw_tenant_id();
    let sample = money::receipt(&raw, "raw-", 0, Utc::now());
    let receipt_body = engine.table::<Receipt>().encode_body(&sample).expect("encode");
    let payment = money::payment(&raw, 0);
    let payment_body = engine.table::<LedgerEntry<Invoice>>().encode_body(&payment).expect("encode");
    let save = {
        let (conn, tables, apply) = (backend.conn(), backend.clone(), Arc::clone(apply));
        op(move |i| {
            let mut conn = conn.clone();
            let mut receipt = sample.clone();
            receipt.receipt_id = format!("raw-{}-{i}", std::process::id());
            receipt.gauntlet_id = format!("g-{}", receipt.receipt_id);
            let row = RowWrite {
                table: &Receipt::TABLE,
                tenant: money::raw_tenant_id(),
                id: receipt.receipt_id.clone(),
                indexes: receipt.index_values(),
                expires_at: None,
                body: receipt_body.clone(),
                search: Some(storage_core::fts::searchable(&receipt.search_text())),
            };
            let (keys, arguments) =
                tables.redis_tables().apply_request(&money::raw_tenant_id(), &[Change::Write { row, mode: WriteMode::Insert }], Utc::now());
            let apply = Arc::clone(&apply);
            async move {
                let reply: redis::Value = invoke(&apply, &keys, &arguments).invoke_async(&mut conn).await.expect("raw save");
                std::hint::black_box(reply);
            }
        })
    };
    let pay = {
        let (conn, tables, apply, keys) = (backend.conn(), backend.clone(), Arc::clone(apply), backend.keys().clone());
        op(move |i| {
            let (mut conn, tables, apply) = (conn.clone(), tables.clone(), Arc::clone(&apply));
            let (tenant, invoice_id) = (money::raw_tenant_id(), money::invoice_id(i));
            let invoice_key = keys.record(&tenant, Invoice::TABLE.name, &invoice_id);
            let mut entry = payment.clone();
            (entry.bill_id, entry.key) = (invoice_id.clone(), format!("raw-{}-{i}", std::process::id()));
            let payment_body = payment_body.clone();
            async move {
                let (version, body): (u64, String) =
                    redis::cmd("HMGET").arg(&invoice_key).arg(&["v", "b"]).query_async(&mut conn).await.expect("raw read");
                let mut invoice = money::invoice(&tenant, i);
                invoice.status = storage_core::InvoiceStatus::PartiallyPaid;
                let entry_row = RowWrite {
                    table: &<LedgerEntry<Invoice> as Document>::TABLE,
                    tenant: tenant.clone(),
                    id: entry.id(),
                    indexes: entry.index_values(),
                    expires_at: None,
                    body: payment_body,
                    search: None,
                };
                let invoice_row = RowWrite {
                    table: &Invoice::TABLE,
                    tenant: tenant.clone(),
                    id: invoice_id,
                    indexes: invoice.index_values(),
                    expires_at: None,
                    body,
                    search: None,
                };
                let changes = [
                    Change::Write { row: entry_row, mode: WriteMode::Insert },
                    Change::Write { row: invoice_row, mode: WriteMode::Update { expected: version } },
                ];
                let (keys, arguments) = tables.redis_tables().apply_request(&tenant, &changes, Utc::now());
                // Another task may have paid this invoice since it was read: the script refuses
                // the stale version, as the ledger would before it retries.
                let reply: redis::RedisResult<redis::Value> = invoke(&apply, &keys, &arguments).invoke_async(&mut conn).await;
                let _ = std::hint::black_box(reply);
            }
        })
    };
    [Some(save), None, Some(pay)]
}

fn invoke<'a>(script: &'a redis::Script, keys: &[String], arguments: &[String]) -> redis::ScriptInvocation<'a> {
    let mut call = script.prepare_invoke();
    for key in keys {
        call.key(key);
    }
    for argument in arguments {
        call.arg(argument);
    }
    call
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

/// The engine's `HMGET` of a record's fields, straight through `conn`.
fn raw_get<C>(conn: C, keys: Keys, store: &'static str, prefix: &'static str, fields: &'static [&'static str]) -> Op
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let tenant = bench_tenant();
    op(move |i| {
        let (mut conn, key) = (conn.clone(), keys.record(&tenant, store, &format!("{prefix}{:04}", i % KEYS)));
        async move {
            let got: Vec<Option<String>> = redis::cmd("HMGET").arg(key).arg(fields).query_async(&mut conn).await.expect("raw get");
            assert!(got[4].is_some());
        }
    })
}

/// The same script the stores run, with the same `KEYS` and `ARGV`, straight through `conn`: the
/// request is built by the engine itself, once per call, without validation, sealing or reply
/// decoding.
fn raw_set<C>(
    conn: C,
    backend: &RedisBackend,
    apply: &Arc<redis::Script>,
    table: &'static TableDef,
    prefix: &'static str,
    indexes: fn(u64) -> Vec<Option<Value>>,
    body: String,
) -> Op
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let (tables, tenant, apply) = (backend.clone(), bench_tenant(), Arc::clone(apply));
    op(move |i| {
        let mut conn = conn.clone();
        let row = RowWrite {
            table,
            tenant: tenant.clone(),
            id: format!("{prefix}{:04}", i % KEYS),
            indexes: indexes(i),
            expires_at: None,
            body: body.clone(),
            search: None,
        };
        let (keys, arguments) = tables.redis_tables().apply_request(&tenant, &[Change::Write { row, mode: WriteMode::Upsert }], Utc::now());
        let apply = Arc::clone(&apply);
        async move {
            let mut call = apply.prepare_invoke();
            for key in &keys {
                call.key(key);
            }
            for argument in &arguments {
                call.arg(argument);
            }
            let reply: redis::Value = call.invoke_async(&mut conn).await.expect("raw set");
            std::hint::black_box(reply);
        }
    })
}

/// An integration's index values, as the store writes them.
fn integration_indexes(i: u64) -> Vec<Option<Value>> {
    vec![Some(Value::Text(owner(i))), Some(Value::from("slack")), Some(Value::Int(0)), Some(Value::Int(0))]
}

/// `integration.get` and `integration.set` through a Sentinel group's master and through a
/// Cluster, beside the same commands on the redis crate's own connections: a connection straight
/// to the master the Sentinels name, and its cluster connection.
async fn high_availability_scenarios(apply: &Arc<redis::Script>) -> Vec<Scenario> {
    static SENTINELS: OnceLock<RedisSentinelGroup> = OnceLock::new();
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    let group = SENTINELS.get_or_init(RedisSentinelGroup::start);
    let master = redis::Client::open(group.master().url()).expect("client").get_multiplexed_async_connection().await.expect("master");
    let mut scenarios = deployment("redis-sentinel", RedisHAConfig::sentinel(group.sentinel_hosts(), SENTINEL_MASTER), master, apply).await;
    let cluster = CLUSTER.get_or_init(RedisCluster::start);
    let nodes: Vec<String> = cluster.nodes.iter().map(RedisServer::url).collect();
    let raw = redis::cluster::ClusterClient::new(nodes).expect("cluster client").get_async_connection().await.expect("cluster");
    scenarios.extend(deployment("redis-cluster", RedisHAConfig::cluster(cluster.addresses()), raw, apply).await);
    scenarios
}

async fn deployment<C>(name: &'static str, topology: RedisHAConfig, raw: C, apply: &Arc<redis::Script>) -> Vec<Scenario>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let backend = RedisBackend::builder_for(topology).sealer(ring).connect().await.expect("connect");
    let integrations = Arc::new(RedisIntegrationStore::on(&backend));
    storage_testkit::bench::preload(integrations.as_ref(), &RedisGmailTokenStore::on(&backend)).await;
    let engine: &dyn Engine = &backend;
    let body = engine.table::<IntegrationConfig>().encode_body(&integration(0)).expect("encode");
    let get = raw_get(raw.clone(), backend.keys().clone(), "integrations", "key-", &["v", "c", "u", "e", "b", "i3", "i4"]);
    let set = raw_set(raw, &backend, apply, &IntegrationConfig::TABLE, "key-", integration_indexes, body);
    storage_testkit::bench::integration_scenarios(name, integrations, get, set)
}

/// The job-queue baselines: the queue's own scripts with the same `KEYS` and `ARGV` (one cycle;
/// a batch of 16), and a revocation lookup (the `HMGET` of the record's fields the engine sends).
/// A reset token's issue and use is measured on SQLite and PostgreSQL only.
fn token_baselines(backend: &RedisBackend) -> [Option<storage_testkit::bench::Op>; 4] {
    use storage_redis::scripts::{CLAIM_JOBS, ENQUEUE_JOB, JOBS_PRELUDE, PRELUDE, SETTLE_JOBS};
    use storage_testkit::bench::jobs;
    let script = |body: &str| Arc::new(redis::Script::new(&format!("{PRELUDE}{JOBS_PRELUDE}{body}")));
    let (enqueue, claim, settle) = (script(ENQUEUE_JOB), script(CLAIM_JOBS), script(SETTLE_JOBS));
    let prefix = format!("{}:{{jobs}}", backend.keys().namespace());
    let cycle_of = move |batch: u64| {
        let (conn, prefix, enqueue, claim, settle) =
            (backend.conn(), prefix.clone(), Arc::clone(&enqueue), Arc::clone(&claim), Arc::clone(&settle));
        op(move |i| {
            let (mut conn, prefix, enqueue, claim, settle) =
                (conn.clone(), prefix.clone(), Arc::clone(&enqueue), Arc::clone(&claim), Arc::clone(&settle));
            async move {
                let now = to_micros(Utc::now());
                let tenant = jobs::tenant_of(i);
                let mut invocation = enqueue.prepare_invoke();
                invocation.key(&prefix);
                for n in 0..batch {
                    invocation.arg(uuid::Uuid::now_v7().to_string()).arg(tenant.as_str()).arg(jobs::RAW_QUEUE).arg("noop");
                    invocation.arg(format!("{{\"n\":{i},\"k\":{n}}}")).arg(0).arg(5).arg(now).arg(now).arg("");
                }
                let _: Vec<Vec<String>> = invocation.invoke_async(&mut conn).await.expect("raw enqueue");
                let token = uuid::Uuid::new_v4().to_string();
                let mut claimed: Vec<Vec<String>> = Vec::new();
                while (claimed.len() as u64) < batch {
                    let now = to_micros(Utc::now());
                    let more: Vec<Vec<String>> = claim
                        .key(&prefix)
                        .arg(jobs::RAW_QUEUE)
                        .arg(now)
                        .arg(batch - claimed.len() as u64)
                        .arg(&token)
                        .arg(now + 60_000_000)
                        .arg("bench")
                        .invoke_async(&mut conn)
                        .await
                        .expect("raw claim");
                    claimed.extend(more);
                }
                let now = to_micros(Utc::now());
                let mut invocation = settle.prepare_invoke();
                invocation.key(&prefix).arg(now);
                for job in &claimed {
                    let attempts = job.chunks(2).find(|f| f[0] == "a").map_or("1".to_owned(), |f| f[1].clone());
                    let id = job.last().expect("id");
                    invocation.arg(id).arg("completed").arg(attempts).arg(now).arg("").arg("").arg("").arg("").arg(now);
                    invocation.arg(format!("={now}")).arg("running").arg(format!("={token}")).arg("");
                }
                let applied: Vec<i64> = invocation.invoke_async(&mut conn).await.expect("raw settle");
                assert!(applied.iter().all(|a| *a == 1));
            }
        })
    };
    let (cycle, batch) = (cycle_of(1), cycle_of(u64::from(jobs::BATCH)));
    let (conn, keys) = (backend.conn(), backend.keys().clone());
    let revoked = op(move |i| {
        let mut conn = conn.clone();
        let key = keys.record(&storage_core::TenantId::system(), "token_blacklist", &storage_core::token::hash_token(&jobs::revoked(i)));
        async move {
            let got: Vec<Option<String>> =
                redis::cmd("HMGET").arg(key).arg(&["v", "c", "u", "e", "b"]).query_async(&mut conn).await.expect("raw get");
            assert!(got[4].is_some());
        }
    });
    [Some(cycle), Some(batch), None, Some(revoked)]
}
