//! Store operations on PostgreSQL beside the same statements issued through sqlx on the same
//! pool, on a throwaway server with production durability (`fsync=on`); then pgbench on the same
//! server for reference.

use chrono::{TimeDelta, Utc};
use sqlx::Row;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use storage_core::Store;
use storage_core::{Engine, GmailUserState, InboxAccount, InboxMessage, IntegrationConfig, Invoice, LedgerEntry, Receipt};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_postgres::PostgresBackend;
use storage_postgres::{PostgresGmailTokenStore, PostgresIntegrationStore, PostgresWebhookStore};
use storage_router::PoolSettings;
use storage_testkit::bench::fixtures::{KEYS, bench_tenant, gmail, integration, owner};
use storage_testkit::bench::{
    Baselines, IdentityBaselines, Reference, Scenario, chat, identity, inbox, money, number_after, op, tool_output,
};
use storage_testkit::server::{PgServer, create_database};
use tokio::sync::OnceCell;

static SERVER: OnceCell<(PgServer, String, String)> = OnceCell::const_new();

const UPSERT_INTEGRATION: &str = "INSERT INTO integrations (tenant, id, user_id, integration_type, messages_sent, errors_24h, version, created_at, updated_at, body) \
    VALUES ($1, $2, $3, 'slack', 0, 0, 1, $4, $4, $5) ON CONFLICT (tenant, id) DO UPDATE SET user_id = excluded.user_id, \
    integration_type = excluded.integration_type, messages_sent = excluded.messages_sent, errors_24h = excluded.errors_24h, \
    version = integrations.version + 1, updated_at = excluded.updated_at, body = excluded.body \
    RETURNING version, created_at";
const UPSERT_GMAIL: &str = "INSERT INTO gmail_tokens (tenant, id, email_address, token_expiry, version, created_at, updated_at, body) \
    VALUES ($1, $2, $3, $4, 1, $5, $5, $6) ON CONFLICT (tenant, id) DO UPDATE SET email_address = excluded.email_address, \
    token_expiry = excluded.token_expiry, version = gmail_tokens.version + 1, updated_at = excluded.updated_at, body = excluded.body \
    RETURNING version, created_at";

/// The baseline's messages live apart, so the store's searches never meet their bodies (a body
/// names its record; the baseline reuses one).
const RAW_MESSAGES_TENANT: &str = "bench-inbox-raw";
const INSERT_MESSAGE: &str = "INSERT INTO inbox_messages (tenant, id, account_id, priority_tier, is_read, rank, received_at, version, \
    created_at, updated_at, body, search) VALUES ($1, $2, $3, 'low', false, $4, $5, 1, $5, $5, $6, $7) ON CONFLICT (tenant, id) DO NOTHING";
const COUNT_IN_ACCOUNT: &str = "UPDATE inbox_accounts SET version = version + 1, updated_at = $1, body = $2 WHERE tenant = $3 AND id = $4";
const SEARCH: &str = "SELECT tenant, id, version, created_at, updated_at, body FROM inbox_messages \
    WHERE search_vector @@ to_tsquery('simple', $1) AND tenant = $2 ORDER BY ts_rank(search_vector, to_tsquery('simple', $1)) DESC, id LIMIT 20";
const SEARCH_COUNT: &str = "SELECT count(*) FROM inbox_messages WHERE search_vector @@ to_tsquery('simple', $1) AND tenant = $2";

const INSERT_RECEIPT: &str = "INSERT INTO decision_receipts (tenant, id, gauntlet_id, verdict, risk_level, issued_at, confidence, risk_score, \
    retain_until, legal_hold, version, created_at, updated_at, body, search) VALUES ($1, $2, $3, $4, 'MEDIUM', $5, 500, 0, $6, false, 1, $5, $5, $7, $8)";
const NEWEST_BY_VERDICT: &str = "SELECT tenant, id, version, created_at, updated_at, body FROM decision_receipts \
    WHERE tenant = $1 AND verdict = $2 AND issued_at IS NOT NULL AND (expires_at IS NULL OR expires_at > $3) \
    ORDER BY issued_at DESC, id DESC LIMIT 51";
const LOCK_INVOICE: &str = "SELECT version, body FROM ap_invoices WHERE tenant = $1 AND id = $2 FOR UPDATE";
const INSERT_PAYMENT: &str = "INSERT INTO ap_payments (tenant, id, bill_id, at, version, created_at, updated_at, body) \
    VALUES ($1, $2, $3, $4, 1, $4, $4, $5)";
