//! The benchmark runner every backend's `benches/stores.rs` uses.
//!
//! A [`Scenario`] is one store operation and its baseline: the same SQL or Redis commands issued
//! directly through the driver on the same pool or connection. Under `cargo bench` each side is
//! a criterion benchmark; under `cargo xtask bench` (`ARAGORA_BENCH_TABLE=quick|full`) the runner
//! measures both sides at 1, 4 and 16 concurrent tasks, alternating store and baseline rounds so
//! machine noise hits both alike, and prints one JSON line per row.

use chrono::TimeDelta;
use criterion::Criterion;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use storage_core::{
    Audit, AuditEntry, AuditQuery, AuditStore, BotInstallation, BotInstallationStore, BotInstallations, ClaimOutcome, DebateArchive,
    DebateArchiveStore, Direction, Engine, GmailTokenStore, InboxAccount, InboxMessage, IntegrationStore, Invoice, InvoiceStore, Invoices,
    Job, JobQueue, JobQueueStore, MessageFilter, NewArchivedDebate, NewEntry, NewJob, NewUser, PageRequest, PasswordResetStore,
    PasswordResets, Platform, Receipt, ReceiptQuery, ReceiptStore, Receipts, ResetRequest, Store, TokenBlacklist, TokenBlacklistStore,
    UnifiedInbox, UnifiedInboxStore, User, UserStore, Users, WebhookStore,
};

/// One asynchronous operation; the argument is a running counter, for distinct keys.
pub type Op = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Wraps an async closure as an [`Op`].
pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |i| Box::pin(f(i)))
}

/// A store operation beside its raw-driver baseline.
#[allow(missing_debug_implementations, reason = "holds closures")]
pub struct Scenario {
    /// e.g. `integration.get`.
    pub operation: &'static str,
    /// e.g. `sqlite`.
    pub backend: &'static str,
    /// Through the store.
    pub store: Op,
    /// The same work through the driver.
    pub raw: Op,
}

/// Throughput and latency of one side.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Completed operations per second.
    pub ops_per_sec: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Operations measured.
    pub ops: u64,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The operation.
    pub operation: String,
    /// The backend.
    pub backend: String,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Through the store.
    pub store: Stats,
    /// Through the driver.
    pub raw: Stats,
    /// `store.ops_per_sec / raw.ops_per_sec`.
    pub ratio: f64,
}

/// A reference figure from another tool (pgbench, redis-benchmark) measured in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    /// What was measured.
    pub name: String,
    /// Its backend.
    pub backend: String,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Operations (or transactions) per second.
    pub ops_per_sec: f64,
    /// Our comparable row: operation name.
    pub compare_to: String,
}

/// Durations of one table run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Time per measured round and side.
    pub round: Duration,
    /// Rounds per side (alternating).
    pub rounds: usize,
    /// Concurrency levels.
    pub concurrency: &'static [usize],
}

impl Plan {
    /// The plan `ARAGORA_BENCH_TABLE` asks for, if any.
    pub fn from_env() -> Option<Self> {
        match std::env::var("ARAGORA_BENCH_TABLE").ok()?.as_str() {
            "quick" => Some(Self { round: Duration::from_millis(250), rounds: 2, concurrency: &[1, 4, 16] }),
            _ => Some(Self { round: Duration::from_millis(1_000), rounds: 3, concurrency: &[1, 4, 16] }),
        }
    }
}

struct Sample {
    ops: u64,
    elapsed: Duration,
    latencies: Vec<u32>,
}

async fn run(op: &Op, concurrency: usize, duration: Duration, counter: &Arc<AtomicU64>) -> Sample {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, counter) = (Arc::clone(op), Arc::clone(counter));
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(4_096);
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    op(i).await;
                    latencies.push(t.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("bench task"));
    }
    Sample { ops: latencies.len() as u64, elapsed: start.elapsed(), latencies }
}

fn stats(samples: Vec<Sample>) -> Stats {
    let ops: u64 = samples.iter().map(|s| s.ops).sum();
    let secs: f64 = samples.iter().map(|s| s.elapsed.as_secs_f64()).sum();
    let mut latencies: Vec<u32> = samples.into_iter().flat_map(|s| s.latencies).collect();
    latencies.sort_unstable();
    let pick = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).map_or(0.0, |ns| f64::from(*ns) / 1_000.0);
    Stats { ops_per_sec: ops as f64 / secs.max(f64::EPSILON), p50_us: pick(0.50), p99_us: pick(0.99), ops }
}

