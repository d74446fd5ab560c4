//! The generic engine on Redis. A record is a hash (`v` version, `c` created, `u` updated, `b`
//! body, `e` expiry, `i<k>` its index values, encoded); each index is one sorted set of members
//! `<encoded value>\0<id>` with score 0, so lexicographic order is (value, id) order and one
//! `ZRANGEBYLEX` serves equality, ranges, ordering and keyset cursors alike. Every key of a tenant
//! carries its hash tag, so a unit of changes is one script (`APPLY`): it checks every condition
//! before it writes. Lists, counts and sweeps run one script (`QUERY`) per tenant and page: it
//! walks a driving index, checks the other predicates on each record, and returns the page with
//! the records' bodies, so a page is decided by what the index held at that moment.

use crate::RedisConnection;
use crate::scripts::{APPLY, INCREMENT, PRELUDE, PURGE, QUERY};
use crate::{BACKEND, Keys, redis_error};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use redis::Script;
use serde_json::{Value as Json, json};
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};
use storage_core::{
    Applied, Change, Direction, Filter, Incremented, IndexKind, Op, Position, Query, RecordMeta, Result, Row, RowPage, Scope, Search,
    SearchPage, Step, StorageError, TableDef, Tables, TenantId, Unique, Value, WriteMode,
};

static APPLY_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&format!("{PRELUDE}{APPLY}")));
pub(crate) static QUERY_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&format!("{PRELUDE}{QUERY}")));
static PURGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&format!("{PRELUDE}{PURGE}")));
static INCREMENT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&format!("{PRELUDE}{INCREMENT}")));

/// Index entries one `QUERY` call examines at most, so no script blocks the server for long; a
/// list that has not filled its page by then returns it short, with a cursor.
const BUDGET: u32 = 2_000;
/// Expired records one `PURGE` call removes at most.
const PURGE_BUDGET: u32 = 500;
/// How many ids one command of a search checks.
const SEARCH_CHUNK: usize = 1_000;
/// How long after its expiry a record's key lingers before Redis collects it (`PEXPIREAT`), so a
/// sweep usually finds it whole.
const GC_GRACE: TimeDelta = TimeDelta::hours(1);

/// An index value as stored: text as is; integers and instants (microseconds) as a sign digit and
/// 19 digits, complemented when negative, so byte order is numeric order; booleans as `0`/`1`.
pub fn encode(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        Value::Int(n) => encode_int(*n),
        Value::Time(at) => encode_int(at.timestamp_micros()),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
    }
}

fn encode_int(n: i64) -> String {
    if n >= 0 {
        format!("1{n:019}")
    } else {
        let digits = format!("{:019}", n.unsigned_abs());
        let complement: String = digits.chars().map(|c| char::from(b'9'.saturating_sub(c as u8).saturating_add(b'0'))).collect();
        format!("0{complement}")
    }
}

fn decode_int(text: &str) -> Result<i64> {
    let corrupt = || StorageError::corrupt(BACKEND, format!("encoded integer `{text}`"));
    let mut chars = text.chars();
    let sign = chars.next().ok_or_else(corrupt)?;
    let digits: String = chars.collect();
    match sign {
        '1' => digits.parse::<i64>().map_err(|_| corrupt()),
        '0' => {
            let plain: String = digits.chars().map(|c| char::from(b'9'.saturating_sub(c as u8).saturating_add(b'0'))).collect();
            let magnitude: u64 = plain.parse().map_err(|_| corrupt())?;
            0i64.checked_sub_unsigned(magnitude).ok_or_else(corrupt)
        }
        _ => Err(corrupt()),
    }
}

/// An encoded index value back as the index's kind.
pub fn decode(kind: IndexKind, text: &str) -> Result<Value> {
    Ok(match kind {
        IndexKind::Text => Value::Text(text.to_owned()),
        IndexKind::Int => Value::Int(decode_int(text)?),
        IndexKind::Time => {
            Value::Time(DateTime::<Utc>::from_timestamp_micros(decode_int(text)?).ok_or_else(|| StorageError::corrupt(BACKEND, "instant"))?)
        }
        IndexKind::Bool => Value::Bool(text == "1"),
    })
}

fn encode_time(at: DateTime<Utc>) -> String {
    encode_int(at.timestamp_micros())
}

/// The field of the index at `position` in a record hash.
fn field(position: usize) -> String {
    format!("i{}", position.saturating_add(1))
}

