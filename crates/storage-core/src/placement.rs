//! Which backend each store lives on, the production rules that constrain it, and the original
//! deployment's environment names — all in one place.
//!
//! Production rules (with `ARAGORA_ENV` a production name):
//! - no store lives in process memory (`memory`): it would vanish on restart and differ per
//!   instance;
//! - with `ARAGORA_MULTI_INSTANCE=true`, no store lives in SQLite: another instance cannot see the
//!   file;
//! - the stores in [`DURABLE`] on Redis draw a warning: a Redis failover may lose acknowledged
//!   writes (`docs/operations.md`), and these hold money, evidence, revocations or work.

use crate::{DatabaseBackend, Result, StorageConfig, StorageError};
use std::collections::BTreeMap;

/// Every store, by the name its accessor (`job_queue_store()`) and its override
/// (`ARAGORA_JOB_QUEUE_STORE_BACKEND`) use.
pub const STORES: &[&str] = &[
    "integration",
    "webhook",
    "gmail_token",
    "user",
    "organization",
    "invitation",
    "oauth_link",
    "external_identity",
    "onboarding",
    "vertical",
    "usage",
    "audit",
    "audit_trail",
    "governance",
    "bot_installation",
    "plaid_credential",
    "slack_debate",
    "notification_config",
    "notification_template",
    "webhook_config",
    "channel_subscription",
    "unified_inbox",
    "inbox_activity",
    "email",
    "receipt",
    "invoice",
    "ar_invoice",
    "gauntlet_run",
    "approval_request",
    "decision_result",
    "expense",
    "marketplace",
    "provenance",
    "job_queue",
    "password_reset",
    "token_blacklist",
    "share",
    "receipt_share",
    "impersonation",
    "finding_workflow",
    "federation_registry",
    "pipeline",
    "playground_debate",
    "debate_archive",
];

/// The original's store names (in `ARAGORA_<NAME>_STORE_BACKEND`) that differ from ours.
pub const LEGACY_STORE_NAMES: &[(&str, &str)] = &[
    ("gmail", "gmail_token"),
    ("inbox", "unified_inbox"),
    ("gauntlet", "gauntlet_run"),
    ("approval", "approval_request"),
    ("ar", "ar_invoice"),
    ("workflow", "finding_workflow"),
    ("federation", "federation_registry"),
    ("job", "job_queue"),
    ("blacklist", "token_blacklist"),
];

/// Stores whose acknowledged writes must survive a failover: payments and invoices, receipts and
/// audit, the job queue, revocations, password resets and impersonation.
pub const DURABLE: &[&str] = &[
    "receipt",
    "invoice",
    "ar_invoice",
    "expense",
    "audit",
    "audit_trail",
    "job_queue",
    "token_blacklist",
    "password_reset",
    "impersonation",
];

/// Stores that share tables, and so must live on one backend: users and organizations hold each
/// other's records; receipts, impersonation sessions and audit trails write the audit log.
pub const TOGETHER: &[&[&str]] = &[&["user", "organization"], &["audit", "audit_trail", "receipt", "impersonation"]];

/// Our store name for a name used in an override variable (ours or the original's).
pub fn store_name(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let name = LEGACY_STORE_NAMES.iter().find(|(legacy, _)| *legacy == name).map_or(name.as_str(), |(_, ours)| ours);
    STORES.iter().copied().find(|store| *store == name)
}

/// The variable that places `store`.
pub fn override_variable(store: &str) -> String {
    format!("ARAGORA_{}_STORE_BACKEND", store.to_ascii_uppercase())
}

impl StorageConfig {
    /// The backend `store` lives on: its override, or [`StorageConfig::backend`].
    pub fn store_backend(&self, store: &str) -> DatabaseBackend {
        self.store_backends.get(store).copied().unwrap_or(self.backend)
    }

    /// Every backend some store lives on, the default one first.
    pub fn backends_in_use(&self) -> Vec<DatabaseBackend> {
        let mut used = vec![self.backend];
        for backend in self.store_backends.values() {
            if !used.contains(backend) {
                used.push(*backend);
            }
        }
        used
    }

