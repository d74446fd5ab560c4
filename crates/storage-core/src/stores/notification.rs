//! How an organisation is notified: its email and Telegram channels (credentials sealed) and
//! its email recipients.

use crate::document::{Document, Secrets, TableDef};
use crate::engine::Engine;
use crate::query::{Filter, Query, Scope};
use crate::stores::user::normalize_email;
use crate::table::Table;
use crate::{Result, Secret, StorageError, TenantId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// How email is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailProvider {
    /// An SMTP server.
    Smtp,
    /// SendGrid's API.
    Sendgrid,
    /// Amazon SES.
    Ses,
}

/// Which events notify, shared by every channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyOn {
    /// A debate reached consensus.
    pub consensus: bool,
    /// A debate ended.
    pub debate_end: bool,
    /// An error occurred.
    pub error: bool,
}

impl Default for NotifyOn {
    fn default() -> Self {
        Self { consensus: true, debate_end: true, error: true }
    }
}

/// An organisation's email channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailConfig {
    /// The organisation.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// How email is sent.
    pub provider: EmailProvider,
    /// The SMTP server.
    pub smtp_host: Option<String>,
    /// Its port.
    pub smtp_port: Option<u16>,
    /// Its user.
    pub smtp_username: Option<String>,
    /// Its password; sealed.
    #[serde(skip)]
    pub smtp_password: Option<Secret<String>>,
    /// STARTTLS.
    pub use_tls: bool,
    /// Implicit TLS.
    pub use_ssl: bool,
    /// The SendGrid API key; sealed.
    #[serde(skip)]
    pub sendgrid_api_key: Option<Secret<String>>,
    /// The SES region.
    pub ses_region: Option<String>,
    /// The SES access key id.
    pub ses_access_key_id: Option<String>,
    /// The SES secret access key; sealed.
    #[serde(skip)]
    pub ses_secret_access_key: Option<Secret<String>>,
    /// The sender's address.
    pub from_email: String,
    /// The sender's name.
    pub from_name: Option<String>,
    /// Which events send mail.
    pub notify_on: NotifyOn,
    /// A digest instead of single mails, and how often (`daily`, `weekly`, ...).
    pub digest_frequency: Option<String>,
    /// Consensus below this confidence does not notify (0 to 1).
    pub min_consensus_confidence: f64,
    /// A rate limit.
    pub max_emails_per_hour: u32,
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

