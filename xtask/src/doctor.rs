//! `cargo xtask doctor`: what the configuration resolves to, and whether it works.

use anyhow::Context;
use rusqlite::OpenFlags;
use sqlx::Connection;
use storage_core::{DatabaseBackend, StorageConfig};

pub(crate) async fn run() -> anyhow::Result<()> {
    let config = match StorageConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            println!("configuration: INVALID: {e}");
            return Err(e.into());
        }
    };
    println!("configuration (secrets redacted):\n{}", serde_json::to_string_pretty(&config)?);
    println!("environment: {} ({})", config.environment.0, if config.is_production() { "production rules" } else { "development" });
    println!("features: postgres={} redis={}", aragora_storage::POSTGRESQL_AVAILABLE, aragora_storage::REDIS_AVAILABLE);
    let warnings = config.warnings();
    if warnings.is_empty() {
        println!("warnings: none");
    }
    for warning in warnings {
        println!("warning: {warning}");
    }

    match (&config.encryption_key, config.key_file().exists()) {
        (Some(_), _) => {
            let ring = storage_crypto::load_key_ring(&config)?;
            println!("encryption key: ENCRYPTION_KEY set, primary key id {:08x}", ring.primary().id());
        }
        (None, true) => println!("encryption key: development key file {} (set ENCRYPTION_KEY in production)", config.key_file().display()),
        (None, false) => println!("encryption key: none yet; development mode will create {}", config.key_file().display()),
    }

    let current = match config.backend {
        DatabaseBackend::Sqlite => match rusqlite::Connection::open_with_flags(&config.sqlite_path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
            Ok(mut conn) => {
                println!("connectivity: sqlite {} ok", config.sqlite_path.display());
                let status = storage_schema::check_schema_version(&mut conn).await?;
                crate::migrate::print_status(&status);
                status.is_current()
            }
            Err(e) => {
                println!("connectivity: sqlite {}: {e} (it is created on first open)", config.sqlite_path.display());
                false
            }
        },
        DatabaseBackend::Postgresql => {
            let url = config.database_url.as_ref().context("DATABASE_URL is not set")?;
            let mut conn = sqlx::PgConnection::connect(url.expose()).await.context("connectivity: postgresql")?;
            println!("connectivity: postgresql ok");
            let status = storage_schema::check_schema_version(&mut conn).await?;
            crate::migrate::print_status(&status);
            status.is_current()
        }
        _ => true,
    };
    // The census and health need the stores. Doctor changes nothing: it never migrates (so only
    // on a current schema) and never creates the development key file.
    if !current {
        println!("key census: skipped until the schema is current (cargo xtask migrate)");
        return Ok(());
    }
    if config.encryption_key.is_none() && !config.key_file().exists() && config.backends_in_use() != [DatabaseBackend::Memory] {
        println!("key census: skipped: no key yet");
        return Ok(());
    }
    let storage = aragora_storage::Storage::connect(&config).await.with_context(|| format!("connectivity: {}", config.backend))?;
    println!("health:\n{}", serde_json::to_string_pretty(&storage.health().await)?);
    let primary = storage_crypto::load_key_ring(&config)?.primary().name();
    println!("values sealed per key (primary {primary}):");
    crate::keys::print_census(&storage.key_census().await?, &primary);
    Ok(())
}