/// Every document table of one Redis namespace.
pub struct RedisTables {
    conn: RedisConnection,
    keys: Keys,
    registered: Mutex<HashSet<(&'static str, TenantId)>>,
}

impl std::fmt::Debug for RedisTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTables").field("keys", &self.keys).finish_non_exhaustive()
    }
}

/// Sets `key` of a JSON object (the specs built here are always objects).
fn set(object: &mut Json, key: &str, value: impl Into<Json>) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value.into());
    }
}

/// A piece of a script's reply.
fn parse<T: redis::FromRedisValue>(value: &redis::Value) -> Result<T> {
    redis::from_redis_value_ref(value).map_err(|e| StorageError::backend(BACKEND, e))
}

fn text(value: &redis::Value) -> Result<String> {
    parse(value)
}

fn unexpected(what: impl std::fmt::Debug) -> StorageError {
    StorageError::backend(BACKEND, format!("unexpected script reply {what:?}"))
}

impl RedisTables {
    pub(crate) fn new(conn: RedisConnection, keys: Keys) -> Self {
        Self { conn, keys, registered: Mutex::new(HashSet::new()) }
    }

    /// What the scripts need to know of a table in a tenant, in the short form their `expand`
    /// turns into key names: the key base, the namespace, each index's column and uniqueness.
    fn spec(&self, table: &'static TableDef, tenant: &TenantId) -> Json {
        let idx: Vec<Json> = table
            .indexes
            .iter()
            .map(|spec| {
                let unique = match spec.unique {
                    Unique::No => 0,
                    Unique::PerTenant => 1,
                    Unique::Global => 2,
                };
                json!([spec.column, unique])
            })
            .collect();
        let base = self.keys.all(tenant, table.name);
        let base = base.strip_suffix('#').unwrap_or(&base);
        json!({ "name": table.name, "base": base, "ns": self.keys.namespace(), "idx": idx, "expires": table.expires, "s": table.search })
    }

    /// The fixed keys of a table in a tenant, for `KEYS`.
    fn table_keys(&self, table: &'static TableDef, tenant: &TenantId) -> Vec<String> {
        let mut keys = vec![self.keys.all(tenant, table.name)];
        keys.extend(table.indexes.iter().map(|spec| self.keys.index(tenant, table.name, spec.column)));
        keys.extend(
            table.indexes.iter().filter(|spec| spec.unique == Unique::Global).map(|spec| self.keys.directory(table.name, spec.column)),
        );
        if table.expires {
            keys.push(self.keys.saved(tenant, table.name));
            keys.push(self.keys.expiries(tenant, table.name));
        }
        keys
    }

    /// The `KEYS` and argument of the `APPLY` call for `changes` (public for the benchmarks'
    /// raw-driver baseline, which sends exactly this).
    #[doc(hidden)]
    pub fn apply_request(&self, tenant: &TenantId, changes: &[Change], now: DateTime<Utc>) -> (Vec<String>, Vec<String>) {
        let mut keys: Vec<String> = Vec::new();
        let mut bodies = Vec::with_capacity(changes.len());
        let mut specs = Vec::with_capacity(changes.len());
        let mut tables: Vec<&TableDef> = Vec::new();
        for change in changes {
            let (table, id) = change.target();
            if !tables.iter().any(|t| t.name == table.name) {
                tables.push(table);
                keys.extend(self.table_keys(table, tenant));
            }
            let key = self.keys.record(tenant, table.name, id);
            keys.push(key.clone());
            let mut spec = json!({
                "t": self.spec(table, tenant),
                "key": key,
                "id": id,
                "owner": format!("{}\0{id}", tenant.as_str()),
                "prefix": self.keys.record_prefix(tenant, table.name),
                "ns": self.keys.namespace(),
            });
            match change {
                Change::Delete { .. } => {
                    set(&mut spec, "op", "d");
                    bodies.push(String::new());
                }
                Change::Write { row, mode } => {
                    let (mode, expect) = match mode {
                        WriteMode::Insert => ("insert", String::new()),
                        WriteMode::Upsert => ("upsert", String::new()),
                        WriteMode::Update { expected } => ("update", expected.to_string()),
                    };
                    set(&mut spec, "op", Json::from("w"));
                    set(&mut spec, "mode", Json::from(mode));
                    set(&mut spec, "expect", Json::from(expect));
                    bodies.push(row.body.clone());
                    set(&mut spec, "vals", Json::from(row.indexes.iter().map(|v| v.as_ref().map(encode)).collect::<Vec<_>>()));
                    set(&mut spec, "e", row.expires_at.map_or(Json::Null, |at| Json::from(encode_time(at))));
                    if let Some(text) = &row.search {
                        set(&mut spec, "w", Json::from(storage_core::fts::words(text).join(" ")));
                    }
                    let gc = row.expires_at.map(|at| at.checked_add_signed(GC_GRACE).unwrap_or(at).timestamp_millis());
                    set(&mut spec, "gcat", gc.map_or(Json::Null, |ms| Json::from(ms.to_string())));
                }
            }
            specs.push(spec);
        }
        keys.sort();
        keys.dedup();
        let mut arguments =
            vec![json!({ "now": encode_time(now), "nowu": now.timestamp_micros().to_string(), "changes": specs }).to_string()];
        arguments.extend(bodies);
        (keys, arguments)
    }