/// Measures `scenario` at `concurrency`, store and baseline alternating.
pub async fn compare(scenario: &Scenario, concurrency: usize, plan: Plan, counter: &Arc<AtomicU64>) -> Row {
    let warmup = plan.round / 4;
    run(&scenario.store, concurrency, warmup, counter).await;
    run(&scenario.raw, concurrency, warmup, counter).await;
    let (mut store, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        store.push(run(&scenario.store, concurrency, plan.round, counter).await);
        raw.push(run(&scenario.raw, concurrency, plan.round, counter).await);
    }
    let (store, raw) = (stats(store), stats(raw));
    Row {
        operation: scenario.operation.to_owned(),
        backend: scenario.backend.to_owned(),
        concurrency,
        ratio: store.ops_per_sec / raw.ops_per_sec.max(f64::EPSILON),
        store,
        raw,
    }
}

/// The line prefix `cargo xtask bench` reads.
pub const ROW_PREFIX: &str = "ARAGORA_BENCH_ROW ";
/// The line prefix of reference figures.
pub const REFERENCE_PREFIX: &str = "ARAGORA_BENCH_REF ";
/// The line prefix of memory figures.
pub const MEMORY_PREFIX: &str = "ARAGORA_BENCH_MEM ";

/// Prints one JSON line for `cargo xtask bench`.
pub fn emit(prefix: &str, value: &impl Serialize) {
    println!("{prefix}{}", serde_json::to_string(value).expect("serializable"));
}

/// The entry point of a backend's `benches/stores.rs`: builds the scenarios on a runtime, then
/// either prints the table rows (under `cargo xtask bench`) or runs them as criterion benchmarks.
/// `references` runs after the table, for figures from other tools.
pub fn main<S, SF, R, RF>(scenarios: S, references: R)
where
    S: FnOnce() -> SF,
    SF: Future<Output = Vec<Scenario>>,
    R: FnOnce() -> RF,
    RF: Future<Output = Vec<Reference>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let scenarios = runtime.block_on(scenarios());
    let counter = Arc::new(AtomicU64::new(0));
    if let Some(plan) = Plan::from_env() {
        for scenario in &scenarios {
            // The job queue's rows are by worker count: the 1, 4 and 8 workers.
            let levels = if scenario.operation.starts_with("job.") { jobs::WORKERS } else { plan.concurrency };
            for &concurrency in levels {
                emit(ROW_PREFIX, &runtime.block_on(compare(scenario, concurrency, plan, &counter)));
            }
        }
        for reference in runtime.block_on(references()) {
            emit(REFERENCE_PREFIX, &reference);
        }
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    for scenario in &scenarios {
        for (side, op) in [("store", &scenario.store), ("raw", &scenario.raw)] {
            let counter = Arc::clone(&counter);
            criterion.bench_function(&format!("{}/{}/{side}", scenario.backend, scenario.operation), |b| {
                b.to_async(&runtime).iter(|| op(counter.fetch_add(1, Ordering::Relaxed)))
            });
        }
    }
    criterion.final_summary();
}

