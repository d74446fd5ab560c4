//! Gmail OAuth state per user: tokens (sealed), sync cursor and counters.

use crate::document::{Document, Filter, IndexSpec, IndexValue, RecordMeta, Sealing, sealed_str};
use crate::table::TableHandle;
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// A user's Gmail connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GmailUserState {
    /// The tenant (organisation) the user belongs to. Kept on every backend.
    pub org_id: TenantId,
    /// The application's user id.
    pub user_id: String,
    /// The Gmail address.
    pub email_address: String,
    /// The OAuth access token; sealed at rest.
    #[serde(skip)]
    pub access_token: Secret<String>,
    /// The OAuth refresh token; sealed at rest.
    #[serde(skip)]
    pub refresh_token: Secret<String>,
    /// When the access token expires.
    pub token_expiry: Option<DateTime<Utc>>,
    /// Gmail's sync cursor.
    pub history_id: String,
    /// The last completed sync.
    pub last_sync: Option<DateTime<Utc>>,
    /// Messages indexed so far.
    pub indexed_count: u64,
    /// Messages in the mailbox.
    pub total_count: u64,
    /// When the account was connected.
    pub connected_at: Option<DateTime<Utc>>,
    /// Version; pass the one you read to a conditional write.
    #[serde(default)]
    pub version: u64,
    /// When first stored; kept by every later write.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last stored.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl GmailUserState {
    /// A new state for `user_id` in `org_id`.
    pub fn new(org_id: TenantId, user_id: impl Into<String>, email_address: impl Into<String>) -> Self {
        Self {
            org_id,
            user_id: user_id.into(),
            email_address: email_address.into(),
            access_token: Secret::default(),
            refresh_token: Secret::default(),
            token_expiry: None,
            history_id: String::new(),
            last_sync: None,
            indexed_count: 0,
            total_count: 0,
            connected_at: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// Sets the tokens and their expiry.
    pub fn with_tokens(
        mut self,
        access_token: impl Into<Secret<String>>,
        refresh_token: impl Into<Secret<String>>,
        token_expiry: DateTime<Utc>,
    ) -> Self {
        self.access_token = access_token.into();
        self.refresh_token = refresh_token.into();
        self.token_expiry = Some(token_expiry);
        self
    }

    /// Connected means a refresh token is present.
    pub fn is_connected(&self) -> bool {
        !self.refresh_token.expose().is_empty()
    }
}

impl Document for GmailUserState {
    const STORE: &'static str = "gmail_tokens";
    const ENTITY: &'static str = "gmail token";
    const ID_FIELD: &'static str = "user_id";
    const INDEXES: &'static [IndexSpec] = &[IndexSpec::text("email_address"), IndexSpec::time("token_expiry")];

    fn tenant(&self) -> &TenantId {
        &self.org_id
    }
    fn id(&self) -> String {
        self.user_id.clone()
    }
    fn meta(&self) -> RecordMeta {
        RecordMeta { version: self.version, created_at: self.created_at, updated_at: self.updated_at }
    }
    fn set_meta(&mut self, meta: RecordMeta) {
        (self.version, self.created_at, self.updated_at) = (meta.version, meta.created_at, meta.updated_at);
    }
    fn index_values(&self) -> Vec<IndexValue> {
        let email = (!self.email_address.is_empty()).then(|| self.email_address.to_lowercase());
        vec![IndexValue::Text(email), IndexValue::Time(self.token_expiry)]
    }
    fn validate(&self) -> Result<()> {
        validate_id("user_id", &self.user_id)?;
        if !self.email_address.is_empty() {
            validate_id("email_address", &self.email_address)?;
            if !self.email_address.contains('@') {
                return Err(StorageError::invalid("email_address", format!("`{}` is not an email address", self.email_address)));
            }
        }
        Ok(())
    }
    fn seal_secrets(&self, sealing: &Sealing<'_>) -> Result<Map<String, Value>> {
        let mut sealed = Map::new();
        for (field, value) in [("access_token", &self.access_token), ("refresh_token", &self.refresh_token)] {
            if !value.expose().is_empty() {
                sealed.insert(field.to_owned(), Value::String(sealing.seal(field, value)?));
            }
        }
        Ok(sealed)
    }
    fn open_secrets(&mut self, sealed: &Map<String, Value>, sealing: &Sealing<'_>) -> Result<()> {
        if let Some(value) = sealed_str(sealed, "access_token")? {
            self.access_token = sealing.open("access_token", value)?;
        }
        if let Some(value) = sealed_str(sealed, "refresh_token")? {
            self.refresh_token = sealing.open("refresh_token", value)?;
        }
        Ok(())
    }
}

/// The result of an OAuth token refresh.
#[derive(Debug, Clone)]
pub struct TokenRefresh {
    /// The new access token.
    pub access_token: Secret<String>,
    /// A new refresh token, when the provider rotated it.
    pub refresh_token: Option<Secret<String>>,
    /// When the new access token expires.
    pub token_expiry: DateTime<Utc>,
}

/// Gmail OAuth state per user, per tenant.
#[async_trait]
pub trait GmailTokenStore: Send + Sync + fmt::Debug {
    /// The user's state, if any.
    async fn get(&self, tenant: &TenantId, user_id: &str) -> Result<Option<GmailUserState>>;
    /// Stores the whole state (insert or replace; `created_at` is kept).
    async fn set(&self, state: &GmailUserState) -> Result<GmailUserState>;
    /// Deletes the user's state; whether it existed.
    async fn delete(&self, tenant: &TenantId, user_id: &str) -> Result<bool>;
    /// All states of the tenant, in user id order.
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<GmailUserState>>;
    /// States whose access token expires within `within` from now (or has expired): the ones to
    /// refresh. `within` must not be negative.
    async fn list_expiring(&self, tenant: &TenantId, within: TimeDelta, page: &PageRequest) -> Result<Page<GmailUserState>>;
    /// Stores refreshed tokens as one atomic update: concurrent writes to other fields (sync
    /// progress) are kept, and the refresh is never lost to them.
    async fn refresh_tokens(&self, tenant: &TenantId, user_id: &str, refresh: TokenRefresh) -> Result<GmailUserState>;
    /// Records sync progress as one atomic update that keeps concurrently refreshed tokens.
    async fn record_sync(
        &self,
        tenant: &TenantId,
        user_id: &str,
        history_id: &str,
        indexed_count: u64,
        total_count: u64,
    ) -> Result<GmailUserState>;
}

/// The table a [`GmailTokenStore`] is made of; providing it gives the store.
pub trait GmailTokenTables: Send + Sync + fmt::Debug {
    /// The token states.
    fn tokens(&self) -> &TableHandle<GmailUserState>;
}

#[async_trait]
impl<T: GmailTokenTables> GmailTokenStore for T {
    async fn get(&self, tenant: &TenantId, user_id: &str) -> Result<Option<GmailUserState>> {
        self.tokens().get(tenant, user_id).await
    }
    async fn set(&self, state: &GmailUserState) -> Result<GmailUserState> {
        self.tokens().upsert(state).await
    }
    async fn delete(&self, tenant: &TenantId, user_id: &str) -> Result<bool> {
        self.tokens().delete(tenant, user_id).await
    }
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<GmailUserState>> {
        self.tokens().list(tenant, Filter::All, page).await
    }
    async fn list_expiring(&self, tenant: &TenantId, within: TimeDelta, page: &PageRequest) -> Result<Page<GmailUserState>> {
        if within < TimeDelta::zero() {
            return Err(StorageError::invalid("within", format!("`{within}` must not be negative")));
        }
        let at = self.tokens().clock().now() + within;
        self.tokens().list(tenant, Filter::AtOrBefore { column: "token_expiry", at }, page).await
    }
    async fn refresh_tokens(&self, tenant: &TenantId, user_id: &str, refresh: TokenRefresh) -> Result<GmailUserState> {
        if refresh.access_token.expose().is_empty() {
            return Err(StorageError::invalid("access_token", "must not be empty"));
        }
        self.tokens()
            .patch(tenant, user_id, |state| {
                state.access_token = refresh.access_token.clone();
                if let Some(token) = &refresh.refresh_token {
                    state.refresh_token = token.clone();
                }
                state.token_expiry = Some(refresh.token_expiry);
                Ok(())
            })
            .await
    }
    async fn record_sync(
        &self,
        tenant: &TenantId,
        user_id: &str,
        history_id: &str,
        indexed_count: u64,
        total_count: u64,
    ) -> Result<GmailUserState> {
        let now = self.tokens().clock().now();
        self.tokens()
            .patch(tenant, user_id, |state| {
                state.history_id = history_id.to_owned();
                state.indexed_count = indexed_count;
                state.total_count = total_count;
                state.last_sync = Some(now);
                Ok(())
            })
            .await
    }
}
