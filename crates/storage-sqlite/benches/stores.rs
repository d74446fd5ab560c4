//! Store operations on SQLite beside the floor: the same SQL through rusqlite, prepared once and
//! called synchronously on the benchmark's own thread (no async hand-off, no group commit, no
//! sealing, no JSON), each write in its own transaction — the library's best case. The floor has
//! its own connections on the same file: one writer and as many readers as the store.
//!
//! Scenarios run twice for writes: with `synchronous=NORMAL` (the default) and with `FULL`, where
//! every commit waits for the disk and group commit shares one fsync between concurrent writers.

use chrono::{TimeDelta, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use storage_core::Store;
use storage_core::clock::to_micros;
use storage_core::{Engine, GmailUserState, InboxAccount, InboxMessage, IntegrationConfig, Invoice, LedgerEntry, Receipt};
use storage_core::{IntegrationStore, SqliteSynchronous};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_sqlite::SqliteBackend;
use storage_sqlite::{SQLiteGmailTokenStore, SQLiteIntegrationStore, SQLiteWebhookStore};
use storage_testkit::bench::fixtures::{KEYS, bench_tenant, gmail, integration, owner};
use storage_testkit::bench::{Baselines, IdentityBaselines, Op, Reference, Scenario, chat, identity, inbox, money, op};

const GET: &str = "SELECT tenant, id, version, created_at, updated_at, {c}body FROM {t} WHERE tenant = ?1 AND id = ?2";
const UPSERT_INTEGRATION: &str = "INSERT INTO integrations (tenant, id, user_id, integration_type, messages_sent, errors_24h, version, created_at, updated_at, body) \
    VALUES (?1, ?2, ?3, ?4, 0, 0, 1, ?5, ?6, ?7) ON CONFLICT (tenant, id) DO UPDATE SET user_id = excluded.user_id, \
    integration_type = excluded.integration_type, messages_sent = excluded.messages_sent, errors_24h = excluded.errors_24h, \
    version = integrations.version + 1, updated_at = excluded.updated_at, body = excluded.body \
    RETURNING version, created_at";
const UPSERT_GMAIL: &str = "INSERT INTO gmail_tokens (tenant, id, email_address, token_expiry, version, created_at, updated_at, body) \
    VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7) ON CONFLICT (tenant, id) DO UPDATE SET email_address = excluded.email_address, \
    token_expiry = excluded.token_expiry, version = gmail_tokens.version + 1, updated_at = excluded.updated_at, body = excluded.body \
    RETURNING version, created_at";
const CLAIM: &str = "INSERT INTO webhook_events (tenant, event_id, state, token, expires_at) VALUES (?1, ?2, 'in_flight', ?3, ?4) \
    ON CONFLICT (tenant, event_id) DO UPDATE SET state = 'in_flight', token = excluded.token, result = NULL, completed_at = NULL, \
    expires_at = excluded.expires_at WHERE webhook_events.expires_at <= ?5 RETURNING token";
const COMPLETE: &str = "UPDATE webhook_events SET state = 'done', token = NULL, result = ?1, completed_at = ?2, expires_at = ?3 \
    WHERE tenant = ?4 AND event_id = ?5 AND state = 'in_flight' AND token = ?6";

const USER_BY_EMAIL: &str = "SELECT tenant, id, version, created_at, updated_at, coalesce(token_version, 0), body FROM users \
    WHERE tenant = '_system' AND email = ?1";
const INSERT_USER: &str = "INSERT INTO users (tenant, id, email, is_active, email_verified, token_version, version, created_at, updated_at, body) \
    VALUES ('_system', ?1, ?2, 1, 0, 0, 1, ?3, ?3, ?4)";
const INSERT_ENTRY: &str = "INSERT INTO audit_log (tenant, id, seq, at, actor_id, action, resource_type, resource_id, security, version, \
    created_at, updated_at, body) VALUES ('bench-raw', ?1, ?2, ?3, ?4, 'document.updated', 'document', ?5, 0, 1, ?3, ?3, ?6)";
const NEWEST_BY_ACTOR: &str = "SELECT tenant, id, version, created_at, updated_at, body FROM audit_log \
    WHERE tenant = ?1 AND actor_id = ?2 AND seq IS NOT NULL ORDER BY seq DESC, id DESC LIMIT 51";

const INSTALLATION_BY_KEY: &str = "SELECT tenant, id, version, created_at, updated_at, body FROM bot_installations WHERE install_key = ?1";

/// The baseline's messages live apart, so the store's searches never meet their bodies (a body
/// names its record; the baseline reuses one).
const RAW_MESSAGES_TENANT: &str = "bench-inbox-raw";
const INSERT_MESSAGE: &str = "INSERT INTO inbox_messages (tenant, id, account_id, priority_tier, is_read, rank, received_at, version, \
    created_at, updated_at, body, search) VALUES (?1, ?2, ?3, 'low', 0, ?4, ?5, 1, ?5, ?5, ?6, ?7) ON CONFLICT (tenant, id) DO NOTHING";
const COUNT_IN_ACCOUNT: &str = "UPDATE inbox_accounts SET version = version + 1, updated_at = ?1, body = ?2 WHERE tenant = ?3 AND id = ?4";
const SEARCH: &str = "SELECT tenant, id, version, created_at, updated_at, body FROM inbox_messages_fts CROSS JOIN inbox_messages \
    ON inbox_messages.seq = inbox_messages_fts.rowid WHERE inbox_messages_fts MATCH ?1 AND tenant = ?2 \
    ORDER BY bm25(inbox_messages_fts), id LIMIT 20";
const SEARCH_COUNT: &str = "SELECT count(*) FROM inbox_messages_fts CROSS JOIN inbox_messages \
    ON inbox_messages.seq = inbox_messages_fts.rowid WHERE inbox_messages_fts MATCH ?1 AND tenant = ?2";

const INSERT_RECEIPT: &str = "INSERT INTO decision_receipts (tenant, id, gauntlet_id, verdict, risk_level, issued_at, confidence, risk_score, \
    retain_until, legal_hold, version, created_at, updated_at, body, search) VALUES (?1, ?2, ?3, ?4, 'MEDIUM', ?5, ?6, 0, ?7, 0, 1, ?5, ?5, ?8, ?9)";
const NEWEST_BY_VERDICT: &str = "SELECT tenant, id, version, created_at, updated_at, body FROM decision_receipts \
    WHERE tenant = ?1 AND verdict = ?2 AND issued_at IS NOT NULL AND (expires_at IS NULL OR expires_at > ?3) \
    ORDER BY issued_at DESC, id DESC LIMIT 51";
const INVOICE_BODY: &str = "SELECT version, body FROM ap_invoices WHERE tenant = ?1 AND id = ?2";
const INSERT_PAYMENT: &str = "INSERT INTO ap_payments (tenant, id, bill_id, at, version, created_at, updated_at, body) \
    VALUES (?1, ?2, ?3, ?4, 1, ?4, ?4, ?5)";
const SETTLE_INVOICE: &str = "UPDATE ap_invoices SET status = 'partially_paid', version = version + 1, updated_at = ?1, body = ?2 \
    WHERE tenant = ?3 AND id = ?4 AND version = ?5";

/// The floor's connections: synchronous rusqlite, each behind a mutex (uncontended at 1 task).
struct Floor {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Floor {
    fn open(path: &Path, synchronous: &str, readers: usize) -> Arc<Self> {
        let open = |flags| {
            let conn = Connection::open_with_flags(path, flags).expect("floor connection");
            conn.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
            conn
        };
        let writer = open(OpenFlags::SQLITE_OPEN_READ_WRITE);
        writer.pragma_update(None, "synchronous", synchronous).expect("synchronous");
        let readers = (0..readers).map(|_| Mutex::new(open(OpenFlags::SQLITE_OPEN_READ_ONLY))).collect();
        Arc::new(Self { writer: Mutex::new(writer), readers, next: AtomicUsize::new(0) })
    }

    fn read<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        f(&self.readers[i].lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&self.writer.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn get(floor: &Arc<Floor>, table: &str, prefix: &'static str, counters: &str) -> Op {
    let sql: &'static str = Box::leak(GET.replace("{t}", table).replace("{c}", counters).into_boxed_str());
    let (floor, tenant) = (Arc::clone(floor), bench_tenant());
    op(move |i| {
        let (floor, tenant) = (Arc::clone(&floor), tenant.clone());
        async move {
            floor.read(|conn| {
                let mut statement = conn.prepare_cached(sql).expect("prepare");
                let row: (String, String, i64, i64, i64, String) = statement
                    .query_row((tenant.as_str(), format!("{prefix}{:04}", i % KEYS)), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(r.as_ref().column_count() - 1)?))
                    })
                    .expect("floor get");
                std::hint::black_box(row);
            })
        }
    })
}

fn upsert(floor: &Arc<Floor>, sql: &'static str, prefix: &'static str, index: fn(u64) -> (Value, Value), body: String) -> Op {
    let (floor, tenant) = (Arc::clone(floor), bench_tenant());
    op(move |i| {
        let (floor, tenant, body) = (Arc::clone(&floor), tenant.clone(), body.clone());
        async move {
            let now = to_micros(Utc::now());
            let (a, b) = index(i);
            floor.write(|conn| {
                let mut statement = conn.prepare_cached(sql).expect("prepare");
                let stored: (i64, i64) = statement
                    .query_row((tenant.as_str(), format!("{prefix}{:04}", i % KEYS), a, b, now, now, body), |r| Ok((r.get(0)?, r.get(1)?)))
                    .expect("floor upsert");
                std::hint::black_box(stored);
            })
        }
    })
}

fn claim_complete(floor: &Arc<Floor>) -> Op {
    let (floor, tenant) = (Arc::clone(floor), bench_tenant());
    op(move |i| {
        let (floor, tenant) = (Arc::clone(&floor), tenant.clone());
        async move {
            let (event, token, now) = (format!("raw-{i}"), uuid::Uuid::new_v4().to_string(), Utc::now());
            floor.write(|conn| {
                let mut claim = conn.prepare_cached(CLAIM).expect("prepare");
                claim
                    .query_row((tenant.as_str(), &event, &token, to_micros(now + TimeDelta::seconds(30)), to_micros(now)), |r| {
                        r.get::<_, String>(0)
                    })
                    .expect("floor claim");
            });
            floor.write(|conn| {
                let mut complete = conn.prepare_cached(COMPLETE).expect("prepare");
                let args = ("ok", to_micros(now), to_micros(now + TimeDelta::hours(24)), tenant.as_str(), &event, &token);
                assert_eq!(complete.execute(args).expect("floor complete"), 1);
            });
        }
    })
}

/// The identity and audit baselines: the statements the stores issue, through the floor.
fn identity_baselines(floor: &Arc<Floor>, user_body: String, entry_body: String) -> IdentityBaselines {
    let (f1, f2, f3, f4) = (Arc::clone(floor), Arc::clone(floor), Arc::clone(floor), Arc::clone(floor));
    IdentityBaselines {
        user_get_by_email: op(move |i| {
            let floor = Arc::clone(&f1);
            async move {
                floor.read(|conn| {
                    let mut statement = conn.prepare_cached(USER_BY_EMAIL).expect("prepare");
                    let row: (String, String, i64, String) = statement
                        .query_row([identity::email(i)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(6)?)))
                        .expect("floor user");
                    std::hint::black_box(row);
                })
            }
        }),
        user_create: op(move |i| {
            let (floor, body) = (Arc::clone(&f2), user_body.clone());
            async move {
                let now = to_micros(Utc::now());
                floor.write(|conn| {
                    let mut statement = conn.prepare_cached(INSERT_USER).expect("prepare");
                    let email = format!("raw-{i}@bench.example");
                    statement.execute((uuid::Uuid::new_v4().to_string(), email, now, body)).expect("floor insert user");
                })
            }
        }),
        audit_log_event: op(move |i| {
            let (floor, body) = (Arc::clone(&f3), entry_body.clone());
            async move {
                let now = to_micros(Utc::now());
                floor.write(|conn| {
                    let mut statement = conn.prepare_cached(INSERT_ENTRY).expect("prepare");
                    let seq = i64::try_from(i).expect("seq");
                    let args = (format!("{i:020}"), seq, now, identity::actor(i), format!("doc-{:04}", i % KEYS), body);
                    statement.execute(args).expect("floor insert entry");
                })
            }
        }),
        audit_newest_50_by_actor: op(move |i| {
            let floor = Arc::clone(&f4);
            async move {
                floor.read(|conn| {
                    let mut statement = conn.prepare_cached(NEWEST_BY_ACTOR).expect("prepare");
                    let tenant = identity::audit_tenant();
                    let rows: Vec<(String, String, i64, String)> = statement
                        .query_map((tenant.as_str(), identity::actor(i)), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(5)?)))
                        .expect("floor query")
                        .collect::<rusqlite::Result<_>>()
                        .expect("rows");
                    assert_eq!(rows.len(), 51);
                })
            }
        }),
    }
}