/// Peak resident memory of this process, in KiB (`VmHWM`), and the current one (`VmRSS`).
pub fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Runs a reference tool and returns its stdout.
pub fn tool_output(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Records the benchmarks preload and rewrite.
pub mod fixtures {
    use crate::tenant;
    use chrono::{TimeDelta, Utc};
    use storage_core::{GmailUserState, IntegrationConfig, TenantId};

    /// How many distinct records the read and write scenarios cycle through.
    pub const KEYS: u64 = 1_000;

    /// The benchmark tenant.
    pub fn bench_tenant() -> TenantId {
        tenant("bench")
    }

    /// The owner of integration `i % KEYS` (stable per key, as owners are in real use).
    pub fn owner(i: u64) -> String {
        format!("user-{:03}", (i % KEYS) % 97)
    }

    /// Integration `i % KEYS`, with a sealed credential and a setting.
    pub fn integration(i: u64) -> IntegrationConfig {
        IntegrationConfig::new(bench_tenant(), format!("key-{:04}", i % KEYS), "slack")
            .with_user(owner(i))
            .with_credential("token", "xoxb-bench-token-0123456789")
            .with_setting("channel", "#general")
    }

    /// Gmail state `i % KEYS`, with sealed tokens.
    pub fn gmail(i: u64) -> GmailUserState {
        GmailUserState::new(bench_tenant(), format!("user-{:04}", i % KEYS), format!("user{}@example.com", i % KEYS)).with_tokens(
            "ya29.bench-access-token",
            "1//bench-refresh-token",
            Utc::now() + TimeDelta::hours(1),
        )
    }
}

/// Parses a number that follows `label` in a tool's output (e.g. `tps = ` or `GET: `).
pub fn number_after(output: &str, label: &str) -> f64 {
    output
        .lines()
        .find_map(|line| line.split_once(label).and_then(|(_, rest)| rest.split_whitespace().next()?.trim_end_matches(',').parse().ok()))
        .unwrap_or_else(|| panic!("no `{label}` figure in:\n{output}"))
}

/// The raw-driver side of the five scenarios every backend runs.
#[allow(missing_debug_implementations, reason = "holds closures")]
pub struct Baselines {
    /// Beside `IntegrationStore::get`.
    pub integration_get: Op,
    /// Beside `IntegrationStore::set`.
    pub integration_set: Op,
    /// Beside `WebhookStore::try_claim` + `complete`.
    pub webhook_claim_complete: Op,
    /// Beside `GmailTokenStore::get`.
    pub gmail_token_get: Op,
    /// Beside `GmailTokenStore::set`.
    pub gmail_token_set: Op,
}

/// Fills the stores with the [`fixtures::KEYS`] records the read and write scenarios cycle through.
pub async fn preload(integrations: &dyn IntegrationStore, tokens: &dyn GmailTokenStore) {
    for i in 0..fixtures::KEYS {
        integrations.set(&fixtures::integration(i)).await.expect("preload");
        tokens.set(&fixtures::gmail(i)).await.expect("preload");
    }
}

/// The five scenarios: the same store calls on every backend, beside that backend's baselines.
pub fn scenarios(
    backend: &'static str,
    integrations: Arc<dyn IntegrationStore>,
    webhooks: Arc<dyn WebhookStore>,
    tokens: Arc<dyn GmailTokenStore>,
    raw: Baselines,
) -> Vec<Scenario> {
    use fixtures::{KEYS, bench_tenant, gmail};
    let tenant = bench_tenant();
    let (g1, g2) = (Arc::clone(&tokens), tokens);
    let (t2, t3) = (tenant.clone(), tenant);
    let mut all = integration_scenarios(backend, integrations, raw.integration_get, raw.integration_set);
    all.extend([
        Scenario {
            operation: "webhook.claim+complete",
            backend,
            store: op(move |i| {
                let (s, t) = (Arc::clone(&webhooks), t2.clone());
                async move {
                    let ClaimOutcome::Acquired(lease) = s.try_claim(&t, &format!("evt-{i}"), TimeDelta::seconds(30)).await.expect("claim")
                    else {
                        panic!("fresh event ids are always acquired")
                    };
                    s.complete(&t, &lease, "ok").await.expect("complete");
                }
            }),
            raw: raw.webhook_claim_complete,
        },
        Scenario {
            operation: "gmail_token.get",
            backend,
            store: op(move |i| {
                let (s, t) = (Arc::clone(&g1), t3.clone());
                async move {
                    s.get(&t, &format!("user-{:04}", i % KEYS)).await.expect("get").expect("present");
                }
            }),
            raw: raw.gmail_token_get,
        },
        Scenario {
            operation: "gmail_token.set",
            backend,
            store: op(move |i| {
                let s = Arc::clone(&g2);
                async move {
                    s.set(&gmail(i)).await.expect("set");
                }
            }),
            raw: raw.gmail_token_set,
        },
    ]);
    all
}

/// `integration.get` and `integration.set` beside their baselines: the benchmarks of a
/// deployment (a Redis Sentinel group, a Cluster) that only these measure.
pub fn integration_scenarios(backend: &'static str, integrations: Arc<dyn IntegrationStore>, raw_get: Op, raw_set: Op) -> Vec<Scenario> {
    use fixtures::{KEYS, bench_tenant, integration};
    let (tenant, i1, i2) = (bench_tenant(), Arc::clone(&integrations), integrations);
    vec![
        Scenario {
            operation: "integration.get",
            backend,
            store: op(move |i| {
                let (s, t) = (Arc::clone(&i1), tenant.clone());
                async move {
                    s.get(&t, &format!("key-{:04}", i % KEYS)).await.expect("get").expect("present");
                }
            }),
            raw: raw_get,
        },
        Scenario {
            operation: "integration.set",
            backend,
            store: op(move |i| {
                let s = Arc::clone(&i2);
                async move {
                    s.set(&integration(i)).await.expect("set");
                }
            }),
            raw: raw_set,
        },
    ]
}

/// The identity and audit scenarios' records.
pub mod identity {
    use crate::tenant;
    use storage_core::{AuditEvent, NewUser, TenantId};

    /// Preloaded users and audit entries.
    pub const KEYS: u64 = 1_000;
    /// Distinct actors of the preloaded audit entries.
    pub const ACTORS: u64 = 10;

    /// The email of preloaded user `i % KEYS`.
    pub fn email(i: u64) -> String {
        format!("user{:04}@bench.example", i % KEYS)
    }

    /// A new user; `i` must be fresh (the run's counter) so emails never repeat.
    pub fn new_user(prefix: &str, i: u64) -> NewUser {
        NewUser::new(format!("{prefix}-{i}@bench.example"), "Bench User").with_password("$argon2id$v=19$bench-hash", "bench-salt")
    }

    /// The tenant whose chain the audit scenarios append to.
    pub fn audit_tenant() -> TenantId {
        tenant("bench-audit")
    }

    /// The actor of entry `i`.
    pub fn actor(i: u64) -> String {
        format!("actor-{:02}", i % ACTORS)
    }

    /// Audit event `i`.
    pub fn event(i: u64) -> AuditEvent {
        AuditEvent::new("document.updated").actor(actor(i)).resource("document", format!("doc-{:04}", i % KEYS)).with("field", "title")
    }
}

/// The raw-driver side of the identity and audit scenarios.
#[allow(missing_debug_implementations, reason = "holds closures")]
pub struct IdentityBaselines {
    /// Beside `UserStore::get_user_by_email`: one select by email.
    pub user_get_by_email: Op,
    /// Beside `UserStore::create_user`: one insert of the same row.
    pub user_create: Op,
    /// Beside `AuditStore::log_event`: one insert of the same row (no chain).
    pub audit_log_event: Op,
    /// Beside the newest 50 entries of an actor: one select with the same order and limit.
    pub audit_newest_50_by_actor: Op,
}

/// The identity scenarios' stores, filled, and the encoded bodies their baselines write.
#[derive(Debug)]
pub struct IdentityFixture {
    /// The user store, with [`identity::KEYS`] users.
    pub users: Arc<Users>,
    /// The audit store, with [`identity::KEYS`] entries in [`identity::audit_tenant`].
    pub audit: Arc<Audit>,
    /// A user's body as the store encodes it, for the raw insert.
    pub user_body: String,
    /// An audit entry's body as the store encodes it, for the raw insert.
    pub entry_body: String,
}

/// Fills the user and audit stores of `engine` with the records the identity scenarios read.
pub async fn preload_identity(engine: &dyn Engine) -> IdentityFixture {
    let (users, audit) = (Arc::new(Users::on(engine)), Arc::new(Audit::on(engine)));
    for i in 0..identity::KEYS {
        users.create_user(NewUser::new(identity::email(i), "Bench User")).await.expect("preload user");
        audit.log_event(&identity::audit_tenant(), identity::event(i)).await.expect("preload audit");
    }
    let sample = users.create_user(identity::new_user("sample", 0)).await.expect("sample user");
    let user_body = engine.table::<User>().encode_body(&sample).expect("encode");
    let entry = audit.get_entry(&identity::audit_tenant(), 1).await.expect("entry").expect("present");
    let entry_body = engine.table::<AuditEntry>().encode_body(&entry).expect("encode");
    IdentityFixture { users, audit, user_body, entry_body }
}

/// An operation on a shared store: each call gets its own handle.
fn on<S, F, Fut>(store: &Arc<S>, f: F) -> Op
where
    S: ?Sized + Send + Sync + 'static,
    F: Fn(Arc<S>, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let store = Arc::clone(store);
    op(move |i| f(Arc::clone(&store), i))
}

/// The identity and audit scenarios, beside a backend's baselines.
pub fn identity_scenarios(
    backend: &'static str,
    users: Arc<dyn UserStore>,
    audit: Arc<dyn AuditStore>,
    raw: IdentityBaselines,
) -> Vec<Scenario> {
    let scenario = |operation, store, raw| Scenario { operation, backend, store, raw };
    vec![
        scenario(
            "user.get_by_email",
            on(&users, |s, i| async move {
                s.get_user_by_email(&identity::email(i)).await.expect("get").expect("present");
            }),
            raw.user_get_by_email,
        ),
        scenario(
            "user.create",
            on(&users, |s, i| async move {
                s.create_user(identity::new_user("store", i)).await.expect("create");
            }),
            raw.user_create,
        ),
        scenario(
            "audit.log_event",
            on(&audit, |s, i| async move {
                s.log_event(&identity::audit_tenant(), identity::event(i)).await.expect("log");
            }),
            raw.audit_log_event,
        ),
        scenario(
            "audit.newest_50_by_actor",
            on(&audit, |s, i| async move {
                let query = AuditQuery { actor_id: Some(identity::actor(i)), ..AuditQuery::default() };
                let page = s.get_log(&identity::audit_tenant(), &query, &PageRequest::first(50)).await.expect("query");
                assert_eq!(page.items.len(), 50);
            }),
            raw.audit_newest_50_by_actor,
        ),
    ]
}

/// The chat-platform scenario: an inbound event finds its installation by team id.
pub mod chat {
    use crate::tenant;
    use storage_core::TenantId;

    /// Preloaded installations, spread over ten tenants.
    pub const KEYS: u64 = 1_000;

    /// The Slack team id of installation `i % KEYS`.
    pub fn team(i: u64) -> String {
        format!("T{:05}", i % KEYS)
    }

    /// Its global key, as the raw baseline looks it up.
    pub fn install_key(i: u64) -> String {
        format!("slack:{}", team(i))
    }

    /// Its tenant.
    pub fn tenant_of(i: u64) -> TenantId {
        tenant(&format!("bench-chat-{}", i % 10))
    }
}

/// Fills the bot installation store of `engine` with [`chat::KEYS`] Slack installations.
pub async fn preload_chat(engine: &dyn Engine) -> Arc<BotInstallations> {
    let store = Arc::new(BotInstallations::on(engine));
    for i in 0..chat::KEYS {
        let installation = BotInstallation::new(
            chat::tenant_of(i),
            Platform::Slack,
            chat::team(i),
            "Bench workspace",
            format!("xoxb-bench-{i}"),
            chrono::Utc::now(),
        );
        store.save(&installation).await.expect("preload installation");
    }
    store
}

/// `bot.get_by_team_id` beside `raw`, one select by the installation's global key.
pub fn chat_scenario(backend: &'static str, store: Arc<BotInstallations>, raw: Op) -> Scenario {
    let store = on(&store, |s, i| async move {
        s.get(Platform::Slack, &chat::team(i)).await.expect("lookup").expect("installed");
    });
    Scenario { operation: "bot.get_by_team_id", backend, store, raw }
}

/// The inbox scenarios: a message upsert (a new message moving its account's counters) and a
/// full-text search over [`inbox::MESSAGES`] messages.
pub mod inbox {
    use crate::tenant;
    use chrono::{DateTime, Utc};
    use storage_core::{InboxMessage, Secret, TenantId};

    /// Preloaded messages, in one tenant.
    pub const MESSAGES: u64 = 100_000;
    /// Their accounts.
    pub const ACCOUNTS: u64 = 10;
    /// Distinct words of the snippets: each word is in about 400 messages.
    pub const VOCABULARY: u64 = 2_000;
    /// Results per search page.
    pub const PAGE: u32 = 20;

    /// The tenant.
    pub fn tenant_id() -> TenantId {
        tenant("bench-inbox")
    }

    /// Account `i % ACCOUNTS`.
    pub fn account(i: u64) -> String {
        format!("acct-{}", i % ACCOUNTS)
    }

    /// Message `n` of the preload (or, with another prefix, of the upsert scenario).
    pub fn message(prefix: &str, n: u64, at: DateTime<Utc>) -> InboxMessage {
        let words: Vec<String> =
            (1..=8_u64).map(|k| format!("w{}", (n.wrapping_mul(k).wrapping_mul(7_919).wrapping_add(k)) % VOCABULARY)).collect();
        let mut message =
            InboxMessage::new(tenant_id(), &account(n), &format!("{prefix}{n}"), &format!("Report {}", n % 5_000), "ops@bench.example", at);
        message.snippet = words.join(" ");
        message.body_preview = Secret::new(format!("body of {n}"));
        message.priority_score = (n % 1_000) as f64 / 1_000.0;
        message
    }

    /// The query of search `i`: one word of the vocabulary.
    pub fn query(i: u64) -> String {
        format!("w{}", i % VOCABULARY)
    }
}

/// Fills the unified inbox of `engine` with [`inbox::MESSAGES`] messages in [`inbox::ACCOUNTS`]
/// accounts, written in units of 500 (the accounts' counters set to match).
pub async fn preload_inbox(engine: &dyn Engine) -> Arc<UnifiedInbox> {
    let store = Arc::new(UnifiedInbox::on(engine));
    let now = chrono::Utc::now();
    for a in 0..inbox::ACCOUNTS {
        let account = InboxAccount::new(inbox::tenant_id(), &inbox::account(a), "gmail", &format!("acct{a}@bench.example"), now);
        store.save_account(&account).await.expect("preload account");
    }
    let messages = engine.table::<InboxMessage>();
    for start in (0..inbox::MESSAGES).step_by(500) {
        let mut unit = messages.unit(&inbox::tenant_id());
        for n in start..(start + 500).min(inbox::MESSAGES) {
            unit.insert(&messages, &inbox::message("m-", n, now)).expect("preload message");
        }
        unit.commit().await.expect("preload unit");
    }
    let per_account = inbox::MESSAGES / inbox::ACCOUNTS;
    for a in 0..inbox::ACCOUNTS {
        let counts = per_account as i64;
        store.increment_account_counts(&inbox::tenant_id(), &inbox::account(a), counts, counts, 0).await.expect("counters");
    }
    store
}

/// `inbox.save_message` (a new message; its account's counters in the same unit) and
/// `inbox.search` (one word, the best [`inbox::PAGE`] and the total) beside their baselines.
pub fn inbox_scenarios(backend: &'static str, store: &Arc<UnifiedInbox>, raw_save: Op, raw_search: Op) -> Vec<Scenario> {
    let save = on(store, |s, i| async move {
        let (_, inserted) =
            s.save_message(&inbox::message(&format!("new-{}-", std::process::id()), i, chrono::Utc::now())).await.expect("save");
        assert!(inserted);
    });
    let search = on(store, |s, i| async move {
        let (found, total) =
            s.search_messages(&inbox::tenant_id(), &inbox::query(i), &MessageFilter::default(), inbox::PAGE, 0).await.expect("search");
        assert!(total > 0 && !found.is_empty());
    });
    vec![
        Scenario { operation: "inbox.save_message", backend, store: save, raw: raw_save },
        Scenario { operation: "inbox.search_100k", backend, store: search, raw: raw_search },
    ]
}

/// The receipt and invoice scenarios: a receipt saved once, the newest receipts of a verdict,
/// and a payment posted to an invoice's ledger.
pub mod money {
    use crate::tenant;
    use chrono::{DateTime, TimeDelta, Utc};
    use storage_core::{Balance, Currency, Invoice, InvoiceStatus, LedgerEntry, Money, Receipt, TenantId};

    /// Preloaded receipts, in one tenant.
    pub const RECEIPTS: u64 = 10_000;
    /// Preloaded invoices, approved, in the store's tenant and again in the baseline's.
    pub const INVOICES: u64 = 1_000;
    /// Receipts per listed page.
    pub const PAGE: u32 = 50;
    /// The verdicts, in turn.
    pub const VERDICTS: [&str; 3] = ["APPROVED", "REJECTED", "NEEDS_REVIEW"];

    /// The store's tenant.
    pub fn tenant_id() -> TenantId {
        tenant("bench-money")
    }

    /// The baseline's tenant: its rows live apart, so the store's lists never meet them.
    pub fn raw_tenant_id() -> TenantId {
        tenant("bench-money-raw")
    }

    /// The verdict of receipt (or query) `n`.
    pub fn verdict(n: u64) -> &'static str {
        VERDICTS[(n % 3) as usize]
    }

    /// Receipt `n` (ids `{prefix}{n}`), issued `n` seconds before `at`, as the store saves it.
    pub fn receipt(tenant: &TenantId, prefix: &str, n: u64, at: DateTime<Utc>) -> Receipt {
        let data = serde_json::json!({"task": format!("review contract {n}"), "reasoning": "clause 4.2 caps liability"});
        let mut receipt = Receipt::new(tenant.clone(), format!("{prefix}{n}"), format!("g-{prefix}{n}"), verdict(n), data);
        receipt.confidence = (n % 100) as f64 / 100.0;
        receipt.issued_at = Some(storage_core::clock::truncate_micros(at - TimeDelta::seconds(n as i64)));
        receipt.retain_until = at + TimeDelta::days(2555);
        receipt.checksum = receipt.compute_checksum();
        receipt
    }

    /// Invoice `i % INVOICES` of `tenant`: approved, owing far more than any run pays.
    pub fn invoice(tenant: &TenantId, i: u64) -> Invoice {
        let usd = Currency::from_code("USD").expect("usd");
        let total = Money::from_minor(1_000_000_000_000, usd).expect("total");
        let mut invoice = Invoice::new(tenant.clone(), invoice_id(i), "v-bench", invoice_id(i), total, Money::zero(usd), Utc::now());
        invoice.balance = Balance::new(total).expect("balance");
        invoice.status = InvoiceStatus::Approved;
        invoice
    }

    /// The id of invoice `i % INVOICES`.
    pub fn invoice_id(i: u64) -> String {
        format!("inv-{}", i % INVOICES)
    }

    /// A payment of a cent to invoice `i`, as the ledger stores it (the baselines write its body).
    pub fn payment(tenant: &TenantId, i: u64) -> LedgerEntry<Invoice> {
        let entry = serde_json::json!({
            "tenant": tenant.as_str(), "bill_id": invoice_id(i), "key": "raw", "kind": "payment", "amount": cent(),
            "at": Utc::now(), "method": null, "reference": null,
        });
        serde_json::from_value(entry).expect("a ledger entry")
    }

    /// A cent.
    pub fn cent() -> Money {
        Money::from_minor(1, Currency::from_code("USD").expect("usd")).expect("cent")
    }
}