    /// The production rules (see the module documentation), stores that share tables kept
    /// together ([`TOGETHER`]), and overrides naming no store.
    pub(crate) fn check_placement(&self) -> Result<()> {
        for store in self.store_backends.keys() {
            if !STORES.contains(&store.as_str()) {
                return Err(StorageError::invalid(
                    "store_backends",
                    format!("`{store}` is not a store; the stores are {}", STORES.join(", ")),
                ));
            }
        }
        for group in TOGETHER {
            let mut backends = group.iter().map(|store| (*store, self.store_backend(store)));
            if let Some((first, backend)) = backends.next()
                && let Some((other, apart)) = backends.find(|(_, b)| *b != backend)
            {
                return Err(StorageError::config(format!(
                    "the {first} store ({backend}) and the {other} store ({apart}) share tables and must live on one backend: place {} together",
                    group.join(", ")
                )));
            }
        }
        if !self.is_production() {
            return Ok(());
        }
        let environment = &self.environment.0;
        for store in STORES {
            let (backend, variable) = match self.store_backends.get(*store) {
                Some(backend) => (*backend, override_variable(store)),
                None => (self.backend, "DATABASE_BACKEND".to_owned()),
            };
            if backend == DatabaseBackend::Memory {
                return Err(StorageError::config(format!(
                    "{variable}=memory keeps the {store} store in one process and loses it on restart; refused in production (ARAGORA_ENV=`{environment}`)"
                )));
            }
            if backend == DatabaseBackend::Sqlite && self.multi_instance {
                return Err(StorageError::config(format!(
                    "{variable}=sqlite keeps the {store} store in a file other instances cannot see; refused with ARAGORA_MULTI_INSTANCE=true in production (ARAGORA_ENV=`{environment}`): use postgresql"
                )));
            }
        }
        Ok(())
    }

    /// What is allowed but unwise: durable stores on Redis in production.
    pub fn placement_warnings(&self) -> Vec<String> {
        if !self.is_production() {
            return Vec::new();
        }
        DURABLE
            .iter()
            .filter(|store| self.store_backend(store) == DatabaseBackend::Redis)
            .map(|store| {
                format!(
                    "the {store} store is on Redis in production: a Redis failover may lose acknowledged writes; keep it on PostgreSQL ({}=postgresql)",
                    override_variable(store)
                )
            })
            .collect()
    }
}