const SETTLE_INVOICE: &str = "UPDATE ap_invoices SET status = 'partially_paid', version = version + 1, updated_at = $1, body = $2 \
    WHERE tenant = $3 AND id = $4";

async fn scenarios() -> Vec<Scenario> {
    let server = PgServer::start_durable();
    let url = create_database(&server.url("postgres")).await;
    let ring = Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"));
    let pool = PoolSettings { max_connections: 20, ..PoolSettings::default() };
    let backend = PostgresBackend::builder(url.clone()).pool(pool).sealer(ring.clone()).connect().await.expect("connect");
    let (integrations, webhooks, tokens) = (
        Arc::new(PostgresIntegrationStore::on(&backend)),
        Arc::new(PostgresWebhookStore::on(&backend)),
        Arc::new(PostgresGmailTokenStore::on(&backend)),
    );
    storage_testkit::bench::preload(integrations.as_ref(), tokens.as_ref()).await;
    let engine: &dyn Engine = &backend;
    let body = engine.table::<IntegrationConfig>().encode_body(&integration(0)).expect("encode");
    let _ = SERVER.set((server, url, body.clone()));
    let gmail_body = engine.table::<GmailUserState>().encode_body(&gmail(0)).expect("encode");
    let (pool, tenant) = (backend.router().write_pool().clone(), bench_tenant());

    let get = |table: &'static str, prefix: &'static str, counters: &'static str| {
        let (pool, tenant) = (pool.clone(), tenant.clone());
        let sql: &'static str = Box::leak(
            format!("SELECT tenant, id, version, created_at, updated_at, {counters}body FROM {table} WHERE tenant = $1 AND id = $2")
                .into_boxed_str(),
        );
        op(move |i| {
            let (pool, tenant) = (pool.clone(), tenant.clone());
            async move {
                let row = sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(format!("{prefix}{:04}", i % KEYS))
                    .fetch_one(&pool)
                    .await
                    .expect("raw get");
                let _: (String, String, i64, chrono::DateTime<Utc>, chrono::DateTime<Utc>) =
                    (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
                let body: String = row.get(row.len() - 1);
                std::hint::black_box(body);
            }
        })
    };
    let raw_set_integration = {
        let (pool, tenant, body) = (pool.clone(), tenant.clone(), body.clone());
        op(move |i| {
            let (pool, tenant, body) = (pool.clone(), tenant.clone(), body.clone());
            async move {
                sqlx::query(UPSERT_INTEGRATION)
                    .bind(tenant.as_str())
                    .bind(format!("key-{:04}", i % KEYS))
                    .bind(owner(i))
                    .bind(Utc::now())
                    .bind(body)
                    .fetch_one(&pool)
                    .await
                    .expect("raw upsert");
            }
        })
    };
    let raw_set_gmail = {
        let (pool, tenant, body) = (pool.clone(), tenant.clone(), gmail_body);
        op(move |i| {
            let (pool, tenant, body) = (pool.clone(), tenant.clone(), body.clone());
            async move {
                sqlx::query(UPSERT_GMAIL)
                    .bind(tenant.as_str())
                    .bind(format!("user-{:04}", i % KEYS))
                    .bind(format!("user{}@example.com", i % KEYS))
                    .bind(Utc::now() + TimeDelta::hours(1))
                    .bind(Utc::now())
                    .bind(body)
                    .fetch_one(&pool)
                    .await
                    .expect("raw upsert");
            }
        })
    };
    let raw_claim = {
        let (pool, tenant) = (pool.clone(), tenant.clone());
        op(move |i| {
            let (pool, tenant) = (pool.clone(), tenant.clone());
            async move {
                let (event, token, now) = (format!("raw-{i}"), uuid::Uuid::new_v4(), Utc::now());
                sqlx::query(
                    "INSERT INTO webhook_events (tenant, event_id, state, token, expires_at) VALUES ($1, $2, 'in_flight', $3, $4) \
                     ON CONFLICT (tenant, event_id) DO UPDATE SET state = 'in_flight', token = excluded.token, result = NULL, completed_at = NULL, \
                     expires_at = excluded.expires_at WHERE webhook_events.expires_at <= $5 RETURNING token",
                )
                .bind(tenant.as_str())
                .bind(&event)
                .bind(token)
                .bind(now + TimeDelta::seconds(30))
                .bind(now)
                .fetch_optional(&pool)
                .await
                .expect("raw claim");
                sqlx::query(
                    "UPDATE webhook_events SET state = 'done', token = NULL, result = $1, completed_at = $2, expires_at = $3 \
                     WHERE tenant = $4 AND event_id = $5 AND state = 'in_flight' AND token = $6",
                )
                .bind("ok")
                .bind(now)
                .bind(now + TimeDelta::hours(24))
                .bind(tenant.as_str())
                .bind(&event)
                .bind(token)
                .execute(&pool)
                .await
                .expect("raw complete");
            }
        })
    };

    let identity = storage_testkit::bench::preload_identity(engine).await;
    let identity_raw = identity_baselines(&pool, identity.user_body, identity.entry_body);

    let mut scenarios = storage_testkit::bench::scenarios(
        "postgresql",
        integrations,
        webhooks,
        tokens,
        Baselines {
            integration_get: get("integrations", "key-", "coalesce(messages_sent, 0), coalesce(errors_24h, 0), "),
            integration_set: raw_set_integration,
            webhook_claim_complete: raw_claim,
            gmail_token_get: get("gmail_tokens", "user-", ""),
            gmail_token_set: raw_set_gmail,
        },
    );
    scenarios.extend(storage_testkit::bench::identity_scenarios("postgresql", identity.users, identity.audit, identity_raw));
    let installations = storage_testkit::bench::preload_chat(engine).await;
    let raw_pool = pool.clone();
    let raw_lookup = op(move |i| {
        let pool = raw_pool.clone();
        async move {
            let row = sqlx::query("SELECT tenant, id, version, created_at, updated_at, body FROM bot_installations WHERE install_key = $1")
                .bind(chat::install_key(i))
                .fetch_one(&pool)
                .await
                .expect("raw installation");
            let body: String = row.get(5);
            std::hint::black_box(body);
        }
    });
    scenarios.push(storage_testkit::bench::chat_scenario("postgresql", installations, raw_lookup));
    let inbox_store = storage_testkit::bench::preload_inbox(engine).await;
    let (save, search) = inbox_baselines(&pool, engine);
    scenarios.extend(storage_testkit::bench::inbox_scenarios("postgresql", &inbox_store, save, search));
    let (receipts, invoices) = storage_testkit::bench::preload_money(engine).await;
    // As after any bulk load: without statistics the planner sorts a whole verdict rather than
    // walking the time index backwards (5 ms instead of 0.1 ms, for store and baseline alike).
    sqlx::query("ANALYZE").execute(&pool).await.expect("analyze");
    scenarios.extend(storage_testkit::bench::money_scenarios("postgresql", &receipts, &invoices, money_baselines(&pool, engine)));
    let tokens = storage_testkit::bench::preload_tokens(engine).await;
    scenarios.extend(storage_testkit::bench::token_scenarios("postgresql", &tokens, token_baselines(&pool, engine)));
    let archive = storage_testkit::bench::preload_archive(engine).await;
    scenarios.push(storage_testkit::bench::archive_scenario("postgresql", &archive, archive_baseline(&pool, &archive.1)));
    scenarios
}

