//! The migrated SQLite schema has every document table as its declaration requires: drift
//! between a migration and a `Document` fails here, not at the first query in production.

use rusqlite::Connection;
use storage_core::Document;
use storage_schema::Dialect;
use storage_schema::ddl::{Column, Found, Index, create_table, drift};

fn found(conn: &Connection, table: &str) -> Found {
    let mut columns = conn.prepare(&format!("PRAGMA table_info({table})")).expect("table_info");
    let columns: Vec<Column> = columns
        .query_map([], |r| {
            Ok(Column { name: r.get(1)?, sql_type: r.get::<_, String>(2)?.to_uppercase(), not_null: r.get::<_, i64>(3)? == 1 })
        })
        .expect("columns")
        .collect::<Result<_, _>>()
        .expect("columns");
    let mut list = conn.prepare(&format!("PRAGMA index_list({table})")).expect("index_list");
    let names: Vec<(String, bool)> =
        list.query_map([], |r| Ok((r.get(1)?, r.get::<_, i64>(2)? == 1))).expect("indexes").collect::<Result<_, _>>().expect("indexes");
    let indexes = names
        .into_iter()
        .map(|(name, unique)| {
            let mut info = conn.prepare(&format!("PRAGMA index_info({name})")).expect("index_info");
            let columns = info.query_map([], |r| r.get(2)).expect("index columns").collect::<Result<_, _>>().expect("index columns");
            Index { name, unique, columns }
        })
        .collect();
    Found { columns, unordered_text: Vec::new(), indexes }
}

#[test]
fn every_document_table_matches_its_declaration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = Connection::open(dir.path().join("schema.db")).expect("open");
    futures::executor::block_on(storage_schema::upgrade_schema(&mut conn)).expect("migrate");
    for table in storage_core::stores::TABLES {
        let problems = drift(Dialect::Sqlite, table, &found(&conn, table.name));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

#[test]
fn the_check_notices_drift() {
    let conn = Connection::open_in_memory().expect("open");
    let table = &storage_testkit::engine::Probe::TABLE;
    conn.execute_batch(&create_table(Dialect::Sqlite, table)).expect("create");
    assert!(drift(Dialect::Sqlite, table, &found(&conn, table.name)).is_empty(), "the generated DDL matches");
    conn.execute_batch("DROP INDEX engine_probes_by_token; CREATE INDEX engine_probes_by_token ON engine_probes (tenant, token);")
        .expect("drift");
    conn.execute_batch("ALTER TABLE engine_probes ADD COLUMN stray TEXT").expect("drift");
    let problems = drift(Dialect::Sqlite, table, &found(&conn, table.name));
    assert_eq!(problems.len(), 2, "{problems:#?}");
}
