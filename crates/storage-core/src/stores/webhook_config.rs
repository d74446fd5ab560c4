//! Outbound webhooks (the seed's webhook config store and webhook registry, merged): where to
//! send which events, with a sealed signing secret that rotates with an overlap window and
//! delivery counters that never lose a delivery. An event finds its webhooks through a
//! multi-valued index, in one tenant or across tenants, without scanning any other webhook.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value};
use crate::engine::Engine;
use crate::multi::{MultiValued, Posting, postings_table};
use crate::query::{Filter, Order, Query, Scope};
use crate::table::Table;
use crate::{Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

/// The event name that subscribes a webhook to every event.
pub const ALL_EVENTS: &str = "*";
/// The most events one webhook subscribes to.
pub const MAX_EVENTS: usize = 64;
/// The longest URL.
pub const MAX_URL_BYTES: usize = 2_048;
/// The longest overlap during which a rotated-out secret still signs-verifies.
pub const MAX_SECRET_OVERLAP: TimeDelta = TimeDelta::days(30);

/// One outbound webhook of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// The tenant (the seed's workspace).
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// Its id (`wh_` and a UUID), made by [`WebhookConfigStore::register`].
    pub id: String,
    /// Where deliveries are POSTed: an `http` or `https` URL.
    pub url: String,
    /// The event types it receives; [`ALL_EVENTS`] receives every event.
    pub events: BTreeSet<String>,
    /// The current signing secret (`whsec_` and 43 random characters); sealed. Empty in lists.
    #[serde(skip)]
    pub secret: Secret<String>,
    /// The secret it replaced, still valid until [`WebhookConfig::previous_secret_expires_at`];
    /// sealed. Empty when there is none, and in lists.
    #[serde(skip)]
    pub previous_secret: Secret<String>,
    /// Until when the previous secret stays valid.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Whether deliveries are sent; an inactive webhook is found by no event.
    pub active: bool,
    /// A name.
    pub name: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// The user who registered it.
    pub user_id: Option<String>,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
    /// When the last delivery was attempted.
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last delivery.
    pub last_delivery_status: Option<u16>,
    /// Deliveries attempted.
    pub delivery_count: u64,
    /// Deliveries that failed.
    pub failure_count: u64,
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

impl WebhookConfig {
    /// Whether it receives `event` (it is active and subscribes to it or to every event).
    pub fn matches_event(&self, event: &str) -> bool {
        self.active && (self.events.contains(event) || self.events.contains(ALL_EVENTS))
    }

    /// The secrets a receiver may verify a delivery signed at `now` with: the current one, and
    /// the previous one while its overlap lasts. Deliveries are signed with the first.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&Secret<String>> {
        let previous = self.previous_secret_expires_at.is_some_and(|until| now < until) && !self.previous_secret.expose().is_empty();
        std::iter::once(&self.secret).chain(previous.then_some(&self.previous_secret)).collect()
    }

    fn without_secrets(mut self) -> Self {
        self.secret = Secret::default();
        self.previous_secret = Secret::default();
        self
    }
}

/// Checks `field`: an http or https URL with a host, without spaces, of bounded length.
pub(crate) fn check_url(field: &str, url: &str) -> Result<()> {
    crate::limits::check_text(field, url)?;
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let host = rest.and_then(|rest| rest.split(['/', '?', '#']).next()).unwrap_or_default();
    if host.is_empty() || url.len() > MAX_URL_BYTES || url.chars().any(char::is_whitespace) {
        return Err(StorageError::invalid(
            field,
            format!("`{}` must be an http or https URL with a host, without spaces, of at most {MAX_URL_BYTES} bytes", url.escape_debug()),
        ));
    }
    Ok(())
}

/// Checks an event name, `field`: [`ALL_EVENTS`], or 1 to 128 of `a-z A-Z 0-9 _ . : -`.
pub fn check_event(field: &str, event: &str) -> Result<()> {
    let named = (1..=128).contains(&event.len()) && event.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if event == ALL_EVENTS || named {
        return Ok(());
    }
    Err(StorageError::invalid(field, format!("`{}` is not an event name (1 to 128 of a-z, 0-9, `_.:-`, or `*`)", event.escape_debug())))
}

fn check_events(events: &BTreeSet<String>) -> Result<()> {
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(StorageError::invalid("events", format!("{} events; 1 to {MAX_EVENTS} are allowed", events.len())));
    }
    events.iter().try_for_each(|event| check_event("events", event))
}