const BY_SLUG: &str = "SELECT tenant, id, version, created_at, updated_at, body, view_count FROM archived_debates WHERE slug = $1";
const COUNT_VIEW: &str = "UPDATE archived_debates SET view_count = coalesce(view_count, 0) + 1, version = version + 1, updated_at = $1 \
    WHERE tenant = $2 AND id = $3 RETURNING view_count, version, created_at";

/// The permalink baseline: the debate read by its slug, then its view counted.
fn archive_baseline(pool: &sqlx::PgPool, slugs: &Arc<Vec<String>>) -> storage_testkit::bench::Op {
    let (pool, slugs) = (pool.clone(), Arc::clone(slugs));
    op(move |i| {
        let (pool, slug) = (pool.clone(), slugs[(i % storage_testkit::bench::archive::DEBATES) as usize].clone());
        async move {
            let row = sqlx::query(BY_SLUG).bind(slug).fetch_one(&pool).await.expect("raw by slug");
            let (tenant, id, body): (String, String, String) = (row.get(0), row.get(1), row.get(5));
            std::hint::black_box(body);
            let views: Option<i64> =
                sqlx::query(COUNT_VIEW).bind(Utc::now()).bind(tenant).bind(id).fetch_one(&pool).await.expect("raw view").get(0);
            assert!(views.is_some());
        }
    })
}