/// What became of one of the original deployment's environment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    /// Still read, into this field, as written.
    Alias(&'static str),
    /// Still read, into this field (milliseconds), from seconds.
    Seconds(&'static str),
    /// No longer read: what to do instead.
    Replaced(&'static str),
}

/// Every storage environment name of the original that ours does not spell the same way.
pub const LEGACY_VARIABLES: &[(&str, Legacy)] = &[
    ("ARAGORA_DB_BACKEND", Legacy::Alias("backend")),
    ("ARAGORA_POSTGRES_DSN", Legacy::Alias("database_url")),
    ("ARAGORA_DB_TIMEOUT", Legacy::Seconds("sqlite_busy_timeout_ms")),
    ("ARAGORA_SQLITE_POOL_SIZE", Legacy::Alias("sqlite_readers")),
    ("ARAGORA_DB_POOL_SIZE", Legacy::Alias("postgres_max_connections")),
    ("ARAGORA_POOL_MAX_SIZE", Legacy::Alias("postgres_max_connections")),
    ("ARAGORA_POSTGRESQL_POOL_SIZE", Legacy::Alias("postgres_max_connections")),
    ("ARAGORA_POOL_MIN_SIZE", Legacy::Alias("postgres_min_connections")),
    ("ARAGORA_DB_POOL_TIMEOUT", Legacy::Seconds("postgres_acquire_timeout_ms")),
    ("ARAGORA_DB_STATEMENT_TIMEOUT", Legacy::Seconds("postgres_statement_timeout_ms")),
    ("ARAGORA_POOL_STATEMENT_TIMEOUT", Legacy::Seconds("postgres_statement_timeout_ms")),
    ("ARAGORA_DB_POOL_RECYCLE", Legacy::Alias("postgres_max_lifetime_s")),
    ("ARAGORA_REDIS_SOCKET_TIMEOUT", Legacy::Seconds("redis_response_timeout_ms")),
    ("ARAGORA_REDIS_SOCKET_CONNECT_TIMEOUT", Legacy::Seconds("redis_connect_timeout_ms")),
    ("ARAGORA_REQUIRE_DISTRIBUTED", Legacy::Alias("multi_instance")),
    ("ARAGORA_REQUIRE_DISTRIBUTED_STATE", Legacy::Alias("multi_instance")),
    ("ARAGORA_USE_POSTGRES", Legacy::Replaced("set DATABASE_BACKEND=postgresql")),
    ("ARAGORA_STORAGE_MODE", Legacy::Replaced("set DATABASE_BACKEND (and ARAGORA_<STORE>_STORE_BACKEND per store)")),
    ("ARAGORA_DB_MODE", Legacy::Replaced("one database holds every store; there are no per-store files")),
    ("SUPABASE_POSTGRES_DSN", Legacy::Replaced("set DATABASE_URL to the Supabase PostgreSQL URL")),
    ("SUPABASE_URL", Legacy::Replaced("set DATABASE_URL to the Supabase PostgreSQL URL")),
    ("SUPABASE_DB_PASSWORD", Legacy::Replaced("put the password in DATABASE_URL")),
    ("USE_SUPABASE_SLACK_STORE", Legacy::Replaced("set ARAGORA_BOT_INSTALLATION_STORE_BACKEND=postgresql")),
    ("USE_SUPABASE_TEAMS_STORE", Legacy::Replaced("set ARAGORA_BOT_INSTALLATION_STORE_BACKEND=postgresql")),
    ("ARAGORA_DATA_DIR", Legacy::Replaced("set SQLITE_PATH to the database file's full path")),
    ("ARAGORA_NOMIC_DIR", Legacy::Replaced("set SQLITE_PATH to the database file's full path")),
    ("ARAGORA_DECISION_RESULTS_DB", Legacy::Replaced("one SQLite file (SQLITE_PATH) holds every store")),
    ("SLACK_WORKSPACE_DB_PATH", Legacy::Replaced("one SQLite file (SQLITE_PATH) holds every store")),
    ("SLACK_DEBATE_DB_PATH", Legacy::Replaced("one SQLite file (SQLITE_PATH) holds every store")),
    ("TEAMS_WORKSPACE_DB_PATH", Legacy::Replaced("one SQLite file (SQLITE_PATH) holds every store")),
    ("TEAMS_TENANT_DB_PATH", Legacy::Replaced("one SQLite file (SQLITE_PATH) holds every store")),
    ("DISCORD_GUILD_DB_PATH", Legacy::Replaced("one SQLite file (SQLITE_PATH) holds every store")),
    ("CHANNEL_SUBSCRIPTION_DB_PATH", Legacy::Replaced("one SQLite file (SQLITE_PATH) holds every store")),
    ("ARAGORA_ALLOW_SQLITE_FALLBACK", Legacy::Replaced("SQLite is allowed in production unless ARAGORA_MULTI_INSTANCE=true")),
    ("ARAGORA_TEST_MODE", Legacy::Replaced("install an in-memory store with set_<store>_store in tests")),
    ("ARAGORA_USE_SHARED_POOL", Legacy::Replaced("every store of a backend shares its pool")),
    ("ARAGORA_DB_POOL_OVERFLOW", Legacy::Replaced("pools have no overflow: raise ARAGORA_POSTGRES_MAX_CONNECTIONS")),
    ("ARAGORA_DB_POOL_MAX_OVERFLOW", Legacy::Replaced("pools have no overflow: raise ARAGORA_POSTGRES_MAX_CONNECTIONS")),
    ("ARAGORA_POSTGRESQL_POOL_MAX_OVERFLOW", Legacy::Replaced("pools have no overflow: raise ARAGORA_POSTGRES_MAX_CONNECTIONS")),
    ("ARAGORA_DB_COMMAND_TIMEOUT", Legacy::Replaced("set ARAGORA_POSTGRES_STATEMENT_TIMEOUT_MS")),
    ("ARAGORA_POOL_COMMAND_TIMEOUT", Legacy::Replaced("set ARAGORA_POSTGRES_STATEMENT_TIMEOUT_MS")),
    ("ARAGORA_REPLICA_POOL_SIZE", Legacy::Replaced("replica pools take ARAGORA_POSTGRES_MAX_CONNECTIONS")),
    ("ARAGORA_REPLICA_FAILOVER", Legacy::Replaced("a failed replica read always runs again on the primary")),
    ("ARAGORA_REDIS_HOST", Legacy::Replaced("set ARAGORA_REDIS_URL")),
    ("ARAGORA_REDIS_PORT", Legacy::Replaced("set ARAGORA_REDIS_URL")),
    ("ARAGORA_REDIS_SENTINEL_SOCKET_TIMEOUT", Legacy::Replaced("ARAGORA_REDIS_RESPONSE_TIMEOUT_MS covers Sentinels too")),
    ("ARAGORA_REDIS_CLUSTER_READ_FROM_REPLICAS", Legacy::Replaced("reads go to masters (replica reads were stale); nothing to set")),
    ("ARAGORA_REDIS_CLUSTER_SKIP_FULL_COVERAGE", Legacy::Replaced("nothing to set: a namespace lives in one slot")),
    ("ARAGORA_REDIS_MAX_CONNECTIONS", Legacy::Replaced("one multiplexed connection carries every call; nothing to set")),
    ("ARAGORA_REDIS_RETRY_ON_TIMEOUT", Legacy::Replaced("wrap units of work in storage_core::retry")),
    ("ARAGORA_REDIS_HEALTH_CHECK_INTERVAL", Legacy::Replaced("call Storage::health() from your health endpoint")),
    ("ARAGORA_REDIS_DECODE_RESPONSES", Legacy::Replaced("nothing to set")),
    (
        "ARAGORA_REDIS_SSL_CERT_REQS",
        Legacy::Replaced("certificates are always verified; trust a private authority with ARAGORA_REDIS_SSL_CA_CERTS"),
    ),
    ("ARAGORA_ENCRYPTION_REQUIRED", Legacy::Replaced("secrets are always sealed, and production requires ENCRYPTION_KEY")),
    ("ARAGORA_KEY_ROTATION_INTERVAL_DAYS", Legacy::Replaced("rotate with `cargo xtask rotate-key` (docs/operations.md)")),
    (
        "ARAGORA_KEY_ROTATION_OVERLAP_DAYS",
        Legacy::Replaced("retired keys stay in ARAGORA_ENCRYPTION_PREVIOUS_KEYS until `rotate-key --retire` allows removing them"),
    ),
    ("ARAGORA_KEY_ROTATION_RE_ENCRYPT", Legacy::Replaced("re-encrypt with `cargo xtask rotate-key`")),
    ("ARAGORA_AUDIT_TRAIL_RETENTION_DAYS", Legacy::Replaced("pass the retention to the store's purge call")),
    ("ARAGORA_RECEIPT_RETENTION_DAYS", Legacy::Replaced("pass the retention to the store's purge call")),
    ("ARAGORA_DECISION_RETENTION_DAYS", Legacy::Replaced("pass the retention to the store's purge call")),
    ("ARAGORA_DECISION_MAX_ENTRIES", Legacy::Replaced("pass the limit to the store's purge call")),
    ("ARAGORA_INBOX_ACTIVITY_RETENTION_DAYS", Legacy::Replaced("pass the retention to the store's purge call")),
    ("ARAGORA_USE_SECRETS_MANAGER", Legacy::Replaced("pass secrets through the environment or aragora-storage.toml")),
    ("ARAGORA_SECRETS_STRICT", Legacy::Replaced("pass secrets through the environment or aragora-storage.toml")),
    ("ARAGORA_SECRET_NAME", Legacy::Replaced("pass secrets through the environment or aragora-storage.toml")),
];

/// Prefixes of `ARAGORA_` names that are storage settings: an unknown one among them is a typo
/// or a setting that does nothing, and draws a warning.
const STORAGE_PREFIXES: &[&str] = &["DB_", "DATABASE_", "POSTGRES", "REDIS_", "SQLITE_", "ENCRYPTION_", "POOL_", "REPLICA_", "WEBHOOK_TTL"];

/// Backend names of the original that mean one of ours, or nothing (`auto`: the default).
fn legacy_backend(value: &str) -> Option<std::result::Result<DatabaseBackend, StorageError>> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => None,
        "supabase" => Some(Ok(DatabaseBackend::Postgresql)),
        other => Some(other.parse()),
    }
}

