//! The generic engine, in process: the reference semantics of [`Tables`]. Every table lives
//! behind one lock, so an atomic unit across tables is one critical section; scans are plain
//! iterations, which is what a reference model should be.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};
use storage_core::engine::{Change, Incremented, Step, WriteMode};
use storage_core::{
    Applied, DatabaseBackend, Direction, Filter, Position, Query, RecordMeta, Result, Row, RowPage, RowWrite, Scope, Search, SearchPage,
    StorageError, TableDef, Tables, TenantId, Unique, Value,
};

const BACKEND: DatabaseBackend = DatabaseBackend::Memory;

/// One stored record: its columns and its encoded body.
#[derive(Debug, Clone)]
struct Stored {
    indexes: Vec<Option<Value>>,
    expires_at: Option<DateTime<Utc>>,
    meta: RecordMeta,
    body: String,
    /// The words of the searchable text, in order (searchable tables).
    words: Vec<String>,
}

impl Stored {
    fn live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    fn row(&self, table: &TableDef, tenant: &str, id: &str) -> Row {
        let counters = table.counters().map(|(i, _)| match self.indexes.get(i) {
            Some(Some(Value::Int(n))) => *n,
            _ => 0,
        });
        Row { tenant: tenant.to_owned(), id: id.to_owned(), meta: self.meta, counters: counters.collect(), body: self.body.clone() }
    }
}

/// A table: tenant → id → record, both in byte order.
type Records = BTreeMap<String, BTreeMap<String, Stored>>;

/// Every document table of one memory backend.
#[derive(Debug, Default)]
pub struct MemoryTables {
    tables: RwLock<HashMap<&'static str, Records>>,
}

