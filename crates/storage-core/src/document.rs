//! The common record shape every backend stores once, generically.
//!
//! A [`Document`] is a typed record with a tenant, an id, a few declared secondary indexes, a
//! version and timestamps. Backends store the identity, indexes and metadata as real columns (or
//! Redis index keys) and the rest as a JSON body in which secret fields are sealed.

use crate::secret::{SealContext, Sealer};
use crate::{Result, Secret, StorageError, TenantId};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Text, matched for equality.
    Text,
    /// An instant, scanned by range (`<=`).
    Time,
}

/// A declared secondary index: a real column named `column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    /// The column (and Redis index) name.
    pub column: &'static str,
    /// Its type.
    pub kind: IndexKind,
}

impl IndexSpec {
    /// A text index.
    pub const fn text(column: &'static str) -> Self {
        Self { column, kind: IndexKind::Text }
    }
    /// A time index.
    pub const fn time(column: &'static str) -> Self {
        Self { column, kind: IndexKind::Time }
    }
}

/// The value of one secondary index for one record, in [`Document::INDEXES`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexValue {
    /// A text index value; `None` is not indexed.
    Text(Option<String>),
    /// A time index value; `None` is not indexed.
    Time(Option<DateTime<Utc>>),
}

/// Which records of a tenant a list returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every record of the tenant.
    All,
    /// Records whose text index `column` equals `value`.
    Eq {
        /// A declared text index.
        column: &'static str,
        /// The value to match.
        value: String,
    },
    /// Records whose time index `column` is set and at or before `at`.
    AtOrBefore {
        /// A declared time index.
        column: &'static str,
        /// The inclusive upper bound.
        at: DateTime<Utc>,
    },
}

/// Seals and opens the secret fields of one record.
#[derive(Debug, Clone, Copy)]
pub struct Sealing<'a> {
    sealer: &'a dyn Sealer,
    store: &'a str,
    tenant: &'a str,
    record_id: &'a str,
}

impl Sealing<'_> {
    /// Seals `value` as field `field` of this record.
    pub fn seal(&self, field: &str, value: &Secret<String>) -> Result<String> {
        self.sealer.seal(&self.context(field), value.expose())
    }

    /// Opens field `field` of this record.
    pub fn open(&self, field: &str, sealed: &str) -> Result<Secret<String>> {
        self.sealer.open(&self.context(field), sealed)
    }

    fn context<'f>(&'f self, field: &'f str) -> SealContext<'f> {
        SealContext { store: self.store, tenant: self.tenant, record_id: self.record_id, field }
    }
}

/// What a backend stores for a record: its fields (`r`) and its sealed secrets (`s`). Written and
/// read in one serde pass each; the metadata inside `r` is ignored on read (the columns win).
#[derive(Debug, Serialize)]
pub struct Body<'a, D> {
    #[serde(rename = "r")]
    record: &'a D,
    #[serde(rename = "s", skip_serializing_if = "Map::is_empty")]
    sealed: Map<String, Value>,
}

impl<D: Serialize> Body<'_, D> {
    /// The body as JSON text.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| StorageError::invalid("record", e))
    }
}

/// A [`Body`] as read back.
#[derive(Debug, Deserialize)]
#[serde(bound = "D: DeserializeOwned")]
pub struct StoredBody<D> {
    #[serde(rename = "r")]
    record: D,
    #[serde(rename = "s", default)]
    sealed: Map<String, Value>,
}

