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

    match (&config.encryption_key, config.key_file().exists()) {
        (Some(_), _) => {
            let ring = storage_crypto::load_key_ring(&config)?;
            println!("encryption key: ENCRYPTION_KEY set, primary key id {:08x}", ring.primary().id());
        }
        (None, true) => println!("encryption key: development key file {} (set ENCRYPTION_KEY in production)", config.key_file().display()),
        (None, false) => println!("encryption key: none yet; development mode will create {}", config.key_file().display()),
    }

    match config.backend {
        DatabaseBackend::Sqlite => match rusqlite::Connection::open_with_flags(&config.sqlite_path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
            Ok(mut conn) => {
                println!("connectivity: sqlite {} ok", config.sqlite_path.display());
                crate::migrate::print_status(&storage_schema::check_schema_version(&mut conn).await?);
            }
            Err(e) => println!("connectivity: sqlite {}: {e} (it is created on first open)", config.sqlite_path.display()),
        },
        DatabaseBackend::Postgresql => {
            let url = config.database_url.as_ref().context("DATABASE_URL is not set")?;
            let mut conn = sqlx::PgConnection::connect(url.expose()).await.context("connectivity: postgresql")?;
            println!("connectivity: postgresql ok");
            crate::migrate::print_status(&storage_schema::check_schema_version(&mut conn).await?);
        }
        other => {
            let storage = aragora_storage::Storage::connect(&config).await.with_context(|| format!("connectivity: {other}"))?;
            println!("connectivity: {} ok", storage.backend());
        }
    }
    Ok(())
}
