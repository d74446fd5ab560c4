//! Integration configurations (Slack, Discord, Teams, email, ...) and the cross-platform identity
//! map.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Query, Scope};
use crate::table::{Table, int_value};
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// Setting names that hold secrets. They belong in [`IntegrationConfig::credentials`], which is
/// sealed; putting them in the plain `settings` is refused.
pub const SENSITIVE_SETTING_KEYS: [&str; 12] = [
    "access_token",
    "refresh_token",
    "api_key",
    "bot_token",
    "webhook_url",
    "secret",
    "password",
    "auth_token",
    "sendgrid_api_key",
    "ses_secret_access_key",
    "twilio_auth_token",
    "smtp_password",
];

/// An integration's configuration, stored under a key chosen by the application
/// (e.g. `workspace-123`) within a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationConfig {
    /// The owning tenant.
    pub tenant: TenantId,
    /// The integration key, unique within the tenant.
    pub key: String,
    /// The kind: `slack`, `discord`, `teams`, `email`, ... (lowercase letters, digits, `_`, `-`).
    pub integration_type: String,
    /// The user who owns the integration (`default` when none).
    pub user_id: String,
    /// The workspace, team or guild on the other side.
    pub workspace_id: Option<String>,
    /// Whether notifications are sent.
    pub enabled: bool,
    /// Notify when a debate reaches consensus.
    pub notify_on_consensus: bool,
    /// Notify when a debate ends.
    pub notify_on_debate_end: bool,
    /// Notify on errors.
    pub notify_on_error: bool,
    /// Notify on leaderboard changes.
    pub notify_on_leaderboard: bool,
    /// Non-secret settings, e.g. `{"channel": "#general"}`; stored in clear.
    pub settings: Map<String, Value>,
    /// Secrets (tokens, passwords, webhook URLs), sealed before they reach any backend.
    #[serde(skip)]
    pub credentials: BTreeMap<String, Secret<String>>,
    /// Messages sent through the integration.
    pub messages_sent: u64,
    /// Errors in the last 24 hours, as recorded by the caller.
    pub errors_24h: u64,
    /// The last successful activity.
    pub last_activity: Option<DateTime<Utc>>,
    /// The last error message.
    pub last_error: Option<String>,
    /// Version; pass the one you read to [`IntegrationStore::update`].
    #[serde(default)]
    pub version: u64,
    /// When first stored; kept by every later write.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last stored.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

/// What the integration's counters say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    /// Disabled.
    Disconnected,
    /// More than five errors in the last 24 hours.
    Degraded,
    /// Has been active.
    Connected,
    /// Enabled but never used.
    NotConfigured,
}

impl IntegrationConfig {
    /// A new, enabled configuration of `integration_type` under `key`, owned by user `default`.
    pub fn new(tenant: TenantId, key: impl Into<String>, integration_type: impl Into<String>) -> Self {
        Self {
            tenant,
            key: key.into(),
            integration_type: integration_type.into(),
            user_id: "default".to_owned(),
            workspace_id: None,
            enabled: true,
            notify_on_consensus: true,
            notify_on_debate_end: true,
            notify_on_error: false,
            notify_on_leaderboard: false,
            settings: Map::new(),
            credentials: BTreeMap::new(),
            messages_sent: 0,
            errors_24h: 0,
            last_activity: None,
            last_error: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// Sets the owning user.
    pub fn with_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = user_id.into();
        self
    }

    /// Adds a secret credential.
    pub fn with_credential(mut self, name: impl Into<String>, value: impl Into<Secret<String>>) -> Self {
        self.credentials.insert(name.into(), value.into());
        self
    }

    /// Adds a non-secret setting.
    pub fn with_setting(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.settings.insert(name.into(), value.into());
        self
    }

    /// The derived status.
    pub fn status(&self) -> IntegrationStatus {
        if !self.enabled {
            IntegrationStatus::Disconnected
        } else if self.errors_24h > 5 {
            IntegrationStatus::Degraded
        } else if self.last_activity.is_some() {
            IntegrationStatus::Connected
        } else {
            IntegrationStatus::NotConfigured
        }
    }
}

/// Checks a short name (type, platform): 1 to 64 of `a-z`, `0-9`, `_`, `-`.
fn validate_name(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(StorageError::invalid(field, format!("`{}` must be 1 to 64 of a-z, 0-9, `_`, `-`", value.escape_debug()))) }
}

