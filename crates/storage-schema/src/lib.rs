//! Versioned schema migrations for `aragora-storage`, embedded in the binary.
//!
//! The files live in `migrations/sqlite` and `migrations/postgres` (`NNNN_<name>.sql`, LF line
//! endings). This crate keeps its own bookkeeping table, `aragora_schema_migrations`, with each
//! applied migration's SHA-256 checksum:
//!
//! - concurrent migrators apply each migration once (SQLite: one `BEGIN IMMEDIATE` transaction for
//!   the whole run; PostgreSQL: an advisory lock, one transaction per migration);
//! - an applied migration whose file was edited is refused, naming the file;
//! - a database newer than this build is refused rather than silently used.
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]

pub mod ddl;
mod error;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod statements;

#[cfg(feature = "postgres")]
pub use error::{pg_unique_violation, sqlx_error};
#[cfg(feature = "sqlite")]
pub use error::{sqlite_error, sqlite_unique_violation};
pub use statements::{Dialect, Param, Statement, Statements, bind, column_of_index, index_name};

use ring::digest;
use std::future::Future;
use storage_core::{Result, StorageError};

/// The bookkeeping table.
pub const MIGRATIONS_TABLE: &str = "aragora_schema_migrations";

/// One embedded migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number; migrations apply in ascending order.
    pub version: i64,
    /// Its file name without `.sql`, e.g. `0001_initial`.
    pub name: &'static str,
    /// The SQL script.
    pub sql: &'static str,
}