    /// Remembers that `tenant` has records of `table`, for scans across tenants: once per table,
    /// tenant and process.
    async fn register(&self, table: &'static TableDef, tenant: &TenantId) -> Result<()> {
        let key = (table.name, tenant.clone());
        if self.registered.lock().unwrap_or_else(PoisonError::into_inner).contains(&key) {
            return Ok(());
        }
        redis::cmd("ZADD")
            .arg(self.keys.tenants(table.name))
            .arg(0)
            .arg(tenant.as_str())
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        self.registered.lock().unwrap_or_else(PoisonError::into_inner).insert(key);
        Ok(())
    }

    /// The tenants of `table`, in order (reversed for a descending list), after `after`.
    async fn tenants(&self, table: &'static TableDef, after: Option<&TenantId>, desc: bool) -> Result<Vec<TenantId>> {
        let (from, to) = match (after, desc) {
            (Some(t), false) => (format!("({}", t.as_str()), "+".to_owned()),
            (None, false) => ("-".to_owned(), "+".to_owned()),
            (Some(t), true) => (format!("({}", t.as_str()), "-".to_owned()),
            (None, true) => ("+".to_owned(), "-".to_owned()),
        };
        let command = if desc { "ZREVRANGEBYLEX" } else { "ZRANGEBYLEX" };
        let names: Vec<String> = redis::cmd(command)
            .arg(self.keys.tenants(table.name))
            .arg(from)
            .arg(to)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        names.into_iter().map(|t| TenantId::stored(t).map_err(|e| StorageError::corrupt(BACKEND, e))).collect()
    }

