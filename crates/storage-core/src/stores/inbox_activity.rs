//! Inbox activity: the append-only log of what happened in an organisation's shared inboxes
//! (assignments, status changes, notes, SLA breaches), newest first in stable pages, every
//! query scoped to the organisation, and a retention sweep.

use crate::document::{Document, IndexSpec, TableDef, Value};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// The seed's default retention (`ARAGORA_INBOX_ACTIVITY_RETENTION_DAYS`).
pub const DEFAULT_ACTIVITY_RETENTION: TimeDelta = TimeDelta::days(90);

/// One thing that happened in a shared inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxActivity {
    /// The organisation.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// Its id (a time-ordered UUID).
    pub id: String,
    /// The inbox.
    pub inbox_id: String,
    /// Who did it.
    pub actor_id: String,
    /// What (`assigned`, `status_changed`, `note_added`, `sla_breached`, ...).
    pub action: String,
    /// What it was done to (a message), if anything.
    pub target_id: Option<String>,
    /// Details.
    pub metadata: BTreeMap<String, String>,
    /// When.
    pub at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first stored.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last stored.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for InboxActivity {
    const TABLE: TableDef = TableDef {
        name: "inbox_activities",
        entity: "inbox activity",
        id_field: "activity_id",
        indexes: &[
            IndexSpec::text("inbox_id"),
            IndexSpec::text("actor_id"),
            IndexSpec::text("action"),
            IndexSpec::text("target_id"),
            IndexSpec::time("at"),
        ],
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
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![
            Some(Value::from(&self.inbox_id)),
            Some(Value::from(&self.actor_id)),
            Some(Value::from(&self.action)),
            self.target_id.as_ref().map(Value::from),
            Some(Value::Time(self.at)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("inbox_id", &self.inbox_id)?;
        validate_id("actor_id", &self.actor_id)?;
        validate_id("action", &self.action)?;
        if let Some(target) = &self.target_id {
            validate_id("target_id", target)?;
        }
        for (key, value) in &self.metadata {
            crate::limits::check_text("metadata", key)?;
            crate::limits::check_text("metadata", value)?;
        }
        Ok(())
    }
}

/// An activity to log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewActivity {
    /// The inbox.
    pub inbox_id: String,
    /// Who.
    pub actor_id: String,
    /// What.
    pub action: String,
    /// To what.
    pub target_id: Option<String>,
    /// Details.
    pub metadata: BTreeMap<String, String>,
}

/// The inbox activity log.
#[async_trait]
pub trait InboxActivityStore: Send + Sync + fmt::Debug {
    /// Appends an activity, now.
    async fn log_activity(&self, tenant: &TenantId, activity: NewActivity) -> Result<InboxActivity>;
    /// One activity.
    async fn get_activity(&self, tenant: &TenantId, id: &str) -> Result<Option<InboxActivity>>;
    /// An inbox's activities (of one action, after an instant, as asked), newest first.
    async fn get_activities(
        &self,
        tenant: &TenantId,
        inbox_id: &str,
        action: Option<&str>,
        after: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<InboxActivity>>;
    /// What happened to one message, newest first.
    async fn get_message_history(&self, tenant: &TenantId, message_id: &str, page: &PageRequest) -> Result<Page<InboxActivity>>;
    /// The organisation's activities (after an instant, if given), newest first.
    async fn get_org_activities(&self, tenant: &TenantId, after: Option<DateTime<Utc>>, page: &PageRequest) -> Result<Page<InboxActivity>>;
    /// One actor's activities in the organisation, newest first.
    async fn get_actor_activities(&self, tenant: &TenantId, actor_id: &str, page: &PageRequest) -> Result<Page<InboxActivity>>;
    /// How many activities the organisation has (of an inbox, of an action, as asked).
    async fn count_activities(&self, tenant: &TenantId, inbox_id: Option<&str>, action: Option<&str>) -> Result<u64>;
    /// Deletes every organisation's activities older than `retention`; how many.
    async fn cleanup_expired(&self, retention: TimeDelta) -> Result<u64>;
}

/// [`InboxActivityStore`] on any backend.
pub struct InboxActivities<B: ?Sized = dyn Engine> {
    activities: Table<InboxActivity>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(InboxActivities { activities });

impl<B: ?Sized> InboxActivities<B> {
    async fn newest_first(&self, tenant: &TenantId, filter: Filter, page: &PageRequest) -> Result<Page<InboxActivity>> {
        self.activities.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("at")), page).await
    }
}

fn checked(field: &'static str, value: &str) -> Result<String> {
    validate_id(field, value)?;
    Ok(value.to_owned())
}

#[async_trait]
impl<B: ?Sized> InboxActivityStore for InboxActivities<B> {
    async fn log_activity(&self, tenant: &TenantId, activity: NewActivity) -> Result<InboxActivity> {
        let now = self.activities.now();
        let record = InboxActivity {
            tenant: tenant.clone(),
            id: uuid::Uuid::now_v7().to_string(),
            inbox_id: activity.inbox_id,
            actor_id: activity.actor_id,
            action: activity.action,
            target_id: activity.target_id,
            metadata: activity.metadata,
            at: now,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        self.activities.insert(&record).await
    }

    async fn get_activity(&self, tenant: &TenantId, id: &str) -> Result<Option<InboxActivity>> {
        self.activities.get(tenant, id).await
    }

    async fn get_activities(
        &self,
        tenant: &TenantId,
        inbox_id: &str,
        action: Option<&str>,
        after: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<InboxActivity>> {
        let mut filter = Filter::all().eq("inbox_id", checked("inbox_id", inbox_id)?);
        if let Some(action) = action {
            filter = filter.eq("action", checked("action", action)?);
        }
        if let Some(after) = after {
            filter = filter.gt("at", after);
        }
        self.newest_first(tenant, filter, page).await
    }

    async fn get_message_history(&self, tenant: &TenantId, message_id: &str, page: &PageRequest) -> Result<Page<InboxActivity>> {
        self.newest_first(tenant, Filter::all().eq("target_id", checked("message_id", message_id)?), page).await
    }

    async fn get_org_activities(&self, tenant: &TenantId, after: Option<DateTime<Utc>>, page: &PageRequest) -> Result<Page<InboxActivity>> {
        let filter = after.map_or_else(Filter::all, |after| Filter::all().gt("at", after));
        self.newest_first(tenant, filter, page).await
    }

    async fn get_actor_activities(&self, tenant: &TenantId, actor_id: &str, page: &PageRequest) -> Result<Page<InboxActivity>> {
        self.newest_first(tenant, Filter::all().eq("actor_id", checked("actor_id", actor_id)?), page).await
    }

    async fn count_activities(&self, tenant: &TenantId, inbox_id: Option<&str>, action: Option<&str>) -> Result<u64> {
        let mut filter = Filter::all();
        if let Some(inbox_id) = inbox_id {
            filter = filter.eq("inbox_id", checked("inbox_id", inbox_id)?);
        }
        if let Some(action) = action {
            filter = filter.eq("action", checked("action", action)?);
        }
        self.activities.count(Scope::Tenant(tenant), filter).await
    }

    async fn cleanup_expired(&self, retention: TimeDelta) -> Result<u64> {
        if retention <= TimeDelta::zero() {
            return Err(StorageError::invalid("retention", format!("{retention}; it must be positive")));
        }
        let cutoff = crate::limits::sub("retention", self.activities.now(), retention)?;
        self.activities.delete_where(Scope::AllTenants, Filter::all().lt("at", cutoff)).await
    }
}
