//! Channel subscriptions: which chat channels, mailboxes or endpoints of an organisation receive
//! which events. One subscription per channel in an organisation (a deactivated one gives its
//! place to a new one); its `config` (webhook headers, tokens) is sealed; an event finds its
//! subscriptions through a multi-valued index.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value};
use crate::engine::Engine;
use crate::multi::{MultiValued, Posting, postings_table};
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::joined_id;
use crate::stores::webhook_config::{ALL_EVENTS, MAX_EVENTS, check_event};
use crate::table::{Table, retry_contended};
use crate::{Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

/// The kind of channel a subscription delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    /// A Slack channel.
    Slack,
    /// A Microsoft Teams channel.
    Teams,
    /// A Discord channel.
    Discord,
    /// A Telegram chat.
    Telegram,
    /// An email address.
    Email,
    /// An HTTP endpoint.
    Webhook,
}

impl ChannelType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Teams => "teams",
            Self::Discord => "discord",
            Self::Telegram => "telegram",
            Self::Email => "email",
            Self::Webhook => "webhook",
        }
    }
}

/// One channel's subscription to events of its organisation (the tenant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSubscription {
    /// The organisation.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The kind of channel.
    pub channel_type: ChannelType,
    /// The channel's id on its platform.
    pub channel_id: String,
    /// The platform workspace the channel belongs to.
    pub workspace_id: Option<String>,
    /// The channel's display name.
    pub channel_name: Option<String>,
    /// The event types delivered ([`ALL_EVENTS`] for every event).
    pub event_types: BTreeSet<String>,
    /// Who subscribed it.
    pub created_by: Option<String>,
    /// Whether deliveries are sent.
    pub is_active: bool,
    /// Delivery settings, which may hold credentials (headers, tokens); sealed.
    #[serde(skip)]
    pub config: BTreeMap<String, String>,
    /// When it was subscribed.
    pub subscribed_at: DateTime<Utc>,
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

/// The id of a channel's subscription: its type and channel id.
pub fn subscription_id(channel_type: ChannelType, channel_id: &str) -> String {
    joined_id(channel_type.as_str(), channel_id)
}

impl ChannelSubscription {
    /// Its id.
    pub fn subscription_id(&self) -> String {
        subscription_id(self.channel_type, &self.channel_id)
    }

    /// Whether it receives `event` (it is active and subscribes to it or to every event).
    pub fn matches_event(&self, event: &str) -> bool {
        self.is_active && (self.event_types.contains(event) || self.event_types.contains(ALL_EVENTS))
    }
}

