//! The common record shape every backend stores once, generically.
//!
//! A [`Document`] is a typed record with a tenant, an id, a few declared secondary indexes, a
//! version and timestamps, and optionally an expiry. Its [`TableDef`] declares the table: the
//! backends keep the identity, the indexes, the metadata and the expiry as real columns (or Redis
//! index keys) and the rest as a JSON body in which the secrets are sealed together.

use crate::{Result, Secret, StorageError, TenantId};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Version and timestamps that the engine, not the caller, maintains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// Starts at 1 and grows by one on every write.
    pub version: u64,
    /// When the record was first written; survives every update.
    pub created_at: DateTime<Utc>,
    /// When the record was last written.
    pub updated_at: DateTime<Utc>,
}

impl RecordMeta {
    /// The metadata of a record first written at `now`.
    pub fn new_at(now: DateTime<Utc>) -> Self {
        Self { version: 1, created_at: now, updated_at: now }
    }
}

/// The type of a secondary index column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// Text, compared in byte order.
    Text,
    /// An instant, microsecond precision.
    Time,
    /// A signed integer within ±(2^53 − 1).
    Int,
    /// A boolean.
    Bool,
}

/// Whether an index's values must be unique, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unique {
    /// Values may repeat.
    No,
    /// At most one live record per value within a tenant.
    PerTenant,
    /// At most one live record per value across all tenants: a directory that finds the record
    /// (and its tenant) without knowing the tenant — token digests, external ids, slugs.
    Global,
}

/// A declared secondary index: a real column named `column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexSpec {
    /// The column (and Redis index) name.
    pub column: &'static str,
    /// Its type.
    pub kind: IndexKind,
    /// Its uniqueness.
    pub unique: Unique,
    /// Whether [`crate::Table::increment`] may change it in place. A counter's column is the
    /// truth: it is written back into the record on every read.
    pub counter: bool,
}

impl IndexSpec {
    const fn of(column: &'static str, kind: IndexKind) -> Self {
        Self { column, kind, unique: Unique::No, counter: false }
    }
    /// A text index.
    pub const fn text(column: &'static str) -> Self {
        Self::of(column, IndexKind::Text)
    }
    /// A time index.
    pub const fn time(column: &'static str) -> Self {
        Self::of(column, IndexKind::Time)
    }
    /// An integer index.
    pub const fn int(column: &'static str) -> Self {
        Self::of(column, IndexKind::Int)
    }
    /// A boolean index.
    pub const fn bool(column: &'static str) -> Self {
        Self::of(column, IndexKind::Bool)
    }
    /// An integer counter: an index that [`crate::Table::increment`] changes atomically.
    pub const fn counter(column: &'static str) -> Self {
        Self { counter: true, ..Self::of(column, IndexKind::Int) }
    }
    /// The same index, unique within a tenant.
    pub const fn unique(self) -> Self {
        Self { unique: Unique::PerTenant, ..self }
    }
    /// The same index, unique across tenants and usable as a tenant-less directory.
    pub const fn global(self) -> Self {
        Self { unique: Unique::Global, ..self }
    }
}

/// The declaration of a document table. Backends build their statements and keys from it, once.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TableDef {
    /// The table name and Redis key segment, e.g. `integrations`.
    pub name: &'static str,
    /// The record kind in messages, e.g. `integration`.
    pub entity: &'static str,
    /// The argument that names a record, e.g. `key`.
    pub id_field: &'static str,
    /// The secondary indexes, in [`Document::index_values`] order.
    pub indexes: &'static [IndexSpec],
    /// Whether records may expire (an `expires_at` column; see [`Document::expires_at`]).
    pub expires: bool,
    /// Whether records carry sealed secrets ([`Document::secrets`]); the body must then have its
    /// sealed part, so one removed from a stored row is noticed.
    pub sealed: bool,
    /// Whether records are searchable by the words of [`Document::search_text`] (see
    /// [`crate::Table::search`]).
    pub search: bool,
}

impl TableDef {
    /// The position and declaration of the index on `column`.
    pub fn index(&self, column: &str) -> Option<(usize, &'static IndexSpec)> {
        self.indexes.iter().enumerate().find(|(_, spec)| spec.column == column)
    }

    /// The index on `column`, or `InvalidInput` naming the table.
    pub fn require_index(&self, column: &str) -> Result<(usize, &'static IndexSpec)> {
        self.index(column).ok_or_else(|| StorageError::invalid("filter", format!("`{column}` is not an index of {}", self.name)))
    }