/// The inbox baselines: a message insert and its account's update in one transaction; a search
/// page and its count, by the statements the store issues.
fn inbox_baselines(pool: &sqlx::PgPool, engine: &dyn Engine) -> (storage_testkit::bench::Op, storage_testkit::bench::Op) {
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
    let (p1, p2) = (pool.clone(), pool.clone());
    let save = op(move |i| {
        let (pool, message_body) = (p1.clone(), message_body.clone());
        let account_body = account_bodies[(i % inbox::ACCOUNTS) as usize].clone();
        async move {
            let (now, message) = (Utc::now(), inbox::message(&format!("raw-{}-", std::process::id()), i, Utc::now()));
            let tenant = inbox::tenant_id();
            let search = storage_core::fts::searchable(&storage_core::Document::search_text(&message));
            let mut tx = pool.begin().await.expect("begin");
            let inserted = sqlx::query(INSERT_MESSAGE)
                .bind(RAW_MESSAGES_TENANT)
                .bind(message.message_id())
                .bind(&message.account_id)
                .bind(i64::try_from(i).expect("rank"))
                .bind(now)
                .bind(message_body)
                .bind(search)
                .execute(&mut *tx)
                .await
                .expect("raw insert message");
            assert_eq!(inserted.rows_affected(), 1);
            let counted = sqlx::query(COUNT_IN_ACCOUNT)
                .bind(now)
                .bind(account_body)
                .bind(tenant.as_str())
                .bind(&message.account_id)
                .execute(&mut *tx)
                .await
                .expect("raw count");
            assert_eq!(counted.rows_affected(), 1);
            tx.commit().await.expect("commit");
        }
    });
    let search = op(move |i| {
        let pool = p2.clone();
        async move {
            let (query, tenant) = (format!("'{}'", inbox::query(i)), inbox::tenant_id());
            let rows = sqlx::query(SEARCH).bind(&query).bind(tenant.as_str()).fetch_all(&pool).await.expect("raw search");
            let bodies: Vec<String> = rows.iter().map(|row| row.get(5)).collect();
            let total: i64 = sqlx::query(SEARCH_COUNT).bind(&query).bind(tenant.as_str()).fetch_one(&pool).await.expect("count").get(0);
            assert!(total > 0 && !bodies.is_empty());
        }
    });
    (save, search)
}

/// The receipt and invoice baselines: a receipt insert; the newest page of a verdict by the
/// statement the store issues; a payment as a careful hand-written ledger does it — in one
/// transaction, lock the invoice row, insert the payment, write the invoice back.
fn money_baselines(pool: &sqlx::PgPool, engine: &dyn Engine) -> [Option<storage_testkit::bench::Op>; 3] {
    let raw = money::raw_tenant_id();
    let sample = money::receipt(&raw, "raw-", 0, Utc::now());
    let receipt_body = engine.table::<Receipt>().encode_body(&sample).expect("encode");
    let search = storage_core::fts::searchable(&storage_core::Document::search_text(&sample));
    let payment_body = engine.table::<LedgerEntry<Invoice>>().encode_body(&money::payment(&raw, 0)).expect("encode");
    let (p1, p2, p3) = (pool.clone(), pool.clone(), pool.clone());
    let save = op(move |i| {
        let (pool, body, search) = (p1.clone(), receipt_body.clone(), search.clone());
        async move {
            let (now, id) = (Utc::now(), format!("raw-{}-{i}", std::process::id()));
            let inserted = sqlx::query(INSERT_RECEIPT)
                .bind(money::raw_tenant_id().as_str())
                .bind(&id)
                .bind(format!("g-{id}"))
                .bind(money::verdict(i))
                .bind(now)
                .bind(now + TimeDelta::days(2555))
                .bind(body)
                .bind(search)
                .execute(&pool)
                .await
                .expect("raw insert receipt");
            assert_eq!(inserted.rows_affected(), 1);
        }
    });
    let query = op(move |i| {
        let pool = p2.clone();
        async move {
            let rows = sqlx::query(NEWEST_BY_VERDICT)
                .bind(money::tenant_id().as_str())
                .bind(money::verdict(i))
                .bind(Utc::now())
                .fetch_all(&pool)
                .await
                .expect("raw list");
            let bodies: Vec<String> = rows.iter().map(|row| row.get(5)).collect();
            assert_eq!(bodies.len(), 51);
        }
    });
    let pay = op(move |i| {
        let (pool, payment_body) = (p3.clone(), payment_body.clone());
        async move {
            let (tenant, invoice, now) = (money::raw_tenant_id(), money::invoice_id(i), Utc::now());
            let mut tx = pool.begin().await.expect("begin");
            let row = sqlx::query(LOCK_INVOICE).bind(tenant.as_str()).bind(&invoice).fetch_one(&mut *tx).await.expect("raw lock");
            let body: String = row.get(1);
            let key = format!("{}:{invoice}raw-{}-{i}", invoice.len(), std::process::id());
            let inserted = sqlx::query(INSERT_PAYMENT)
                .bind(tenant.as_str())
                .bind(key)
                .bind(&invoice)
                .bind(now)
                .bind(payment_body)
                .execute(&mut *tx)
                .await
                .expect("raw insert payment");
            assert_eq!(inserted.rows_affected(), 1);
            let settled = sqlx::query(SETTLE_INVOICE)
                .bind(now)
                .bind(body)
                .bind(tenant.as_str())
                .bind(&invoice)
                .execute(&mut *tx)
                .await
                .expect("raw settle");
            assert_eq!(settled.rows_affected(), 1);
            tx.commit().await.expect("commit");
        }
    });
    [Some(save), Some(query), Some(pay)]
}