    /// How one tenant's part of a list, count or sweep walks its indexes.
    fn plan(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        filter: &Filter,
        order: Option<&'static str>,
        desc: bool,
        after: Option<&Position>,
    ) -> Json {
        let eq_on = |column: &str| {
            filter.predicates().iter().find_map(|p| match &p.op {
                Op::Eq(v) if p.column == column => Some(encode(v)),
                _ => None,
            })
        };
        let (z, keyed, mut min, mut max) = match order {
            Some(column) => {
                // The bounds of the first predicate on the order column; every predicate is also
                // checked on each record, so these only narrow the walk.
                let (mut low, mut high) = ("-".to_owned(), "+".to_owned());
                if let Some(p) =
                    filter.predicates().iter().find(|p| p.column == column && !matches!(p.op, Op::In(_) | Op::IsNull | Op::NotNull))
                {
                    match &p.op {
                        Op::Eq(v) => (low, high) = (format!("[{}\0", encode(v)), format!("({}\u{1}", encode(v))),
                        Op::Ge(v) => low = format!("[{}\0", encode(v)),
                        Op::Gt(v) => low = format!("[{}\u{1}", encode(v)),
                        Op::Le(v) => high = format!("({}\u{1}", encode(v)),
                        Op::Lt(v) => high = format!("({}\0", encode(v)),
                        Op::Between(a, b) => (low, high) = (format!("[{}\0", encode(a)), format!("({}\u{1}", encode(b))),
                        _ => {}
                    }
                }
                (self.keys.index(tenant, table.name, column), true, low, high)
            }
            None => match filter.predicates().iter().find_map(|p| eq_on(p.column).map(|v| (p.column, v))) {
                Some((column, v)) => (self.keys.index(tenant, table.name, column), true, format!("[{v}\0"), format!("({v}\u{1}")),
                None => (self.keys.all(tenant, table.name), false, "-".to_owned(), "+".to_owned()),
            },
        };
        if let Some(position) = after {
            let member = match (order, keyed) {
                (Some(_), _) => format!("{}\0{}", position.key.as_ref().map(encode).unwrap_or_default(), position.id),
                (None, true) => {
                    let v = filter.predicates().iter().find_map(|p| eq_on(p.column)).unwrap_or_default();
                    format!("{v}\0{}", position.id)
                }
                (None, false) => position.id.clone(),
            };
            if desc {
                max = format!("({member}");
            } else {
                min = format!("({member}");
            }
        }
        let mut fetch: Vec<String> = table.counters().map(|(k, _)| field(k)).collect();
        if let Some((k, _)) = order.and_then(|column| table.index(column)) {
            fetch.push(field(k));
        }
        let mut preds = Vec::new();
        for p in filter.predicates() {
            let Some((k, _)) = table.index(p.column) else { continue };
            let f = field(k);
            let at = match fetch.iter().position(|x| *x == f) {
                Some(i) => i,
                None => {
                    fetch.push(f);
                    fetch.len().saturating_sub(1)
                }
            };
            let mut pred = json!({ "at": at.saturating_add(1) });
            let (op, a, b) = match &p.op {
                Op::Eq(v) => ("eq", Some(encode(v)), None),
                Op::In(values) => {
                    set(&mut pred, "set", Json::from(values.iter().map(encode).collect::<Vec<_>>()));
                    ("in", None, None)
                }
                Op::IsNull => ("null", None, None),
                Op::NotNull => ("notnull", None, None),
                Op::Lt(v) => ("lt", Some(encode(v)), None),
                Op::Le(v) => ("le", Some(encode(v)), None),
                Op::Gt(v) => ("gt", Some(encode(v)), None),
                Op::Ge(v) => ("ge", Some(encode(v)), None),
                Op::Between(low, high) => ("between", Some(encode(low)), Some(encode(high))),
            };
            set(&mut pred, "op", Json::from(op));
            if let Some(a) = a {
                set(&mut pred, "a", Json::from(a));
            }
            if let Some(b) = b {
                set(&mut pred, "b", Json::from(b));
            }
            preds.push(pred);
        }
        json!({
            "t": self.spec(table, tenant),
            "tenant": tenant.as_str(),
            "prefix": self.keys.record_prefix(tenant, table.name),
            "z": z, "keyed": keyed, "min": min, "max": max, "rev": desc,
            "preds": preds, "fetch": fetch, "budget": BUDGET,
        })
    }

    /// Runs `QUERY` once: `(rows, count, more, last member)`.
    async fn query(&self, table: &'static TableDef, tenant: &TenantId, plan: &Json) -> Result<(Vec<Vec<String>>, u64, bool, String)> {
        let mut call = QUERY_SCRIPT.prepare_invoke();
        // Every key is declared, and no empty one: on a Cluster the keys route the call.
        if let Some(z) = plan.get("z").and_then(Json::as_str).filter(|z| !z.is_empty()) {
            call.key(z);
        }
        for key in self.table_keys(table, tenant) {
            call.key(key);
        }
        call.arg(plan.to_string());
        let reply: (Vec<Vec<String>>, u64, u8, String) = call.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        Ok((reply.0, reply.1, reply.2 == 1, reply.3))
    }

    /// A position from a member of the driving index.
    fn position(
        &self,
        table: &TableDef,
        order: Option<&'static str>,
        keyed: bool,
        member: &str,
        tenant: Option<&TenantId>,
    ) -> Result<Position> {
        let (head, id) = match (keyed, member.split_once('\0')) {
            (true, Some((head, id))) => (Some(head), id),
            (false, _) => (None, member),
            (true, None) => return Err(StorageError::corrupt(BACKEND, format!("index member `{}`", member.escape_debug()))),
        };
        let key = match (order.and_then(|c| table.index(c)), head) {
            (Some((_, spec)), Some(head)) => Some(decode(spec.kind, head)?),
            _ => None,
        };
        Ok(Position { tenant: tenant.cloned(), key, id: id.to_owned() })
    }

    fn row(&self, table: &TableDef, tenant: &TenantId, raw: &[String]) -> Result<Row> {
        let corrupt = || StorageError::corrupt(BACKEND, format!("a {} row of {} fields", table.name, raw.len()));
        let [_, id, v, c, u, b, fetched @ ..] = raw else { return Err(corrupt()) };
        let counters = table.counters().count();
        let counters = fetched.get(..counters).ok_or_else(corrupt)?.iter().map(|n| decode_int(n)).collect::<Result<Vec<_>>>()?;
        Ok(Row { tenant: tenant.as_str().to_owned(), id: id.clone(), meta: meta(v, c, u)?, counters, body: b.clone() })
    }

