//! The migrated PostgreSQL schema has every document table as its declaration requires, with
//! byte-order ("C") text: drift between a migration and a `Document` fails here.

use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use storage_core::Document;
use storage_schema::Dialect;
use storage_schema::ddl::{Column, Found, Index, create_table, drift};
use storage_testkit::server::fresh_postgres_database;

const COLUMNS: &str = "SELECT column_name::text, data_type::text, is_nullable::text, coalesce(collation_name::text, '') \
    FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1";
const INDEXES: &str = "SELECT i.relname::text, ix.indisunique, array_agg(a.attname::text ORDER BY k.n) \
    FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid \
    CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n) \
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
    WHERE t.relname = $1 AND NOT ix.indisprimary GROUP BY i.relname, ix.indisunique";

async fn found(conn: &mut PgConnection, table: &str) -> Found {
    let mut found = Found::default();
    for row in sqlx::query(COLUMNS).bind(table).fetch_all(&mut *conn).await.expect("columns") {
        let (name, data_type, nullable, collation): (String, String, String, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
        let sql_type = match data_type.as_str() {
            "text" => "TEXT",
            "bigint" => "BIGINT",
            "timestamp with time zone" => "TIMESTAMPTZ",
            "boolean" => "BOOLEAN",
            "tsvector" => "TSVECTOR",
            other => other,
        };
        if sql_type == "TEXT" && collation != "C" {
            found.unordered_text.push(name.clone());
        }
        found.columns.push(Column { name, sql_type: sql_type.to_owned(), not_null: nullable == "NO" });
    }
    for row in sqlx::query(INDEXES).bind(table).fetch_all(&mut *conn).await.expect("indexes") {
        found.indexes.push(Index { name: row.get(0), unique: row.get(1), columns: row.get(2) });
    }
    found
}

#[tokio::test]
async fn every_document_table_matches_its_declaration_and_drift_is_noticed() {
    let url = fresh_postgres_database().await;
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    storage_schema::upgrade_schema(&mut conn).await.expect("migrate");
    for table in storage_core::stores::TABLES {
        let problems = drift(Dialect::Postgres, table, &found(&mut conn, table.name).await);
        assert!(problems.is_empty(), "{problems:#?}");
    }
    let probe = &storage_testkit::engine::Probe::TABLE;
    sqlx::raw_sql(AssertSqlSafe(create_table(Dialect::Postgres, probe))).execute(&mut conn).await.expect("create");
    assert!(drift(Dialect::Postgres, probe, &found(&mut conn, probe.name).await).is_empty(), "the generated DDL matches");
    sqlx::raw_sql("DROP INDEX engine_probes_by_code; ALTER TABLE engine_probes ALTER COLUMN name TYPE TEXT COLLATE \"en-x-icu\"")
        .execute(&mut conn)
        .await
        .or(sqlx::raw_sql(
            "DROP INDEX IF EXISTS engine_probes_by_code; ALTER TABLE engine_probes ALTER COLUMN name TYPE TEXT COLLATE \"POSIX\"",
        )
        .execute(&mut conn)
        .await)
        .expect("drift");
    let problems = drift(Dialect::Postgres, probe, &found(&mut conn, probe.name).await);
    assert_eq!(problems.len(), 2, "{problems:#?}");
}
