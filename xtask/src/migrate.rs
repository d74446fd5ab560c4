//! `cargo xtask migrate`: apply or inspect the schema of a SQLite file or a PostgreSQL database.

use anyhow::{Context, bail};
use rusqlite::OpenFlags;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::path::PathBuf;
use std::str::FromStr;
use storage_core::{DatabaseBackend, StorageConfig};
use storage_schema::{Migration, SchemaConnection, SchemaStatus};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// `status` shows the schema version and pending migrations without changing anything.
    action: Option<String>,
    /// `sqlite` or `postgresql` (default: the configured backend).
    #[arg(long)]
    backend: Option<String>,
    /// The SQLite file (default: SQLITE_PATH or ./aragora.db).
    #[arg(long, conflicts_with = "database_url")]
    sqlite_path: Option<PathBuf>,
    /// The PostgreSQL URL (default: DATABASE_URL).
    #[arg(long)]
    database_url: Option<String>,
    /// Stop at this migration version instead of the latest.
    #[arg(long)]
    target: Option<i64>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let status_only = match args.action.as_deref() {
        None => false,
        Some("status") => true,
        Some(other) => bail!("unknown action `{other}`; did you mean `cargo xtask migrate status`?"),
    };
    let config = StorageConfig::from_env()?;
    let backend = match &args.backend {
        Some(name) => DatabaseBackend::from_str(name)?,
        None if args.database_url.is_some() => DatabaseBackend::Postgresql,
        None => config.backend,
    };
    match backend {
        DatabaseBackend::Sqlite => {
            let path = args.sqlite_path.clone().unwrap_or(config.sqlite_path.clone());
            let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE;
            if !status_only {
                flags |= OpenFlags::SQLITE_OPEN_CREATE;
            }
            let mut conn = rusqlite::Connection::open_with_flags(&path, flags).with_context(|| format!("opening {}", path.display()))?;
            println!("sqlite {}", path.display());
            act(&mut conn, status_only, args.target).await
        }
        DatabaseBackend::Postgresql => {
            let url = match args.database_url.clone() {
                Some(url) => url,
                None => config.database_url.as_ref().map(|u| u.expose().clone()).context("no --database-url and no DATABASE_URL")?,
            };
            let options = PgConnectOptions::from_str(&url).context("DATABASE_URL is not a PostgreSQL URL")?;
            let mut conn = PgConnection::connect_with(&options).await.context("connecting to PostgreSQL")?;
            println!("postgresql {}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or_default());
            act(&mut conn, status_only, args.target).await
        }
        other => bail!("the {other} backend has no schema to migrate"),
    }
}

async fn act<C: SchemaConnection>(conn: &mut C, status_only: bool, target: Option<i64>) -> anyhow::Result<()> {
    if !status_only {
        let applied = storage_schema::run_migrations(conn, target).await?;
        report("applied", &applied);
    }
    print_status(&storage_schema::check_schema_version(conn).await?);
    Ok(())
}

fn report(verb: &str, migrations: &[Migration]) {
    if migrations.is_empty() {
        println!("{verb}: nothing");
    }
    for m in migrations {
        println!("{verb}: {}", m.name);
    }
}

pub(crate) fn print_status(status: &SchemaStatus) {
    println!("schema version {} of {}", status.current, status.latest);
    report("pending", &status.pending);
}
