//! The generic engine: any [`Document`] as a hash (`v` version, `c` created, `u` updated, `b`
//! sealed JSON body, `x` the index keys it is in), plus sorted-set indexes. A write is one script
//! that moves the record between index sets and writes it. Every key it touches is passed in
//! `KEYS`, so the caller names the index sets the record is in now: its guess (unchanged for an
//! update, none for an insert) is checked inside the script, and a wrong guess costs one more
//! round trip with the actual list. One round trip in the common case, never a stale index.

use crate::{BACKEND, Keys, redis_error};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::Script;
use redis::aio::ConnectionManager;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock};
use storage_core::clock::{from_micros, to_micros};
use storage_core::document::{Document, Filter, IndexKind, IndexValue, RecordMeta};
use storage_core::{Result, Sealer, StorageError, Table, TenantId};

/// KEYS: record, all-ids set, old index sets..., new index sets...
/// ARGV: mode, the caller's belief of the record's index list (`x`, empty when absent), expected
/// version, now, body, id, #old, #new, new scores..., new index list.
/// The belief is checked first: if the record is in other index sets than the caller passed,
/// nothing changes and the actual list comes back for a second, exact attempt.
static WRITE: LazyLock<Script> = LazyLock::new(|| Script::new(crate::scripts::WRITE_RECORD));

/// KEYS: record, all-ids set, index sets... ARGV: the caller's belief of the index list, id.
static DELETE: LazyLock<Script> = LazyLock::new(|| Script::new(crate::scripts::DELETE_RECORD));

/// How often a write tries again after finding the record in other index sets than it assumed.
const WRITE_ATTEMPTS: usize = 64;

/// The Redis storage of one [`Document`] type.
pub struct RedisTable<D> {
    conn: ConnectionManager,
    keys: Keys,
    sealer: Arc<dyn Sealer>,
    _document: PhantomData<fn() -> D>,
}

impl<D> fmt::Debug for RedisTable<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTable").field("keys", &self.keys).finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Insert,
    Upsert,
    Update(u64),
}

fn instant(text: &str) -> Result<DateTime<Utc>> {
    text.parse::<i64>().ok().and_then(from_micros).ok_or_else(|| StorageError::corrupt(BACKEND, format!("instant `{text}`")))
}

impl<D: Document> RedisTable<D> {
    /// The table of `D` under `keys`.
    pub fn new(conn: ConnectionManager, keys: Keys, sealer: Arc<dyn Sealer>) -> Self {
        Self { conn, keys, sealer, _document: PhantomData }
    }

    /// The index sets `doc` belongs in, with its score in each.
    fn index_entries(&self, doc: &D) -> Vec<(String, i64)> {
        D::INDEXES
            .iter()
            .zip(doc.index_values())
            .filter_map(|(spec, value)| match value {
                IndexValue::Text(Some(text)) => Some((self.keys.text_index(doc.tenant(), D::STORE, spec.column, &text), 0)),
                IndexValue::Time(Some(at)) => Some((self.keys.time_index(doc.tenant(), D::STORE, spec.column), to_micros(at))),
                _ => None,
            })
            .collect()
    }

    /// The index keys of a stored index list (`x`); empty when the record is absent.
    fn parse_index_list(list: &str) -> Result<Vec<String>> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str(list).map_err(|e| StorageError::corrupt(BACKEND, e))
    }

    fn decode(&self, tenant: &TenantId, id: &str, fields: [Option<String>; 4]) -> Result<Option<D>> {
        let [Some(version), Some(created), Some(updated), Some(body)] = fields else {
            return Ok(None);
        };
        let meta = RecordMeta {
            version: version.parse().map_err(|_| StorageError::corrupt(BACKEND, format!("version `{version}`")))?,
            created_at: instant(&created)?,
            updated_at: instant(&updated)?,
        };
        D::decode_json(tenant, id, meta, &body, self.sealer.as_ref()).map(Some)
    }

    async fn fetch(&self, tenant: &TenantId, ids: &[String]) -> Result<Vec<D>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET").arg(self.keys.record(tenant, D::STORE, id)).arg(&["v", "c", "u", "b"][..]);
        }
        let rows: Vec<[Option<String>; 4]> = pipe.query_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        let mut docs = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(rows) {
            // A record deleted between the index read and this read is simply gone.
            if let Some(doc) = self.decode(tenant, id, fields)? {
                docs.push(doc);
            }
        }
        Ok(docs)
    }

    async fn write(&self, doc: &D, mode: Mode, now: DateTime<Utc>) -> Result<D> {
        let id = doc.id();
        let record = self.keys.record(doc.tenant(), D::STORE, &id);
        let body = doc.encode(self.sealer.as_ref())?.to_json()?;
        let new_entries = self.index_entries(doc);
        let new_keys: Vec<&String> = new_entries.iter().map(|(key, _)| key).collect();
        let new_list = serde_json::to_string(&new_keys).map_err(|e| StorageError::backend(BACKEND, e))?;
        // The guess: a new record is in no index; an existing one is usually where it stays.
        let mut believed = if mode == Mode::Insert { String::new() } else { new_list.clone() };
        for _ in 0..WRITE_ATTEMPTS {
            let old_keys = Self::parse_index_list(&believed)?;
            let mut call = WRITE.prepare_invoke();
            call.key(&record).key(self.keys.all(doc.tenant(), D::STORE));
            for key in &old_keys {
                call.key(key);
            }
            for (key, _) in &new_entries {
                call.key(key);
            }
            let (mode_name, expected) = match mode {
                Mode::Insert => ("insert", 0),
                Mode::Upsert => ("upsert", 0),
                Mode::Update(expected) => ("update", expected),
            };
            call.arg(mode_name).arg(&believed).arg(expected.to_string()).arg(to_micros(now)).arg(&body).arg(&id);
            call.arg(old_keys.len()).arg(new_entries.len());
            for (_, score) in &new_entries {
                call.arg(*score);
            }
            call.arg(&new_list);
            let reply: Vec<String> = call.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
            match reply.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                ["retry", actual] => believed = (*actual).to_owned(),
                ["conflict"] => return Err(StorageError::conflict(D::ENTITY, id, "already exists")),
                ["missing"] => return Err(StorageError::not_found(D::ENTITY, id)),
                ["mismatch", actual] => {
                    let actual = actual.parse().unwrap_or_default();
                    return Err(StorageError::VersionMismatch { entity: D::ENTITY, id, expected, actual });
                }
                ["ok", version, created] => {
                    let mut stored = doc.clone();
                    let version = version.parse().map_err(|_| StorageError::corrupt(BACKEND, "version"))?;
                    stored.set_meta(RecordMeta { version, created_at: instant(created)?, updated_at: now });
                    return Ok(stored);
                }
                other => return Err(StorageError::backend(BACKEND, format!("unexpected script reply {other:?}"))),
            }
        }
        Err(StorageError::conflict(D::ENTITY, id, format!("still contended after {WRITE_ATTEMPTS} attempts")))
    }
}