/// The path of the first secret-looking name in `settings`, at any depth.
fn secret_setting(settings: &Map<String, Value>) -> Option<String> {
    fn walk(value: &Value, path: &str) -> Option<String> {
        match value {
            Value::Object(map) => map.iter().find_map(|(name, inner)| {
                let here = format!("{path}.{name}");
                if SENSITIVE_SETTING_KEYS.iter().any(|s| s.eq_ignore_ascii_case(name)) { Some(here) } else { walk(inner, &here) }
            }),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, inner)| walk(inner, &format!("{path}[{i}]"))),
            _ => None,
        }
    }
    walk(&Value::Object(settings.clone()), "settings")
}

/// A counter column read back into a `u64` field.
fn counter(column: &str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| StorageError::invalid(column, format!("the stored counter {value} is negative")))
}

impl Document for IntegrationConfig {
    const TABLE: TableDef = TableDef {
        name: "integrations",
        entity: "integration",
        id_field: "key",
        indexes: &[
            IndexSpec::text("user_id"),
            IndexSpec::text("integration_type"),
            IndexSpec::counter("messages_sent"),
            IndexSpec::counter("errors_24h"),
        ],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.key.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(&self.user_id)),
            Some(IndexValue::from(&self.integration_type)),
            Some(int_value(self.messages_sent)),
            Some(int_value(self.errors_24h)),
        ]
    }
    fn set_counter(&mut self, column: &str, value: i64) -> Result<()> {
        match column {
            "messages_sent" => self.messages_sent = counter(column, value)?,
            "errors_24h" => self.errors_24h = counter(column, value)?,
            other => return Err(StorageError::invalid("counter", format!("`{other}` is not a counter of integrations"))),
        }
        Ok(())
    }
    fn validate(&self) -> Result<()> {
        validate_id("key", &self.key)?;
        validate_name("integration_type", &self.integration_type)?;
        validate_id("user_id", &self.user_id)?;
        if let Some(workspace) = &self.workspace_id {
            validate_id("workspace_id", workspace)?;
        }
        for name in self.credentials.keys() {
            validate_id("credential name", name)?;
        }
        if let Some(path) = secret_setting(&self.settings) {
            return Err(StorageError::invalid(path, "is a secret; put it in `credentials`, which are encrypted at rest"));
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        self.credentials.clone()
    }
    fn set_secrets(&mut self, secrets: Secrets) -> Result<()> {
        self.credentials = secrets;
        Ok(())
    }
}

/// Who a platform user is: maps a user of Slack, Discord, ... to the application's user id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserIdMapping {
    /// The owning tenant.
    pub tenant: TenantId,
    /// The platform: `slack`, `discord`, `teams`, ...
    pub platform: String,
    /// The user's id on the platform.
    pub platform_user_id: String,
    /// The application's user id.
    pub user_id: String,
    /// The user's email, if known.
    pub email: Option<String>,
    /// The display name on the platform.
    pub display_name: Option<String>,
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