impl Document for ChannelSubscription {
    const TABLE: TableDef = TableDef {
        name: "channel_subscriptions",
        entity: "channel subscription",
        id_field: "subscription_id",
        indexes: &[IndexSpec::text("channel_type"), IndexSpec::bool("is_active"), IndexSpec::time("subscribed_at")],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.subscription_id()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![Some(Value::from(self.channel_type.as_str())), Some(Value::Bool(self.is_active)), Some(Value::Time(self.subscribed_at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("channel_id", &self.channel_id)?;
        for (field, id) in [("workspace_id", &self.workspace_id), ("created_by", &self.created_by)] {
            if let Some(id) = id {
                validate_id(field, id)?;
            }
        }
        if let Some(name) = &self.channel_name {
            crate::limits::check_text("channel_name", name)?;
        }
        if self.event_types.is_empty() || self.event_types.len() > MAX_EVENTS {
            return Err(StorageError::invalid(
                "event_types",
                format!("{} event types; 1 to {MAX_EVENTS} are allowed", self.event_types.len()),
            ));
        }
        self.event_types.iter().try_for_each(|event| check_event("event_types", event))?;
        for (key, value) in &self.config {
            crate::limits::check_text("config", key)?;
            crate::limits::check_text("config", value)?;
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        let config = serde_json::to_string(&self.config).unwrap_or_default();
        [("config".to_owned(), Secret::from(config))].into_iter().collect()
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        let sealed = secrets.remove("config").unwrap_or_default();
        self.config = serde_json::from_str(sealed.expose())
            .map_err(|e| StorageError::invalid("config", format!("the sealed config of `{}` is not a map: {e}", self.channel_id)))?;
        Ok(())
    }
}

impl MultiValued for ChannelSubscription {
    const POSTINGS: TableDef = postings_table("channel_subscription_events", "channel event posting");

    fn multi_values(&self) -> BTreeSet<String> {
        self.event_types.clone()
    }
}

/// A subscription to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// The kind of channel.
    pub channel_type: ChannelType,
    /// The channel's id.
    pub channel_id: String,
    /// Its workspace.
    pub workspace_id: Option<String>,
    /// Its display name.
    pub channel_name: Option<String>,
    /// The event types.
    pub event_types: BTreeSet<String>,
    /// Who subscribes it.
    pub created_by: Option<String>,
    /// Delivery settings (sealed).
    pub config: BTreeMap<String, String>,
}

/// What [`ChannelSubscriptionStore::update`] changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionChanges {
    /// New event types.
    pub event_types: Option<BTreeSet<String>>,
    /// Turns deliveries on or off.
    pub is_active: Option<bool>,
    /// A new display name.
    pub channel_name: Option<String>,
    /// New delivery settings.
    pub config: Option<BTreeMap<String, String>>,
}

/// Channel subscriptions.
#[async_trait]
pub trait ChannelSubscriptionStore: Send + Sync + fmt::Debug {
    /// Subscribes a channel, active; `Conflict` if the organisation has an active subscription
    /// of this channel (a deactivated one is replaced).
    async fn create(&self, tenant: &TenantId, subscription: NewSubscription) -> Result<ChannelSubscription>;
    /// A subscription of the organisation.
    async fn get(&self, tenant: &TenantId, channel_type: ChannelType, channel_id: &str) -> Result<Option<ChannelSubscription>>;
    /// The organisation's subscriptions, oldest first: of one channel type, receiving one event
    /// type, active only, as asked.
    async fn get_by_org(
        &self,
        tenant: &TenantId,
        channel_type: Option<ChannelType>,
        event_type: Option<&str>,
        active_only: bool,
    ) -> Result<Vec<ChannelSubscription>>;
    /// The organisation's active subscriptions that receive `event`.
    async fn get_for_event(&self, tenant: &TenantId, event: &str) -> Result<Vec<ChannelSubscription>>;
    /// Changes a subscription.
    async fn update(
        &self,
        tenant: &TenantId,
        channel_type: ChannelType,
        channel_id: &str,
        changes: SubscriptionChanges,
    ) -> Result<ChannelSubscription>;
    /// Deactivates a subscription; whether it was active.
    async fn deactivate(&self, tenant: &TenantId, channel_type: ChannelType, channel_id: &str) -> Result<bool>;
    /// Deletes a subscription; whether it existed.
    async fn delete(&self, tenant: &TenantId, channel_type: ChannelType, channel_id: &str) -> Result<bool>;
    /// How many subscriptions the organisation has (active ones only, if asked).
    async fn count_by_org(&self, tenant: &TenantId, active_only: bool) -> Result<u64>;
    /// Deletes every subscription of the organisation; how many.
    async fn clear(&self, tenant: &TenantId) -> Result<u64>;
}

/// [`ChannelSubscriptionStore`] on any backend.
pub struct ChannelSubscriptions<B: ?Sized = dyn Engine> {
    subscriptions: Table<ChannelSubscription>,
    events: Table<Posting<ChannelSubscription>>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(ChannelSubscriptions { subscriptions, events });

fn checked_id(channel_type: ChannelType, channel_id: &str) -> Result<String> {
    validate_id("channel_id", channel_id)?;
    Ok(subscription_id(channel_type, channel_id))
}

#[async_trait]
impl<B: ?Sized> ChannelSubscriptionStore for ChannelSubscriptions<B> {
    async fn create(&self, tenant: &TenantId, new: NewSubscription) -> Result<ChannelSubscription> {
        let now = self.subscriptions.now();
        let fresh = ChannelSubscription {
            tenant: tenant.clone(),
            channel_type: new.channel_type,
            channel_id: new.channel_id,
            workspace_id: new.workspace_id,
            channel_name: new.channel_name,
            event_types: new.event_types,
            created_by: new.created_by,
            is_active: true,
            config: new.config,
            subscribed_at: now,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        fresh.validate()?;
        let id = fresh.subscription_id();
        retry_contended(|| async {
            let Some(held) = self.subscriptions.get(tenant, &id).await? else {
                return self.events.insert_record(&self.subscriptions, &fresh).await.map_err(|e| match e {
                    // Subscribed meanwhile: look again (it may be inactive).
                    StorageError::Conflict { entity, id, .. } => StorageError::VersionMismatch { entity, id, expected: 0, actual: 1 },
                    other => other,
                });
            };
            if held.is_active {
                return Err(StorageError::conflict(ChannelSubscription::TABLE.entity, &id, "the channel is subscribed already"));
            }
            let mut unit = self.subscriptions.unit(tenant);
            let replacement = ChannelSubscription { version: held.version, ..fresh.clone() };
            unit.update(&self.subscriptions, &replacement)?;
            self.events.sync(&mut unit, Some(&held), Some(&replacement))?;
            let applied = unit.commit().await?;
            let mut created = replacement;
            if let Some(crate::Applied::Written(meta)) = applied.first() {
                created.set_meta(*meta);
            }
            Ok(created)
        })
        .await
    }

    async fn get(&self, tenant: &TenantId, channel_type: ChannelType, channel_id: &str) -> Result<Option<ChannelSubscription>> {
        self.subscriptions.get(tenant, &checked_id(channel_type, channel_id)?).await
    }

    async fn get_by_org(
        &self,
        tenant: &TenantId,
        channel_type: Option<ChannelType>,
        event_type: Option<&str>,
        active_only: bool,
    ) -> Result<Vec<ChannelSubscription>> {
        match event_type {
            Some(event) => {
                check_event("event_type", event)?;
                let mut found = self.events.records(&self.subscriptions, Scope::Tenant(tenant), &[event, ALL_EVENTS]).await?;
                found.retain(|s| channel_type.is_none_or(|t| s.channel_type == t) && (!active_only || s.is_active));
                found.sort_by_key(|s| (s.subscribed_at, s.subscription_id()));
                Ok(found)
            }
            None => {
                let mut filter = Filter::all();
                if let Some(channel_type) = channel_type {
                    filter = filter.eq("channel_type", channel_type.as_str());
                }
                if active_only {
                    filter = filter.eq("is_active", true);
                }
                self.subscriptions.list_all(Scope::Tenant(tenant), Query::new(filter).order(Order::asc("subscribed_at"))).await
            }
        }
    }

    async fn get_for_event(&self, tenant: &TenantId, event: &str) -> Result<Vec<ChannelSubscription>> {
        self.get_by_org(tenant, None, Some(event), true).await
    }

    async fn update(
        &self,
        tenant: &TenantId,
        channel_type: ChannelType,
        channel_id: &str,
        changes: SubscriptionChanges,
    ) -> Result<ChannelSubscription> {
        let id = checked_id(channel_type, channel_id)?;
        self.events
            .patch_record(&self.subscriptions, tenant, &id, |subscription| {
                let changes = changes.clone();
                if let Some(event_types) = changes.event_types {
                    subscription.event_types = event_types;
                }
                if let Some(is_active) = changes.is_active {
                    subscription.is_active = is_active;
                }
                if let Some(name) = changes.channel_name {
                    subscription.channel_name = Some(name);
                }
                if let Some(config) = changes.config {
                    subscription.config = config;
                }
                Ok(())
            })
            .await
    }

    async fn deactivate(&self, tenant: &TenantId, channel_type: ChannelType, channel_id: &str) -> Result<bool> {
        let id = checked_id(channel_type, channel_id)?;
        let mut was_active = false;
        let outcome = self
            .subscriptions
            .patch(tenant, &id, |subscription| {
                if !subscription.is_active {
                    return Err(StorageError::conflict(ChannelSubscription::TABLE.entity, &id, "inactive already"));
                }
                subscription.is_active = false;
                Ok(())
            })
            .await;
        match outcome {
            Ok(_) => was_active = true,
            Err(StorageError::NotFound { .. } | StorageError::Conflict { .. }) => {}
            Err(other) => return Err(other),
        }
        Ok(was_active)
    }

    async fn delete(&self, tenant: &TenantId, channel_type: ChannelType, channel_id: &str) -> Result<bool> {
        self.events.delete_record(&self.subscriptions, tenant, &checked_id(channel_type, channel_id)?).await
    }

    async fn count_by_org(&self, tenant: &TenantId, active_only: bool) -> Result<u64> {
        let filter = if active_only { Filter::all().eq("is_active", true) } else { Filter::all() };
        self.subscriptions.count(Scope::Tenant(tenant), filter).await
    }

    async fn clear(&self, tenant: &TenantId) -> Result<u64> {
        // One by one, each with its postings: a sweep of the postings could take those of a
        // subscription created meanwhile.
        let mut cleared = 0_u64;
        for subscription in self.subscriptions.list_all(Scope::Tenant(tenant), Query::new(Filter::all())).await? {
            if self.events.delete_record(&self.subscriptions, tenant, &subscription.subscription_id()).await? {
                cleared = cleared.saturating_add(1);
            }
        }
        Ok(cleared)
    }
}