impl EmailConfig {
    /// An SMTP channel sending from `from_email`, every event, 50 mails an hour.
    pub fn smtp(tenant: TenantId, host: impl Into<String>, port: u16, from_email: impl Into<String>) -> Self {
        Self {
            tenant,
            provider: EmailProvider::Smtp,
            smtp_host: Some(host.into()),
            smtp_port: Some(port),
            smtp_username: None,
            smtp_password: None,
            use_tls: true,
            use_ssl: false,
            sendgrid_api_key: None,
            ses_region: None,
            ses_access_key_id: None,
            ses_secret_access_key: None,
            from_email: from_email.into(),
            from_name: None,
            notify_on: NotifyOn::default(),
            digest_frequency: None,
            min_consensus_confidence: 0.0,
            max_emails_per_hour: 50,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// An organisation's Telegram channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelegramConfig {
    /// The organisation.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The bot token; sealed.
    #[serde(skip)]
    pub bot_token: Secret<String>,
    /// The chat messages go to.
    pub chat_id: String,
    /// Which events send a message.
    pub notify_on: NotifyOn,
    /// A rate limit.
    pub max_messages_per_minute: u32,
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

/// Someone an organisation's notifications are mailed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailRecipient {
    /// The organisation.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The address, lower-cased: one recipient per address.
    pub email: String,
    /// The name.
    pub name: Option<String>,
    /// What they want to receive, as the application defines it.
    pub preferences: Map<String, Value>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When added.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

/// The one email and one Telegram configuration of an organisation have these ids.
const EMAIL: &str = "email";
const TELEGRAM: &str = "telegram";

fn optional_secret(secrets: &mut Secrets, name: &str, value: Option<&Secret<String>>) {
    if let Some(value) = value.filter(|v| !v.expose().is_empty()) {
        secrets.insert(name.to_owned(), value.clone());
    }
}

impl Document for EmailConfig {
    const TABLE: TableDef = TableDef {
        name: "notification_email_configs",
        entity: "email configuration",
        id_field: "channel",
        indexes: &[],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        EMAIL.to_owned()
    }
    crate::record_meta!();
    fn validate(&self) -> Result<()> {
        normalize_email("from_email", &self.from_email)?;
        let texts = [
            ("smtp_host", &self.smtp_host),
            ("smtp_username", &self.smtp_username),
            ("ses_region", &self.ses_region),
            ("ses_access_key_id", &self.ses_access_key_id),
            ("from_name", &self.from_name),
            ("digest_frequency", &self.digest_frequency),
        ];
        for (field, value) in texts {
            if let Some(value) = value {
                crate::limits::check_text(field, value)?;
            }
        }
        if !(0.0..=1.0).contains(&self.min_consensus_confidence) {
            return Err(StorageError::invalid("min_consensus_confidence", "must be between 0 and 1"));
        }
        let missing = match self.provider {
            EmailProvider::Smtp => self.smtp_host.is_none().then_some("smtp_host"),
            EmailProvider::Sendgrid => self.sendgrid_api_key.is_none().then_some("sendgrid_api_key"),
            EmailProvider::Ses => self.ses_region.is_none().then_some("ses_region"),
        };
        match missing {
            Some(field) => Err(StorageError::invalid(field, "the provider needs it")),
            None => Ok(()),
        }
    }
    fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::new();
        optional_secret(&mut secrets, "smtp_password", self.smtp_password.as_ref());
        optional_secret(&mut secrets, "sendgrid_api_key", self.sendgrid_api_key.as_ref());
        optional_secret(&mut secrets, "ses_secret_access_key", self.ses_secret_access_key.as_ref());
        secrets
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.smtp_password = secrets.remove("smtp_password");
        self.sendgrid_api_key = secrets.remove("sendgrid_api_key");
        self.ses_secret_access_key = secrets.remove("ses_secret_access_key");
        Ok(())
    }
}

impl Document for TelegramConfig {
    const TABLE: TableDef = TableDef {
        name: "notification_telegram_configs",
        entity: "telegram configuration",
        id_field: "channel",
        indexes: &[],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        TELEGRAM.to_owned()
    }
    crate::record_meta!();
    fn validate(&self) -> Result<()> {
        crate::validate_id("chat_id", &self.chat_id)?;
        if self.bot_token.expose().is_empty() {
            return Err(StorageError::invalid("bot_token", "must not be empty"));
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        [("bot_token".to_owned(), self.bot_token.clone())].into_iter().collect()
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.bot_token = secrets.remove("bot_token").unwrap_or_default();
        Ok(())
    }
}

impl Document for EmailRecipient {
    const TABLE: TableDef = TableDef {
        name: "notification_recipients",
        entity: "email recipient",
        id_field: "email",
        indexes: &[],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.email.clone()
    }
    crate::record_meta!();
    fn validate(&self) -> Result<()> {
        if normalize_email("email", &self.email)? != self.email {
            return Err(StorageError::invalid("email", "must be lower-case"));
        }
        if let Some(name) = &self.name {
            crate::limits::check_text("name", name)?;
        }
        Ok(())
    }
}

/// Notification channels and recipients of organisations.
#[async_trait]
pub trait NotificationConfigStore: Send + Sync + fmt::Debug {
    /// Stores the organisation's email channel, replacing any.
    async fn save_email_config(&self, config: &EmailConfig) -> Result<EmailConfig>;
    /// The organisation's email channel.
    async fn get_email_config(&self, tenant: &TenantId) -> Result<Option<EmailConfig>>;
    /// Removes the email channel; whether there was one.
    async fn delete_email_config(&self, tenant: &TenantId) -> Result<bool>;
    /// Stores the organisation's Telegram channel, replacing any.
    async fn save_telegram_config(&self, config: &TelegramConfig) -> Result<TelegramConfig>;
    /// The organisation's Telegram channel.
    async fn get_telegram_config(&self, tenant: &TenantId) -> Result<Option<TelegramConfig>>;
    /// Removes the Telegram channel; whether there was one.
    async fn delete_telegram_config(&self, tenant: &TenantId) -> Result<bool>;
    /// Adds a recipient (any case; one per address), or updates its name and preferences.
    async fn add_recipient(
        &self,
        tenant: &TenantId,
        email: &str,
        name: Option<&str>,
        preferences: Map<String, Value>,
    ) -> Result<EmailRecipient>;
    /// The organisation's recipients, by address.
    async fn get_recipients(&self, tenant: &TenantId) -> Result<Vec<EmailRecipient>>;
    /// Removes a recipient; whether there was one.
    async fn remove_recipient(&self, tenant: &TenantId, email: &str) -> Result<bool>;
    /// Removes every recipient of the organisation, in one statement; how many.
    async fn clear_recipients(&self, tenant: &TenantId) -> Result<u64>;
}

/// [`NotificationConfigStore`] on any backend.
pub struct NotificationConfigs<B: ?Sized = dyn Engine> {
    email: Table<EmailConfig>,
    telegram: Table<TelegramConfig>,
    recipients: Table<EmailRecipient>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(NotificationConfigs { email, telegram, recipients });

#[async_trait]
impl<B: ?Sized> NotificationConfigStore for NotificationConfigs<B> {
    async fn save_email_config(&self, config: &EmailConfig) -> Result<EmailConfig> {
        self.email.upsert(config).await
    }
    async fn get_email_config(&self, tenant: &TenantId) -> Result<Option<EmailConfig>> {
        self.email.get(tenant, EMAIL).await
    }
    async fn delete_email_config(&self, tenant: &TenantId) -> Result<bool> {
        self.email.delete(tenant, EMAIL).await
    }
    async fn save_telegram_config(&self, config: &TelegramConfig) -> Result<TelegramConfig> {
        self.telegram.upsert(config).await
    }
    async fn get_telegram_config(&self, tenant: &TenantId) -> Result<Option<TelegramConfig>> {
        self.telegram.get(tenant, TELEGRAM).await
    }
    async fn delete_telegram_config(&self, tenant: &TenantId) -> Result<bool> {
        self.telegram.delete(tenant, TELEGRAM).await
    }
    async fn add_recipient(
        &self,
        tenant: &TenantId,
        email: &str,
        name: Option<&str>,
        preferences: Map<String, Value>,
    ) -> Result<EmailRecipient> {
        let recipient = EmailRecipient {
            tenant: tenant.clone(),
            email: normalize_email("email", email)?,
            name: name.map(str::to_owned),
            preferences,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        // An upsert keeps `created_at`: the recipient was added when first added.
        self.recipients.upsert(&recipient).await
    }
    async fn get_recipients(&self, tenant: &TenantId) -> Result<Vec<EmailRecipient>> {
        self.recipients.list_all(Scope::Tenant(tenant), Query::default()).await
    }
    async fn remove_recipient(&self, tenant: &TenantId, email: &str) -> Result<bool> {
        self.recipients.delete(tenant, &normalize_email("email", email)?).await
    }
    async fn clear_recipients(&self, tenant: &TenantId) -> Result<u64> {
        self.recipients.delete_where(Scope::Tenant(tenant), Filter::all()).await
    }
}