impl UserIdMapping {
    /// Maps `platform_user_id` on `platform` to `user_id`.
    pub fn new(tenant: TenantId, platform: impl Into<String>, platform_user_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Self {
            tenant,
            platform: platform.into(),
            platform_user_id: platform_user_id.into(),
            user_id: user_id.into(),
            email: None,
            display_name: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// The record id: `<platform>:<platform_user_id>` (platforms never contain `:`).
    pub fn mapping_id(platform: &str, platform_user_id: &str) -> String {
        format!("{platform}:{platform_user_id}")
    }
}

impl Document for UserIdMapping {
    const TABLE: TableDef = TableDef {
        name: "user_id_mappings",
        entity: "user id mapping",
        id_field: "platform_user_id",
        indexes: &[IndexSpec::text("platform"), IndexSpec::text("user_id"), IndexSpec::text("email")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        Self::mapping_id(&self.platform, &self.platform_user_id)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(&self.platform)),
            Some(IndexValue::from(&self.user_id)),
            self.email.as_ref().map(|email| IndexValue::Text(email.to_lowercase())),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_name("platform", &self.platform)?;
        validate_id("platform_user_id", &self.platform_user_id)?;
        validate_id("user_id", &self.user_id)?;
        if let Some(email) = &self.email {
            validate_id("email", email)?;
        }
        validate_id("mapping id", &self.id())
    }
}

/// Integration configurations and user id mappings, per tenant.
#[async_trait]
pub trait IntegrationStore: Send + Sync + fmt::Debug {
    /// The configuration stored under `key`, if any.
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<IntegrationConfig>>;
    /// Stores `config` under its key, replacing any previous one (its `created_at` is kept).
    /// Returns the stored record with its new version and timestamps.
    async fn set(&self, config: &IntegrationConfig) -> Result<IntegrationConfig>;
    /// Stores a new configuration; [`StorageError::Conflict`] if the key is taken.
    async fn create(&self, config: &IntegrationConfig) -> Result<IntegrationConfig>;
    /// Replaces the configuration only if it is still at `config.version`;
    /// [`StorageError::VersionMismatch`] otherwise.
    async fn update(&self, config: &IntegrationConfig) -> Result<IntegrationConfig>;
    /// Deletes the configuration; whether it existed.
    async fn delete(&self, tenant: &TenantId, key: &str) -> Result<bool>;
    /// Every configuration of the tenant, in key order.
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<IntegrationConfig>>;
    /// The configurations owned by `user_id`, in key order.
    async fn list_by_user(&self, tenant: &TenantId, user_id: &str, page: &PageRequest) -> Result<Page<IntegrationConfig>>;
    /// The configurations of one type, in key order.
    async fn list_by_type(&self, tenant: &TenantId, integration_type: &str, page: &PageRequest) -> Result<Page<IntegrationConfig>>;
    /// The configurations of one type owned by `user_id` (the original's lookup by owner and
    /// type), in key order.
    async fn list_by_user_and_type(
        &self,
        tenant: &TenantId,
        user_id: &str,
        integration_type: &str,
        page: &PageRequest,
    ) -> Result<Page<IntegrationConfig>>;
    /// Adds `n` to the messages sent through the integration, atomically (no lost update between
    /// concurrent senders); the new total.
    async fn record_messages(&self, tenant: &TenantId, key: &str, n: u64) -> Result<u64>;
    /// Adds `n` to the integration's error count, atomically; the new total.
    async fn record_errors(&self, tenant: &TenantId, key: &str, n: u64) -> Result<u64>;
    /// Stores a platform-user mapping, replacing any previous one for the same platform user.
    async fn save_user_mapping(&self, mapping: &UserIdMapping) -> Result<UserIdMapping>;
    /// The mapping of `platform_user_id` on `platform`.
    async fn get_user_mapping(&self, tenant: &TenantId, platform: &str, platform_user_id: &str) -> Result<Option<UserIdMapping>>;
    /// The mapping on `platform` of the user with this email (case-insensitive), if any.
    async fn get_user_mapping_by_email(&self, tenant: &TenantId, platform: &str, email: &str) -> Result<Option<UserIdMapping>>;
    /// Deletes a mapping; whether it existed.
    async fn delete_user_mapping(&self, tenant: &TenantId, platform: &str, platform_user_id: &str) -> Result<bool>;
    /// The mappings of one platform, or all mappings when `platform` is `None`.
    async fn list_user_mappings(&self, tenant: &TenantId, platform: Option<&str>, page: &PageRequest) -> Result<Page<UserIdMapping>>;
    /// The mappings that point at `user_id`, across platforms.
    async fn list_user_mappings_for_user(&self, tenant: &TenantId, user_id: &str, page: &PageRequest) -> Result<Page<UserIdMapping>>;
}

/// [`IntegrationStore`] on any backend. `B` only names the backend for the seed's per-backend
/// names (`SQLiteIntegrationStore = Integrations<SqliteBackend>`, which opens with
/// `SQLiteIntegrationStore::open(path)`); it is `dyn Engine` otherwise.
pub struct Integrations<B: ?Sized = dyn Engine> {
    configs: Table<IntegrationConfig>,
    mappings: Table<UserIdMapping>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Integrations { configs, mappings });

fn by_id(filter: Filter) -> Query {
    Query::new(filter)
}

fn count(n: u64, field: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| StorageError::invalid(field, format!("{n} is out of range")))
}

#[async_trait]
impl<B: ?Sized> IntegrationStore for Integrations<B> {
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<IntegrationConfig>> {
        self.configs.get(tenant, key).await
    }
    async fn set(&self, config: &IntegrationConfig) -> Result<IntegrationConfig> {
        self.configs.upsert(config).await
    }
    async fn create(&self, config: &IntegrationConfig) -> Result<IntegrationConfig> {
        self.configs.insert(config).await
    }
    async fn update(&self, config: &IntegrationConfig) -> Result<IntegrationConfig> {
        self.configs.update(config).await
    }
    async fn delete(&self, tenant: &TenantId, key: &str) -> Result<bool> {
        self.configs.delete(tenant, key).await
    }
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<IntegrationConfig>> {
        self.configs.list(Scope::Tenant(tenant), by_id(Filter::all()), page).await
    }
    async fn list_by_user(&self, tenant: &TenantId, user_id: &str, page: &PageRequest) -> Result<Page<IntegrationConfig>> {
        validate_id("user_id", user_id)?;
        self.configs.list(Scope::Tenant(tenant), by_id(Filter::all().eq("user_id", user_id)), page).await
    }
    async fn list_by_type(&self, tenant: &TenantId, integration_type: &str, page: &PageRequest) -> Result<Page<IntegrationConfig>> {
        validate_name("integration_type", integration_type)?;
        self.configs.list(Scope::Tenant(tenant), by_id(Filter::all().eq("integration_type", integration_type)), page).await
    }
    async fn list_by_user_and_type(
        &self,
        tenant: &TenantId,
        user_id: &str,
        integration_type: &str,
        page: &PageRequest,
    ) -> Result<Page<IntegrationConfig>> {
        validate_id("user_id", user_id)?;
        validate_name("integration_type", integration_type)?;
        let filter = Filter::all().eq("user_id", user_id).eq("integration_type", integration_type);
        self.configs.list(Scope::Tenant(tenant), by_id(filter), page).await
    }
    async fn record_messages(&self, tenant: &TenantId, key: &str, n: u64) -> Result<u64> {
        let total = self.configs.increment(tenant, key, "messages_sent", count(n, "n")?, None).await?;
        counter("messages_sent", total)
    }
    async fn record_errors(&self, tenant: &TenantId, key: &str, n: u64) -> Result<u64> {
        let total = self.configs.increment(tenant, key, "errors_24h", count(n, "n")?, None).await?;
        counter("errors_24h", total)
    }
    async fn save_user_mapping(&self, mapping: &UserIdMapping) -> Result<UserIdMapping> {
        self.mappings.upsert(mapping).await
    }
    async fn get_user_mapping(&self, tenant: &TenantId, platform: &str, platform_user_id: &str) -> Result<Option<UserIdMapping>> {
        validate_name("platform", platform)?;
        validate_id("platform_user_id", platform_user_id)?;
        self.mappings.get(tenant, &UserIdMapping::mapping_id(platform, platform_user_id)).await
    }
    async fn get_user_mapping_by_email(&self, tenant: &TenantId, platform: &str, email: &str) -> Result<Option<UserIdMapping>> {
        validate_name("platform", platform)?;
        validate_id("email", email)?;
        let filter = Filter::all().eq("platform", platform).eq("email", email.to_lowercase());
        let page = self.mappings.list(Scope::Tenant(tenant), by_id(filter), &PageRequest::first(1)).await?;
        Ok(page.items.into_iter().next())
    }
    async fn delete_user_mapping(&self, tenant: &TenantId, platform: &str, platform_user_id: &str) -> Result<bool> {
        validate_name("platform", platform)?;
        validate_id("platform_user_id", platform_user_id)?;
        self.mappings.delete(tenant, &UserIdMapping::mapping_id(platform, platform_user_id)).await
    }
    async fn list_user_mappings(&self, tenant: &TenantId, platform: Option<&str>, page: &PageRequest) -> Result<Page<UserIdMapping>> {
        let filter = match platform {
            Some(platform) => {
                validate_name("platform", platform)?;
                Filter::all().eq("platform", platform)
            }
            None => Filter::all(),
        };
        self.mappings.list(Scope::Tenant(tenant), by_id(filter), page).await
    }
    async fn list_user_mappings_for_user(&self, tenant: &TenantId, user_id: &str, page: &PageRequest) -> Result<Page<UserIdMapping>> {
        validate_id("user_id", user_id)?;
        self.mappings.list(Scope::Tenant(tenant), by_id(Filter::all().eq("user_id", user_id)), page).await
    }
}