/// The inbox baselines: a message insert and its account's update in one transaction; a search
/// page and its count, by the statements the store issues.
fn inbox_baselines(floor: &Arc<Floor>, engine: &dyn Engine) -> (Op, Op) {
    let sample = inbox::message("raw-", 0, Utc::now());
    let message_body = engine.table::<InboxMessage>().encode_body(&sample).expect("encode");
    // One body per account: a body names its record, so each account keeps its own.
    let account_bodies: Arc<Vec<String>> = Arc::new(
        (0..inbox::ACCOUNTS)
            .map(|a| {
                let account =
                    InboxAccount::new(inbox::tenant_id(), &inbox::account(a), "gmail", &format!("acct{a}@bench.example"), Utc::now());
                engine.table::<InboxAccount>().encode_body(&account).expect("encode")
            })
            .collect(),
    );
    let (f1, f2) = (Arc::clone(floor), Arc::clone(floor));
    let save = op(move |i| {
        let (floor, message_body) = (Arc::clone(&f1), message_body.clone());
        let account_body = account_bodies[(i % inbox::ACCOUNTS) as usize].clone();
        async move {
            let (now, message) = (to_micros(Utc::now()), inbox::message(&format!("raw-{}-", std::process::id()), i, Utc::now()));
            let tenant = inbox::tenant_id();
            floor.write(|conn| {
                let tx = conn.unchecked_transaction().expect("begin");
                let args =
                    (RAW_MESSAGES_TENANT, message.message_id(), &message.account_id, i64::try_from(i).expect("rank"), now, message_body);
                let search = storage_core::fts::searchable(&storage_core::Document::search_text(&message));
                let inserted =
                    tx.prepare_cached(INSERT_MESSAGE).expect("prepare").execute((args.0, args.1, args.2, args.3, args.4, args.5, search));
                assert_eq!(inserted.expect("floor insert message"), 1);
                let counted = tx.prepare_cached(COUNT_IN_ACCOUNT).expect("prepare").execute((
                    now,
                    account_body,
                    tenant.as_str(),
                    &message.account_id,
                ));
                assert_eq!(counted.expect("floor count"), 1);
                tx.commit().expect("commit");
            })
        }
    });
    let search = op(move |i| {
        let floor = Arc::clone(&f2);
        async move {
            let (query, tenant) = (format!("\"{}\"", inbox::query(i)), inbox::tenant_id());
            floor.read(|conn| {
                let rows: Vec<(String, String, i64, String)> = conn
                    .prepare_cached(SEARCH)
                    .expect("prepare")
                    .query_map((&query, tenant.as_str()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(5)?)))
                    .expect("floor search")
                    .collect::<rusqlite::Result<_>>()
                    .expect("rows");
                let total: i64 =
                    conn.prepare_cached(SEARCH_COUNT).expect("prepare").query_row((&query, tenant.as_str()), |r| r.get(0)).expect("count");
                assert!(total > 0 && !rows.is_empty());
            })
        }
    });
    (save, search)
}

