//! Key rotation: which key seals each stored secret ([`census`]), re-encrypting every sealed
//! record under the sealer's current key ([`reencrypt`]) — in batches, resumable, and safe beside
//! writers that keep working — and the check that lets an old key go ([`retire`]).
//!
//! Re-encryption writes each record back at the version it read (compare-and-set), so a record a
//! writer changed meanwhile is never overwritten with stale data: it is read again, and left
//! alone if the writer already sealed it with the current key. A re-sealed record gets the next
//! version and a new `updated_at`, like any write.

use crate::document::{Document, TableDef};
use crate::engine::{Engine, Row};
use crate::query::{Filter, Position, Query, Scope};
use crate::table::MAX_BATCH;
use crate::{Result, StorageError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// One table whose records carry sealed secrets, as rotation walks it.
#[async_trait]
pub trait SealedTable: Send + Sync {
    /// Its table.
    fn def(&self) -> &'static TableDef;
    /// The key that sealed each of `rows` (`None` where the sealer has no key ids).
    fn keys_of(&self, engine: &dyn Engine, rows: &[Row]) -> Result<Vec<Option<String>>>;
    /// Re-seals those of `rows` sealed with another key than `key`; how many.
    async fn reseal(&self, engine: &dyn Engine, rows: Vec<Row>, key: &str) -> Result<u64>;
}

/// The [`SealedTable`] of document `D`.
pub struct Sealed<D>(PhantomData<fn() -> D>);

impl<D> Sealed<D> {
    /// The one value (for the list of sealed tables).
    pub const TABLE: Self = Self(PhantomData);
}

impl<D: Document> fmt::Debug for Sealed<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({})", D::TABLE.name)
    }
}

#[async_trait]
impl<D: Document> SealedTable for Sealed<D> {
    fn def(&self) -> &'static TableDef {
        &D::TABLE
    }

    fn keys_of(&self, engine: &dyn Engine, rows: &[Row]) -> Result<Vec<Option<String>>> {
        let table = engine.table::<D>();
        rows.iter().map(|row| table.sealed_by(row)).collect()
    }

    async fn reseal(&self, engine: &dyn Engine, rows: Vec<Row>, key: &str) -> Result<u64> {
        engine.table::<D>().reseal(rows, key).await
    }
}

/// How many stored values each key seals, per store table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyCensus {
    /// Table name → key id → values.
    pub tables: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

impl KeyCensus {
    /// Values sealed with `key`, in every table.
    pub fn count(&self, key: &str) -> u64 {
        self.tables.values().filter_map(|keys| keys.get(key)).sum()
    }

    /// Adds `other`'s counts (another backend's) to these.
    pub fn merge(&mut self, other: KeyCensus) {
        for (table, keys) in other.tables {
            let mine = self.tables.entry(table).or_default();
            for (key, count) in keys {
                let total = mine.entry(key).or_default();
                *total = total.saturating_add(count);
            }
        }
    }

    /// Key id → values, over every table.
    pub fn totals(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for (key, count) in self.tables.values().flatten() {
            let total: &mut u64 = totals.entry(key.clone()).or_default();
            *total = total.saturating_add(*count);
        }
        totals
    }
}

/// The name a value gets in a census when its sealer has no key ids.
pub const UNKNOWN_KEY: &str = "unknown";

/// Where a rotation is, for a progress bar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationProgress {
    /// The table being walked.
    pub table: &'static str,
    /// Records looked at so far, over every table (including those of an interrupted run).
    pub scanned: u64,
    /// Live sealed records when the run started.
    pub total: u64,
    /// Records re-sealed so far.
    pub resealed: u64,
}

/// What a finished rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The key every value is now sealed with.
    pub key: String,
    /// Records looked at (including those of an interrupted run it resumed).
    pub scanned: u64,
    /// Records re-sealed.
    pub resealed: u64,
    /// Whether it resumed an interrupted run.
    pub resumed: bool,
}

/// How to re-encrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Records per batch (1 to [`MAX_BATCH`]); each batch is one unit per tenant.
    pub batch: u32,
    /// A file recording where the run is after every batch; a run given the same file resumes
    /// there after a crash or Ctrl-C. Without one, a rerun starts over (and skips, cheaply,
    /// every record already sealed with the current key).
    pub checkpoint: Option<PathBuf>,
}

impl Default for Rotation {
    fn default() -> Self {
        Self { batch: 500, checkpoint: None }
    }
}

/// Where an interrupted run stopped: the next table to walk and the position in it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    key: String,
    table: String,
    cursor: Option<String>,
    scanned: u64,
    resealed: u64,
}

impl Checkpoint {
    fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                StorageError::invalid("checkpoint", format!("{} does not parse ({e}); delete it to start over", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::config(format!("reading the rotation checkpoint {}: {e}", path.display()))),
        }
    }

    /// Replaces the file whole (written beside it, synced, renamed), so a crash leaves the old
    /// checkpoint or the new one.
    fn save(&self, path: &Path) -> Result<()> {
        let failed = |e: std::io::Error| StorageError::config(format!("writing the rotation checkpoint {}: {e}", path.display()));
        let text = serde_json::to_string(self).map_err(|e| StorageError::invalid("checkpoint", e))?;
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary).map_err(failed)?;
            file.write_all(text.as_bytes()).map_err(failed)?;
            file.sync_all().map_err(failed)?;
        }
        std::fs::rename(&temporary, path).map_err(failed)
    }
}

fn list_query(def: &'static TableDef) -> Result<Query> {
    Query::new(Filter::all()).checked(def)
}