    /// One tenant's part of a list: up to `limit` rows and whether more follow. Positions carry
    /// the tenant when `all_tenants`.
    async fn list_tenant(
        &self,
        table: &'static TableDef,
        (tenant, all_tenants): (&TenantId, bool),
        query: &Query,
        after: Option<&Position>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<(Vec<(Row, Position)>, Option<Position>)> {
        let desc = query.order.direction == Direction::Desc;
        let mut plan = self.plan(table, tenant, &query.filter, query.order.column, desc, after);
        set(&mut plan, "mode", Json::from("list"));
        set(&mut plan, "limit", Json::from(limit));
        if table.expires {
            set(&mut plan, "now", Json::from(encode_time(now)));
        }
        let keyed = plan.get("keyed").and_then(Json::as_bool).unwrap_or(false);
        let (raws, _, more, last) = self.query(table, tenant, &plan).await?;
        let scope_tenant = all_tenants.then_some(tenant);
        let mut rows = Vec::with_capacity(raws.len());
        for raw in &raws {
            let member = raw.first().ok_or_else(|| unexpected(raw))?;
            rows.push((self.row(table, tenant, raw)?, self.position(table, query.order.column, keyed, member, scope_tenant)?));
        }
        let next = if more { Some(self.position(table, query.order.column, keyed, &last, scope_tenant)?) } else { None };
        Ok((rows, next))
    }

    /// Counts or deletes what passes `filter` in one tenant.
    async fn sweep(&self, table: &'static TableDef, tenant: &TenantId, filter: &Filter, now: DateTime<Utc>, mode: &str) -> Result<u64> {
        let mut plan = self.plan(table, tenant, filter, None, false, None);
        set(&mut plan, "mode", Json::from(mode));
        if table.expires {
            set(&mut plan, "now", Json::from(encode_time(now)));
        }
        let keyed = plan.get("keyed").and_then(Json::as_bool).unwrap_or(false);
        let mut total = 0u64;
        loop {
            let (_, count, more, last) = self.query(table, tenant, &plan).await?;
            total = total.saturating_add(count);
            if !more {
                return Ok(total);
            }
            // Continue after the last entry examined (in a sweep, deleted entries are gone).
            let position = self.position(table, None, keyed, &last, None)?;
            set(&mut plan, "min", Json::from(format!("({}", if keyed { last.clone() } else { position.id })));
        }
    }

    async fn scoped(&self, table: &'static TableDef, scope: Scope<'_>) -> Result<Vec<TenantId>> {
        match scope {
            Scope::Tenant(tenant) => Ok(vec![tenant.clone()]),
            Scope::AllTenants => self.tenants(table, None, false).await,
        }
    }

    fn live(&self, e: Option<&str>, now: DateTime<Utc>) -> bool {
        e.is_none_or(|e| encode_time(now).as_str() < e)
    }
}

fn meta(version: &str, created: &str, updated: &str) -> Result<RecordMeta> {
    let micros = |text: &str| {
        text.parse::<i64>()
            .ok()
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .ok_or_else(|| StorageError::corrupt(BACKEND, format!("instant `{text}`")))
    };
    Ok(RecordMeta {
        version: version.parse().map_err(|_| StorageError::corrupt(BACKEND, format!("version `{version}`")))?,
        created_at: micros(created)?,
        updated_at: micros(updated)?,
    })
}

impl RedisTables {
    /// The records that hold (or held: index entries of expired records linger until swept)
    /// `value` in the unique index `column`, in `scope`'s tenant or across tenants.
    async fn unique_candidates(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        column: usize,
        value: &Value,
    ) -> Result<Vec<(TenantId, String)>> {
        let spec = table.indexes.get(column).ok_or_else(|| StorageError::backend(BACKEND, "no such index"))?;
        let encoded = encode(value);
        Ok(match scope {
            Scope::Tenant(tenant) => {
                let members: Vec<String> = redis::cmd("ZRANGEBYLEX")
                    .arg(self.keys.index(tenant, table.name, spec.column))
                    .arg(format!("[{encoded}\0"))
                    .arg(format!("({encoded}\u{1}"))
                    .arg("LIMIT")
                    .arg(0)
                    .arg(16)
                    .query_async(&mut self.conn.clone())
                    .await
                    .map_err(redis_error)?;
                members.iter().filter_map(|m| m.split_once('\0')).map(|(_, id)| (tenant.clone(), id.to_owned())).collect()
            }
            Scope::AllTenants => {
                let owner: Option<String> = redis::cmd("HGET")
                    .arg(self.keys.directory(table.name, spec.column))
                    .arg(&encoded)
                    .query_async(&mut self.conn.clone())
                    .await
                    .map_err(redis_error)?;
                match owner.as_deref().and_then(|o| o.split_once('\0')) {
                    Some((t, id)) => vec![(TenantId::stored(t).map_err(|e| StorageError::corrupt(BACKEND, e))?, id.to_owned())],
                    None => Vec::new(),
                }
            }
        })
    }
}

#[async_trait]
impl Tables for RedisTables {
    async fn get(&self, table: &'static TableDef, tenant: &TenantId, ids: &[String], now: DateTime<Utc>) -> Result<Vec<Row>> {
        let mut fields = vec!["v".to_owned(), "c".to_owned(), "u".to_owned(), "e".to_owned(), "b".to_owned()];
        fields.extend(table.counters().map(|(k, _)| field(k)));
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET").arg(self.keys.record(tenant, table.name, id)).arg(&fields);
        }
        let replies: Vec<Vec<Option<String>>> = pipe.query_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        let mut rows = Vec::new();
        for (id, got) in ids.iter().zip(replies) {
            let [Some(v), Some(c), Some(u), e, Some(b), counters @ ..] = got.as_slice() else { continue };
            if !self.live(e.as_deref(), now) {
                continue;
            }
            let counters = counters.iter().map(|n| n.as_deref().map_or(Ok(0), decode_int)).collect::<Result<Vec<_>>>()?;
            rows.push(Row { tenant: tenant.as_str().to_owned(), id: id.clone(), meta: meta(v, c, u)?, counters, body: b.clone() });
        }
        Ok(rows)
    }