/// The receipt and invoice baselines: a receipt insert; the newest page of a verdict by the
/// statement the store issues; a payment as a careful hand-written ledger does it — in one
/// transaction, read the invoice, insert the payment, write the invoice back at its version.
fn money_baselines(floor: &Arc<Floor>, engine: &dyn Engine) -> [Option<Op>; 3] {
    let raw = money::raw_tenant_id();
    let sample = money::receipt(&raw, "raw-", 0, Utc::now());
    let receipt_body = engine.table::<Receipt>().encode_body(&sample).expect("encode");
    let search = storage_core::fts::searchable(&storage_core::Document::search_text(&sample));
    let payment = money::payment(&raw, 0);
    let payment_body = engine.table::<LedgerEntry<Invoice>>().encode_body(&payment).expect("encode");
    let (f1, f2, f3) = (Arc::clone(floor), Arc::clone(floor), Arc::clone(floor));
    let save = op(move |i| {
        let (floor, body, search) = (Arc::clone(&f1), receipt_body.clone(), search.clone());
        async move {
            let now = to_micros(Utc::now());
            let id = format!("raw-{}-{i}", std::process::id());
            floor.write(|conn| {
                let args = (
                    money::raw_tenant_id().as_str().to_owned(),
                    &id,
                    format!("g-{id}"),
                    money::verdict(i),
                    now,
                    500,
                    now + 1,
                    body,
                    search,
                );
                let inserted = conn.prepare_cached(INSERT_RECEIPT).expect("prepare").execute(args);
                assert_eq!(inserted.expect("floor insert receipt"), 1);
            })
        }
    });
    let query = op(move |i| {
        let floor = Arc::clone(&f2);
        async move {
            let tenant = money::tenant_id();
            floor.read(|conn| {
                let rows: Vec<(String, String, i64, String)> = conn
                    .prepare_cached(NEWEST_BY_VERDICT)
                    .expect("prepare")
                    .query_map((tenant.as_str(), money::verdict(i), to_micros(Utc::now())), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(5)?))
                    })
                    .expect("floor list")
                    .collect::<rusqlite::Result<_>>()
                    .expect("rows");
                assert_eq!(rows.len(), 51);
            })
        }
    });
    let pay = op(move |i| {
        let (floor, payment_body) = (Arc::clone(&f3), payment_body.clone());
        async move {
            let (tenant, invoice, now) = (money::raw_tenant_id(), money::invoice_id(i), to_micros(Utc::now()));
            floor.write(|conn| {
                let tx = conn.unchecked_transaction().expect("begin");
                let (version, body): (i64, String) = tx
                    .prepare_cached(INVOICE_BODY)
                    .expect("prepare")
                    .query_row((tenant.as_str(), &invoice), |r| Ok((r.get(0)?, r.get(1)?)))
                    .expect("read");
                let key = format!("{}:{invoice}raw-{}-{i}", invoice.len(), std::process::id());
                let inserted =
                    tx.prepare_cached(INSERT_PAYMENT).expect("prepare").execute((tenant.as_str(), key, &invoice, now, payment_body));
                assert_eq!(inserted.expect("floor insert payment"), 1);
                let settled = tx.prepare_cached(SETTLE_INVOICE).expect("prepare").execute((now, body, tenant.as_str(), &invoice, version));
                assert_eq!(settled.expect("floor settle"), 1);
                tx.commit().expect("commit");
            })
        }
    });
    [Some(save), Some(query), Some(pay)]
}