    /// The counter columns, in index order.
    pub fn counters(&self) -> impl Iterator<Item = (usize, &'static IndexSpec)> + '_ {
        self.indexes.iter().enumerate().filter(|(_, spec)| spec.counter)
    }
}

/// The value of one index for one record. `None` in [`Document::index_values`] means "not set"
/// (SQL `NULL`; absent from the Redis index).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// For a text index.
    Text(String),
    /// For a time index.
    Time(DateTime<Utc>),
    /// For an integer index.
    Int(i64),
    /// For a boolean index.
    Bool(bool),
}

impl Value {
    /// The kind of index this value belongs to.
    pub fn kind(&self) -> IndexKind {
        match self {
            Self::Text(_) => IndexKind::Text,
            Self::Time(_) => IndexKind::Time,
            Self::Int(_) => IndexKind::Int,
            Self::Bool(_) => IndexKind::Bool,
        }
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}
impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}
impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(value: DateTime<Utc>) -> Self {
        Self::Time(value)
    }
}
impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}
impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

/// Secret fields by name, in clear: what [`Document::secrets`] hands over for sealing.
pub type Secrets = BTreeMap<String, Secret<String>>;

/// A typed record stored through a backend's generic engine.
///
/// Implementors serialize every field except secrets (`#[serde(skip)]`), which they hand over in
/// [`Document::secrets`]; the engine seals them together as one value. The metadata fields
/// (`version`, `created_at`, `updated_at`) and counters are columns: decoding takes them from
/// there.
pub trait Document: Serialize + DeserializeOwned + Clone + Send + Sync + fmt::Debug + 'static {
    /// The table.
    const TABLE: TableDef;

    /// The owning tenant.
    fn tenant(&self) -> &TenantId;
    /// The id within the tenant (the primary key together with the tenant).
    fn id(&self) -> String;
    /// The engine-maintained metadata.
    fn meta(&self) -> RecordMeta;
    /// Replaces the engine-maintained metadata.
    fn set_meta(&mut self, meta: RecordMeta);
    /// The values of [`TableDef::indexes`], in order; none for a table without indexes (a
    /// table whose count differs is refused on every write).
    fn index_values(&self) -> Vec<Option<Value>> {
        Vec::new()
    }
    /// Checks every field; a write of an invalid record is refused before anything is stored.
    fn validate(&self) -> Result<()>;

    /// When the record stops existing, for tables that declare [`TableDef::expires`].
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        None
    }
    /// The text a full-text search finds the record by, for tables that declare
    /// [`TableDef::search`]. Never a secret: it is stored and indexed in clear.
    fn search_text(&self) -> String {
        String::new()
    }
    /// Sets a counter from its column (see [`IndexSpec::counter`]).
    fn set_counter(&mut self, column: &str, _value: i64) -> Result<()> {
        Err(StorageError::invalid("counter", format!("`{column}` is not a counter of {}", Self::TABLE.name)))
    }
    /// The secret fields, in clear, to be sealed. Records without secrets keep the default.
    fn secrets(&self) -> Secrets {
        Secrets::new()
    }
    /// Puts the opened secret fields back into the record.
    fn set_secrets(&mut self, _secrets: Secrets) -> Result<()> {
        Ok(())
    }
}

/// Implements [`Document::meta`] and [`Document::set_meta`] over a record's `version`,
/// `created_at` and `updated_at` fields, which every document has.
#[macro_export]
macro_rules! record_meta {
    () => {
        fn meta(&self) -> $crate::RecordMeta {
            $crate::RecordMeta { version: self.version, created_at: self.created_at, updated_at: self.updated_at }
        }
        fn set_meta(&mut self, meta: $crate::RecordMeta) {
            (self.version, self.created_at, self.updated_at) = (meta.version, meta.created_at, meta.updated_at);
        }
    };
}

/// What a backend stores as a record's body: its fields (`r`) and its sealed secrets (`s`, one
/// sealed value holding every secret field, so none can be removed alone).
#[derive(Debug, Serialize)]
pub(crate) struct Body<'a, D> {
    #[serde(rename = "r")]
    pub(crate) record: &'a D,
    #[serde(rename = "s", skip_serializing_if = "Option::is_none")]
    pub(crate) sealed: Option<String>,
}

/// A [`Body`] as read back.
#[derive(Debug, Deserialize)]
#[serde(bound = "D: DeserializeOwned")]
pub(crate) struct StoredBody<D> {
    #[serde(rename = "r")]
    pub(crate) record: D,
    #[serde(rename = "s", default)]
    pub(crate) sealed: Option<String>,
}

/// The sealed part of a stored body, read without the record (key rotation, the key census).
#[derive(Debug, Deserialize)]
pub(crate) struct SealedPart {
    #[serde(rename = "s", default)]
    pub(crate) sealed: Option<String>,
}