/// Undo log of a unit: the previous state of every record it touched.
type Undo = Vec<(&'static str, String, String, Option<Stored>)>;

fn in_scope<'a>(records: &'a Records, scope: Scope<'_>) -> Box<dyn Iterator<Item = (&'a String, &'a BTreeMap<String, Stored>)> + 'a> {
    match scope {
        Scope::Tenant(tenant) => Box::new(records.get_key_value(tenant.as_str()).into_iter()),
        Scope::AllTenants => Box::new(records.iter()),
    }
}

/// The live records of `scope` passing `filter`: (tenant, id, record).
fn matching<'a>(
    table: &'a TableDef,
    records: &'a Records,
    scope: Scope<'a>,
    filter: &'a Filter,
    now: DateTime<Utc>,
) -> impl Iterator<Item = (&'a String, &'a String, &'a Stored)> + 'a {
    in_scope(records, scope).flat_map(move |(tenant, rows)| {
        rows.iter().filter(move |(_, s)| s.live(now) && filter.matches(table, &s.indexes)).map(move |(id, s)| (tenant, id, s))
    })
}

/// The sort key of a record for `query`'s order.
fn key_of(table: &TableDef, query: &Query, stored: &Stored) -> Option<Value> {
    query.order.column.and_then(|column| table.index(column)).and_then(|(i, _)| stored.indexes.get(i).cloned().flatten())
}

/// Compares two (tenant, key, id) positions in ascending order.
fn compare(a: (&str, &Option<Value>, &str), b: (&str, &Option<Value>, &str)) -> Ordering {
    a.0.cmp(b.0).then_with(|| a.1.cmp(b.1)).then_with(|| a.2.cmp(b.2))
}

impl MemoryTables {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<&'static str, Records>> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<&'static str, Records>> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The live record another than (`tenant`, `id`) holds for a unique index value, if any.
fn unique_holder(
    records: &Records,
    tenant: &str,
    id: &str,
    position: usize,
    unique: Unique,
    value: &Value,
    now: DateTime<Utc>,
) -> Option<(String, String)> {
    let candidates: Box<dyn Iterator<Item = (&String, &BTreeMap<String, Stored>)>> = match unique {
        Unique::No => return None,
        Unique::PerTenant => Box::new(records.get_key_value(tenant).into_iter()),
        Unique::Global => Box::new(records.iter()),
    };
    for (t, rows) in candidates {
        for (i, stored) in rows {
            let same = t == tenant && i == id;
            if !same && stored.live(now) && stored.indexes.get(position).and_then(Option::as_ref) == Some(value) {
                return Some((t.clone(), i.clone()));
            }
        }
    }
    None
}

/// Applies one write; the previous record goes to `undo`.
fn write_one(
    tables: &mut HashMap<&'static str, Records>,
    row: RowWrite,
    mode: WriteMode,
    now: DateTime<Utc>,
    undo: &mut Undo,
) -> Result<Applied> {
    let table = row.table;
    let records = tables.entry(table.name).or_default();
    let tenant = row.tenant.as_str();
    let current = records.get(tenant).and_then(|rows| rows.get(&row.id)).filter(|s| s.live(now));
    let meta = match (mode, current) {
        (WriteMode::Insert, Some(_)) => return Err(StorageError::conflict(table.entity, row.id, "already exists")),
        (WriteMode::Update { .. }, None) => return Err(StorageError::not_found(table.entity, row.id)),
        (WriteMode::Update { expected }, Some(s)) if s.meta.version != expected => {
            return Err(StorageError::VersionMismatch { entity: table.entity, id: row.id, expected, actual: s.meta.version });
        }
        (_, Some(s)) => RecordMeta { version: s.meta.version.saturating_add(1), created_at: s.meta.created_at, updated_at: now },
        (_, None) => RecordMeta::new_at(now),
    };
    for (position, (spec, value)) in table.indexes.iter().zip(&row.indexes).enumerate() {
        if let Some(value) = value
            && let Some((_, holder)) = unique_holder(records, tenant, &row.id, position, spec.unique, value, now)
        {
            return Err(StorageError::conflict(table.entity, row.id, format!("`{}` is already used by `{holder}`", spec.column)));
        }
    }
    let words = row.search.as_deref().map(storage_core::fts::words).unwrap_or_default();
    let stored = Stored { indexes: row.indexes, expires_at: row.expires_at, meta, body: row.body, words };
    let previous = records.entry(tenant.to_owned()).or_default().insert(row.id.clone(), stored);
    undo.push((table.name, tenant.to_owned(), row.id, previous));
    Ok(Applied::Written(meta))
}

fn delete_one(
    tables: &mut HashMap<&'static str, Records>,
    table: &'static TableDef,
    tenant: &str,
    id: String,
    now: DateTime<Utc>,
    undo: &mut Undo,
) -> Applied {
    let previous = tables.get_mut(table.name).and_then(|records| records.get_mut(tenant)).and_then(|rows| rows.remove(&id));
    let live = previous.as_ref().is_some_and(|s| s.live(now));
    undo.push((table.name, tenant.to_owned(), id, previous));
    Applied::Deleted(live)
}

#[async_trait]
impl Tables for MemoryTables {
    async fn get(&self, table: &'static TableDef, tenant: &TenantId, ids: &[String], now: DateTime<Utc>) -> Result<Vec<Row>> {
        let tables = self.read();
        let Some(rows) = tables.get(table.name).and_then(|records| records.get(tenant.as_str())) else {
            return Ok(Vec::new());
        };
        Ok(ids.iter().filter_map(|id| rows.get(id).filter(|s| s.live(now)).map(|s| s.row(table, tenant.as_str(), id))).collect())
    }

    async fn apply(&self, tenant: &TenantId, changes: Vec<Change>, now: DateTime<Utc>) -> Result<Vec<Applied>> {
        let mut tables = self.write();
        let mut undo = Undo::new();
        let mut applied = Vec::with_capacity(changes.len());
        for change in changes {
            let outcome = match change {
                Change::Write { row, mode } => write_one(&mut tables, row, mode, now, &mut undo),
                Change::Delete { table, id } => Ok(delete_one(&mut tables, table, tenant.as_str(), id, now, &mut undo)),
            };
            match outcome {
                Ok(done) => applied.push(done),
                Err(e) => {
                    for (name, tenant, id, previous) in undo.into_iter().rev() {
                        let rows = tables.entry(name).or_default().entry(tenant).or_default();
                        match previous {
                            Some(stored) => rows.insert(id, stored),
                            None => rows.remove(&id),
                        };
                    }
                    return Err(e);
                }
            }
        }
        Ok(applied)
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
        let tables = self.read();
        let Some(records) = tables.get(table.name) else {
            return Ok(RowPage::default());
        };
        let all_tenants = matches!(scope, Scope::AllTenants);
        let tenant_of = |t: &str| if all_tenants { t.to_owned() } else { String::new() };
        let mut found: Vec<(String, Option<Value>, &String, &String, &Stored)> = matching(table, records, scope, &query.filter, now)
            .map(|(t, id, s)| (tenant_of(t), key_of(table, query, s), t, id, s))
            .collect();
        found.sort_by(|a, b| compare((&a.0, &a.1, a.3), (&b.0, &b.1, b.3)));
        if query.order.direction == Direction::Desc {
            found.reverse();
        }
        let after = after.map(|p| (p.tenant.as_ref().map(|t| t.as_str().to_owned()).unwrap_or_default(), p.key.clone(), p.id.clone()));
        let mut rows = Vec::new();
        let mut next = None;
        for (sort_tenant, key, tenant, id, stored) in found {
            if let Some((pt, pk, pi)) = &after {
                let order = compare((&sort_tenant, &key, id), (pt, pk, pi));
                let beyond = match query.order.direction {
                    Direction::Asc => order == Ordering::Greater,
                    Direction::Desc => order == Ordering::Less,
                };
                if !beyond {
                    continue;
                }
            }
            if rows.len() >= limit as usize {
                // One more exists: the page ends at the last row taken.
                next = rows.last().map(|row: &(Row, Option<Value>)| Position {
                    tenant: all_tenants.then(|| TenantId::stored(row.0.tenant.clone())).transpose().ok().flatten(),
                    key: row.1.clone(),
                    id: row.0.id.clone(),
                });
                break;
            }
            rows.push((stored.row(table, tenant, id), key));
        }
        Ok(RowPage { rows: rows.into_iter().map(|(row, _)| row).collect(), next })
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
        let tables = self.read();
        let mut hits: Vec<(u64, &String, &String, &Stored)> = tables.get(table.name).map_or_else(Vec::new, |records| {
            matching(table, records, Scope::Tenant(tenant), filter, now)
                .filter_map(|(tenant, id, stored)| search.score(&stored.words).map(|score| (score, tenant, id, stored)))
                .collect()
        });
        hits.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(b.2)));
        let total = hits.len() as u64;
        let rows = hits.into_iter().skip(offset as usize).take(limit as usize).map(|(_, t, id, s)| s.row(table, t, id)).collect();
        Ok(SearchPage { rows, total })
    }

    async fn count(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let tables = self.read();
        let count = tables.get(table.name).map_or(0, |records| matching(table, records, scope, filter, now).count());
        Ok(count as u64)
    }

    async fn delete_where(&self, table: &'static TableDef, scope: Scope<'_>, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let mut tables = self.write();
        let Some(records) = tables.get_mut(table.name) else {
            return Ok(0);
        };
        let doomed: Vec<(String, String)> =
            matching(table, records, scope, filter, now).map(|(tenant, id, _)| (tenant.clone(), id.clone())).collect();
        for (tenant, id) in &doomed {
            if let Some(rows) = records.get_mut(tenant) {
                rows.remove(id);
            }
        }
        Ok(doomed.len() as u64)
    }

    async fn purge_expired(&self, table: &'static TableDef, now: DateTime<Utc>) -> Result<u64> {
        let mut tables = self.write();
        let Some(records) = tables.get_mut(table.name) else {
            return Ok(0);
        };
        let mut removed = 0u64;
        for rows in records.values_mut() {
            let before = rows.len();
            rows.retain(|_, stored| stored.live(now));
            removed = removed.saturating_add(before.saturating_sub(rows.len()) as u64);
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
        let mut tables = self.write();
        let Some(stored) = tables
            .get_mut(table.name)
            .and_then(|records| records.get_mut(tenant.as_str()))
            .and_then(|rows| rows.get_mut(id))
            .filter(|s| s.live(now))
        else {
            return Ok(Incremented::Missing);
        };
        let Some(slot) = stored.indexes.get_mut(step.column) else {
            return Err(StorageError::backend(BACKEND, format!("{} has no index {}", table.name, step.column)));
        };
        let current = match slot {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        let within = if step.by >= 0 { current <= step.limit } else { current >= step.limit };
        let Some(value) = current.checked_add(step.by).filter(|_| within) else {
            return Ok(Incremented::Capped(current));
        };
        *slot = Some(Value::Int(value));
        stored.meta = RecordMeta { version: stored.meta.version.saturating_add(1), created_at: stored.meta.created_at, updated_at: now };
        Ok(Incremented::To(value, stored.meta))
    }

    async fn find_unique(
        &self,
        table: &'static TableDef,
        scope: Scope<'_>,
        column: usize,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<(TenantId, String)>> {
        let tables = self.read();
        let Some(records) = tables.get(table.name) else {
            return Ok(None);
        };
        let found = in_scope(records, scope).find_map(|(tenant, rows)| {
            rows.iter()
                .find(|(_, s)| s.live(now) && s.indexes.get(column).and_then(Option::as_ref) == Some(value))
                .map(|(id, _)| (tenant.clone(), id.clone()))
        });
        found.map(|(tenant, id)| Ok((TenantId::stored(tenant).map_err(|e| StorageError::corrupt(BACKEND, e))?, id))).transpose()
    }
}