fn check_optional_text(field: &str, text: Option<&String>, max: usize) -> Result<()> {
    let Some(text) = text else { return Ok(()) };
    crate::limits::check_text(field, text)?;
    if text.len() > max {
        return Err(StorageError::invalid(field, format!("{} bytes; at most {max}", text.len())));
    }
    Ok(())
}

impl Document for WebhookConfig {
    const TABLE: TableDef = TableDef {
        name: "webhook_configs",
        entity: "webhook config",
        id_field: "webhook_id",
        indexes: &[IndexSpec::text("user_id"), IndexSpec::bool("active"), IndexSpec::time("registered_at")],
        expires: false,
        sealed: true,
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
        vec![self.user_id.as_ref().map(Value::from), Some(Value::Bool(self.active)), Some(Value::Time(self.registered_at))]
    }
    fn validate(&self) -> Result<()> {
        check_url("url", &self.url)?;
        check_events(&self.events)?;
        check_optional_text("name", self.name.as_ref(), 256)?;
        check_optional_text("description", self.description.as_ref(), 4_096)?;
        if let Some(user_id) = &self.user_id {
            validate_id("user_id", user_id)?;
        }
        if self.secret.expose().is_empty() {
            return Err(StorageError::invalid("secret", "must not be empty"));
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        let mut secrets: Secrets = [("secret".to_owned(), self.secret.clone())].into_iter().collect();
        if !self.previous_secret.expose().is_empty() {
            secrets.insert("previous_secret".to_owned(), self.previous_secret.clone());
        }
        secrets
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.secret = secrets.remove("secret").unwrap_or_default();
        self.previous_secret = secrets.remove("previous_secret").unwrap_or_default();
        Ok(())
    }
}

impl MultiValued for WebhookConfig {
    const POSTINGS: TableDef = postings_table("webhook_config_events", "webhook event posting");

    fn multi_values(&self) -> BTreeSet<String> {
        if self.active { self.events.clone() } else { BTreeSet::new() }
    }
}

/// A webhook to register.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookRegistration {
    /// Where to deliver.
    pub url: String,
    /// Which events.
    pub events: BTreeSet<String>,
    /// A name.
    pub name: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// The registering user.
    pub user_id: Option<String>,
}

/// What [`WebhookConfigStore::update`] changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChanges {
    /// A new URL.
    pub url: Option<String>,
    /// New events (replacing the old ones).
    pub events: Option<BTreeSet<String>>,
    /// Turns deliveries on or off.
    pub active: Option<bool>,
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
}