/// One setting a legacy or per-store name makes: a field path and its value.
pub(crate) type Setting = (String, figment::value::Value);

/// What the environment's legacy and per-store names make.
#[derive(Debug, Default)]
pub(crate) struct FromEnvironment {
    /// Settings of the original's names (below the configuration file).
    pub(crate) aliases: Vec<Setting>,
    /// Store placements (above the file, as every environment name of ours).
    pub(crate) placements: Vec<Setting>,
    /// What they draw.
    pub(crate) warnings: Vec<String>,
}

/// The settings the environment's legacy and per-store names make, and the warnings they draw;
/// `Err` for a value that cannot mean anything.
pub(crate) fn from_legacy(vars: &BTreeMap<String, String>) -> Result<FromEnvironment> {
    use figment::value::Value;
    let mut settings: Vec<Setting> = Vec::new();
    let mut warnings = Vec::new();
    for (name, legacy) in LEGACY_VARIABLES {
        let Some(raw) = vars.get(*name) else { continue };
        match legacy {
            Legacy::Alias("backend") => match legacy_backend(raw) {
                Some(backend) => {
                    let backend = backend.map_err(|_| StorageError::invalid(*name, format!("`{raw}` is not a backend")))?;
                    settings.push(("backend".into(), Value::from(backend.name())));
                    warnings.push(format!("{name} is read as DATABASE_BACKEND={backend}; rename it"));
                }
                None => warnings.push(format!("{name}=`{raw}` is ignored: the default backend is DATABASE_BACKEND's")),
            },
            Legacy::Alias(field) => {
                let value = match *field {
                    "multi_instance" => Value::from(parse_bool(name, raw)?),
                    "database_url" => Value::from(raw.clone()),
                    _ => Value::from(
                        raw.trim().parse::<u64>().map_err(|_| StorageError::invalid(*name, format!("`{raw}` is not a whole number")))?,
                    ),
                };
                settings.push(((*field).to_owned(), value));
                warnings.push(format!("{name} is read as ARAGORA_{}; rename it", field.to_ascii_uppercase()));
            }
            Legacy::Seconds(field) => {
                let seconds: f64 =
                    raw.trim().parse().map_err(|_| StorageError::invalid(*name, format!("`{raw}` is not a number of seconds")))?;
                if !(0.0..=1e9).contains(&seconds) {
                    return Err(StorageError::invalid(*name, format!("`{raw}` seconds is out of range")));
                }
                // Within 0..=1e12 ms: the conversion is exact enough and cannot overflow.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let millis = (seconds * 1_000.0).round() as u64;
                settings.push(((*field).to_owned(), Value::from(millis)));
                warnings.push(format!("{name} (seconds) is read as ARAGORA_{}={millis}; rename it", field.to_ascii_uppercase()));
            }
            Legacy::Replaced(instead) => warnings.push(format!("{name} is no longer read: {instead}")),
        }
    }
    // Per-store placement. Our `ARAGORA_<STORE>_STORE_BACKEND` wins over the original's store
    // names, which win over the short `ARAGORA_<STORE>_BACKEND`. The short form may be the
    // application's own setting (`ARAGORA_EMAIL_BACKEND=smtp`): a value that is no backend is left
    // to it, with a warning, and never stops the start.
    let mut placed: BTreeMap<&'static str, (u8, DatabaseBackend, String)> = BTreeMap::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("ARAGORA_") else { continue };
        let (store, short) = match (rest.strip_suffix("_STORE_BACKEND"), rest.strip_suffix("_BACKEND")) {
            (Some(store), _) => (store, false),
            (None, Some(store)) if !matches!(store, "DB" | "DATABASE") => (store, true),
            _ => continue,
        };
        let Some(ours) = store_name(store) else {
            if !short {
                warnings.push(format!("{name} names no store and is ignored; the stores are {}", STORES.join(", ")));
            }
            continue;
        };
        let canonical = override_variable(ours);
        let rank = match (short, *name == canonical) {
            (false, true) => 3,
            (false, false) => 2,
            (true, _) => 1,
        };
        let backend = match legacy_backend(raw) {
            None => continue,
            Some(Ok(backend)) => backend,
            Some(Err(_)) if short => {
                warnings.push(format!("{name}=`{raw}` is not a storage backend and is ignored by storage"));
                continue;
            }
            Some(Err(_)) => return Err(StorageError::invalid(name.as_str(), format!("`{raw}` is not a backend"))),
        };
        if rank < 3 {
            warnings.push(format!("{name} is read as {canonical}={backend}; rename it"));
        }
        if raw.trim().eq_ignore_ascii_case("supabase") {
            warnings.push(format!("{name}=supabase is read as postgresql: set DATABASE_URL to the Supabase PostgreSQL URL"));
        }
        match placed.get(ours) {
            Some((held, other, by)) if *held == rank && *other != backend => {
                warnings.push(format!("{name} and {by} place the {ours} store differently; {by} wins"));
            }
            Some((held, _, _)) if *held >= rank => {}
            _ => {
                placed.insert(ours, (rank, backend, name.clone()));
            }
        }
    }
    let placements =
        placed.into_iter().map(|(store, (_, backend, _))| (format!("store_backends.{store}"), Value::from(backend.name()))).collect();
    Ok(FromEnvironment { aliases: settings, placements, warnings })
}