/// Fills `engine` with [`money::RECEIPTS`] receipts and [`money::INVOICES`] approved invoices in
/// the store's tenant (and the same invoices in the baseline's), written in units of 500.
pub async fn preload_money(engine: &dyn Engine) -> (Arc<Receipts>, Arc<Invoices>) {
    let now = chrono::Utc::now();
    let receipts = engine.table::<Receipt>();
    for start in (0..money::RECEIPTS).step_by(500) {
        let mut unit = receipts.unit(&money::tenant_id());
        for n in start..(start + 500).min(money::RECEIPTS) {
            unit.insert(&receipts, &money::receipt(&money::tenant_id(), "r-", n, now)).expect("preload receipt");
        }
        unit.commit().await.expect("preload receipts");
    }
    let invoices = engine.table::<Invoice>();
    for tenant in [money::tenant_id(), money::raw_tenant_id()] {
        for start in (0..money::INVOICES).step_by(500) {
            let mut unit = invoices.unit(&tenant);
            for i in start..(start + 500).min(money::INVOICES) {
                unit.insert(&invoices, &money::invoice(&tenant, i)).expect("preload invoice");
            }
            unit.commit().await.expect("preload invoices");
        }
    }
    (Arc::new(Receipts::on(engine)), Arc::new(Invoices::on(engine)))
}