async fn open(path: &Path, synchronous: SqliteSynchronous, ring: &Arc<KeyRing>) -> SqliteBackend {
    SqliteBackend::builder(path).sealer(ring.clone()).synchronous(synchronous).readers(4).connect().await.expect("open")
}

async fn scenarios() -> Vec<Scenario> {
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let path = dir.path().join("bench.db");
    let backend = open(&path, SqliteSynchronous::Normal, &ring).await;
    let (integrations, webhooks, tokens) = (
        Arc::new(SQLiteIntegrationStore::on(&backend)),
        Arc::new(SQLiteWebhookStore::on(&backend)),
        Arc::new(SQLiteGmailTokenStore::on(&backend)),
    );
    storage_testkit::bench::preload(integrations.as_ref(), tokens.as_ref()).await;
    let floor = Floor::open(&path, "NORMAL", 4);
    let engine: &dyn Engine = &backend;
    let integration_body = engine.table::<IntegrationConfig>().encode_body(&integration(0)).expect("encode");
    let gmail_body = engine.table::<GmailUserState>().encode_body(&gmail(0)).expect("encode");
    let mut scenarios = storage_testkit::bench::scenarios(
        "sqlite",
        integrations,
        webhooks,
        tokens,
        Baselines {
            integration_get: get(&floor, "integrations", "key-", "coalesce(messages_sent, 0), coalesce(errors_24h, 0), "),
            integration_set: upsert(
                &floor,
                UPSERT_INTEGRATION,
                "key-",
                |i| (Value::Text(owner(i)), Value::Text("slack".into())),
                integration_body.clone(),
            ),
            webhook_claim_complete: claim_complete(&floor),
            gmail_token_get: get(&floor, "gmail_tokens", "user-", ""),
            gmail_token_set: upsert(
                &floor,
                UPSERT_GMAIL,
                "user-",
                |i| (Value::Text(format!("user{}@example.com", i % KEYS)), Value::Integer(to_micros(Utc::now() + TimeDelta::hours(1)))),
                gmail_body,
            ),
        },
    );
    let identity = storage_testkit::bench::preload_identity(engine).await;
    let raw = identity_baselines(&floor, identity.user_body, identity.entry_body);
    scenarios.extend(storage_testkit::bench::identity_scenarios("sqlite", identity.users, identity.audit, raw));
    let installations = storage_testkit::bench::preload_chat(engine).await;
    let chat_floor = Arc::clone(&floor);
    let raw_lookup = op(move |i| {
        let floor = Arc::clone(&chat_floor);
        async move {
            floor.read(|conn| {
                let mut statement = conn.prepare_cached(INSTALLATION_BY_KEY).expect("prepare");
                let row: (String, String, i64, String) = statement
                    .query_row([chat::install_key(i)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(5)?)))
                    .expect("floor installation");
                std::hint::black_box(row);
            })
        }
    });
    scenarios.push(storage_testkit::bench::chat_scenario("sqlite", installations, raw_lookup));
    let inbox_store = storage_testkit::bench::preload_inbox(engine).await;
    let (save, search) = inbox_baselines(&floor, engine);
    scenarios.extend(storage_testkit::bench::inbox_scenarios("sqlite", &inbox_store, save, search));
    let (receipts, invoices) = storage_testkit::bench::preload_money(engine).await;
    scenarios.extend(storage_testkit::bench::money_scenarios("sqlite", &receipts, &invoices, money_baselines(&floor, engine)));
    let tokens = storage_testkit::bench::preload_tokens(engine).await;
    scenarios.extend(storage_testkit::bench::token_scenarios("sqlite", &tokens, token_baselines(&floor, engine)));
    let archive = storage_testkit::bench::preload_archive(engine).await;
    scenarios.push(storage_testkit::bench::archive_scenario("sqlite", &archive, archive_baseline(&floor, &archive.1)));
    // The same store behind `Storage`'s observing layer (a span and three metrics per call, with
    // no subscriber or recorder installed, as in an application that has not set them up), on a
    // file of its own: the baselines above rewrite bodies the stores would then refuse to read.
    let observed_path = dir.path().join("bench-observed.db");
    let observed_backend = open(&observed_path, SqliteSynchronous::Normal, &ring).await;
    let observed = storage_core::instrumented(Arc::new(observed_backend), storage_core::Instrumentation::default());
    let observed_store: Arc<dyn IntegrationStore> = Arc::new(<storage_core::Integrations>::on(observed.as_ref()));
    storage_testkit::bench::preload(observed_store.as_ref(), &<storage_core::GmailTokens>::on(observed.as_ref())).await;
    let observed_floor = Floor::open(&observed_path, "NORMAL", 4);
    scenarios.extend(storage_testkit::bench::integration_scenarios(
        "sqlite-observed",
        observed_store,
        get(&observed_floor, "integrations", "key-", "coalesce(messages_sent, 0), coalesce(errors_24h, 0), "),
        upsert(
            &observed_floor,
            UPSERT_INTEGRATION,
            "key-",
            |i| (Value::Text(owner(i)), Value::Text("slack".into())),
            integration_body.clone(),
        ),
    ));
    // The same write with synchronous=FULL: every commit is durable across power loss.
    let full_path = dir.path().join("bench-full.db");
    let full = open(&full_path, SqliteSynchronous::Full, &ring).await;
    let full_store: Arc<dyn IntegrationStore> = Arc::new(SQLiteIntegrationStore::on(&full));
    storage_testkit::bench::preload(full_store.as_ref(), &SQLiteGmailTokenStore::on(&full)).await;
    let full_floor = Floor::open(&full_path, "FULL", 1);
    scenarios.push(Scenario {
        operation: "integration.set",
        backend: "sqlite-full",
        store: op(move |i| {
            let store = Arc::clone(&full_store);
            async move {
                store.set(&integration(i)).await.expect("set");
            }
        }),
        raw: upsert(&full_floor, UPSERT_INTEGRATION, "key-", |i| (Value::Text(owner(i)), Value::Text("slack".into())), integration_body),
    });
    scenarios
}