fn parse_bool(name: &str, raw: &str) -> Result<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(StorageError::invalid(name, format!("`{raw}` is not true or false"))),
    }
}

/// Warnings for `ARAGORA_` storage names that nothing reads: `known` holds the names that are
/// read (the configuration's fields, uppercased).
pub(crate) fn unknown_variables(vars: &BTreeMap<String, String>, known: &[String]) -> Vec<String> {
    vars.keys()
        .filter_map(|name| name.strip_prefix("ARAGORA_").map(|rest| (name, rest)))
        .filter(|(_, rest)| STORAGE_PREFIXES.iter().any(|prefix| rest.starts_with(prefix)))
        .filter(|(name, rest)| !known.iter().any(|k| k == rest) && !LEGACY_VARIABLES.iter().any(|(legacy, _)| legacy == name))
        .map(|(name, _)| format!("{name} is not a storage setting and is ignored (a typo?); see docs/configuration.md"))
        .collect()
}

#[cfg(test)]
#[allow(clippy::result_large_err, reason = "figment::Jail fixes the error type")]
mod tests {
    use super::*;
    use figment::Jail;

    fn config() -> std::result::Result<StorageConfig, String> {
        StorageConfig::from_env().map_err(|e| e.to_string())
    }

    /// A value each legacy name accepts.
    fn sample(name: &str) -> &'static str {
        match name {
            "ARAGORA_DB_BACKEND" => "postgres",
            "ARAGORA_POSTGRES_DSN" => "postgres://legacy@localhost/app",
            "ARAGORA_REQUIRE_DISTRIBUTED" | "ARAGORA_REQUIRE_DISTRIBUTED_STATE" => "true",
            "ARAGORA_DB_TIMEOUT" | "ARAGORA_DB_POOL_TIMEOUT" | "ARAGORA_DB_STATEMENT_TIMEOUT" | "ARAGORA_POOL_STATEMENT_TIMEOUT" => "2.5",
            "ARAGORA_REDIS_SOCKET_TIMEOUT" | "ARAGORA_REDIS_SOCKET_CONNECT_TIMEOUT" => "1.5",
            _ => "7",
        }
    }

    #[test]
    fn every_legacy_name_works_or_warns_naming_what_replaces_it() {
        for (name, legacy) in LEGACY_VARIABLES {
            Jail::expect_with(|jail| {
                jail.set_env(name, sample(name));
                if *name == "ARAGORA_DB_BACKEND" {
                    jail.set_env("DATABASE_URL", "postgres://localhost/app");
                }
                let config = config()?;
                let warnings = config.warnings();
                let warning = warnings.iter().find(|w| w.starts_with(name)).ok_or_else(|| format!("{name}: no warning in {warnings:?}"))?;
                let json = serde_json::to_value(&config).map_err(|e| e.to_string())?;
                match legacy {
                    Legacy::Alias("backend") => {
                        assert_eq!(config.backend, DatabaseBackend::Postgresql, "{name}");
                        assert!(warning.contains("DATABASE_BACKEND"), "{warning}");
                    }
                    Legacy::Alias("database_url") => {
                        let url = config.database_url.as_ref().map(|u| u.expose().as_str());
                        assert_eq!(url, Some("postgres://legacy@localhost/app"));
                    }
                    Legacy::Alias("multi_instance") => assert!(config.multi_instance, "{name}"),
                    Legacy::Alias(field) => {
                        assert_eq!(json.get(*field), Some(&serde_json::json!(7)), "{name} sets {field}");
                        assert!(warning.contains(&field.to_ascii_uppercase()), "{warning}");
                    }
                    Legacy::Seconds(field) => {
                        let expected = if name.starts_with("ARAGORA_REDIS") { 1_500 } else { 2_500 };
                        assert_eq!(json.get(*field), Some(&serde_json::json!(expected)), "{name} sets {field} in ms");
                    }
                    Legacy::Replaced(instead) => assert!(warning.contains(instead), "{warning}"),
                }
                Ok(())
            });
        }
    }

    #[test]
    fn legacy_values_that_mean_nothing_are_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_DB_TIMEOUT", "soon");
            let err = config().expect_err("refused");
            assert!(err.contains("ARAGORA_DB_TIMEOUT"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_JOB_STORE_BACKEND", "mongodb");
            let err = config().expect_err("refused");
            assert!(err.contains("ARAGORA_JOB_STORE_BACKEND") && err.contains("mongodb"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_DB_BACKEND", "auto");
            assert_eq!(config()?.backend, DatabaseBackend::Sqlite, "auto means the default");
            Ok(())
        });
    }

    #[test]
    fn unknown_storage_names_warn_and_the_applications_own_do_not() {
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_REDIS_SENTINEL_HOST", "typo");
            jail.set_env("ARAGORA_POSTGRES_MAX_CONECTIONS", "9");
            jail.set_env("ARAGORA_LLM_BACKEND", "openai");
            jail.set_env("ARAGORA_FEATURE_FLAGS", "x");
            jail.set_env("ARAGORA_STORAGE_BUCKET", "s3://x");
            jail.set_env("ARAGORA_EMAIL_BACKEND", "smtp");
            jail.set_env("ARAGORA_JOB_BACKEND", "celery");
            jail.set_env("ARAGORA_CACHE_STORE_BACKEND", "redis");
            jail.set_env("ARAGORA_POSTGRES_MAX_CONNECTIONS", "9");
            let warnings = config()?.warnings();
            for name in ["ARAGORA_REDIS_SENTINEL_HOST", "ARAGORA_POSTGRES_MAX_CONECTIONS", "ARAGORA_CACHE_STORE_BACKEND"] {
                assert!(warnings.iter().any(|w| w.starts_with(name)), "{name} warns: {warnings:?}");
            }
            for name in ["ARAGORA_LLM_BACKEND", "ARAGORA_FEATURE_FLAGS", "ARAGORA_STORAGE_BUCKET", "ARAGORA_POSTGRES_MAX_CONNECTIONS "] {
                assert!(!warnings.iter().any(|w| w.starts_with(name)), "{name} is not ours: {warnings:?}");
            }
            // The application's own `ARAGORA_<STORE>_BACKEND` with a value that is no backend:
            // noted, never fatal, and it places nothing.
            assert!(warnings.iter().any(|w| w.starts_with("ARAGORA_EMAIL_BACKEND=`smtp`")), "{warnings:?}");
            let config = config()?;
            assert_eq!(
                (config.store_backend("email"), config.store_backend("job_queue")),
                (DatabaseBackend::Sqlite, DatabaseBackend::Sqlite)
            );
            Ok(())
        });
    }

    #[test]
    fn stores_are_placed_by_our_names_and_the_originals() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://localhost/app");
            jail.set_env("ARAGORA_JOB_STORE_BACKEND", "postgresql");
            jail.set_env("ARAGORA_BLACKLIST_BACKEND", "supabase");
            jail.set_env("ARAGORA_INVITATION_BACKEND", "memory");
            jail.set_env("ARAGORA_INVITATION_STORE_BACKEND", "postgres");
            jail.set_env("ARAGORA_GMAIL_STORE_BACKEND", "memory");
            jail.set_env("ARAGORA_GMAIL_TOKEN_STORE_BACKEND", "postgresql");
            let config = config()?;
            assert_eq!(config.store_backend("job_queue"), DatabaseBackend::Postgresql);
            assert_eq!(config.store_backend("token_blacklist"), DatabaseBackend::Postgresql);
            assert_eq!(config.store_backend("invitation"), DatabaseBackend::Postgresql, "_STORE_BACKEND wins over _BACKEND");
            assert_eq!(config.store_backend("gmail_token"), DatabaseBackend::Postgresql, "our name wins over the original's");
            let warnings = config.warnings();
            assert!(
                warnings.iter().any(|w| w.starts_with("ARAGORA_GMAIL_STORE_BACKEND is read as ARAGORA_GMAIL_TOKEN_STORE_BACKEND")),
                "{warnings:?}"
            );
            assert_eq!(config.store_backend("user"), DatabaseBackend::Sqlite);
            assert_eq!(config.backends_in_use(), vec![DatabaseBackend::Sqlite, DatabaseBackend::Postgresql]);
            assert!(config.warnings().iter().any(|w| w.starts_with("ARAGORA_BLACKLIST_BACKEND=supabase")));
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_JOB_QUEUE_STORE_BACKEND", "postgresql");
            let err = config().expect_err("no URL");
            assert!(err.contains("DATABASE_URL"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn production_rules_hold_for_every_store_in_one_place() {
        let key = "ab".repeat(32);
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_ENV", "production");
            jail.set_env("ENCRYPTION_KEY", &key);
            assert_eq!(config()?.backend, DatabaseBackend::Sqlite, "one instance may use SQLite");
            jail.set_env("ARAGORA_MULTI_INSTANCE", "true");
            let err = config().expect_err("SQLite with many instances");
            assert!(err.contains("DATABASE_BACKEND=sqlite") && err.contains("ARAGORA_MULTI_INSTANCE"), "{err}");
            jail.set_env("DATABASE_BACKEND", "postgresql");
            jail.set_env("DATABASE_URL", "postgres://localhost/app");
            jail.set_env("ARAGORA_SESSION_STORE_BACKEND", "memory");
            jail.set_env("ARAGORA_INVITATION_STORE_BACKEND", "sqlite");
            let err = config().expect_err("one store on SQLite");
            assert!(err.contains("ARAGORA_INVITATION_STORE_BACKEND=sqlite"), "{err}");
            jail.set_env("ARAGORA_INVITATION_STORE_BACKEND", "memory");
            let err = config().expect_err("one store in memory");
            assert!(err.contains("ARAGORA_INVITATION_STORE_BACKEND=memory"), "{err}");
            jail.set_env("ARAGORA_INVITATION_STORE_BACKEND", "postgresql");
            jail.set_env("ARAGORA_REDIS_URL", "redis://localhost");
            jail.set_env("ARAGORA_RECEIPT_STORE_BACKEND", "redis");
            let err = config().expect_err("receipts apart from the audit log");
            assert!(err.contains("share tables"), "{err}");
            for store in ["AUDIT", "AUDIT_TRAIL", "IMPERSONATION"] {
                jail.set_env(format!("ARAGORA_{store}_STORE_BACKEND"), "redis");
            }
            let config = config()?;
            assert!(
                config.placement_warnings().iter().any(|w| w.contains("receipt store is on Redis")),
                "{:?}",
                config.placement_warnings()
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("ARAGORA_JOB_STORE_BACKEND", "memory");
            assert_eq!(config()?.store_backend("job_queue"), DatabaseBackend::Memory, "development allows memory");
            Ok(())
        });
    }
}
