//! Migrations on PostgreSQL: a session advisory lock serialises migrators across processes, and
//! each migration commits in its own transaction together with its bookkeeping row.

use crate::{AppliedMigration, MIGRATIONS_TABLE, Migration, SchemaConnection, embedded, sqlx_error};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use storage_core::Result;

/// The advisory lock key: "aragora" in ASCII, as a number.
const LOCK_KEY: i64 = 0x0061_7261_676f_7261;

async fn read(conn: &mut PgConnection) -> Result<Vec<AppliedMigration>> {
    let rows = sqlx::query(AssertSqlSafe(format!("SELECT version, name, checksum FROM {MIGRATIONS_TABLE} ORDER BY version")))
        .fetch_all(&mut *conn)
        .await
        .map_err(sqlx_error)?;
    rows.iter()
        .map(|r| Ok(AppliedMigration { version: r.try_get(0)?, name: r.try_get(1)?, checksum: r.try_get(2)? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(sqlx_error)
}

impl SchemaConnection for PgConnection {
    const MIGRATIONS: &'static [Migration] = embedded::POSTGRES;

    async fn lock(&mut self) -> Result<Vec<AppliedMigration>> {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(LOCK_KEY).execute(&mut *self).await.map_err(sqlx_error)?;
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        );
        sqlx::raw_sql(AssertSqlSafe(create)).execute(&mut *self).await.map_err(sqlx_error)?;
        read(self).await
    }

    async fn apply(&mut self, migration: &Migration) -> Result<()> {
        let mut tx = self.begin().await.map_err(sqlx_error)?;
        sqlx::raw_sql(migration.sql).execute(&mut *tx).await.map_err(sqlx_error)?;
        sqlx::query(AssertSqlSafe(format!("INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")))
            .bind(migration.version)
            .bind(migration.name)
            .bind(migration.checksum())
            .bind(chrono::Utc::now())
            .execute(&mut *tx)
            .await
            .map_err(sqlx_error)?;
        tx.commit().await.map_err(sqlx_error)
    }

    async fn unlock(&mut self, _commit: bool) -> Result<()> {
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(LOCK_KEY).execute(&mut *self).await.map_err(sqlx_error)?;
        Ok(())
    }

    async fn read_applied(&mut self) -> Result<Vec<AppliedMigration>> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(MIGRATIONS_TABLE)
            .fetch_one(&mut *self)
            .await
            .map_err(sqlx_error)?;
        if exists { read(self).await } else { Ok(Vec::new()) }
    }
}