/// `receipt.save` (a new receipt, written once), `receipt.newest_50_by_verdict` and
/// `invoice.payment` (a payment under a new key: the entry and the invoice's balance in one
/// unit) beside their baselines; a backend without a baseline for one leaves its row out.
pub fn money_scenarios(backend: &'static str, receipts: &Arc<Receipts>, invoices: &Arc<Invoices>, raw: [Option<Op>; 3]) -> Vec<Scenario> {
    let [raw_save, raw_query, raw_pay] = raw;
    let save = on(receipts, |s, i| async move {
        s.save(&money::receipt(&money::tenant_id(), &format!("new-{}-", std::process::id()), i, chrono::Utc::now())).await.expect("save");
    });
    let query = on(receipts, |s, i| async move {
        let query = ReceiptQuery { verdict: Some(money::verdict(i).to_owned()), direction: Direction::Desc, ..ReceiptQuery::default() };
        let page = s.list(&money::tenant_id(), &query, &PageRequest::first(money::PAGE)).await.expect("list");
        assert_eq!(page.items.len(), money::PAGE as usize);
    });
    let pay = on(invoices, |s, i| async move {
        let entry = NewEntry::payment(format!("k-{}-{i}", std::process::id()), money::cent(), chrono::Utc::now());
        assert!(s.record_payment(&money::tenant_id(), &money::invoice_id(i), &entry).await.expect("pay").applied);
    });
    [("receipt.save", save, raw_save), ("receipt.newest_50_by_verdict", query, raw_query), ("invoice.payment", pay, raw_pay)]
        .into_iter()
        .filter_map(|(operation, store, raw)| raw.map(|raw| Scenario { operation, backend, store, raw }))
        .collect()
}