/// A typed record stored through a backend's shared engine.
///
/// Implementors serialize every field except secrets (`#[serde(skip)]`), which they hand over
/// sealed in [`Document::seal_secrets`]. The metadata fields `version`, `created_at` and
/// `updated_at` are columns: decoding takes them from there.
pub trait Document: Serialize + DeserializeOwned + Clone + Send + Sync + fmt::Debug + 'static {
    /// The table name and Redis key segment, e.g. `integrations`.
    const STORE: &'static str;
    /// The record kind in messages, e.g. `integration`.
    const ENTITY: &'static str;
    /// The argument that names a record, e.g. `key`.
    const ID_FIELD: &'static str;
    /// The secondary indexes, in [`Document::index_values`] order.
    const INDEXES: &'static [IndexSpec];

    /// The owning tenant.
    fn tenant(&self) -> &TenantId;
    /// The id within the tenant (the primary key together with the tenant).
    fn id(&self) -> String;
    /// The engine-maintained metadata.
    fn meta(&self) -> RecordMeta;
    /// Replaces the engine-maintained metadata.
    fn set_meta(&mut self, meta: RecordMeta);
    /// The values of [`Document::INDEXES`], in order.
    fn index_values(&self) -> Vec<IndexValue>;
    /// Checks every field; a write of an invalid record is refused before anything is stored.
    fn validate(&self) -> Result<()>;

    /// Seals the secret fields, by field name. Records without secrets keep the default.
    fn seal_secrets(&self, _sealing: &Sealing<'_>) -> Result<Map<String, Value>> {
        Ok(Map::new())
    }

    /// Opens the sealed fields back into the record.
    fn open_secrets(&mut self, _sealed: &Map<String, Value>, _sealing: &Sealing<'_>) -> Result<()> {
        Ok(())
    }

    /// Whether the record passes `filter` (the memory backend's reference semantics).
    fn matches(&self, filter: &Filter) -> bool {
        let value_of =
            |column: &str| Self::INDEXES.iter().position(|spec| spec.column == column).and_then(|i| self.index_values().into_iter().nth(i));
        match filter {
            Filter::All => true,
            Filter::Eq { column, value } => {
                matches!(value_of(column), Some(IndexValue::Text(Some(v))) if &v == value)
            }
            Filter::AtOrBefore { column, at } => {
                matches!(value_of(column), Some(IndexValue::Time(Some(t))) if t <= *at)
            }
        }
    }

    /// The stored body: the record's serialized fields and its sealed secrets.
    fn encode(&self, sealer: &dyn Sealer) -> Result<Body<'_, Self>> {
        let id = self.id();
        let sealing = Sealing { sealer, store: Self::STORE, tenant: self.tenant().as_str(), record_id: &id };
        Ok(Body { record: self, sealed: self.seal_secrets(&sealing)? })
    }

    /// Rebuilds a record from its stored row; the metadata comes from the row's columns. The body
    /// must belong to the row it was read from: a body copied under another tenant or id is
    /// refused.
    fn decode(tenant: &TenantId, id: &str, meta: RecordMeta, stored: StoredBody<Self>, sealer: &dyn Sealer) -> Result<Self> {
        let StoredBody { mut record, sealed } = stored;
        record.set_meta(meta);
        if record.tenant() != tenant || record.id() != id {
            return Err(StorageError::corrupt(
                "decode",
                format!("{} body for `{tenant}`/`{id}` names `{}`/`{}`", Self::ENTITY, record.tenant(), record.id()),
            ));
        }
        let sealing = Sealing { sealer, store: Self::STORE, tenant: tenant.as_str(), record_id: id };
        record.open_secrets(&sealed, &sealing)?;
        Ok(record)
    }

    /// [`Document::decode`] from the body's JSON text.
    fn decode_json(tenant: &TenantId, id: &str, meta: RecordMeta, json: &str, sealer: &dyn Sealer) -> Result<Self> {
        let stored = serde_json::from_str(json).map_err(|e| StorageError::corrupt("decode", format!("{} `{id}`: {e}", Self::ENTITY)))?;
        Self::decode(tenant, id, meta, stored, sealer)
    }
}

/// Reads a sealed field from the map [`Document::open_secrets`] receives.
pub fn sealed_str<'a>(sealed: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>> {
    match sealed.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(StorageError::crypto(format!("sealed field `{field}` is not a string"))),
    }
}