fn main() {
    storage_testkit::bench::main(scenarios, || async { Vec::<Reference>::new() });
}

const REVOKED: &str = "SELECT tenant, id, version, created_at, updated_at, body FROM token_blacklist \
    WHERE tenant = '_system' AND id = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
const OPEN_WINDOW: &str = "INSERT INTO password_reset_requests (tenant, id, issued, expires_at, version, created_at, updated_at, body) \
    VALUES ('_system', ?1, 1, ?2, 1, ?3, ?3, '{}')";
const INSERT_RESET: &str = "INSERT INTO password_reset_tokens (tenant, id, email, uses, expires_at, version, created_at, updated_at, body) \
    VALUES ('_system', ?1, ?2, 0, ?3, 1, ?4, ?4, ?5)";
const CONSUME_RESET: &str = "UPDATE password_reset_tokens SET uses = uses + 1, version = version + 1, updated_at = ?1 \
    WHERE tenant = '_system' AND id = ?2 AND uses < 1 AND (expires_at IS NULL OR expires_at > ?1) RETURNING uses";
const READ_RESET: &str = "SELECT version, body FROM password_reset_tokens WHERE tenant = '_system' AND id = ?1 AND expires_at > ?2";

/// The job-queue and token baselines through the floor: a job's placement probes and insert in
/// one transaction, the claim and the completion statements (one cycle; a batch of 16); a reset
/// token's window, insert, conditional use and read; a revocation lookup.
fn token_baselines(floor: &Arc<Floor>, engine: &dyn Engine) -> [Option<Op>; 4] {
    use storage_sqlite::job_statements::{CLAIM, HEAD, INSERT, SETTLE, TAIL};
    use storage_testkit::bench::jobs;
    fn enqueue(conn: &Connection, i: u64, n: u64) {
        let now = to_micros(Utc::now());
        let tenant = jobs::tenant_of(i);
        let head: Option<i64> = conn.prepare_cached(HEAD).and_then(|mut s| s.query_row([jobs::RAW_QUEUE], |r| r.get(0))).expect("head");
        let tail: Option<i64> =
            conn.prepare_cached(TAIL).and_then(|mut s| s.query_row((jobs::RAW_QUEUE, tenant.as_str()), |r| r.get(0))).expect("tail");
        let fair = match (head, tail) {
            (None, _) => now,
            (Some(head), None) => head,
            (Some(head), Some(tail)) => head.max(tail + 1),
        };
        let args = (
            uuid::Uuid::now_v7().to_string(),
            tenant.as_str(),
            jobs::RAW_QUEUE,
            "noop",
            format!("{{\"n\":{i},\"k\":{n}}}"),
            0,
            5,
            now,
            fair,
            None::<String>,
            now,
        );
        conn.prepare_cached(INSERT).and_then(|mut s| s.execute(args)).expect("raw enqueue");
    }
    fn claim_complete(conn: &Connection, want: usize) {
        let token = uuid::Uuid::new_v4().to_string();
        let now = to_micros(Utc::now());
        let mut statement = conn.prepare_cached(CLAIM).expect("prepare");
        let claimed: Vec<(String, i64)> = statement
            .query_map((&token, now + 60_000_000, "bench", now, jobs::RAW_QUEUE, want as i64), |r| Ok((r.get(0)?, r.get(7)?)))
            .expect("raw claim")
            .collect::<rusqlite::Result<_>>()
            .expect("claimed");
        assert_eq!(claimed.len(), want, "one writer: every enqueued job is there");
        let mut settle = conn.prepare_cached(SETTLE).expect("prepare");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for (id, attempts) in claimed {
            let args = rusqlite::params![
                "completed",
                attempts,
                now,
                None::<String>,
                None::<i64>,
                None::<String>,
                None::<String>,
                now,
                now,
                id,
                "running",
                token,
                None::<i64>
            ];
            assert_eq!(settle.execute(args).expect("raw settle"), 1);
        }
        conn.execute_batch("COMMIT").expect("commit");
    }
    let (f1, f2, f3, f4) = (Arc::clone(floor), Arc::clone(floor), Arc::clone(floor), Arc::clone(floor));
    let cycle = op(move |i| {
        let floor = Arc::clone(&f1);
        async move {
            floor.write(|conn| {
                conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
                enqueue(conn, i, 0);
                conn.execute_batch("COMMIT").expect("commit");
                claim_complete(conn, 1);
            })
        }
    });
    let batch = op(move |i| {
        let floor = Arc::clone(&f2);
        async move {
            floor.write(|conn| {
                conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
                for n in 0..u64::from(jobs::BATCH) {
                    enqueue(conn, i, n);
                }
                conn.execute_batch("COMMIT").expect("commit");
                claim_complete(conn, jobs::BATCH as usize);
            })
        }
    });
    let token_body = jobs::reset_token_body(engine);
    let reset = op(move |i| {
        let (floor, body) = (Arc::clone(&f3), token_body.clone());
        async move {
            let now = to_micros(Utc::now());
            let email = format!("raw-{}-{i}@example.com", std::process::id());
            let token = storage_core::token::generate_token().expect("token");
            let digest = storage_core::token::hash_token(&token);
            floor.write(|conn| {
                let window = storage_core::token::hash_token(&email);
                conn.prepare_cached(OPEN_WINDOW).and_then(|mut s| s.execute((window, now + 3_600_000_000, now))).expect("window");
                let args = (&digest, &email, now + 3_600_000_000, now, &body);
                conn.prepare_cached(INSERT_RESET).and_then(|mut s| s.execute(args)).expect("insert token");
                let uses: i64 =
                    conn.prepare_cached(CONSUME_RESET).and_then(|mut s| s.query_row((now, &digest), |r| r.get(0))).expect("consume");
                assert_eq!(uses, 1);
            });
            floor.read(|conn| {
                let body: String =
                    conn.prepare_cached(READ_RESET).and_then(|mut s| s.query_row((&digest, now), |r| r.get(1))).expect("read");
                std::hint::black_box(body);
            })
        }
    });
    let revoked = op(move |i| {
        let floor = Arc::clone(&f4);
        async move {
            let digest = storage_core::token::hash_token(&jobs::revoked(i));
            floor.read(|conn| {
                let body: String = conn
                    .prepare_cached(REVOKED)
                    .and_then(|mut s| s.query_row((digest, to_micros(Utc::now())), |r| r.get(5)))
                    .expect("raw revoked");
                std::hint::black_box(body);
            })
        }
    });
    [Some(cycle), Some(batch), Some(reset), Some(revoked)]
}

