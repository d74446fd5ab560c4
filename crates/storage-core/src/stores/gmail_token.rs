//! Gmail OAuth state per user: tokens (sealed), sync cursor and counters.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::{Table, int_value};
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

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
    const TABLE: TableDef = TableDef {
        name: "gmail_tokens",
        entity: "gmail token",
        id_field: "user_id",
        indexes: &[IndexSpec::text("email_address"), IndexSpec::time("token_expiry")],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.org_id
    }
    fn id(&self) -> String {
        self.user_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        let email = (!self.email_address.is_empty()).then(|| Value::Text(self.email_address.to_lowercase()));
        vec![email, self.token_expiry.map(Value::Time)]
    }
    fn validate(&self) -> Result<()> {
        validate_id("user_id", &self.user_id)?;
        if !self.email_address.is_empty() {
            validate_id("email_address", &self.email_address)?;
            if !self.email_address.contains('@') {
                return Err(StorageError::invalid(
                    "email_address",
                    format!("`{}` is not an email address", self.email_address.escape_debug()),
                ));
            }
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        [("access_token", &self.access_token), ("refresh_token", &self.refresh_token)]
            .into_iter()
            .filter(|(_, value)| !value.expose().is_empty())
            .map(|(name, value)| (name.to_owned(), value.clone()))
            .collect()
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.access_token = secrets.remove("access_token").unwrap_or_default();
        self.refresh_token = secrets.remove("refresh_token").unwrap_or_default();
        Ok(())
    }
}

/// Where a mailbox sync stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// Waiting to start.
    Pending,
    /// In progress.
    Running,
    /// Finished.
    Completed,
    /// Stopped by an error.
    Failed,
}

impl SyncStatus {
    fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// A user's mailbox sync job (the original's `SyncJobState`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GmailSyncJob {
    /// The tenant.
    pub org_id: TenantId,
    /// The user whose mailbox syncs (one job per user).
    pub user_id: String,
    /// Its status.
    pub status: SyncStatus,
    /// Progress, 0 to 100.
    pub progress: u8,
    /// Messages synced so far.
    pub messages_synced: u64,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it failed.
    pub failed_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
    /// Version; pass the one you read to a conditional write.
    #[serde(default)]
    pub version: u64,
    /// When first stored.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last stored.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl GmailSyncJob {
    /// A pending job for `user_id`.
    pub fn new(org_id: TenantId, user_id: impl Into<String>) -> Self {
        Self {
            org_id,
            user_id: user_id.into(),
            status: SyncStatus::Pending,
            progress: 0,
            messages_synced: 0,
            started_at: None,
            completed_at: None,
            failed_at: None,
            error: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// The longest failure message a sync job keeps, in bytes.
pub const MAX_SYNC_ERROR_BYTES: usize = 4_096;

impl Document for GmailSyncJob {
    const TABLE: TableDef = TableDef {
        name: "gmail_sync_jobs",
        entity: "gmail sync job",
        id_field: "user_id",
        indexes: &[IndexSpec::text("status"), IndexSpec::int("messages_synced")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.org_id
    }
    fn id(&self) -> String {
        self.user_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![Some(Value::from(self.status.name())), Some(int_value(self.messages_synced))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("user_id", &self.user_id)?;
        if self.progress > 100 {
            return Err(StorageError::invalid("progress", format!("{} is above 100", self.progress)));
        }
        if self.error.as_ref().is_some_and(|e| e.len() > MAX_SYNC_ERROR_BYTES) {
            return Err(StorageError::invalid("error", format!("is longer than {MAX_SYNC_ERROR_BYTES} bytes")));
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
    /// refresh, in user id order. `within` must not be negative.
    async fn list_expiring(&self, tenant: &TenantId, within: TimeDelta, page: &PageRequest) -> Result<Page<GmailUserState>>;
    /// The same across every tenant, for a refresh scheduler that does not know the tenants:
    /// by tenant, then soonest expiry first.
    async fn list_expiring_everywhere(&self, within: TimeDelta, page: &PageRequest) -> Result<Page<GmailUserState>>;
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
    /// The user's sync job, if any.
    async fn get_sync_job(&self, tenant: &TenantId, user_id: &str) -> Result<Option<GmailSyncJob>>;
    /// Stores the user's sync job (insert or replace).
    async fn save_sync_job(&self, job: &GmailSyncJob) -> Result<GmailSyncJob>;
    /// Deletes the user's sync job; whether it existed.
    async fn delete_sync_job(&self, tenant: &TenantId, user_id: &str) -> Result<bool>;
}

/// [`GmailTokenStore`] on any backend (see [`crate::Integrations`] for `B`).
pub struct GmailTokens<B: ?Sized = dyn Engine> {
    tokens: Table<GmailUserState>,
    sync_jobs: Table<GmailSyncJob>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(GmailTokens { tokens, sync_jobs });

impl<B: ?Sized> GmailTokens<B> {
    /// The filter of states due within `within` from now.
    fn expiring(&self, within: TimeDelta) -> Result<Filter> {
        if within < TimeDelta::zero() {
            return Err(StorageError::invalid("within", format!("`{within}` must not be negative")));
        }
        let at = crate::limits::add("within", self.tokens.now(), within)?;
        Ok(Filter::all().le("token_expiry", at))
    }
}

#[async_trait]
impl<B: ?Sized> GmailTokenStore for GmailTokens<B> {
    async fn get(&self, tenant: &TenantId, user_id: &str) -> Result<Option<GmailUserState>> {
        self.tokens.get(tenant, user_id).await
    }
    async fn set(&self, state: &GmailUserState) -> Result<GmailUserState> {
        self.tokens.upsert(state).await
    }
    async fn delete(&self, tenant: &TenantId, user_id: &str) -> Result<bool> {
        self.tokens.delete(tenant, user_id).await
    }
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<GmailUserState>> {
        self.tokens.list(Scope::Tenant(tenant), Query::default(), page).await
    }
    async fn list_expiring(&self, tenant: &TenantId, within: TimeDelta, page: &PageRequest) -> Result<Page<GmailUserState>> {
        self.tokens.list(Scope::Tenant(tenant), Query::new(self.expiring(within)?), page).await
    }
    async fn list_expiring_everywhere(&self, within: TimeDelta, page: &PageRequest) -> Result<Page<GmailUserState>> {
        let query = Query::new(self.expiring(within)?).order(Order::asc("token_expiry"));
        self.tokens.list(Scope::AllTenants, query, page).await
    }
    async fn refresh_tokens(&self, tenant: &TenantId, user_id: &str, refresh: TokenRefresh) -> Result<GmailUserState> {
        if refresh.access_token.expose().is_empty() {
            return Err(StorageError::invalid("access_token", "must not be empty"));
        }
        self.tokens
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
        let now = self.tokens.now();
        self.tokens
            .patch(tenant, user_id, |state| {
                state.history_id = history_id.to_owned();
                state.indexed_count = indexed_count;
                state.total_count = total_count;
                state.last_sync = Some(now);
                Ok(())
            })
            .await
    }
    async fn get_sync_job(&self, tenant: &TenantId, user_id: &str) -> Result<Option<GmailSyncJob>> {
        self.sync_jobs.get(tenant, user_id).await
    }
    async fn save_sync_job(&self, job: &GmailSyncJob) -> Result<GmailSyncJob> {
        self.sync_jobs.upsert(job).await
    }
    async fn delete_sync_job(&self, tenant: &TenantId, user_id: &str) -> Result<bool> {
        self.sync_jobs.delete(tenant, user_id).await
    }
}
