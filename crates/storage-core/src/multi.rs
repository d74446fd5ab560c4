//! Multi-valued indexes: a record listed under each of several values — a webhook under every
//! event it subscribes to, a channel subscription under its event types — so a lookup by one
//! value reads only the records listed under it, in one tenant or across tenants.
//!
//! The index is a companion table of postings, one per (value, record), which a store writes in
//! the same [`Unit`] as the record (so on every backend a record and its postings change
//! together: one transaction, one script). A posting is a pointer, the record is the truth: a
//! lookup reads the records it points to and keeps only those that still list the value, so a
//! posting left behind by a delete that raced an update never returns a wrong record.

use crate::document::{Document, IndexSpec, TableDef, Value};
use crate::engine::Applied;
use crate::query::{Filter, Query, Scope};
use crate::stores::joined_id;
use crate::table::{Table, Unit, retry_contended};
use crate::{Result, StorageError, TenantId, validate_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

/// A record with a multi-valued index.
pub trait MultiValued: Document {
    /// The postings table, from [`postings_table`].
    const POSTINGS: TableDef;
    /// The values the record is listed under now; none to list it nowhere (an inactive
    /// subscription, say).
    fn multi_values(&self) -> BTreeSet<String>;
}

const POSTING_INDEXES: &[IndexSpec] = &[IndexSpec::text("value"), IndexSpec::text("owner")];

/// The declaration of the postings table `name` (columns `value` and `owner`, both text).
pub const fn postings_table(name: &'static str, entity: &'static str) -> TableDef {
    TableDef { name, entity, id_field: "posting_id", indexes: POSTING_INDEXES, expires: false, sealed: false, search: false }
}

/// One (value, record) pair of a multi-valued index of `D`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Posting<D> {
    #[serde(with = "crate::tenant::stored")]
    tenant: TenantId,
    value: String,
    owner: String,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    created_at: DateTime<Utc>,
    #[serde(default)]
    updated_at: DateTime<Utc>,
    #[serde(skip)]
    _of: PhantomData<fn() -> D>,
}

impl<D> Clone for Posting<D> {
    fn clone(&self) -> Self {
        Self {
            tenant: self.tenant.clone(),
            value: self.value.clone(),
            owner: self.owner.clone(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            _of: PhantomData,
        }
    }
}

impl<D> fmt::Debug for Posting<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Posting").field("tenant", &self.tenant).field("value", &self.value).field("owner", &self.owner).finish()
    }
}

impl<D: MultiValued> Posting<D> {
    fn of(record: &D, value: &str) -> Self {
        Self {
            tenant: record.tenant().clone(),
            value: value.to_owned(),
            owner: record.id(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            _of: PhantomData,
        }
    }
}

impl<D: MultiValued> Document for Posting<D> {
    const TABLE: TableDef = D::POSTINGS;

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        joined_id(&self.value, &self.owner)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![Some(Value::from(&self.value)), Some(Value::from(&self.owner))]
    }
    fn validate(&self) -> Result<()> {
        crate::limits::check_text("value", &self.value)?;
        validate_id(D::TABLE.id_field, &self.owner)
    }
}

/// `record` with the metadata of the write that led its unit.
fn stamped<D: Document>(mut record: D, applied: &[Applied]) -> D {
    if let Some(Applied::Written(meta)) = applied.first() {
        record.set_meta(*meta);
    }
    record
}

impl<D: MultiValued> Table<Posting<D>> {
    /// Adds to `unit` the posting changes that take the index from `before` (the record as read,
    /// `None` when it is new) to `after` (`None` when it is deleted).
    pub fn sync(&self, unit: &mut Unit, before: Option<&D>, after: Option<&D>) -> Result<()> {
        let values = |record: Option<&D>| record.map(MultiValued::multi_values).unwrap_or_default();
        let (old, new) = (values(before), values(after));
        if let Some(record) = before {
            for value in old.difference(&new) {
                unit.delete(self, &joined_id(value, &record.id()))?;
            }
        }
        if let Some(record) = after {
            for value in new.difference(&old) {
                unit.upsert(self, &Posting::of(record, value))?;
            }
        }
        Ok(())
    }

    /// Creates `record` (as [`Table::insert`]) with its postings.
    pub async fn insert_record(&self, records: &Table<D>, record: &D) -> Result<D> {
        let mut unit = records.unit(record.tenant());
        unit.insert(records, record)?;
        self.sync(&mut unit, None, Some(record))?;
        Ok(stamped(record.clone(), &unit.commit().await?))
    }

    /// Changes a record (as [`Table::patch`]: re-applied on contention, never lost) and its
    /// postings with it.
    pub async fn patch_record(
        &self,
        records: &Table<D>,
        tenant: &TenantId,
        id: &str,
        change: impl Fn(&mut D) -> Result<()> + Send + Sync,
    ) -> Result<D> {
        retry_contended(|| async {
            let Some(before) = records.get(tenant, id).await? else {
                return Err(StorageError::not_found(D::TABLE.entity, id));
            };
            let mut after = before.clone();
            change(&mut after)?;
            let mut unit = records.unit(tenant);
            unit.update(records, &after)?;
            self.sync(&mut unit, Some(&before), Some(&after))?;
            Ok(stamped(after, &unit.commit().await?))
        })
        .await
    }

    /// Deletes a record and its postings; whether it existed.
    pub async fn delete_record(&self, records: &Table<D>, tenant: &TenantId, id: &str) -> Result<bool> {
        let Some(before) = records.get(tenant, id).await? else { return Ok(false) };
        let mut unit = records.unit(tenant);
        unit.delete(records, id)?;
        self.sync(&mut unit, Some(&before), None)?;
        Ok(matches!(unit.commit().await?.first(), Some(Applied::Deleted(true))))
    }

    /// The records of `records` listed under any of `values` in `scope` (across tenants: tenant
    /// by tenant), each once, in tenant then id order; only those that still list the value.
    pub async fn records(&self, records: &Table<D>, scope: Scope<'_>, values: &[&str]) -> Result<Vec<D>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let query = Query::new(Filter::all().one_of("value", values.iter().copied()));
        let mut owners: BTreeMap<TenantId, BTreeSet<String>> = BTreeMap::new();
        for posting in self.list_all(scope, query).await? {
            owners.entry(posting.tenant).or_default().insert(posting.owner);
        }
        let mut found = Vec::new();
        for (tenant, ids) in owners {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            for chunk in ids.chunks(crate::table::MAX_BATCH) {
                let listed = records.get_many(&tenant, chunk).await?;
                found.extend(listed.into_iter().filter(|record| {
                    let current = record.multi_values();
                    values.iter().any(|value| current.contains(*value))
                }));
            }
        }
        Ok(found)
    }
}
