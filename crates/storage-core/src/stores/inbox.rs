//! The unified inbox: a tenant's connected mail accounts, their messages (deduplicated by the
//! provider's message id, ranked by priority, searchable) and the messages' triage results. An
//! account's counters change in the same atomic unit as the message that changes them, so they
//! never drift; deleting an account deletes its messages and their triage.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value};
use crate::engine::{Applied, Engine};
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::{joined_id, written};
use crate::table::{Table, retry_contended};
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// A connected mail account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxAccount {
    /// The tenant.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// Its id.
    pub account_id: String,
    /// The provider (`gmail`, `outlook`, `imap`, ...).
    pub provider: String,
    /// Its address.
    pub email_address: String,
    /// A display name.
    pub display_name: Option<String>,
    /// Its connection status (`connected`, `syncing`, `error`, ...).
    pub status: String,
    /// When it was connected.
    pub connected_at: DateTime<Utc>,
    /// The last completed sync.
    pub last_sync: Option<DateTime<Utc>>,
    /// Messages stored for it (kept by the store).
    pub total_messages: u64,
    /// Unread messages stored for it (kept by the store).
    pub unread_count: u64,
    /// Sync errors counted by [`UnifiedInboxStore::increment_account_counts`].
    pub sync_errors: u64,
    /// Free-form settings.
    pub metadata: BTreeMap<String, String>,
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

impl InboxAccount {
    /// A new connected account with no message.
    pub fn new(tenant: TenantId, account_id: &str, provider: &str, email_address: &str, now: DateTime<Utc>) -> Self {
        Self {
            tenant,
            account_id: account_id.to_owned(),
            provider: provider.to_owned(),
            email_address: email_address.to_owned(),
            display_name: None,
            status: "connected".to_owned(),
            connected_at: now,
            last_sync: None,
            total_messages: 0,
            unread_count: 0,
            sync_errors: 0,
            metadata: BTreeMap::new(),
            version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    fn count(&mut self, total: i64, unread: i64) {
        self.total_messages = self.total_messages.saturating_add_signed(total);
        self.unread_count = self.unread_count.saturating_add_signed(unread);
    }
}

impl Document for InboxAccount {
    const TABLE: TableDef = TableDef {
        name: "inbox_accounts",
        entity: "inbox account",
        id_field: "account_id",
        indexes: &[],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.account_id.clone()
    }
    crate::record_meta!();
    fn validate(&self) -> Result<()> {
        validate_id("provider", &self.provider)?;
        validate_id("status", &self.status)?;
        crate::limits::check_text("email_address", &self.email_address)?;
        if !self.email_address.contains('@') {
            return Err(StorageError::invalid("email_address", format!("`{}` is not an address", self.email_address.escape_debug())));
        }
        if let Some(name) = &self.display_name {
            crate::limits::check_text("display_name", name)?;
        }
        Ok(())
    }
}

/// How urgent a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityTier {
    /// Act now.
    Critical,
    /// Act today.
    High,
    /// Act this week.
    Medium,
    /// Whenever.
    Low,
}

impl PriorityTier {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

/// One message of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxMessage {
    /// The tenant.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// Its account.
    pub account_id: String,
    /// The provider's id of the message: one message per account and external id.
    pub external_id: String,
    /// The subject (searchable).
    pub subject: String,
    /// The sender (searchable).
    pub sender: String,
    /// The recipients.
    pub recipients: Vec<String>,
    /// The copied recipients.
    pub cc: Vec<String>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// A short excerpt (searchable).
    pub snippet: String,
    /// The start of the body; sealed (not searchable).
    #[serde(skip)]
    pub body_preview: Secret<String>,
    /// Whether it was read.
    pub is_read: bool,
    /// Whether it is starred.
    pub is_starred: bool,
    /// Whether it has attachments.
    pub has_attachments: bool,
    /// Labels.
    pub labels: Vec<String>,
    /// The provider's thread id.
    pub thread_id: Option<String>,
    /// Priority, from 0 to 1: listings put the highest first.
    pub priority_score: f64,
    /// Priority tier.
    pub priority_tier: PriorityTier,
    /// Why it got its priority.
    pub priority_reasons: Vec<String>,
    /// The triage's recommended action.
    pub triage_action: Option<String>,
    /// The triage's rationale.
    pub triage_rationale: Option<String>,
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

/// The id of an account's message: its account and external id.
pub fn message_id(account_id: &str, external_id: &str) -> String {
    joined_id(account_id, external_id)
}

impl InboxMessage {
    /// A new unread message with no priority.
    pub fn new(tenant: TenantId, account_id: &str, external_id: &str, subject: &str, sender: &str, received_at: DateTime<Utc>) -> Self {
        Self {
            tenant,
            account_id: account_id.to_owned(),
            external_id: external_id.to_owned(),
            subject: subject.to_owned(),
            sender: sender.to_owned(),
            recipients: Vec::new(),
            cc: Vec::new(),
            received_at,
            snippet: String::new(),
            body_preview: Secret::default(),
            is_read: false,
            is_starred: false,
            has_attachments: false,
            labels: Vec::new(),
            thread_id: None,
            priority_score: 0.0,
            priority_tier: PriorityTier::Low,
            priority_reasons: Vec::new(),
            triage_action: None,
            triage_rationale: None,
            version: 0,
            created_at: received_at,
            updated_at: received_at,
        }
    }

