//! Usage events of an organisation (debates run, tokens used, API calls): append-only, with
//! totals by type. The organisation's running counter of debates lives on the organisation
//! ([`crate::OrganizationStore::increment_usage`]); these are the detailed events.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// One usage event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// The organisation.
    pub tenant: TenantId,
    /// A time-ordered UUID (v7) the store assigns.
    pub id: String,
    /// What was used: `debate`, `api_call`, `tokens`, ... (a-z, 0-9, `_`, `-`, `.`).
    pub event_type: String,
    /// How much.
    pub count: u64,
    /// Anything else, stored as given.
    pub metadata: Map<String, Value>,
    /// When it happened (the store's clock).
    pub at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When recorded.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When recorded.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

/// Checks an event type or action name: 1 to 128 of `a-z`, `0-9`, `_`, `-`, `.`, `:`.
pub(crate) fn validate_kind(field: &str, kind: &str) -> Result<()> {
    let ok = !kind.is_empty()
        && kind.len() <= 128
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::invalid(field, format!("`{}` must be 1 to 128 of a-z, 0-9, `_`, `-`, `.`, `:`", kind.escape_debug())))
    }
}

impl Document for UsageEvent {
    const TABLE: TableDef = TableDef {
        name: "usage_events",
        entity: "usage event",
        id_field: "event_id",
        indexes: &[IndexSpec::text("event_type"), IndexSpec::time("at")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.event_type)), Some(IndexValue::Time(self.at))]
    }
    fn validate(&self) -> Result<()> {
        validate_kind("event_type", &self.event_type)?;
        crate::limits::check_int("count", i64::try_from(self.count).unwrap_or(i64::MAX))
    }
}

/// Usage events.
#[async_trait]
pub trait UsageStore: Send + Sync + fmt::Debug {
    /// Records `count` of `event_type` now.
    async fn record_usage_event(&self, tenant: &TenantId, event_type: &str, count: u64, metadata: Map<String, Value>)
    -> Result<UsageEvent>;
    /// One page of the organisation's events, of one type or all, since an instant or ever,
    /// newest first.
    async fn get_events(
        &self,
        tenant: &TenantId,
        event_type: Option<&str>,
        since: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<UsageEvent>>;
    /// The totals by type since an instant or ever (reads every such event).
    async fn get_totals_by_type(&self, tenant: &TenantId, since: Option<DateTime<Utc>>) -> Result<BTreeMap<String, u64>>;
}

/// [`UsageStore`] on any backend.
pub struct Usage<B: ?Sized = dyn Engine> {
    events: Table<UsageEvent>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Usage { events });

fn since_filter(since: Option<DateTime<Utc>>) -> Filter {
    match since {
        Some(since) => Filter::all().ge("at", since),
        None => Filter::all(),
    }
}

#[async_trait]
impl<B: ?Sized> UsageStore for Usage<B> {
    async fn record_usage_event(
        &self,
        tenant: &TenantId,
        event_type: &str,
        count: u64,
        metadata: Map<String, Value>,
    ) -> Result<UsageEvent> {
        let now = self.events.now();
        let event = UsageEvent {
            tenant: tenant.clone(),
            id: uuid::Uuid::now_v7().to_string(),
            event_type: event_type.to_owned(),
            count,
            metadata,
            at: now,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        self.events.insert(&event).await
    }

    async fn get_events(
        &self,
        tenant: &TenantId,
        event_type: Option<&str>,
        since: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<UsageEvent>> {
        let mut filter = since_filter(since);
        if let Some(kind) = event_type {
            validate_kind("event_type", kind)?;
            filter = filter.eq("event_type", kind);
        }
        self.events.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("at")), page).await
    }

    async fn get_totals_by_type(&self, tenant: &TenantId, since: Option<DateTime<Utc>>) -> Result<BTreeMap<String, u64>> {
        let events = self.events.list_all(Scope::Tenant(tenant), Query::new(since_filter(since))).await?;
        let mut totals = BTreeMap::new();
        for event in events {
            let total: &mut u64 = totals.entry(event.event_type).or_default();
            *total = total.saturating_add(event.count);
        }
        Ok(totals)
    }
}