/// Outbound webhook configurations.
#[async_trait]
pub trait WebhookConfigStore: Send + Sync + fmt::Debug {
    /// Registers a webhook, active, with a new signing secret: the returned record is the only
    /// one a list will show it in (lists carry no secrets; [`WebhookConfigStore::get`] does,
    /// for the deliverer).
    async fn register(&self, tenant: &TenantId, registration: WebhookRegistration) -> Result<WebhookConfig>;
    /// A webhook, with its secrets.
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<WebhookConfig>>;
    /// The tenant's webhooks (of one user, if given; active ones only, if asked), newest first,
    /// without secrets.
    async fn list(&self, tenant: &TenantId, user_id: Option<&str>, active_only: bool) -> Result<Vec<WebhookConfig>>;
    /// Changes a webhook.
    async fn update(&self, tenant: &TenantId, id: &str, changes: WebhookChanges) -> Result<WebhookConfig>;
    /// Deletes a webhook; whether it existed.
    async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool>;
    /// Records one delivery attempt: its status and whether it succeeded. Concurrent calls are
    /// all counted.
    async fn record_delivery(&self, tenant: &TenantId, id: &str, status_code: u16, success: bool) -> Result<WebhookConfig>;
    /// The active webhooks that receive `event` (named, or subscribed to every event), with
    /// their secrets: in one tenant, or across tenants (tenant by tenant) for a dispatcher.
    async fn get_for_event(&self, scope: Scope<'_>, event: &str) -> Result<Vec<WebhookConfig>>;
    /// Gives a webhook a new signing secret; the old one stays valid for `overlap` (up to
    /// [`MAX_SECRET_OVERLAP`]), so receivers can move to the new one without dropping a delivery.
    async fn rotate_secret(&self, tenant: &TenantId, id: &str, overlap: TimeDelta) -> Result<WebhookConfig>;
}

/// [`WebhookConfigStore`] on any backend.
pub struct WebhookConfigs<B: ?Sized = dyn Engine> {
    configs: Table<WebhookConfig>,
    events: Table<Posting<WebhookConfig>>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(WebhookConfigs { configs, events });

fn new_secret() -> Result<Secret<String>> {
    Ok(Secret::from(format!("whsec_{}", crate::token::generate_token()?)))
}

#[async_trait]
impl<B: ?Sized> WebhookConfigStore for WebhookConfigs<B> {
    async fn register(&self, tenant: &TenantId, registration: WebhookRegistration) -> Result<WebhookConfig> {
        let now = self.configs.now();
        let config = WebhookConfig {
            tenant: tenant.clone(),
            id: format!("wh_{}", uuid::Uuid::new_v4().simple()),
            url: registration.url,
            events: registration.events,
            secret: new_secret()?,
            previous_secret: Secret::default(),
            previous_secret_expires_at: None,
            active: true,
            name: registration.name,
            description: registration.description,
            user_id: registration.user_id,
            registered_at: now,
            last_delivery_at: None,
            last_delivery_status: None,
            delivery_count: 0,
            failure_count: 0,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        self.events.insert_record(&self.configs, &config).await
    }

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<WebhookConfig>> {
        self.configs.get(tenant, id).await
    }

    async fn list(&self, tenant: &TenantId, user_id: Option<&str>, active_only: bool) -> Result<Vec<WebhookConfig>> {
        let mut filter = Filter::all();
        if let Some(user_id) = user_id {
            validate_id("user_id", user_id)?;
            filter = filter.eq("user_id", user_id);
        }
        if active_only {
            filter = filter.eq("active", true);
        }
        let query = Query::new(filter).order(Order::desc("registered_at"));
        Ok(self.configs.list_all(Scope::Tenant(tenant), query).await?.into_iter().map(WebhookConfig::without_secrets).collect())
    }

    async fn update(&self, tenant: &TenantId, id: &str, changes: WebhookChanges) -> Result<WebhookConfig> {
        self.events
            .patch_record(&self.configs, tenant, id, |config| {
                let changes = changes.clone();
                if let Some(url) = changes.url {
                    config.url = url;
                }
                if let Some(events) = changes.events {
                    config.events = events;
                }
                if let Some(active) = changes.active {
                    config.active = active;
                }
                if let Some(name) = changes.name {
                    config.name = Some(name);
                }
                if let Some(description) = changes.description {
                    config.description = Some(description);
                }
                Ok(())
            })
            .await
    }

    async fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        self.events.delete_record(&self.configs, tenant, id).await
    }

    async fn record_delivery(&self, tenant: &TenantId, id: &str, status_code: u16, success: bool) -> Result<WebhookConfig> {
        let now = self.configs.now();
        self.configs
            .patch(tenant, id, |config| {
                config.last_delivery_at = Some(now);
                config.last_delivery_status = Some(status_code);
                config.delivery_count = config.delivery_count.saturating_add(1);
                if !success {
                    config.failure_count = config.failure_count.saturating_add(1);
                }
                Ok(())
            })
            .await
    }

    async fn get_for_event(&self, scope: Scope<'_>, event: &str) -> Result<Vec<WebhookConfig>> {
        check_event("event", event)?;
        let values: &[&str] = if event == ALL_EVENTS { &[ALL_EVENTS] } else { &[event, ALL_EVENTS] };
        self.events.records(&self.configs, scope, values).await
    }

    async fn rotate_secret(&self, tenant: &TenantId, id: &str, overlap: TimeDelta) -> Result<WebhookConfig> {
        if overlap < TimeDelta::zero() || overlap > MAX_SECRET_OVERLAP {
            return Err(StorageError::invalid("overlap", format!("{overlap}; 0 to {} days are allowed", MAX_SECRET_OVERLAP.num_days())));
        }
        let now = self.configs.now();
        let until = crate::limits::add("overlap", now, overlap)?;
        let secret = new_secret()?;
        self.configs
            .patch(tenant, id, |config| {
                config.previous_secret = std::mem::replace(&mut config.secret, secret.clone());
                config.previous_secret_expires_at = (overlap > TimeDelta::zero()).then_some(until);
                if overlap == TimeDelta::zero() {
                    config.previous_secret = Secret::default();
                }
                Ok(())
            })
            .await
    }
}