    /// Its id.
    pub fn message_id(&self) -> String {
        message_id(&self.account_id, &self.external_id)
    }

    /// The listing order: priority (in thousandths) first, then the second it was received.
    fn rank(&self) -> i64 {
        // Both parts are checked to be in range by `validate`, so this cannot overflow.
        #[allow(clippy::cast_possible_truncation, clippy::arithmetic_side_effects)]
        let rank = (self.priority_score * 1_000.0).round() as i64 * RANK_SECONDS + self.received_at.timestamp().clamp(0, RANK_SECONDS - 1);
        rank
    }
}

/// Seconds in a rank: every instant before the year 2286.
const RANK_SECONDS: i64 = 10_000_000_000;

impl Document for InboxMessage {
    const TABLE: TableDef = TableDef {
        name: "inbox_messages",
        entity: "inbox message",
        id_field: "message_id",
        indexes: &[
            IndexSpec::text("account_id"),
            IndexSpec::text("priority_tier"),
            IndexSpec::bool("is_read"),
            IndexSpec::int("rank"),
            IndexSpec::time("received_at"),
        ],
        expires: false,
        sealed: true,
        search: true,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.message_id()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![
            Some(Value::from(&self.account_id)),
            Some(Value::from(self.priority_tier.as_str())),
            Some(Value::Bool(self.is_read)),
            Some(Value::Int(self.rank())),
            Some(Value::Time(self.received_at)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("account_id", &self.account_id)?;
        validate_id("external_id", &self.external_id)?;
        if !(0.0..=1.0).contains(&self.priority_score) {
            return Err(StorageError::invalid("priority_score", format!("{}; 0 to 1 is allowed", self.priority_score)));
        }
        if let Some(thread_id) = &self.thread_id {
            validate_id("thread_id", thread_id)?;
        }
        Ok(())
    }
    fn search_text(&self) -> String {
        format!("{}\n{}\n{}", self.subject, self.sender, self.snippet)
    }
    fn secrets(&self) -> Secrets {
        [("body_preview".to_owned(), self.body_preview.clone())].into_iter().collect()
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.body_preview = secrets.remove("body_preview").unwrap_or_default();
        Ok(())
    }
}

/// The triage of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageResult {
    /// The tenant.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The message ([`message_id`]).
    pub message_id: String,
    /// The message's account.
    pub account_id: String,
    /// What to do.
    pub recommended_action: String,
    /// How sure, from 0 to 1.
    pub confidence: f64,
    /// Why.
    pub rationale: String,
    /// A suggested reply.
    pub suggested_response: Option<String>,
    /// Whom to delegate to.
    pub delegate_to: Option<String>,
    /// When to deal with it.
    pub schedule_for: Option<DateTime<Utc>>,
    /// The agents that debated it.
    pub agents_involved: Vec<String>,
    /// The debate's summary.
    pub debate_summary: Option<String>,
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

impl Document for TriageResult {
    const TABLE: TableDef = TableDef {
        name: "inbox_triage_results",
        entity: "triage result",
        id_field: "message_id",
        indexes: &[IndexSpec::text("account_id")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.message_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![Some(Value::from(&self.account_id))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("account_id", &self.account_id)?;
        validate_id("recommended_action", &self.recommended_action)?;
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(StorageError::invalid("confidence", format!("{}; 0 to 1 is allowed", self.confidence)));
        }
        Ok(())
    }
}

/// What [`UnifiedInboxStore::update_account_fields`] changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChanges {
    /// A new display name.
    pub display_name: Option<String>,
    /// A new status.
    pub status: Option<String>,
    /// A completed sync.
    pub last_sync: Option<DateTime<Utc>>,
    /// New settings (replacing the old ones).
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Which messages a list or search returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    /// Of one account.
    pub account_id: Option<String>,
    /// Of one tier.
    pub priority_tier: Option<PriorityTier>,
    /// Unread ones only.
    pub unread_only: bool,
}

impl MessageFilter {
    fn filter(&self) -> Result<Filter> {
        let mut filter = Filter::all();
        if let Some(account_id) = &self.account_id {
            validate_id("account_id", account_id)?;
            filter = filter.eq("account_id", account_id.as_str());
        }
        if let Some(tier) = self.priority_tier {
            filter = filter.eq("priority_tier", tier.as_str());
        }
        if self.unread_only {
            filter = filter.eq("is_read", false);
        }
        Ok(filter)
    }
}

/// The unified inbox.
#[async_trait]
pub trait UnifiedInboxStore: Send + Sync + fmt::Debug {
    /// Stores an account: a new one, or new settings of a known one (its counters are the
    /// store's and stay as they are).
    async fn save_account(&self, account: &InboxAccount) -> Result<InboxAccount>;
    /// An account.
    async fn get_account(&self, tenant: &TenantId, account_id: &str) -> Result<Option<InboxAccount>>;
    /// The tenant's accounts, by id.
    async fn list_accounts(&self, tenant: &TenantId) -> Result<Vec<InboxAccount>>;
    /// Changes an account's settings.
    async fn update_account_fields(&self, tenant: &TenantId, account_id: &str, changes: AccountChanges) -> Result<InboxAccount>;
    /// Adds to an account's counters (each stays at 0 or above), atomically.
    async fn increment_account_counts(
        &self,
        tenant: &TenantId,
        account_id: &str,
        total: i64,
        unread: i64,
        sync_errors: i64,
    ) -> Result<InboxAccount>;
    /// Deletes an account, its messages and their triage; whether it existed.
    async fn delete_account(&self, tenant: &TenantId, account_id: &str) -> Result<bool>;

    /// Stores a message unless its account already has one with its external id → the stored
    /// message and whether this call inserted it. The account's counters move in the same unit.
    async fn save_message(&self, message: &InboxMessage) -> Result<(InboxMessage, bool)>;
    /// A message.
    async fn get_message(&self, tenant: &TenantId, message_id: &str) -> Result<Option<InboxMessage>>;
    /// A page of messages, highest priority first, then newest; and how many pass the filter.
    async fn list_messages(&self, tenant: &TenantId, filter: &MessageFilter, page: &PageRequest) -> Result<(Page<InboxMessage>, u64)>;
    /// The messages whose subject, sender or snippet hold every term of `query`, best match
    /// first, `limit` after `offset`; and how many match.
    async fn search_messages(
        &self,
        tenant: &TenantId,
        query: &str,
        filter: &MessageFilter,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<InboxMessage>, u64)>;
    /// Sets a message's read and starred flags (the account's unread count follows).
    async fn update_message_flags(
        &self,
        tenant: &TenantId,
        message_id: &str,
        is_read: Option<bool>,
        is_starred: Option<bool>,
    ) -> Result<InboxMessage>;
    /// Records a message's triage outcome on it.
    async fn update_message_triage(&self, tenant: &TenantId, message_id: &str, action: &str, rationale: &str) -> Result<InboxMessage>;
    /// Deletes a message and its triage (the account's counters follow); whether it existed.
    async fn delete_message(&self, tenant: &TenantId, message_id: &str) -> Result<bool>;

    /// Stores a message's triage result (replacing an earlier one); the message must exist.
    async fn save_triage_result(&self, result: &TriageResult) -> Result<TriageResult>;
    /// A message's triage result.
    async fn get_triage_result(&self, tenant: &TenantId, message_id: &str) -> Result<Option<TriageResult>>;
}

/// [`UnifiedInboxStore`] on any backend.
pub struct UnifiedInbox<B: ?Sized = dyn Engine> {
    accounts: Table<InboxAccount>,
    messages: Table<InboxMessage>,
    triage: Table<TriageResult>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(UnifiedInbox { accounts, messages, triage });

/// The account of a message, read to move its counters in the message's unit.
fn account_of(account: Option<InboxAccount>, account_id: &str) -> Result<InboxAccount> {
    account.ok_or_else(|| StorageError::not_found(InboxAccount::TABLE.entity, account_id))
}

fn unread(message: &InboxMessage) -> i64 {
    i64::from(!message.is_read)
}

/// A `Conflict` that means another writer got in first: read again.
fn contended(error: StorageError) -> StorageError {
    match error {
        StorageError::Conflict { entity, id, .. } => StorageError::VersionMismatch { entity, id, expected: 0, actual: 1 },
        other => other,
    }
}

#[async_trait]
impl<B: ?Sized> UnifiedInboxStore for UnifiedInbox<B> {
    async fn save_account(&self, account: &InboxAccount) -> Result<InboxAccount> {
        account.validate()?;
        retry_contended(|| async {
            match self.accounts.get(&account.tenant, &account.account_id).await? {
                Some(known) => {
                    let kept = InboxAccount {
                        total_messages: known.total_messages,
                        unread_count: known.unread_count,
                        sync_errors: known.sync_errors,
                        version: known.version,
                        ..account.clone()
                    };
                    self.accounts.update(&kept).await
                }
                None => {
                    let fresh = InboxAccount { total_messages: 0, unread_count: 0, sync_errors: 0, ..account.clone() };
                    self.accounts.insert(&fresh).await.map_err(contended)
                }
            }
        })
        .await
    }

    async fn get_account(&self, tenant: &TenantId, account_id: &str) -> Result<Option<InboxAccount>> {
        self.accounts.get(tenant, account_id).await
    }

    async fn list_accounts(&self, tenant: &TenantId) -> Result<Vec<InboxAccount>> {
        self.accounts.list_all(Scope::Tenant(tenant), Query::new(Filter::all())).await
    }

    async fn update_account_fields(&self, tenant: &TenantId, account_id: &str, changes: AccountChanges) -> Result<InboxAccount> {
        self.accounts
            .patch(tenant, account_id, |account| {
                let changes = changes.clone();
                if let Some(name) = changes.display_name {
                    account.display_name = Some(name);
                }
                if let Some(status) = changes.status {
                    account.status = status;
                }
                if let Some(at) = changes.last_sync {
                    account.last_sync = Some(at);
                }
                if let Some(metadata) = changes.metadata {
                    account.metadata = metadata;
                }
                Ok(())
            })
            .await
    }

    async fn increment_account_counts(
        &self,
        tenant: &TenantId,
        account_id: &str,
        total: i64,
        unread: i64,
        sync_errors: i64,
    ) -> Result<InboxAccount> {
        self.accounts
            .patch(tenant, account_id, |account| {
                account.count(total, unread);
                account.sync_errors = account.sync_errors.saturating_add_signed(sync_errors);
                Ok(())
            })
            .await
    }

    async fn delete_account(&self, tenant: &TenantId, account_id: &str) -> Result<bool> {
        // The account goes first: a message saved meanwhile needs it (its unit updates the
        // account at a version), so none can be added behind the sweep.
        let existed = self.accounts.delete(tenant, account_id).await?;
        let of_account = || Filter::all().eq("account_id", account_id);
        self.messages.delete_where(Scope::Tenant(tenant), of_account()).await?;
        self.triage.delete_where(Scope::Tenant(tenant), of_account()).await?;
        Ok(existed)
    }

    async fn save_message(&self, message: &InboxMessage) -> Result<(InboxMessage, bool)> {
        message.validate()?;
        let (tenant, id) = (&message.tenant, message.message_id());
        // The insert comes first and a duplicate is read only when it conflicts: a new message
        // (the common case) costs two round trips, not three.
        retry_contended(|| async {
            let mut account = account_of(self.accounts.get(tenant, &message.account_id).await?, &message.account_id)?;
            account.count(1, unread(message));
            let mut unit = self.messages.unit(tenant);
            unit.insert(&self.messages, message)?;
            unit.update(&self.accounts, &account)?;
            match unit.commit().await {
                Ok(applied) => Ok((written(message.clone(), &applied, 0), true)),
                Err(conflict @ StorageError::Conflict { .. }) => match self.messages.get(tenant, &id).await? {
                    Some(stored) => Ok((stored, false)),
                    // Deleted meanwhile: try again.
                    None => Err(contended(conflict)),
                },
                Err(other) => Err(other),
            }
        })
        .await
    }

    async fn get_message(&self, tenant: &TenantId, message_id: &str) -> Result<Option<InboxMessage>> {
        self.messages.get(tenant, message_id).await
    }

    async fn list_messages(&self, tenant: &TenantId, filter: &MessageFilter, page: &PageRequest) -> Result<(Page<InboxMessage>, u64)> {
        let filter = filter.filter()?;
        let total = self.messages.count(Scope::Tenant(tenant), filter.clone()).await?;
        let listed = self.messages.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("rank")), page).await?;
        Ok((listed, total))
    }

    async fn search_messages(
        &self,
        tenant: &TenantId,
        query: &str,
        filter: &MessageFilter,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<InboxMessage>, u64)> {
        self.messages.search(tenant, query, filter.filter()?, limit, offset).await
    }

    async fn update_message_flags(
        &self,
        tenant: &TenantId,
        message_id: &str,
        is_read: Option<bool>,
        is_starred: Option<bool>,
    ) -> Result<InboxMessage> {
        retry_contended(|| async {
            let Some(mut message) = self.messages.get(tenant, message_id).await? else {
                return Err(StorageError::not_found(InboxMessage::TABLE.entity, message_id));
            };
            let was_unread = unread(&message);
            message.is_read = is_read.unwrap_or(message.is_read);
            message.is_starred = is_starred.unwrap_or(message.is_starred);
            let mut unit = self.messages.unit(tenant);
            unit.update(&self.messages, &message)?;
            let moved = unread(&message).saturating_sub(was_unread);
            if moved != 0 {
                // The account may be gone (its messages are being swept): then only the flag.
                if let Some(mut account) = self.accounts.get(tenant, &message.account_id).await? {
                    account.count(0, moved);
                    unit.update(&self.accounts, &account)?;
                }
            }
            let applied = unit.commit().await?;
            Ok(written(message, &applied, 0))
        })
        .await
    }

    async fn update_message_triage(&self, tenant: &TenantId, message_id: &str, action: &str, rationale: &str) -> Result<InboxMessage> {
        validate_id("action", action)?;
        self.messages
            .patch(tenant, message_id, |message| {
                message.triage_action = Some(action.to_owned());
                message.triage_rationale = Some(rationale.to_owned());
                Ok(())
            })
            .await
    }

    async fn delete_message(&self, tenant: &TenantId, message_id: &str) -> Result<bool> {
        // Every change of a message's unread flag updates its account at a version, so the
        // account's version in this unit also guards the flag this delete counts.
        retry_contended(|| async {
            let Some(message) = self.messages.get(tenant, message_id).await? else { return Ok(false) };
            let mut unit = self.messages.unit(tenant);
            unit.delete(&self.messages, message_id)?;
            unit.delete(&self.triage, message_id)?;
            if let Some(mut account) = self.accounts.get(tenant, &message.account_id).await? {
                account.count(-1, unread(&message).saturating_neg());
                unit.update(&self.accounts, &account)?;
            }
            let applied = unit.commit().await?;
            Ok(matches!(applied.first(), Some(Applied::Deleted(true))))
        })
        .await
    }

    async fn save_triage_result(&self, result: &TriageResult) -> Result<TriageResult> {
        if self.messages.get(&result.tenant, &result.message_id).await?.is_none() {
            return Err(StorageError::not_found(InboxMessage::TABLE.entity, &result.message_id));
        }
        self.triage.upsert(result).await
    }

    async fn get_triage_result(&self, tenant: &TenantId, message_id: &str) -> Result<Option<TriageResult>> {
        self.triage.get(tenant, message_id).await
    }
}
