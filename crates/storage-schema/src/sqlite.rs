//! Migrations on SQLite: the whole run is one `BEGIN IMMEDIATE` transaction, so concurrent
//! migrators queue on the write lock and the second finds everything applied.

use crate::{AppliedMigration, MIGRATIONS_TABLE, Migration, SchemaConnection, embedded, sqlx_error};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};
use storage_core::Result;

const BACKEND: &str = "sqlite";

async fn read(conn: &mut SqliteConnection) -> Result<Vec<AppliedMigration>> {
    let rows = sqlx::query(AssertSqlSafe(format!("SELECT version, name, checksum FROM {MIGRATIONS_TABLE} ORDER BY version")))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| sqlx_error(BACKEND, e))?;
    Ok(rows.iter().map(|r| AppliedMigration { version: r.get(0), name: r.get(1), checksum: r.get(2) }).collect())
}

impl SchemaConnection for SqliteConnection {
    const MIGRATIONS: &'static [Migration] = embedded::SQLITE;

    async fn lock(&mut self) -> Result<Vec<AppliedMigration>> {
        sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *self).await.map_err(|e| sqlx_error(BACKEND, e))?;
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        );
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(create)).execute(&mut *self).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *self).await;
            return Err(sqlx_error(BACKEND, e));
        }
        read(self).await
    }

    async fn apply(&mut self, migration: &Migration) -> Result<()> {
        sqlx::raw_sql(migration.sql).execute(&mut *self).await.map_err(|e| sqlx_error(BACKEND, e))?;
        sqlx::query(AssertSqlSafe(format!("INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)")))
            .bind(migration.version)
            .bind(migration.name)
            .bind(migration.checksum())
            .bind(chrono::Utc::now().timestamp_micros())
            .execute(&mut *self)
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Ok(())
    }

    async fn unlock(&mut self, commit: bool) -> Result<()> {
        let sql = if commit { "COMMIT" } else { "ROLLBACK" };
        sqlx::raw_sql(sql).execute(&mut *self).await.map_err(|e| sqlx_error(BACKEND, e))?;
        Ok(())
    }

    async fn read_applied(&mut self) -> Result<Vec<AppliedMigration>> {
        let exists: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(MIGRATIONS_TABLE)
            .fetch_one(&mut *self)
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        if exists == 0 { Ok(Vec::new()) } else { read(self).await }
    }
}
