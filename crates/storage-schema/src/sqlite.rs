//! Migrations on SQLite (rusqlite): the whole run is one `BEGIN IMMEDIATE` transaction, so
//! concurrent migrators queue on the write lock and the second finds everything applied.
//!
//! The methods are synchronous underneath (rusqlite is): their futures are ready at once, so a
//! caller may drive them with any executor, e.g. `futures::executor::block_on` on a blocking
//! thread.

use crate::{AppliedMigration, MIGRATIONS_TABLE, Migration, SchemaConnection, embedded, sqlite_error};
use rusqlite::Connection;
use storage_core::Result;

const SELECT_APPLIED: &str = "SELECT version, name, checksum FROM aragora_schema_migrations ORDER BY version";
const CREATE: &str = "CREATE TABLE IF NOT EXISTS aragora_schema_migrations \
    (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)";
const RECORD: &str = "INSERT INTO aragora_schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)";

fn read(conn: &Connection) -> Result<Vec<AppliedMigration>> {
    let mut statement = conn.prepare(SELECT_APPLIED).map_err(sqlite_error)?;
    let rows = statement
        .query_map([], |row| Ok(AppliedMigration { version: row.get(0)?, name: row.get(1)?, checksum: row.get(2)? }))
        .map_err(sqlite_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite_error)
}

impl SchemaConnection for Connection {
    const MIGRATIONS: &'static [Migration] = embedded::SQLITE;

    async fn lock(&mut self) -> Result<Vec<AppliedMigration>> {
        self.execute_batch("BEGIN IMMEDIATE").map_err(sqlite_error)?;
        let applied = self.execute_batch(CREATE).map_err(sqlite_error).and_then(|()| read(self));
        if applied.is_err() {
            let _ = self.execute_batch("ROLLBACK");
        }
        applied
    }

    async fn apply(&mut self, migration: &Migration) -> Result<()> {
        self.execute_batch(migration.sql).map_err(sqlite_error)?;
        self.execute(RECORD, (migration.version, migration.name, migration.checksum(), chrono::Utc::now().timestamp_micros()))
            .map_err(sqlite_error)?;
        Ok(())
    }

    async fn unlock(&mut self, commit: bool) -> Result<()> {
        self.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" }).map_err(sqlite_error)
    }

    async fn read_applied(&mut self) -> Result<Vec<AppliedMigration>> {
        let exists: i64 = self
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [MIGRATIONS_TABLE], |row| row.get(0))
            .map_err(sqlite_error)?;
        if exists == 0 { Ok(Vec::new()) } else { read(self) }
    }
}