    async fn apply(&self, tenant: &TenantId, changes: Vec<Change>, now: DateTime<Utc>) -> Result<Vec<Applied>> {
        for change in &changes {
            self.register(change.target().0, tenant).await?;
        }
        let (keys, arguments) = self.apply_request(tenant, &changes, now);
        let mut call = APPLY_SCRIPT.prepare_invoke();
        for key in &keys {
            call.key(key);
        }
        for argument in &arguments {
            call.arg(argument);
        }
        let reply: redis::Value = call.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        let redis::Value::Array(parts) = &reply else { return Err(unexpected(&reply)) };
        let status = parts.first().map(text).transpose()?.unwrap_or_default();
        let failed = |parts: &[redis::Value]| -> Result<(&'static TableDef, String)> {
            let index: usize = parts.get(1).map(parse::<usize>).transpose()?.unwrap_or(0);
            let change = index.checked_sub(1).and_then(|i| changes.get(i)).ok_or_else(|| unexpected(&reply))?;
            let (table, id) = change.target();
            Ok((table, id.to_owned()))
        };
        match status.as_str() {
            "ok" => {
                let results: Vec<String> = parts.get(1).map(parse).transpose()?.unwrap_or_default();
                changes
                    .iter()
                    .zip(results)
                    .map(|(change, result)| match change {
                        Change::Delete { .. } => Ok(Applied::Deleted(result == "1")),
                        Change::Write { .. } => {
                            let (version, created) = result.split_once(' ').ok_or_else(|| unexpected(&result))?;
                            Ok(Applied::Written(meta(version, created, &now.timestamp_micros().to_string())?))
                        }
                    })
                    .collect()
            }
            "conflict" => {
                let (table, id) = failed(parts)?;
                Err(StorageError::conflict(table.entity, id, "already exists"))
            }
            "missing" => {
                let (table, id) = failed(parts)?;
                Err(StorageError::not_found(table.entity, id))
            }
            "mismatch" => {
                let (table, id) = failed(parts)?;
                let expected = match changes.iter().find(|c| c.target().1 == id) {
                    Some(Change::Write { mode: WriteMode::Update { expected }, .. }) => *expected,
                    _ => 0,
                };
                let actual = parts.get(2).map(text).transpose()?.and_then(|v| v.parse().ok()).unwrap_or(0);
                Err(StorageError::VersionMismatch { entity: table.entity, id, expected, actual })
            }
            "unique" => {
                let (table, id) = failed(parts)?;
                let column = parts.get(2).map(text).transpose()?.unwrap_or_default();
                Err(StorageError::conflict(table.entity, id, format!("`{column}` is already used")))
            }
            _ => Err(unexpected(&reply)),
        }
    }