impl Migration {
    /// The SHA-256 of the script, hex.
    pub fn checksum(&self) -> String {
        digest::digest(&digest::SHA256, self.sql.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The embedded migrations, per dialect.
pub mod embedded {
    use super::Migration;
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// A migration as recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Its number.
    pub version: i64,
    /// Its name.
    pub name: String,
    /// The checksum of the script that was applied.
    pub checksum: String,
}

/// Where a database stands against this build's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The highest applied version (0 for an empty database).
    pub current: i64,
    /// The highest version this build knows.
    pub latest: i64,
    /// Migrations not yet applied, in order.
    pub pending: Vec<Migration>,
}

impl SchemaStatus {
    /// Whether the schema is at this build's latest version.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// A database connection migrations can run on (SQLite and PostgreSQL connections).
pub trait SchemaConnection: Send {
    /// This connection's migrations.
    const MIGRATIONS: &'static [Migration];
    /// Takes the migration lock, creates the bookkeeping table if needed, and reads it.
    fn lock(&mut self) -> impl Future<Output = Result<Vec<AppliedMigration>>> + Send;
    /// Applies one migration and records it, atomically.
    fn apply(&mut self, migration: &Migration) -> impl Future<Output = Result<()>> + Send;
    /// Releases the lock, keeping (`commit`) or discarding what was applied where the dialect
    /// allows it.
    fn unlock(&mut self, commit: bool) -> impl Future<Output = Result<()>> + Send;
    /// Reads the bookkeeping table without locking (empty if it does not exist).
    fn read_applied(&mut self) -> impl Future<Output = Result<Vec<AppliedMigration>>> + Send;
}

/// The first characters of a checksum, for messages (the stored one may be anything).
fn short(checksum: &str) -> String {
    checksum.chars().take(12).collect()
}

/// Compares what the database applied with what this build embeds.
fn plan(known: &'static [Migration], applied: &[AppliedMigration]) -> Result<SchemaStatus> {
    let latest = known.last().map_or(0, |m| m.version);
    for record in applied {
        let Some(migration) = known.iter().find(|m| m.version == record.version) else {
            return Err(StorageError::schema(format!(
                "the database has migration {} (`{}`), which this build does not know: it is newer than this build (latest {latest}); upgrade the application",
                record.version, record.name
            )));
        };
        if migration.checksum() != record.checksum {
            return Err(StorageError::schema(format!(
                "migration `{}` was edited after it was applied (checksum {} in the database, {} in this build); restore the original file and add a new migration instead",
                migration.name,
                short(&record.checksum),
                short(&migration.checksum())
            )));
        }
    }
    let current = applied.iter().map(|m| m.version).max().unwrap_or(0);
    let pending = known.iter().filter(|m| !applied.iter().any(|a| a.version == m.version)).copied().collect();
    Ok(SchemaStatus { current, latest, pending })
}

/// Where the database stands, without changing it (the seed's `check_schema_version`).
pub async fn check_schema_version<C: SchemaConnection>(conn: &mut C) -> Result<SchemaStatus> {
    let applied = conn.read_applied().await?;
    plan(C::MIGRATIONS, &applied)
}

/// Applies pending migrations up to `target_version` (all of them when `None`); returns the
/// migrations this call applied. Safe to run from several processes at once.
pub async fn run_migrations<C: SchemaConnection>(conn: &mut C, target_version: Option<i64>) -> Result<Vec<Migration>> {
    let latest = C::MIGRATIONS.last().map_or(0, |m| m.version);
    let target = target_version.unwrap_or(latest);
    if target < 0 || target > latest {
        return Err(StorageError::invalid("target_version", format!("`{target}` is not between 0 and the latest migration, {latest}")));
    }
    let applied = conn.lock().await?;
    let outcome = apply_pending(conn, &applied, target).await;
    let unlocked = conn.unlock(outcome.is_ok()).await;
    let done = outcome?;
    unlocked?;
    Ok(done)
}

async fn apply_pending<C: SchemaConnection>(conn: &mut C, applied: &[AppliedMigration], target: i64) -> Result<Vec<Migration>> {
    let status = plan(C::MIGRATIONS, applied)?;
    if status.current > target {
        return Err(StorageError::schema(format!(
            "the database is at version {}, above the target {target}; downgrades are not supported",
            status.current
        )));
    }
    let mut done = Vec::new();
    for migration in status.pending.into_iter().filter(|m| m.version <= target) {
        tracing::info!(migration = migration.name, "applying migration");
        conn.apply(&migration).await?;
        done.push(migration);
    }
    Ok(done)
}

/// Applies every pending migration (the seed's `upgrade_schema`).
pub async fn upgrade_schema<C: SchemaConnection>(conn: &mut C) -> Result<Vec<Migration>> {
    run_migrations(conn, None).await
}

/// Fails unless the schema is exactly at this build's latest version; stores call this on start.
pub async fn verify_schema<C: SchemaConnection>(conn: &mut C) -> Result<SchemaStatus> {
    let status = check_schema_version(conn).await?;
    if !status.is_current() {
        let names: Vec<_> = status.pending.iter().map(|m| m.name).collect();
        return Err(StorageError::schema(format!(
            "the schema is at version {} and needs {}: run `cargo xtask migrate`",
            status.current,
            names.join(", ")
        )));
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_migrations_are_ordered_and_mirrored_across_dialects() {
        for list in [embedded::SQLITE, embedded::POSTGRES] {
            assert!(!list.is_empty());
            assert!(list.windows(2).all(|w| w[0].version < w[1].version));
        }
        let names = |l: &[Migration]| l.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(embedded::SQLITE), names(embedded::POSTGRES));
    }

    #[test]
    fn an_edited_migration_is_named_and_an_unknown_one_refused() {
        let m = embedded::SQLITE[0];
        let edited = AppliedMigration { version: m.version, name: m.name.into(), checksum: "0".repeat(64) };
        let err = plan(embedded::SQLITE, &[edited]).expect_err("edited").to_string();
        assert!(err.contains(m.name) && err.contains("edited"), "{err}");
        let garbled = AppliedMigration { version: m.version, name: m.name.into(), checksum: "é".repeat(20) };
        let err = plan(embedded::SQLITE, &[garbled]).expect_err("a non-ASCII checksum is a mismatch, not a panic").to_string();
        assert!(err.contains(m.name), "{err}");
        let future = AppliedMigration { version: 9_999, name: "9999_future".into(), checksum: String::new() };
        let err = plan(embedded::SQLITE, &[future]).expect_err("future").to_string();
        assert!(err.contains("9999_future") && err.contains("newer"), "{err}");
    }
}
