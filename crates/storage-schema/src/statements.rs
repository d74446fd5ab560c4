//! The statements of the generic engine's tables, for SQLite and PostgreSQL alike: built once per
//! table (and per query shape) from the table's declaration, cached, and returned with their
//! parameters in a neutral form that each backend binds natively. No statement text is built
//! from input: every name in it comes from a [`TableDef`].
//!
//! A table has the columns `tenant, id, <indexes…>, [expires_at,] version, created_at,
//! updated_at, body`. Rows are read as `tenant, id, version, created_at, updated_at,
//! <counters…>, body[, <order column>]`.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use storage_core::engine::{RowWrite, Step};
use storage_core::{Direction, Filter, IndexKind, Op, Position, Query, Scope, Search, TableDef, TenantId, Unique, Value};

/// Which SQL the statements are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `?1` placeholders; instants and booleans as integers; `IN` lists as JSON arrays.
    Sqlite,
    /// `$1` placeholders; `TIMESTAMPTZ` and `BOOLEAN`; `IN` lists as arrays.
    Postgres,
}

/// A statement parameter, bound natively by each backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// An integer (also SQLite's instants, in microseconds, and booleans).
    Int(i64),
    /// An instant (PostgreSQL).
    Time(DateTime<Utc>),
    /// A boolean (PostgreSQL).
    Bool(bool),
    /// A typed `NULL`.
    Null(IndexKind),
    /// The values of an `IN` list, of one kind (SQLite binds them as one JSON array).
    List(IndexKind, Vec<Value>),
}

/// A statement and its parameters, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL.
    pub sql: Arc<str>,
    /// Its parameters.
    pub params: Vec<Param>,
}

/// The statements of every table, for one dialect; cached as they are first built.
#[derive(Debug)]
pub struct Statements {
    dialect: Dialect,
    cache: Mutex<HashMap<Shape, Arc<str>>>,
}

