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
    pub name: String,
    /// Its type: `TEXT`, `INTEGER`, `BIGINT`, `TIMESTAMPTZ`, `BOOLEAN`.
    pub sql_type: String,
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
    pub columns: Vec<String>,
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
    let column = |name: &str, sql_type: &str, not_null| Column { name: name.to_owned(), sql_type: sql_type.to_owned(), not_null };
    let required = |name, sql_type| column(name, sql_type, true);
    let mut columns = vec![required("tenant", "TEXT"), required("id", "TEXT")];
    columns.extend(table.indexes.iter().map(|spec| column(spec.column, type_of(dialect, spec.kind), false)));
    if table.expires {
        columns.push(column("expires_at", type_of(dialect, IndexKind::Time), false));
    }
    let integer = type_of(dialect, IndexKind::Int);
    let time = type_of(dialect, IndexKind::Time);
    columns.extend([required("version", integer), required("created_at", time), required("updated_at", time), required("body", "TEXT")]);
    if table.search {
        columns.push(column("search", "TEXT", false));
        columns.push(match dialect {
            // The rowid the FTS5 index refers to: an alias, so `VACUUM` never renumbers it.
            Dialect::Sqlite => column("seq", "INTEGER", false),
            Dialect::Postgres => column("search_vector", "TSVECTOR", false),
        });
    }
    columns
}

/// The FTS5 index of a searchable SQLite table: an external-content table over its `search`
/// column, kept by triggers in the writing transaction.
pub fn fts_table(table: &TableDef) -> String {
    format!("{}_fts", table.name)
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
            Index { name: crate::index_name(table, spec.column), unique, columns: columns.into_iter().map(str::to_owned).collect() }
        })
        .collect();
    if table.expires {
        indexes.push(Index { name: crate::index_name(table, "expires_at"), unique: false, columns: vec!["expires_at".to_owned()] });
    }
    indexes
}

/// The DDL creating `table` in `dialect`. Text columns use byte order (`COLLATE "C"` on
/// PostgreSQL), so lists page in the same order on every backend.
pub fn create_table(dialect: Dialect, table: &TableDef) -> String {
    let collate = if dialect == Dialect::Postgres { " COLLATE \"C\"" } else { "" };
    let mut ddl = format!("CREATE TABLE {} (\n", table.name);
    for column in columns(dialect, table) {
        let collation = if column.sql_type == "TEXT" && !["body", "search"].contains(&column.name.as_str()) { collate } else { "" };
        let null = if column.not_null { " NOT NULL" } else { "" };
        let extra = match column.name.as_str() {
            // The FTS rowid of a searchable SQLite table (an index may be named `seq` elsewhere).
            "seq" if table.search && dialect == Dialect::Sqlite => " PRIMARY KEY",
            "search_vector" => " GENERATED ALWAYS AS (to_tsvector('simple', coalesce(search, ''))) STORED",
            _ => "",
        };
        ddl.push_str(&format!("    {} {}{collation}{null}{extra},\n", column.name, column.sql_type));
    }
    match (dialect, table.search) {
        (Dialect::Sqlite, true) => ddl.push_str("    UNIQUE (tenant, id)\n);\n"),
        (Dialect::Sqlite, false) => ddl.push_str("    PRIMARY KEY (tenant, id)\n) WITHOUT ROWID;\n"),
        (Dialect::Postgres, _) => ddl.push_str("    PRIMARY KEY (tenant, id)\n);\n"),
    }
    for index in indexes(table) {
        let unique = if index.unique { "UNIQUE " } else { "" };
        ddl.push_str(&format!("CREATE {unique}INDEX {} ON {} ({});\n", index.name, table.name, index.columns.join(", ")));
    }
    if table.search {
        let (name, fts) = (table.name, fts_table(table));
        match dialect {
            Dialect::Sqlite => ddl.push_str(&format!(
                "CREATE VIRTUAL TABLE {fts} USING fts5(search, content='{name}', content_rowid='seq', tokenize='unicode61');\n\
                 CREATE TRIGGER {fts}_insert AFTER INSERT ON {name} BEGIN\n\
                 \x20   INSERT INTO {fts} (rowid, search) VALUES (new.seq, new.search);\n\
                 END;\n\
                 CREATE TRIGGER {fts}_delete AFTER DELETE ON {name} BEGIN\n\
                 \x20   INSERT INTO {fts} ({fts}, rowid, search) VALUES ('delete', old.seq, old.search);\n\
                 END;\n\
                 CREATE TRIGGER {fts}_update AFTER UPDATE OF search ON {name} BEGIN\n\
                 \x20   INSERT INTO {fts} ({fts}, rowid, search) VALUES ('delete', old.seq, old.search);\n\
                 \x20   INSERT INTO {fts} (rowid, search) VALUES (new.seq, new.search);\n\
                 END;\n"
            )),
            Dialect::Postgres => {
                ddl.push_str(&format!("CREATE INDEX {} ON {name} USING GIN (search_vector);\n", crate::index_name(table, "search")));
            }
        }
    }
    ddl
}

/// What a database holds for a table, as its test reads it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Its columns (`sql_type` upper case; PostgreSQL's names mapped to the DDL's).
    pub columns: Vec<Column>,
    /// Text columns that do not compare in byte order (PostgreSQL: a collation other than "C").
    pub unordered_text: Vec<String>,
    /// Its indexes.
    pub indexes: Vec<Index>,
}

/// Every difference between what `table` requires and what the database holds; empty when they
/// agree. Extra indexes are allowed (an operator may add some); missing or different ones are
/// not, and neither are missing, extra or retyped columns.
pub fn drift(dialect: Dialect, table: &TableDef, found: &Found) -> Vec<String> {
    let mut problems = Vec::new();
    let want = columns(dialect, table);
    for column in &want {
        match found.columns.iter().find(|c| c.name == column.name) {
            None => problems.push(format!("{}: column `{}` is missing", table.name, column.name)),
            Some(c) if c.sql_type != column.sql_type => {
                problems.push(format!("{}: column `{}` is {}, not {}", table.name, column.name, c.sql_type, column.sql_type));
            }
            Some(c) if column.not_null && !c.not_null => problems.push(format!("{}: column `{}` may be NULL", table.name, column.name)),
            Some(_) => {}
        }
    }
    for column in &found.columns {
        if !want.iter().any(|c| c.name == column.name) {
            problems.push(format!("{}: column `{}` is not declared", table.name, column.name));
        }
    }
    for name in &found.unordered_text {
        if name != "body" && name != "search" {
            problems.push(format!("{}: text column `{name}` does not use byte order (COLLATE \"C\")", table.name));
        }
    }
    for index in indexes(table) {
        match found.indexes.iter().find(|i| i.name == index.name) {
            None => problems.push(format!("{}: index `{}` is missing", table.name, index.name)),
            Some(i) if i.unique != index.unique || i.columns != index.columns => problems.push(format!(
                "{}: index `{}` is {}({}), not {}({})",
                table.name,
                index.name,
                if i.unique { "UNIQUE " } else { "" },
                i.columns.join(", "),
                if index.unique { "UNIQUE " } else { "" },
                index.columns.join(", ")
            )),
            Some(_) => {}
        }
    }
    problems
}