#[async_trait]
impl<D: Document> Table<D> for RedisTable<D> {
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<D>> {
        let fields: [Option<String>; 4] = redis::cmd("HMGET")
            .arg(self.keys.record(tenant, D::STORE, id))
            .arg(&["v", "c", "u", "b"][..])
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        self.decode(tenant, id, fields)
    }

    async fn insert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        self.write(doc, Mode::Insert, now).await
    }

    async fn upsert(&self, doc: &D, now: DateTime<Utc>) -> Result<D> {
        self.write(doc, Mode::Upsert, now).await
    }

    async fn update(&self, doc: &D, expected: u64, now: DateTime<Utc>) -> Result<D> {
        self.write(doc, Mode::Update(expected), now).await
    }

    async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let record = self.keys.record(tenant, D::STORE, id);
        let mut believed = String::from("[]");
        for _ in 0..WRITE_ATTEMPTS {
            let mut call = DELETE.prepare_invoke();
            call.key(&record).key(self.keys.all(tenant, D::STORE));
            for key in Self::parse_index_list(&believed)? {
                call.key(key);
            }
            call.arg(&believed).arg(id);
            let reply: Vec<String> = call.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
            match reply.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                ["retry", actual] => believed = (*actual).to_owned(),
                ["deleted"] => return Ok(true),
                ["absent"] => return Ok(false),
                other => return Err(StorageError::backend(BACKEND, format!("unexpected script reply {other:?}"))),
            }
        }
        Err(StorageError::conflict(D::ENTITY, id, format!("still contended after {WRITE_ATTEMPTS} attempts")))
    }

    async fn list(&self, tenant: &TenantId, filter: &Filter, after: Option<&str>, limit: u32) -> Result<Vec<D>> {
        let start = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        let by_lex = |key: String| {
            let mut cmd = redis::cmd("ZRANGEBYLEX");
            cmd.arg(key).arg(&start).arg("+").arg("LIMIT").arg(0).arg(limit);
            cmd
        };
        let ids: Vec<String> = match filter {
            Filter::All => by_lex(self.keys.all(tenant, D::STORE)).query_async(&mut self.conn.clone()).await.map_err(redis_error)?,
            Filter::Eq { column, value } => by_lex(self.keys.text_index(tenant, D::STORE, column, value))
                .query_async(&mut self.conn.clone())
                .await
                .map_err(redis_error)?,
            Filter::AtOrBefore { column, at } => {
                if !D::INDEXES.iter().any(|spec| spec.column == *column && spec.kind == IndexKind::Time) {
                    return Err(StorageError::invalid("filter", format!("`{column}` is not a time index of {}", D::STORE)));
                }
                // Due entries are few; order them by id like every other list.
                let mut due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                    .arg(self.keys.time_index(tenant, D::STORE, column))
                    .arg("-inf")
                    .arg(to_micros(*at))
                    .query_async(&mut self.conn.clone())
                    .await
                    .map_err(redis_error)?;
                due.sort();
                due.into_iter().filter(|id| after.is_none_or(|a| id.as_str() > a)).take(limit as usize).collect()
            }
        };
        self.fetch(tenant, &ids).await
    }
}