/// What a statement's text depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Shape {
    GetOne(&'static str),
    GetMany(&'static str),
    Insert(&'static str),
    InsertMany(&'static str, usize),
    Upsert(&'static str),
    Update(&'static str),
    Version(&'static str),
    Delete(&'static str),
    DropExpired(&'static str),
    Purge(&'static str),
    Increment(&'static str, usize, bool),
    Counter(&'static str, usize),
    FindUnique(&'static str, usize, bool),
    List {
        table: &'static str,
        all_tenants: bool,
        filter: Vec<(&'static str, OpShape)>,
        order: Option<&'static str>,
        desc: bool,
        after: bool,
    },
    Count {
        table: &'static str,
        all_tenants: bool,
        filter: Vec<(&'static str, OpShape)>,
    },
    DeleteWhere {
        table: &'static str,
        all_tenants: bool,
        filter: Vec<(&'static str, OpShape)>,
    },
    Search {
        table: &'static str,
        filter: Vec<(&'static str, OpShape)>,
        count: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum OpShape {
    Eq,
    In,
    IsNull,
    NotNull,
    Lt,
    Le,
    Gt,
    Ge,
    Between,
}

fn shape_of(filter: &Filter) -> Vec<(&'static str, OpShape)> {
    filter
        .predicates()
        .iter()
        .map(|p| {
            let op = match p.op {
                Op::Eq(_) => OpShape::Eq,
                Op::In(_) => OpShape::In,
                Op::IsNull => OpShape::IsNull,
                Op::NotNull => OpShape::NotNull,
                Op::Lt(_) => OpShape::Lt,
                Op::Le(_) => OpShape::Le,
                Op::Gt(_) => OpShape::Gt,
                Op::Ge(_) => OpShape::Ge,
                Op::Between(..) => OpShape::Between,
            };
            (p.column, op)
        })
        .collect()
}

/// Builds one statement's parameters, numbering placeholders as they are used, and its text —
/// only the first time a shape is seen (`sql` is `None` once the text is cached).
struct Builder {
    dialect: Dialect,
    sql: Option<String>,
    params: Vec<Param>,
}

impl Builder {
    fn new(dialect: Dialect, text: bool) -> Self {
        Self { dialect, sql: text.then(|| String::with_capacity(256)), params: Vec::new() }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        if let Some(sql) = &mut self.sql {
            sql.push_str(text);
        }
        self
    }

    fn push_fmt(&mut self, text: std::fmt::Arguments<'_>) -> &mut Self {
        if let Some(sql) = &mut self.sql {
            let _ = sql.write_fmt(text);
        }
        self
    }

    /// Appends a placeholder for `param`.
    fn param(&mut self, param: Param) -> &mut Self {
        self.params.push(param);
        let n = self.params.len();
        let dialect = self.dialect;
        if let Some(sql) = &mut self.sql {
            let _ = match dialect {
                Dialect::Sqlite => write!(sql, "?{n}"),
                Dialect::Postgres => write!(sql, "${n}"),
            };
        }
        self
    }

    fn value(&mut self, value: &Value) -> &mut Self {
        let param = bind(self.dialect, value);
        self.param(param)
    }
}

/// A value as its dialect stores it.
pub fn bind(dialect: Dialect, value: &Value) -> Param {
    match (dialect, value) {
        (_, Value::Text(text)) => Param::Text(text.clone()),
        (_, Value::Int(n)) => Param::Int(*n),
        (Dialect::Sqlite, Value::Time(at)) => Param::Int(at.timestamp_micros()),
        (Dialect::Postgres, Value::Time(at)) => Param::Time(*at),
        (Dialect::Sqlite, Value::Bool(b)) => Param::Int(i64::from(*b)),
        (Dialect::Postgres, Value::Bool(b)) => Param::Bool(*b),
    }
}

fn instant(dialect: Dialect, at: DateTime<Utc>) -> Param {
    bind(dialect, &Value::Time(at))
}

fn optional(dialect: Dialect, kind: IndexKind, value: Option<&Value>) -> Param {
    value.map_or(Param::Null(kind), |value| bind(dialect, value))
}

/// The row columns every read selects (written only when a statement's text is built).
struct RowColumns<'a>(&'a TableDef);

impl std::fmt::Display for RowColumns<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tenant, id, version, created_at, updated_at, ")?;
        for (_, spec) in self.0.counters() {
            write!(f, "coalesce({}, 0), ", spec.column)?;
        }
        f.write_str("body")
    }
}

/// Every column of a table, in the order writes bind them.
struct AllColumns<'a>(&'a TableDef);

impl std::fmt::Display for AllColumns<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tenant, id")?;
        for spec in self.0.indexes {
            write!(f, ", {}", spec.column)?;
        }
        if self.0.expires {
            f.write_str(", expires_at")?;
        }
        f.write_str(", version, created_at, updated_at, body")?;
        if self.0.search {
            f.write_str(", search")?;
        }
        Ok(())
    }
}

impl Statements {
    /// The statements of `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect, cache: Mutex::new(HashMap::new()) }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The cached text of `shape`, built by `build` the first time; `build` also fills the
    /// parameters, which are returned every time.
    fn statement(&self, shape: Shape, build: impl FnOnce(&mut Builder)) -> Statement {
        let cached = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&shape).cloned();
        let mut builder = Builder::new(self.dialect, cached.is_none());
        build(&mut builder);
        let sql = match (cached, builder.sql) {
            (Some(sql), _) => sql,
            (None, text) => {
                let sql: Arc<str> = Arc::from(text.unwrap_or_default());
                self.cache.lock().unwrap_or_else(PoisonError::into_inner).entry(shape).or_insert(sql).clone()
            }
        };
        Statement { sql, params: builder.params }
    }

    fn live(&self, b: &mut Builder, table: &TableDef, now: DateTime<Utc>) {
        if table.expires {
            b.push(" AND (expires_at IS NULL OR expires_at > ").param(instant(self.dialect, now)).push(")");
        }
    }

    /// The live records among `ids`: rows.
    pub fn get(&self, table: &'static TableDef, tenant: &str, ids: &[String], now: DateTime<Utc>) -> Statement {
        let one = ids.len() == 1;
        let shape = if one { Shape::GetOne(table.name) } else { Shape::GetMany(table.name) };
        self.statement(shape, |b| {
            b.push_fmt(format_args!("SELECT {} FROM {} WHERE tenant = ", RowColumns(table), table.name))
                .param(Param::Text(tenant.to_owned()));
            match (one, ids.first()) {
                (true, Some(id)) => {
                    b.push(" AND id = ").param(Param::Text(id.clone()));
                }
                _ => {
                    let list = Param::List(IndexKind::Text, ids.iter().map(|id| Value::Text(id.clone())).collect());
                    match self.dialect {
                        Dialect::Sqlite => b.push(" AND id IN (SELECT value FROM json_each(").param(list).push("))"),
                        Dialect::Postgres => b.push(" AND id = ANY(").param(list).push(")"),
                    };
                }
            }
            self.live(b, table, now);
        })
    }

    /// The parameters of a full row, in [`all_columns`] order.
    fn row_values(&self, b: &mut Builder, row: &RowWrite, version: i64, now: DateTime<Utc>) {
        let table = row.table;
        b.param(Param::Text(row.tenant.as_str().to_owned())).push(", ").param(Param::Text(row.id.clone()));
        for (spec, value) in table.indexes.iter().zip(&row.indexes) {
            b.push(", ").param(optional(self.dialect, spec.kind, value.as_ref()));
        }
        if table.expires {
            b.push(", ").param(row.expires_at.map_or(Param::Null(IndexKind::Time), |at| instant(self.dialect, at)));
        }
        b.push(", ").param(Param::Int(version)).push(", ").param(instant(self.dialect, now)).push(", ").param(instant(self.dialect, now));
        b.push(", ").param(Param::Text(row.body.clone()));
        if table.search {
            b.push(", ").param(Self::search_text(row));
        }
    }

    fn search_text(row: &RowWrite) -> Param {
        row.search.clone().map_or(Param::Null(IndexKind::Text), Param::Text)
    }

    /// Inserts a row unless its id is taken (then affects nothing).
    pub fn insert(&self, row: &RowWrite, now: DateTime<Utc>) -> Statement {
        let table = row.table;
        self.statement(Shape::Insert(table.name), |b| {
            b.push_fmt(format_args!("INSERT INTO {} ({}) VALUES (", table.name, AllColumns(table)));
            self.row_values(b, row, 1, now);
            b.push(") ON CONFLICT (tenant, id) DO NOTHING");
        })
    }

    /// Inserts `rows` of one table (`rows[0]`'s) in one statement, each unless its id is taken
    /// → the ids inserted. At most [`Statements::MAX_ROWS_PER_INSERT`] rows.
    pub fn insert_many(&self, rows: &[RowWrite], now: DateTime<Utc>) -> Option<Statement> {
        let table = rows.first()?.table;
        if rows.len() > Self::MAX_ROWS_PER_INSERT || rows.iter().any(|row| !std::ptr::eq(row.table, table)) {
            return None;
        }
        Some(self.statement(Shape::InsertMany(table.name, rows.len()), |b| {
            b.push_fmt(format_args!("INSERT INTO {} ({}) VALUES ", table.name, AllColumns(table)));
            for (n, row) in rows.iter().enumerate() {
                b.push(if n == 0 { "(" } else { ", (" });
                self.row_values(b, row, 1, now);
                b.push(")");
            }
            b.push(" ON CONFLICT (tenant, id) DO NOTHING RETURNING id");
        }))
    }

    /// The most rows [`Statements::insert_many`] takes: well inside PostgreSQL's 65,535
    /// parameters for any table, and few statement shapes to cache.
    pub const MAX_ROWS_PER_INSERT: usize = 64;

    /// Inserts or replaces a row, keeping `created_at` → `version, created_at`.
    pub fn upsert(&self, row: &RowWrite, now: DateTime<Utc>) -> Statement {
        let table = row.table;
        self.statement(Shape::Upsert(table.name), |b| {
            b.push_fmt(format_args!("INSERT INTO {} ({}) VALUES (", table.name, AllColumns(table)));
            self.row_values(b, row, 1, now);
            b.push(") ON CONFLICT (tenant, id) DO UPDATE SET ");
            for spec in table.indexes {
                b.push_fmt(format_args!("{0} = excluded.{0}, ", spec.column));
            }
            if table.expires {
                b.push("expires_at = excluded.expires_at, ");
            }
            if table.search {
                b.push("search = excluded.search, ");
            }
            b.push_fmt(format_args!(
                "version = {}.version + 1, updated_at = excluded.updated_at, body = excluded.body RETURNING version, created_at",
                table.name
            ));
        })
    }

    /// Replaces a row at `expected` version → `version, created_at`.
    pub fn update(&self, row: &RowWrite, expected: i64, now: DateTime<Utc>) -> Statement {
        let table = row.table;
        self.statement(Shape::Update(table.name), |b| {
            b.push_fmt(format_args!("UPDATE {} SET ", table.name));
            for (spec, value) in table.indexes.iter().zip(&row.indexes) {
                b.push_fmt(format_args!("{} = ", spec.column)).param(optional(self.dialect, spec.kind, value.as_ref())).push(", ");
            }
            if table.expires {
                b.push("expires_at = ")
                    .param(row.expires_at.map_or(Param::Null(IndexKind::Time), |at| instant(self.dialect, at)))
                    .push(", ");
            }
            b.push("version = version + 1, updated_at = ").param(instant(self.dialect, now));
            b.push(", body = ").param(Param::Text(row.body.clone()));
            if table.search {
                b.push(", search = ").param(Self::search_text(row));
            }
            b.push(" WHERE tenant = ").param(Param::Text(row.tenant.as_str().to_owned()));
            b.push(" AND id = ").param(Param::Text(row.id.clone()));
            b.push(" AND version = ").param(Param::Int(expected));
            b.push(" RETURNING version, created_at");
        })
    }

    /// The version of a record (live or not; expired ones were dropped first) → `version`.
    pub fn version(&self, table: &'static TableDef, tenant: &str, id: &str) -> Statement {
        self.statement(Shape::Version(table.name), |b| {
            b.push_fmt(format_args!("SELECT version FROM {} WHERE tenant = ", table.name)).param(Param::Text(tenant.to_owned()));
            b.push(" AND id = ").param(Param::Text(id.to_owned()));
        })
    }

    /// Deletes a record → one row, whether it was live, if it existed.
    pub fn delete(&self, table: &'static TableDef, tenant: &str, id: &str, now: DateTime<Utc>) -> Statement {
        self.statement(Shape::Delete(table.name), |b| {
            b.push_fmt(format_args!("DELETE FROM {} WHERE tenant = ", table.name)).param(Param::Text(tenant.to_owned()));
            b.push(" AND id = ").param(Param::Text(id.to_owned()));
            if table.expires {
                b.push(" RETURNING (expires_at IS NULL OR expires_at > ").param(instant(self.dialect, now)).push(")");
            } else {
                b.push(" RETURNING 1 = 1");
            }
        })
    }

    /// Before a write to an expiring table: drops the expired rows it would collide with (its id,
    /// its unique values), so that an expired record counts as absent. `None` for other tables.
    pub fn drop_expired(&self, row: &RowWrite, now: DateTime<Utc>) -> Option<Statement> {
        let table = row.table;
        if !table.expires {
            return None;
        }
        Some(self.statement(Shape::DropExpired(table.name), |b| {
            b.push_fmt(format_args!("DELETE FROM {} WHERE expires_at <= ", table.name)).param(instant(self.dialect, now));
            b.push(" AND ((tenant = ").param(Param::Text(row.tenant.as_str().to_owned()));
            b.push(" AND id = ").param(Param::Text(row.id.clone())).push(")");
            for (spec, value) in table.indexes.iter().zip(&row.indexes) {
                match spec.unique {
                    Unique::No => {}
                    Unique::PerTenant => {
                        b.push(" OR (tenant = ").param(Param::Text(row.tenant.as_str().to_owned()));
                        b.push_fmt(format_args!(" AND {} = ", spec.column))
                            .param(optional(self.dialect, spec.kind, value.as_ref()))
                            .push(")");
                    }
                    Unique::Global => {
                        b.push_fmt(format_args!(" OR {} = ", spec.column)).param(optional(self.dialect, spec.kind, value.as_ref()));
                    }
                }
            }
            b.push(")");
        }))
    }

    /// Deletes every expired row.
    pub fn purge(&self, table: &'static TableDef, now: DateTime<Utc>) -> Statement {
        self.statement(Shape::Purge(table.name), |b| {
            b.push_fmt(format_args!("DELETE FROM {} WHERE expires_at <= ", table.name)).param(instant(self.dialect, now));
        })
    }

    /// Applies `step` to a live record within its limit → `counter, version, created_at`.
    pub fn increment(&self, table: &'static TableDef, tenant: &str, id: &str, step: Step, now: DateTime<Utc>) -> Statement {
        let column = table.indexes.get(step.column).map_or("", |spec| spec.column);
        let up = step.by >= 0;
        self.statement(Shape::Increment(table.name, step.column, up), |b| {
            b.push_fmt(format_args!("UPDATE {0} SET {1} = coalesce({1}, 0) + ", table.name, column)).param(Param::Int(step.by));
            b.push(", version = version + 1, updated_at = ").param(instant(self.dialect, now));
            b.push(" WHERE tenant = ").param(Param::Text(tenant.to_owned()));
            b.push(" AND id = ").param(Param::Text(id.to_owned()));
            b.push_fmt(format_args!(" AND coalesce({column}, 0) {} ", if up { "<=" } else { ">=" })).param(Param::Int(step.limit));
            self.live(b, table, now);
            b.push_fmt(format_args!(" RETURNING {column}, version, created_at"));
        })
    }

    /// The counter of a live record → `counter`.
    pub fn counter(&self, table: &'static TableDef, tenant: &str, id: &str, column: usize, now: DateTime<Utc>) -> Statement {
        let name = table.indexes.get(column).map_or("", |spec| spec.column);
        self.statement(Shape::Counter(table.name, column), |b| {
            b.push_fmt(format_args!("SELECT coalesce({name}, 0) FROM {} WHERE tenant = ", table.name))
                .param(Param::Text(tenant.to_owned()));
            b.push(" AND id = ").param(Param::Text(id.to_owned()));
            self.live(b, table, now);
        })
    }

    /// The live record holding a unique value → `tenant, id`.
    pub fn find_unique(
        &self,
        table: &'static TableDef,
        tenant: Option<&str>,
        column: usize,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Statement {
        let name = table.indexes.get(column).map_or("", |spec| spec.column);
        self.statement(Shape::FindUnique(table.name, column, tenant.is_some()), |b| {
            b.push_fmt(format_args!("SELECT tenant, id FROM {} WHERE {name} = ", table.name)).value(value);
            if let Some(tenant) = tenant {
                b.push(" AND tenant = ").param(Param::Text(tenant.to_owned()));
            }
            self.live(b, table, now);
            b.push(" LIMIT 1");
        })
    }

    /// `WHERE` conditions of a scope, a filter and liveness (after a leading `WHERE TRUE`).
    fn conditions(&self, b: &mut Builder, table: &TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) {
        if let Scope::Tenant(tenant) = scope {
            b.push(" AND tenant = ").param(Param::Text(tenant.as_str().to_owned()));
        }
        for predicate in filter.predicates() {
            let column = predicate.column;
            let kind = table.index(column).map_or(IndexKind::Text, |(_, spec)| spec.kind);
            b.push(" AND ").push(column);
            match &predicate.op {
                Op::Eq(v) => b.push(" = ").value(v),
                Op::Lt(v) => b.push(" < ").value(v),
                Op::Le(v) => b.push(" <= ").value(v),
                Op::Gt(v) => b.push(" > ").value(v),
                Op::Ge(v) => b.push(" >= ").value(v),
                Op::Between(low, high) => b.push(" BETWEEN ").value(low).push(" AND ").value(high),
                Op::IsNull => b.push(" IS NULL"),
                Op::NotNull => b.push(" IS NOT NULL"),
                Op::In(values) => match self.dialect {
                    Dialect::Sqlite => b.push(" IN (SELECT value FROM json_each(").param(Param::List(kind, values.clone())).push("))"),
                    Dialect::Postgres => b.push(" = ANY(").param(Param::List(kind, values.clone())).push(")"),
                },
            };
        }
        self.live(b, table, now);
    }

    /// A page of rows → rows, with the order column last when ordered by one.
    pub fn list(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        query: &Query,
        after: Option<&Position>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Statement {
        let all_tenants = matches!(scope, Scope::AllTenants);
        let order = query.order.column;
        let desc = query.order.direction == Direction::Desc;
        let shape = Shape::List { table: table.name, all_tenants, filter: shape_of(&query.filter), order, desc, after: after.is_some() };
        self.statement(shape, |b| {
            b.push_fmt(format_args!("SELECT {}", RowColumns(table)));
            if let Some(column) = order {
                b.push(", ").push(column);
            }
            b.push_fmt(format_args!(" FROM {} WHERE TRUE", table.name));
            self.conditions(b, table, scope, &query.filter, now);
            if let Some(position) = after {
                // The keyset: strictly after (tenant, key, id) in the list's direction.
                b.push(" AND (");
                if all_tenants {
                    b.push("tenant, ");
                }
                if let Some(column) = order {
                    b.push(column).push(", ");
                }
                b.push(if desc { "id) < (" } else { "id) > (" });
                let mut first = true;
                let mut next = |b: &mut Builder, param: Param| {
                    if !first {
                        b.push(", ");
                    }
                    first = false;
                    b.param(param);
                };
                if all_tenants {
                    next(b, Param::Text(position.tenant.as_ref().map(|t| t.as_str().to_owned()).unwrap_or_default()));
                }
                if order.is_some() {
                    let kind = order.and_then(|c| table.index(c)).map_or(IndexKind::Text, |(_, spec)| spec.kind);
                    next(b, optional(self.dialect, kind, position.key.as_ref()));
                }
                next(b, Param::Text(position.id.clone()));
                b.push(")");
            }
            let direction = if desc { " DESC" } else { "" };
            b.push(" ORDER BY ");
            if all_tenants {
                b.push_fmt(format_args!("tenant{direction}, "));
            }
            if let Some(column) = order {
                b.push_fmt(format_args!("{column}{direction}, "));
            }
            b.push_fmt(format_args!("id{direction} LIMIT ")).param(Param::Int(i64::from(limit)));
        })
    }

    /// How many live rows pass a filter → `count`.
    pub fn count(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Statement {
        let shape = Shape::Count { table: table.name, all_tenants: matches!(scope, Scope::AllTenants), filter: shape_of(filter) };
        self.statement(shape, |b| {
            b.push_fmt(format_args!("SELECT count(*) FROM {} WHERE TRUE", table.name));
            self.conditions(b, table, scope, filter, now);
        })
    }

    /// The live rows of a tenant passing a filter and a full-text search → rows, best first
    /// (SQLite: `bm25`; PostgreSQL: `ts_rank`), or with `count`, how many → `count`.
    #[allow(clippy::too_many_arguments)]
    pub fn search(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        search: &Search,
        filter: &Filter,
        page: Option<(u32, u32)>,
        now: DateTime<Utc>,
    ) -> Statement {
        let shape = Shape::Search { table: table.name, filter: shape_of(filter), count: page.is_none() };
        self.statement(shape, |b| {
            let what = if page.is_some() { RowColumns(table).to_string() } else { "count(*)".to_owned() };
            match self.dialect {
                Dialect::Sqlite => {
                    let fts = crate::ddl::fts_table(table);
                    b.push_fmt(format_args!(
                        "SELECT {what} FROM {fts} CROSS JOIN {0} ON {0}.seq = {fts}.rowid WHERE {fts} MATCH ",
                        table.name
                    ))
                    .param(Param::Text(search.fts5()));
                }
                Dialect::Postgres => {
                    b.push_fmt(format_args!("SELECT {what} FROM {} WHERE search_vector @@ to_tsquery('simple', ", table.name))
                        .param(Param::Text(search.tsquery()))
                        .push(")");
                }
            }
            self.conditions(b, table, Scope::Tenant(tenant), filter, now);
            if let Some((limit, offset)) = page {
                match self.dialect {
                    Dialect::Sqlite => b.push_fmt(format_args!(" ORDER BY bm25({}), id", crate::ddl::fts_table(table))),
                    Dialect::Postgres => b
                        .push(" ORDER BY ts_rank(search_vector, to_tsquery('simple', ")
                        .param(Param::Text(search.tsquery()))
                        .push(")) DESC, id"),
                };
                b.push(" LIMIT ").param(Param::Int(i64::from(limit))).push(" OFFSET ").param(Param::Int(i64::from(offset)));
            }
        })
    }

    /// Deletes the live rows passing a filter.
    pub fn delete_where(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Statement {
        let shape = Shape::DeleteWhere { table: table.name, all_tenants: matches!(scope, Scope::AllTenants), filter: shape_of(filter) };
        self.statement(shape, |b| {
            b.push_fmt(format_args!("DELETE FROM {} WHERE TRUE", table.name));
            self.conditions(b, table, scope, filter, now);
        })
    }
}

/// The name of the index on `column` of `table` (migrations name every index this way; the
/// schema test checks it), so a unique violation names its column.
pub fn index_name(table: &TableDef, column: &str) -> String {
    format!("{}_by_{column}", table.name)
}

/// The column a unique-violation constraint name refers to.
pub fn column_of_index(table: &TableDef, index: &str) -> Option<&'static str> {
    table.indexes.iter().map(|spec| spec.column).find(|column| index_name(table, column) == index)
}
