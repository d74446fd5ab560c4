//! What a [`TableDef`] requires of the SQL schema: its columns with their types, and one index per
//! declared index (unique where declared). The schema tests compare every migrated table with it,
//! so drift between a migration and a document fails a test, not the first query in production;
//! [`create_table`] prints the same as DDL, the starting point of a new store's migration.

use crate::Dialect;
use storage_core::{IndexKind, TableDef, Unique};

/// A column and its declared SQL type (upper case, as the dialect reports it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: &'static str,
    /// Its type: `TEXT`, `INTEGER`, `BIGINT`, `TIMESTAMPTZ`, `BOOLEAN`.
    pub sql_type: &'static str,
    /// Whether it is `NOT NULL`.
    pub not_null: bool,
}

/// An index and its key columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Its name: `<table>_by_<column>`.
    pub name: String,
    /// Whether it is unique.
    pub unique: bool,
    /// Its key columns, in order.
    pub columns: Vec<&'static str>,
}

fn type_of(dialect: Dialect, kind: IndexKind) -> &'static str {
    match (dialect, kind) {
        (_, IndexKind::Text) => "TEXT",
        (Dialect::Sqlite, _) => "INTEGER",
        (Dialect::Postgres, IndexKind::Time) => "TIMESTAMPTZ",
        (Dialect::Postgres, IndexKind::Int) => "BIGINT",
        (Dialect::Postgres, IndexKind::Bool) => "BOOLEAN",
    }
}

/// The columns `table` needs, in order.
pub fn columns(dialect: Dialect, table: &TableDef) -> Vec<Column> {
    let required = |name, sql_type| Column { name, sql_type, not_null: true };
    let mut columns = vec![required("tenant", "TEXT"), required("id", "TEXT")];
    columns.extend(table.indexes.iter().map(|spec| Column { name: spec.column, sql_type: type_of(dialect, spec.kind), not_null: false }));
    if table.expires {
        columns.push(Column { name: "expires_at", sql_type: type_of(dialect, IndexKind::Time), not_null: false });
    }
    let integer = type_of(dialect, IndexKind::Int);
    let time = type_of(dialect, IndexKind::Time);
    columns.extend([required("version", integer), required("created_at", time), required("updated_at", time), required("body", "TEXT")]);
    columns
}

/// The indexes `table` needs: per declared index, `(tenant, column, id)`, or `(tenant, column)`
/// unique within a tenant, or `(column)` unique across tenants; and `(expires_at)` for sweeps.
pub fn indexes(table: &TableDef) -> Vec<Index> {
    let mut indexes: Vec<Index> = table
        .indexes
        .iter()
        .map(|spec| {
            let (unique, columns) = match spec.unique {
                Unique::No => (false, vec!["tenant", spec.column, "id"]),
                Unique::PerTenant => (true, vec!["tenant", spec.column]),
                Unique::Global => (true, vec![spec.column]),
            };
            Index { name: crate::index_name(table, spec.column), unique, columns }
        })
        .collect();
    if table.expires {
        indexes.push(Index { name: crate::index_name(table, "expires_at"), unique: false, columns: vec!["expires_at"] });
    }
    indexes
}

/// The DDL creating `table` in `dialect`. Text columns use byte order (`COLLATE "C"` on
/// PostgreSQL), so lists page in the same order on every backend.
pub fn create_table(dialect: Dialect, table: &TableDef) -> String {
    let collate = if dialect == Dialect::Postgres { " COLLATE \"C\"" } else { "" };
    let mut ddl = format!("CREATE TABLE {} (\n", table.name);
    for column in columns(dialect, table) {
        let collation = if column.sql_type == "TEXT" && column.name != "body" { collate } else { "" };
        let null = if column.not_null { " NOT NULL" } else { "" };
        ddl.push_str(&format!("    {} {}{collation}{null},\n", column.name, column.sql_type));
    }
    ddl.push_str("    PRIMARY KEY (tenant, id)\n)");
    if dialect == Dialect::Sqlite {
        ddl.push_str(" WITHOUT ROWID");
    }
    ddl.push_str(";\n");
    for index in indexes(table) {
        let unique = if index.unique { "UNIQUE " } else { "" };
        ddl.push_str(&format!("CREATE {unique}INDEX {} ON {} ({});\n", index.name, table.name, index.columns.join(", ")));
    }
    ddl
}