/// The job-queue and bearer-token benchmarks' fixtures (issue 13).
pub mod jobs {
    use crate::tenant;
    use storage_core::TenantId;

    /// The queue the store's jobs go to; the baseline's go to [`RAW_QUEUE`].
    pub const QUEUE: &str = "bench";
    /// The baseline's queue.
    pub const RAW_QUEUE: &str = "bench-raw";
    /// Jobs per batch in `job.cycle_batch16`.
    pub const BATCH: u32 = 16;
    /// Tenants the jobs are spread over (the claim is fair between them).
    pub const TENANTS: u64 = 8;
    /// Preloaded revocations.
    pub const REVOCATIONS: u64 = 10_000;
    /// Worker counts of the `job.*` rows (the 1, 4 and 8 workers).
    pub const WORKERS: &[usize] = &[1, 4, 8];

    /// The tenant of job `n`.
    pub fn tenant_of(n: u64) -> TenantId {
        tenant(&format!("bench-jobs-{}", n % TENANTS))
    }

    /// Revoked token `n`.
    pub fn revoked(n: u64) -> String {
        format!("eyJhbGciOiJIUzI1NiJ9.bench-{}.sig", n % REVOCATIONS)
    }

    /// The body of a reset token as the store encodes it, for the baselines' inserts.
    pub fn reset_token_body(engine: &dyn storage_core::Engine) -> String {
        let now = chrono::Utc::now();
        let sample = storage_core::stores::password_reset::ResetToken {
            token_digest: storage_core::token::hash_token("rst_raw"),
            email: "raw@example.com".to_owned(),
            expires_at: now + chrono::TimeDelta::hours(1),
            uses: 0,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        engine.table::<storage_core::stores::password_reset::ResetToken>().encode_body(&sample).expect("encode")
    }
}

/// Preloads the revocations `blacklist.is_revoked` looks up.
pub async fn preload_tokens(engine: &dyn Engine) -> (Arc<JobQueue>, Arc<PasswordResets>, Arc<TokenBlacklist>) {
    let blacklist = TokenBlacklist::on(engine);
    let until = chrono::Utc::now() + TimeDelta::hours(6);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let blacklist = blacklist.clone();
            tokio::spawn(async move {
                for n in (w..jobs::REVOCATIONS).step_by(8) {
                    blacklist.revoke(&jobs::revoked(n), until).await.expect("preload revocation");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("preload");
    }
    (Arc::new(JobQueue::on(engine)), Arc::new(PasswordResets::on(engine)), Arc::new(blacklist))
}

/// Claims until `want` jobs of `queue` are claimed (other workers may take the ones this one
/// enqueued; there are always as many waiting as enqueued and not yet claimed).
async fn claim_n(queue: &JobQueue, want: u32) -> Vec<Job> {
    let mut claimed = Vec::with_capacity(want as usize);
    while claimed.len() < want as usize {
        let left = want - claimed.len() as u32;
        let batch = queue.claim_batch(jobs::QUEUE, "bench", TimeDelta::seconds(60), left).await.expect("claim");
        if batch.is_empty() {
            tokio::task::yield_now().await;
        }
        claimed.extend(batch);
    }
    claimed
}

/// `job.cycle` (a no-op job enqueued, claimed and completed, one at a time) and
/// `job.cycle_batch16` (16 jobs of one tenant enqueued, claimed and completed, each step in one
/// batch; one operation is 16 jobs), `password_reset.issue_consume` (a token issued, then used) and
/// `blacklist.is_revoked` (of 10,000 revocations) beside a backend's baselines, in that order; a
/// backend without a baseline for one leaves its row out.
pub fn token_scenarios(
    backend: &'static str,
    (queue, resets, blacklist): &(Arc<JobQueue>, Arc<PasswordResets>, Arc<TokenBlacklist>),
    raw: [Option<Op>; 4],
) -> Vec<Scenario> {
    let cycle = on(queue, |q, i| async move {
        q.enqueue(&jobs::tenant_of(i), NewJob::new(jobs::QUEUE, "noop", serde_json::json!({ "n": i }))).await.expect("enqueue");
        let job = claim_n(&q, 1).await.pop().expect("claimed");
        q.complete(&job, None).await.expect("complete");
    });
    let batch = on(queue, |q, i| async move {
        let batch = (0..u64::from(jobs::BATCH)).map(|n| NewJob::new(jobs::QUEUE, "noop", serde_json::json!({ "n": i, "k": n }))).collect();
        q.enqueue_batch(&jobs::tenant_of(i), batch).await.expect("enqueue");
        let claimed = claim_n(&q, jobs::BATCH).await;
        assert!(q.complete_batch(&claimed).await.expect("complete").iter().all(Result::is_ok));
    });
    let reset = on(resets, |r, i| async move {
        let email = format!("bench-{}-{i}@example.com", std::process::id());
        let ResetRequest::Issued { token, .. } = r.create_token(&email).await.expect("create") else { panic!("rate-limited") };
        assert_eq!(r.consume_token(token.expose()).await.expect("consume"), email);
    });
    let revoked = on(blacklist, |b, i| async move {
        assert!(b.is_revoked(&jobs::revoked(i)).await.expect("is_revoked"));
    });
    let [raw_cycle, raw_batch, raw_reset, raw_revoked] = raw;
    [
        ("job.cycle", cycle, raw_cycle),
        ("job.cycle_batch16", batch, raw_batch),
        ("password_reset.issue_consume", reset, raw_reset),
        ("blacklist.is_revoked", revoked, raw_revoked),
    ]
    .into_iter()
    .filter_map(|(operation, store, raw)| raw.map(|raw| Scenario { operation, backend, store, raw }))
    .collect()
}

/// Fixtures of the debate archive benchmark.
pub mod archive {
    use crate::tenant;
    use storage_core::TenantId;

    /// Preloaded public debates.
    pub const DEBATES: u64 = 1_000;

    /// Their organisation.
    pub fn tenant_id() -> TenantId {
        tenant("bench-archive")
    }
}

/// Archives [`archive::DEBATES`] public debates; the store and their slugs, in order.
pub async fn preload_archive(engine: &dyn Engine) -> (Arc<DebateArchive>, Arc<Vec<String>>) {
    let store = DebateArchive::on(engine);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut slugs = Vec::new();
                for n in (w..archive::DEBATES).step_by(8) {
                    let debate = NewArchivedDebate {
                        debate_id: format!("debate-{n}"),
                        task: format!("Benchmark topic {n} for the archive"),
                        agents: vec!["claude".to_owned(), "gpt".to_owned()],
                        artifact: serde_json::json!({ "rounds": 3, "summary": format!("summary of debate {n}") }),
                        consensus_reached: true,
                        confidence: Some(0.8),
                        is_public: true,
                    };
                    slugs.push((n, store.save(&archive::tenant_id(), debate).await.expect("preload debate").slug));
                }
                slugs
            })
        })
        .collect();
    let mut slugs = Vec::new();
    for task in tasks {
        slugs.extend(task.await.expect("preload"));
    }
    slugs.sort_unstable();
    (Arc::new(store), Arc::new(slugs.into_iter().map(|(_, slug)| slug).collect()))
}

/// `archive.open_permalink` (a public debate found by its slug across tenants, its view counted)
/// beside a backend's baseline, which gets the same slugs.
pub fn archive_scenario(backend: &'static str, (store, slugs): &(Arc<DebateArchive>, Arc<Vec<String>>), raw: Op) -> Scenario {
    let slugs = Arc::clone(slugs);
    let open = on(store, move |a, i| {
        let slug = slugs[(i % archive::DEBATES) as usize].clone();
        async move {
            assert!(a.open_permalink(&slug, None).await.expect("open").is_some());
        }
    });
    Scenario { operation: "archive.open_permalink", backend, store: open, raw }
}