fn now(engine: &dyn Engine) -> chrono::DateTime<chrono::Utc> {
    crate::clock::truncate_micros(engine.clock().now())
}

fn sealing_key(engine: &dyn Engine) -> Result<String> {
    engine.sealer().sealing_key().ok_or_else(|| StorageError::config("this backend's sealer names no keys: there is nothing to rotate"))
}

/// Live sealed records, over every sealed table.
async fn sealed_records(engine: &dyn Engine) -> Result<u64> {
    let mut total = 0u64;
    for sealed in crate::stores::SEALED {
        total = total.saturating_add(engine.tables().count(sealed.def(), Scope::AllTenants, &Filter::all(), now(engine)).await?);
    }
    Ok(total)
}

/// How many live values each key seals, per table: what `cargo xtask doctor` and
/// `rotate-key --dry-run` print. It reads every sealed record's header, never its secrets.
pub async fn census(engine: &dyn Engine) -> Result<KeyCensus> {
    let tables = engine.tables();
    let mut census = KeyCensus::default();
    for sealed in crate::stores::SEALED {
        let def = sealed.def();
        let query = list_query(def)?;
        let counts = census.tables.entry(def.name).or_default();
        let mut after: Option<Position> = None;
        loop {
            let page = tables.list(def, Scope::AllTenants, &query, after.as_ref(), crate::MAX_PAGE_SIZE, now(engine)).await?;
            for key in sealed.keys_of(engine, &page.rows)? {
                let count = counts.entry(key.unwrap_or_else(|| UNKNOWN_KEY.to_owned())).or_default();
                *count = count.saturating_add(1);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(census)
}

/// Re-encrypts every sealed record of every store under the sealer's current (primary) key, in
/// batches, calling `progress` after each. Safe while the application keeps writing (see the
/// module documentation); with [`Rotation::checkpoint`], resumable where an interrupted run
/// stopped. Run it once every process seals with the new key, so no writer adds values under the
/// old one behind it; [`retire`] checks that none is left.
pub async fn reencrypt(
    engine: &dyn Engine,
    options: &Rotation,
    progress: &(dyn Fn(&RotationProgress) + Send + Sync),
) -> Result<RotationReport> {
    let key = sealing_key(engine)?;
    let batch = u32::try_from(MAX_BATCH).unwrap_or(u32::MAX);
    if options.batch == 0 || options.batch > batch {
        return Err(StorageError::invalid("batch", format!("{}; between 1 and {MAX_BATCH} records", options.batch)));
    }
    let saved = match &options.checkpoint {
        Some(path) => Checkpoint::load(path)?,
        None => None,
    };
    // A checkpoint of a rotation to another key is stale: this run starts over.
    let resumed = saved.as_ref().is_some_and(|saved| saved.key == key);
    let mut state = saved.filter(|saved| saved.key == key).unwrap_or_else(|| Checkpoint { key: key.clone(), ..Checkpoint::default() });
    let start = crate::stores::SEALED.iter().position(|sealed| sealed.def().name == state.table).unwrap_or(0);
    let total = sealed_records(engine).await?.max(state.scanned);
    let tables = engine.tables();
    for (at, sealed) in crate::stores::SEALED.iter().enumerate().skip(start) {
        let def = sealed.def();
        let query = list_query(def)?;
        let mut after = match state.cursor.take() {
            Some(cursor) if state.table == def.name => Some(Position::decode(&cursor, def, &query.order, true)?),
            _ => None,
        };
        state.table = def.name.to_owned();
        loop {
            let page = tables.list(def, Scope::AllTenants, &query, after.as_ref(), options.batch, now(engine)).await?;
            state.scanned = state.scanned.saturating_add(page.rows.len() as u64);
            state.resealed = state.resealed.saturating_add(sealed.reseal(engine, page.rows, &key).await?);
            after = page.next;
            match &after {
                Some(position) => state.cursor = Some(position.encode(&query.order)),
                None => {
                    // The table is done: the checkpoint names the next one, from its start.
                    state.cursor = None;
                    state.table =
                        crate::stores::SEALED.get(at.saturating_add(1)).map(|next| next.def().name.to_owned()).unwrap_or_default();
                }
            }
            if let Some(path) = &options.checkpoint {
                state.save(path)?;
            }
            progress(&RotationProgress {
                table: def.name,
                scanned: state.scanned,
                total: total.max(state.scanned),
                resealed: state.resealed,
            });
            if after.is_none() {
                break;
            }
        }
    }
    if let Some(path) = &options.checkpoint {
        std::fs::remove_file(path)
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .map_err(|e| StorageError::config(format!("removing the finished rotation's checkpoint {}: {e}", path.display())))?;
    }
    Ok(RotationReport { key, scanned: state.scanned, resealed: state.resealed, resumed })
}

/// Checks that `key` may leave the key ring: it is not the primary key and no live value is
/// sealed with it. Refuses with [`StorageError::Conflict`] naming the tables that still use it;
/// the census it took otherwise.
pub async fn retire(engine: &dyn Engine, key: &str) -> Result<KeyCensus> {
    if sealing_key(engine)? == key {
        return Err(StorageError::invalid("key", format!("{key} is the primary key; make another key primary first")));
    }
    let census = census(engine).await?;
    let left = census.count(key);
    if left > 0 {
        let tables: Vec<String> =
            census.tables.iter().filter_map(|(table, keys)| keys.get(key).map(|count| format!("{table}: {count}"))).collect();
        return Err(StorageError::conflict(
            "encryption key",
            key,
            format!("{left} values are still sealed with it ({}); re-encrypt first (cargo xtask rotate-key)", tables.join(", ")),
        ));
    }
    Ok(census)
}