const BY_SLUG: &str = "SELECT tenant, id, version, created_at, updated_at, body, view_count FROM archived_debates WHERE slug = ?1";
const COUNT_VIEW: &str = "UPDATE archived_debates SET view_count = coalesce(view_count, 0) + 1, version = version + 1, updated_at = ?1 \
    WHERE tenant = ?2 AND id = ?3 RETURNING view_count, version, created_at";

/// The permalink baseline: the debate read by its slug on a reader, then its view counted on the
/// writer.
fn archive_baseline(floor: &Arc<Floor>, slugs: &Arc<Vec<String>>) -> Op {
    let (floor, slugs) = (Arc::clone(floor), Arc::clone(slugs));
    op(move |i| {
        let (floor, slug) = (Arc::clone(&floor), slugs[(i % storage_testkit::bench::archive::DEBATES) as usize].clone());
        async move {
            let (tenant, id) = floor.read(|conn| {
                let row: (String, String, String) = conn
                    .prepare_cached(BY_SLUG)
                    .and_then(|mut s| s.query_row([&slug], |r| Ok((r.get(0)?, r.get(1)?, r.get(5)?))))
                    .expect("raw by slug");
                std::hint::black_box(&row.2);
                (row.0, row.1)
            });
            let views: i64 = floor
                .write(|conn| {
                    conn.prepare_cached(COUNT_VIEW).and_then(|mut s| s.query_row((to_micros(Utc::now()), &tenant, &id), |r| r.get(0)))
                })
                .expect("raw view");
            assert!(views > 0);
        }
    })
}