    async fn list(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        query: &Query,
        after: Option<&Position>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<RowPage> {
        let Scope::AllTenants = scope else {
            let Scope::Tenant(tenant) = scope else { return Ok(RowPage::default()) };
            let (rows, next) = self.list_tenant(table, (tenant, false), query, after, limit, now).await?;
            return Ok(RowPage { rows: rows.into_iter().map(|(row, _)| row).collect(), next });
        };
        // Across tenants: tenant by tenant, in order, each from where the cursor stands.
        let desc = query.order.direction == Direction::Desc;
        let mut tenants = Vec::new();
        let mut resume = None;
        if let Some(position) = after
            && let Some(tenant) = &position.tenant
        {
            tenants.push(tenant.clone());
            resume = Some(position);
        }
        tenants.extend(self.tenants(table, after.and_then(|p| p.tenant.as_ref()), desc).await?);
        let mut rows: Vec<Row> = Vec::new();
        for tenant in tenants {
            let room = limit.saturating_sub(u32::try_from(rows.len()).unwrap_or(u32::MAX));
            let start = resume.take().filter(|p| p.tenant.as_ref() == Some(&tenant));
            let (found, next) = self.list_tenant(table, (&tenant, true), query, start, room, now).await?;
            let last = found.last().map(|(_, position)| position.clone());
            rows.extend(found.into_iter().map(|(row, _)| row));
            if next.is_some() {
                return Ok(RowPage { rows, next });
            }
            if rows.len() >= limit as usize {
                // The page is full at a tenant's end: the next page starts after its last row.
                return Ok(RowPage { rows, next: last });
            }
        }
        Ok(RowPage { rows, next: None })
    }

    async fn search(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        search: &Search,
        filter: &Filter,
        limit: u32,
        offset: u32,
        now: DateTime<Utc>,
    ) -> Result<SearchPage> {
        let phrases = search.phrases();
        let mut words: Vec<&String> = phrases.iter().flatten().collect();
        words.sort();
        words.dedup();
        let base = self.keys.all(tenant, table.name);
        let key = |word: &str| format!("{base}~{word}");
        let mut conn = self.conn.clone();
        // Candidates: the ids under the rarest word that every other word also lists.
        let mut pipe = redis::pipe();
        for word in &words {
            pipe.cmd("ZCARD").arg(key(word));
        }
        let sizes: Vec<u64> = pipe.query_async(&mut conn).await.map_err(redis_error)?;
        let Some((rarest, _)) = words.iter().zip(&sizes).min_by_key(|(_, n)| **n) else { return Ok(SearchPage::default()) };
        let mut ids: Vec<String> =
            redis::cmd("ZRANGE").arg(key(rarest)).arg(0).arg(-1).query_async(&mut conn).await.map_err(redis_error)?;
        for word in words.iter().filter(|w| *w != rarest) {
            if ids.is_empty() {
                break;
            }
            let mut pipe = redis::pipe();
            for chunk in ids.chunks(SEARCH_CHUNK) {
                pipe.cmd("ZMSCORE").arg(key(word)).arg(chunk);
            }
            let scores: Vec<Vec<Option<f64>>> = pipe.query_async(&mut conn).await.map_err(redis_error)?;
            let listed: Vec<bool> = scores.into_iter().flatten().map(|score| score.is_some()).collect();
            ids = ids.into_iter().zip(listed).filter_map(|(id, listed)| listed.then_some(id)).collect();
        }
        // The candidates' rows, checked for liveness, the filter and the phrases in order.
        let mut fields = vec!["v".to_owned(), "c".to_owned(), "u".to_owned(), "e".to_owned(), "b".to_owned(), "s".to_owned()];
        fields.extend((0..table.indexes.len()).map(field));
        let mut hits = Vec::new();
        for chunk in ids.chunks(SEARCH_CHUNK) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HMGET").arg(self.keys.record(tenant, table.name, id)).arg(&fields);
            }
            let replies: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await.map_err(redis_error)?;
            for (id, got) in chunk.iter().zip(replies) {
                let [Some(v), Some(c), Some(u), e, Some(b), Some(s), stored @ ..] = got.as_slice() else { continue };
                if !self.live(e.as_deref(), now) {
                    continue;
                }
                let values = table
                    .indexes
                    .iter()
                    .zip(stored)
                    .map(|(spec, text)| text.as_deref().map(|text| decode(spec.kind, text)).transpose())
                    .collect::<Result<Vec<_>>>()?;
                if !filter.matches(table, &values) {
                    continue;
                }
                let text_words: Vec<String> = s.split(' ').map(str::to_owned).collect();
                let Some(score) = search.score(&text_words) else { continue };
                let counters = table.counters().map(|(k, _)| match values.get(k) {
                    Some(Some(Value::Int(n))) => *n,
                    _ => 0,
                });
                let row = Row {
                    tenant: tenant.as_str().to_owned(),
                    id: id.clone(),
                    meta: meta(v, c, u)?,
                    counters: counters.collect(),
                    body: b.clone(),
                };
                hits.push((score, row));
            }
        }
        hits.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        let total = hits.len() as u64;
        let rows = hits.into_iter().skip(offset as usize).take(limit as usize).map(|(_, row)| row).collect();
        Ok(SearchPage { rows, total })
    }

    async fn count(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let mut total = 0u64;
        for tenant in self.scoped(table, scope).await? {
            total = total.saturating_add(self.sweep(table, &tenant, filter, now, "count").await?);
        }
        Ok(total)
    }

    async fn delete_where(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let mut total = 0u64;
        for tenant in self.scoped(table, scope).await? {
            total = total.saturating_add(self.sweep(table, &tenant, filter, now, "delete").await?);
        }
        Ok(total)
    }

    async fn purge_expired(&self, table: &'static TableDef, now: DateTime<Utc>) -> Result<u64> {
        let mut removed = 0u64;
        for tenant in self.tenants(table, None, false).await? {
            let plan = json!({
                "t": self.spec(table, &tenant),
                "tenant": tenant.as_str(),
                "prefix": self.keys.record_prefix(&tenant, table.name),
                "now": encode_time(now),
                "budget": PURGE_BUDGET,
            });
            loop {
                let mut call = PURGE_SCRIPT.prepare_invoke();
                for key in self.table_keys(table, &tenant) {
                    call.key(key);
                }
                call.arg(plan.to_string());
                let (n, more): (u64, u8) = call.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
                removed = removed.saturating_add(n);
                if more == 0 {
                    break;
                }
            }
        }
        Ok(removed)
    }

    async fn increment(
        &self,
        table: &'static TableDef,
        tenant: &TenantId,
        id: &str,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<Incremented> {
        let key = self.keys.record(tenant, table.name, id);
        let mut call = INCREMENT_SCRIPT.prepare_invoke();
        call.key(&key);
        for k in self.table_keys(table, tenant) {
            call.key(k);
        }
        let spec = json!({
            "t": self.spec(table, tenant),
            "key": key,
            "id": id,
            "column": step.column.saturating_add(1),
            "by": step.by.to_string(),
            "limit": step.limit.to_string(),
            "now": if table.expires { Json::from(encode_time(now)) } else { Json::Null },
            "nowu": now.timestamp_micros().to_string(),
        });
        call.arg(spec.to_string());
        let reply: Vec<String> = call.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        match reply.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["ok", value, version, created] => {
                let value = value.parse().map_err(|_| unexpected(&reply))?;
                Ok(Incremented::To(value, meta(version, created, &now.timestamp_micros().to_string())?))
            }
            ["missing"] => Ok(Incremented::Missing),
            ["capped", value] => Ok(Incremented::Capped(value.parse().map_err(|_| unexpected(&reply))?)),
            _ => Err(unexpected(&reply)),
        }
    }

    async fn find_unique(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        column: usize,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<(TenantId, String)>> {
        let candidates = self.unique_candidates(table, scope, column, value).await?;
        for (tenant, id) in candidates {
            let got: (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(self.keys.record(&tenant, table.name, &id))
                .arg("v")
                .arg("e")
                .query_async(&mut self.conn.clone())
                .await
                .map_err(redis_error)?;
            if got.0.is_some() && self.live(got.1.as_deref(), now) {
                return Ok(Some((tenant, id)));
            }
        }
        Ok(None)
    }

    async fn get_unique(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        column: usize,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<Row>> {
        // The record read checks liveness itself: no separate check, one round trip fewer.
        for (tenant, id) in self.unique_candidates(table, scope, column, value).await? {
            if let Some(row) = self.get(table, &tenant, &[id], now).await?.pop() {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_integers_sort_as_numbers_and_decode_back() {
        let values = [i64::MIN + 1, -9_007_199_254_740_991, -10, -9, -1, 0, 1, 9, 10, 9_007_199_254_740_991, i64::MAX];
        let encoded: Vec<String> = values.iter().map(|n| encode_int(*n)).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]), "{encoded:?}");
        for (n, e) in values.iter().zip(&encoded) {
            assert_eq!(decode_int(e).ok(), Some(*n));
        }
    }
}