/// The identity and audit baselines: the statements the stores issue, through sqlx.
fn identity_baselines(pool: &sqlx::PgPool, user_body: String, entry_body: String) -> IdentityBaselines {
    let (p1, p2, p3, p4) = (pool.clone(), pool.clone(), pool.clone(), pool.clone());
    IdentityBaselines {
        user_get_by_email: op(move |i| {
            let pool = p1.clone();
            async move {
                let row = sqlx::query(
                    "SELECT tenant, id, version, created_at, updated_at, coalesce(token_version, 0), body FROM users \
                     WHERE tenant = '_system' AND email = $1",
                )
                .bind(identity::email(i))
                .fetch_one(&pool)
                .await
                .expect("raw user");
                let body: String = row.get(6);
                std::hint::black_box(body);
            }
        }),
        user_create: op(move |i| {
            let (pool, body) = (p2.clone(), user_body.clone());
            async move {
                sqlx::query(
                    "INSERT INTO users (tenant, id, email, is_active, email_verified, token_version, version, created_at, updated_at, body) \
                     VALUES ('_system', $1, $2, true, false, 0, 1, $3, $3, $4)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(format!("raw-{i}@bench.example"))
                .bind(Utc::now())
                .bind(body)
                .execute(&pool)
                .await
                .expect("raw insert user");
            }
        }),
        audit_log_event: op(move |i| {
            let (pool, body) = (p3.clone(), entry_body.clone());
            async move {
                let now = Utc::now();
                sqlx::query(
                    "INSERT INTO audit_log (tenant, id, seq, at, actor_id, action, resource_type, resource_id, security, version, \
                     created_at, updated_at, body) VALUES ('bench-raw', $1, $2, $3, $4, 'document.updated', 'document', $5, false, 1, $3, $3, $6)",
                )
                .bind(format!("{i:020}"))
                .bind(i64::try_from(i).expect("seq"))
                .bind(now)
                .bind(identity::actor(i))
                .bind(format!("doc-{:04}", i % KEYS))
                .bind(body)
                .execute(&pool)
                .await
                .expect("raw insert entry");
            }
        }),
        audit_newest_50_by_actor: op(move |i| {
            let pool = p4.clone();
            async move {
                let rows = sqlx::query(
                    "SELECT tenant, id, version, created_at, updated_at, body FROM audit_log \
                     WHERE tenant = $1 AND actor_id = $2 AND seq IS NOT NULL ORDER BY seq DESC, id DESC LIMIT 51",
                )
                .bind(identity::audit_tenant().as_str())
                .bind(identity::actor(i))
                .fetch_all(&pool)
                .await
                .expect("raw query");
                let bodies: Vec<String> = rows.iter().map(|row| row.get(5)).collect();
                assert_eq!(bodies.len(), 51);
            }
        }),
    }
}

/// pgbench on the same server: `-S` (primary-key selects) and the integration upsert, 16 clients.
async fn references() -> Vec<Reference> {
    let Some((server, url, body)) = SERVER.get() else { return Vec::new() };
    let seconds = if std::env::var("ARAGORA_BENCH_TABLE").as_deref() == Ok("quick") { 5 } else { 15 };
    let pgbench = |args: &[&str], db: &str| {
        tool_output(
            Command::new(server.binary("pgbench"))
                .args(args)
                .arg(db)
                .env("PGHOST", "127.0.0.1")
                .env("PGUSER", "postgres")
                .env("PGPORT", server.port().to_string()),
        )
    };
    let bench_db = create_database(&server.url("postgres")).await;
    pgbench(&["-i", "-q", "-s", "10"], &bench_db);
    let run = ["-n", "-c", "16", "-j", "2", "-T", &seconds.to_string()];
    let select = number_after(&pgbench(&[&run[..], &["-S"]].concat(), &bench_db), "tps = ");
    let script = std::env::temp_dir().join(format!("aragora-upsert-{}.sql", std::process::id()));
    let upsert = format!(
        "\\set k random(0, 999)\nINSERT INTO integrations (tenant, id, user_id, integration_type, messages_sent, errors_24h, version, created_at, updated_at, body) \
         VALUES ('bench', 'key-' || lpad(:k::text, 4, '0'), 'user-001', 'slack', 0, 0, 1, now(), now(), '{}') \
         ON CONFLICT (tenant, id) DO UPDATE SET user_id = excluded.user_id, integration_type = excluded.integration_type, \
         messages_sent = excluded.messages_sent, errors_24h = excluded.errors_24h, \
         version = integrations.version + 1, updated_at = excluded.updated_at, body = excluded.body RETURNING version, created_at;\n",
        body.replace('\'', "''")
    );
    std::fs::write(&script, upsert).expect("pgbench script");
    let script_arg = script.display().to_string();
    let writes = number_after(&pgbench(&[&run[..], &["-f", &script_arg]].concat(), url), "tps = ");
    let _ = std::fs::remove_file(&script);
    tokio::time::sleep(Duration::from_millis(10)).await;
    vec![
        Reference {
            name: "pgbench -S".into(),
            backend: "postgresql".into(),
            concurrency: 16,
            ops_per_sec: select,
            compare_to: "integration.get".into(),
        },
        Reference {
            name: "pgbench upsert script".into(),
            backend: "postgresql".into(),
            concurrency: 16,
            ops_per_sec: writes,
            compare_to: "integration.set".into(),
        },
    ]
}

fn main() {
    storage_testkit::bench::main(scenarios, references);
}

const REVOKED: &str = "SELECT tenant, id, version, created_at, updated_at, body FROM token_blacklist \
    WHERE tenant = '_system' AND id = $1 AND (expires_at IS NULL OR expires_at > $2)";
const OPEN_WINDOW: &str = "INSERT INTO password_reset_requests (tenant, id, issued, expires_at, version, created_at, updated_at, body) \
    VALUES ('_system', $1, 1, $2, 1, $3, $3, $4)";
const INSERT_RESET: &str = "INSERT INTO password_reset_tokens (tenant, id, email, uses, expires_at, version, created_at, updated_at, body) \
    VALUES ('_system', $1, $2, 0, $3, 1, $4, $4, $5)";
const CONSUME_RESET: &str = "UPDATE password_reset_tokens SET uses = uses + 1, version = version + 1, updated_at = $1 \
    WHERE tenant = '_system' AND id = $2 AND uses < 1 AND (expires_at IS NULL OR expires_at > $1) RETURNING uses";
const READ_RESET: &str = "SELECT version, body FROM password_reset_tokens WHERE tenant = '_system' AND id = $1 AND expires_at > $2";

/// The job-queue and token baselines: the job statements the store sends (one cycle; a batch of
/// 16, its inserts in one transaction), a reset token's window, insert, conditional use and read, and a revocation lookup.
fn token_baselines(pool: &sqlx::PgPool, engine: &dyn Engine) -> [Option<storage_testkit::bench::Op>; 4] {
    use storage_postgres::job_statements::{CLAIM, INSERT, SETTLE};
    use storage_testkit::bench::jobs;
    async fn enqueue(conn: &mut sqlx::PgConnection, i: u64, n: u64) {
        let now = Utc::now();
        sqlx::query(INSERT)
            .bind(uuid::Uuid::now_v7())
            .bind(jobs::tenant_of(i).as_str())
            .bind(jobs::RAW_QUEUE)
            .bind("noop")
            .bind(format!("{{\"n\":{i},\"k\":{n}}}"))
            .bind(0_i16)
            .bind(5_i32)
            .bind(now)
            .bind(None::<String>)
            .bind(now)
            .fetch_optional(conn)
            .await
            .expect("raw enqueue");
    }
    async fn claim_complete(pool: &sqlx::PgPool, want: usize) {
        let token = uuid::Uuid::new_v4();
        let mut ids: Vec<(uuid::Uuid, i32)> = Vec::with_capacity(want);
        while ids.len() < want {
            let now = Utc::now();
            let rows = sqlx::query(CLAIM)
                .bind(token)
                .bind(now + TimeDelta::seconds(60))
                .bind("bench")
                .bind(now)
                .bind(jobs::RAW_QUEUE)
                .bind(i64::try_from(want - ids.len()).expect("limit"))
                .fetch_all(pool)
                .await
                .expect("raw claim");
            ids.extend(rows.iter().map(|r| (r.get::<uuid::Uuid, _>(0), r.get::<i32, _>(7))));
        }
        let now = Utc::now();
        let n = ids.len();
        let settled: Vec<uuid::Uuid> = sqlx::query_scalar(SETTLE)
            .bind(ids.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .bind(vec!["completed"; n])
            .bind(ids.iter().map(|(_, attempts)| *attempts).collect::<Vec<_>>())
            .bind(vec![Some(now); n])
            .bind(vec![None::<uuid::Uuid>; n])
            .bind(vec![None::<chrono::DateTime<Utc>>; n])
            .bind(vec![None::<String>; n])
            .bind(vec![None::<String>; n])
            .bind(vec![Some(now); n])
            .bind(vec![Some(now); n])
            .bind(vec!["running"; n])
            .bind(vec![Some(token); n])
            .bind(vec![None::<chrono::DateTime<Utc>>; n])
            .fetch_all(pool)
            .await
            .expect("raw settle");
        assert_eq!(settled.len(), n);
    }
    let (p1, p2, p3, p4) = (pool.clone(), pool.clone(), pool.clone(), pool.clone());
    let cycle = op(move |i| {
        let pool = p1.clone();
        async move {
            enqueue(&mut pool.acquire().await.expect("connection"), i, 0).await;
            claim_complete(&pool, 1).await;
        }
    });
    let batch = op(move |i| {
        let pool = p2.clone();
        async move {
            let mut tx = pool.begin().await.expect("begin");
            for n in 0..u64::from(jobs::BATCH) {
                enqueue(&mut tx, i, n).await;
            }
            tx.commit().await.expect("commit");
            claim_complete(&pool, jobs::BATCH as usize).await;
        }
    });
    let token_body = jobs::reset_token_body(engine);
    let reset = op(move |i| {
        let (pool, body) = (p3.clone(), token_body.clone());
        async move {
            let now = Utc::now();
            let email = format!("raw-{}-{i}@example.com", std::process::id());
            let window = storage_core::token::hash_token(&email);
            sqlx::query(OPEN_WINDOW)
                .bind(&window)
                .bind(now + TimeDelta::hours(1))
                .bind(now)
                .bind("{}")
                .execute(&pool)
                .await
                .expect("window");
            let token = storage_core::token::generate_token().expect("token");
            let digest = storage_core::token::hash_token(&token);
            sqlx::query(INSERT_RESET)
                .bind(&digest)
                .bind(&email)
                .bind(now + TimeDelta::hours(1))
                .bind(now)
                .bind(&body)
                .execute(&pool)
                .await
                .expect("insert token");
            let uses: i64 = sqlx::query_scalar(CONSUME_RESET).bind(now).bind(&digest).fetch_one(&pool).await.expect("consume");
            assert_eq!(uses, 1);
            let row = sqlx::query(READ_RESET).bind(&digest).bind(now).fetch_one(&pool).await.expect("read");
            std::hint::black_box(row.get::<String, _>(1));
        }
    });
    let revoked = op(move |i| {
        let pool = p4.clone();
        async move {
            let digest = storage_core::token::hash_token(&jobs::revoked(i));
            let row = sqlx::query(REVOKED).bind(digest).bind(Utc::now()).fetch_optional(&pool).await.expect("raw revoked");
            assert!(row.is_some());
        }
    });
    [Some(cycle), Some(batch), Some(reset), Some(revoked)]
}
