//! Email prioritisation and shared inboxes (the seed's email store), per workspace (the
//! tenant): users' prioritisation settings and VIP senders; shared inboxes with their members (a
//! multi-valued index), their messages (searchable, kept in the message's own write) and routing
//! rules (ordered by priority, an atomic match counter); and the append-only log of
//! prioritisation decisions with the accuracy of the feedback given on them.

use crate::document::{Document, IndexSpec, TableDef, Value};
use crate::engine::Engine;
use crate::multi::{MultiValued, Posting, postings_table};
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::joined_id;
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

/// The most tags a shared message carries.
pub const MAX_TAGS: usize = 64;
/// The highest routing-rule priority.
pub const MAX_RULE_PRIORITY: i64 = 100_000;

macro_rules! document {
    ($ty:ty, $table:expr, id = |$s:ident| $id:expr, indexes = |$v:ident| $values:expr, validate = |$c:ident| $check:expr) => {
        impl Document for $ty {
            const TABLE: TableDef = $table;
            fn tenant(&self) -> &TenantId {
                &self.tenant
            }
            fn id(&self) -> String {
                let $s = self;
                $id
            }
            crate::record_meta!();
            fn index_values(&self) -> Vec<Option<Value>> {
                let $v = self;
                $values
            }
            fn validate(&self) -> Result<()> {
                let $c = self;
                $check
            }
        }
    };
}

const fn table(name: &'static str, entity: &'static str, id_field: &'static str, indexes: &'static [IndexSpec]) -> TableDef {
    TableDef { name, entity, id_field, indexes, expires: false, sealed: false, search: false }
}

/// A user's prioritisation settings in a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailUserConfig {
    /// The workspace.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The user.
    pub user_id: String,
    /// The settings.
    pub config: Map<String, Json>,
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

document!(
    EmailUserConfig,
    table("email_user_configs", "email config", "user_id", &[]),
    id = |c| c.user_id.clone(),
    indexes = |_c| Vec::new(),
    validate = |c| validate_id("user_id", &c.user_id)
);

/// A sender a user always wants to hear from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipSender {
    /// The workspace.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The user.
    pub user_id: String,
    /// The sender's address, lower-cased.
    pub email: String,
    /// The sender's name.
    pub name: Option<String>,
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

document!(
    VipSender,
    table("email_vip_senders", "VIP sender", "vip_id", &[IndexSpec::text("user_id")]),
    id = |v| joined_id(&v.user_id, &v.email),
    indexes = |v| vec![Some(Value::from(&v.user_id))],
    validate = |v| {
        validate_id("user_id", &v.user_id)?;
        check_address("email", &v.email)
    }
);

fn check_address(field: &str, address: &str) -> Result<()> {
    crate::limits::check_text(field, address)?;
    if address.is_empty() || address.len() > 320 || !address.contains('@') {
        return Err(StorageError::invalid(field, format!("`{}` is not an e-mail address", address.escape_debug())));
    }
    Ok(())
}

/// A shared inbox of a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedInbox {
    /// The workspace.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// A description.
    pub description: Option<String>,
    /// Its address.
    pub email_address: Option<String>,
    /// The users who work it.
    pub members: BTreeSet<String>,
    /// Settings.
    pub settings: Map<String, Json>,
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

document!(
    SharedInbox,
    table("shared_inboxes", "shared inbox", "inbox_id", &[]),
    id = |i| i.id.clone(),
    indexes = |_i| Vec::new(),
    validate = |i| {
        crate::limits::check_text("name", &i.name)?;
        if i.name.trim().is_empty() {
            return Err(StorageError::invalid("name", "must not be blank"));
        }
        if let Some(address) = &i.email_address {
            check_address("email_address", address)?;
        }
        i.members.iter().try_for_each(|member| validate_id("members", member))
    }
);

impl MultiValued for SharedInbox {
    const POSTINGS: TableDef = postings_table("shared_inbox_members", "shared inbox member");

    fn multi_values(&self) -> BTreeSet<String> {
        self.members.clone()
    }
}

/// Where a shared message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// New.
    Open,
    /// Someone has it.
    Assigned,
    /// Being worked on.
    InProgress,
    /// Waiting for the sender.
    Waiting,
    /// Answered.
    Resolved,
    /// Done.
    Closed,
}

impl MessageStatus {
    /// Every status.
    pub const ALL: [Self; 6] = [Self::Open, Self::Assigned, Self::InProgress, Self::Waiting, Self::Resolved, Self::Closed];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Assigned => "assigned",
            Self::InProgress => "in_progress",
            Self::Waiting => "waiting",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }
}

/// A message of a shared inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedMessage {
    /// The workspace.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// Its id.
    pub id: String,
    /// Its inbox.
    pub inbox_id: String,
    /// The provider's id.
    pub external_id: Option<String>,
    /// The subject (searchable).
    pub subject: String,
    /// The sender (searchable).
    pub from_address: String,
    /// An excerpt (searchable).
    pub snippet: String,
    /// Where it stands.
    pub status: MessageStatus,
    /// Its priority label.
    pub priority: Option<String>,
    /// Who has it.
    pub assigned_to: Option<String>,
    /// Tags, at most [`MAX_TAGS`].
    pub tags: BTreeSet<String>,
    /// Details.
    pub metadata: Map<String, Json>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
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

impl Document for SharedMessage {
    const TABLE: TableDef = TableDef {
        search: true,
        ..table(
            "shared_inbox_messages",
            "shared inbox message",
            "message_id",
            &[IndexSpec::text("inbox_id"), IndexSpec::text("status"), IndexSpec::text("assigned_to"), IndexSpec::time("received_at")],
        )
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
            Some(Value::from(self.status.as_str())),
            self.assigned_to.as_ref().map(Value::from),
            Some(Value::Time(self.received_at)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("inbox_id", &self.inbox_id)?;
        for (field, id) in [("external_id", &self.external_id), ("assigned_to", &self.assigned_to), ("priority", &self.priority)] {
            if let Some(id) = id {
                validate_id(field, id)?;
            }
        }
        if self.tags.len() > MAX_TAGS {
            return Err(StorageError::invalid("tags", format!("{} tags; at most {MAX_TAGS}", self.tags.len())));
        }
        self.tags.iter().try_for_each(|tag| validate_id("tags", tag))
    }
    fn search_text(&self) -> String {
        format!("{}\n{}\n{}", self.subject, self.from_address, self.snippet)
    }
}

/// A rule that routes incoming messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingRule {
    /// The workspace.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// Its id.
    pub id: String,
    /// The inbox it applies to; `None` for every inbox.
    pub inbox_id: Option<String>,
    /// Its name.
    pub name: String,
    /// Higher runs first, 0 to [`MAX_RULE_PRIORITY`]; ties run oldest first.
    pub priority: i64,
    /// Whether it runs.
    pub enabled: bool,
    /// When it matches.
    pub conditions: Json,
    /// What it does.
    pub actions: Json,
    /// How many messages it matched.
    pub match_count: u64,
    /// When it last matched.
    pub last_matched_at: Option<DateTime<Utc>>,
    /// When it was made (its place among rules of one priority).
    pub made_at: DateTime<Utc>,
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

/// Seconds in a rule's order key: every instant before the year 2286.
const ORDER_SECONDS: i64 = 10_000_000_000;

impl RoutingRule {
    /// Priority first, then age (older first), as one descending integer.
    fn order_key(&self) -> i64 {
        let age = ORDER_SECONDS.saturating_sub(1).saturating_sub(self.made_at.timestamp().clamp(0, ORDER_SECONDS.saturating_sub(1)));
        self.priority.clamp(0, MAX_RULE_PRIORITY).saturating_mul(ORDER_SECONDS).saturating_add(age)
    }
}

document!(
    RoutingRule,
    table(
        "email_routing_rules",
        "routing rule",
        "rule_id",
        &[IndexSpec::text("inbox_id"), IndexSpec::bool("enabled"), IndexSpec::int("order_key")]
    ),
    id = |r| r.id.clone(),
    indexes = |r| vec![r.inbox_id.as_ref().map(Value::from), Some(Value::Bool(r.enabled)), Some(Value::Int(r.order_key()))],
    validate = |r| {
        if let Some(inbox) = &r.inbox_id {
            validate_id("inbox_id", inbox)?;
        }
        crate::limits::check_text("name", &r.name)?;
        if !(0..=MAX_RULE_PRIORITY).contains(&r.priority) {
            return Err(StorageError::invalid("priority", format!("{}; 0 to {MAX_RULE_PRIORITY} is allowed", r.priority)));
        }
        Ok(())
    }
);

/// One prioritisation of one email for one user: appended, never rewritten except for the
/// user's feedback on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrioritizationDecision {
    /// The workspace.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// Its id (a time-ordered UUID).
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The email.
    pub email_id: String,
    /// Which tier of the prioritiser decided.
    pub tier_used: u32,
    /// The priority given.
    pub priority: String,
    /// How sure, 0 to 1.
    pub confidence: f64,
    /// The score.
    pub score: f64,
    /// Why.
    pub rationale: String,
    /// The factors weighed.
    pub factors: Json,
    /// Context that raised the score.
    pub context_boosts: Json,
    /// The user's verdict: whether the priority was right.
    pub user_feedback: Option<bool>,
    /// When the verdict was given.
    pub feedback_at: Option<DateTime<Utc>>,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
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

document!(
    PrioritizationDecision,
    table(
        "email_prioritization_decisions",
        "prioritization decision",
        "decision_id",
        &[IndexSpec::text("user_id"), IndexSpec::text("email_id"), IndexSpec::time("decided_at"), IndexSpec::text("feedback")]
    ),
    id = |d| d.id.clone(),
    indexes = |d| vec![
        Some(Value::from(&d.user_id)),
        Some(Value::from(&d.email_id)),
        Some(Value::Time(d.decided_at)),
        d.user_feedback.map(|right| Value::from(if right { "correct" } else { "incorrect" })),
    ],
    validate = |d| {
        validate_id("user_id", &d.user_id)?;
        validate_id("email_id", &d.email_id)?;
        validate_id("priority", &d.priority)?;
        if !(0.0..=1.0).contains(&d.confidence) {
            return Err(StorageError::invalid("confidence", format!("{}; 0 to 1 is allowed", d.confidence)));
        }
        if !d.score.is_finite() {
            return Err(StorageError::invalid("score", "must be a finite number"));
        }
        Ok(())
    }
);

/// A new shared inbox.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewSharedInbox {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// A description.
    pub description: Option<String>,
    /// Its address.
    pub email_address: Option<String>,
    /// Its members.
    pub members: BTreeSet<String>,
    /// Settings.
    pub settings: Map<String, Json>,
}

/// What [`EmailStore::update_shared_inbox`] changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedInboxChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new address.
    pub email_address: Option<String>,
    /// New members (replacing the old ones).
    pub members: Option<BTreeSet<String>>,
    /// New settings.
    pub settings: Option<Map<String, Json>>,
}

/// A new routing rule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRoutingRule {
    /// The inbox; `None` for all.
    pub inbox_id: Option<String>,
    /// Its name.
    pub name: String,
    /// Its priority.
    pub priority: i64,
    /// Whether it runs.
    pub enabled: bool,
    /// When it matches.
    pub conditions: Json,
    /// What it does.
    pub actions: Json,
}

/// What [`EmailStore::update_routing_rule`] changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingRuleChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new priority.
    pub priority: Option<i64>,
    /// Turns it on or off.
    pub enabled: Option<bool>,
    /// New conditions.
    pub conditions: Option<Json>,
    /// New actions.
    pub actions: Option<Json>,
}

/// A decision to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    /// The user.
    pub user_id: String,
    /// The email.
    pub email_id: String,
    /// The prioritiser's tier.
    pub tier_used: u32,
    /// The priority.
    pub priority: String,
    /// How sure.
    pub confidence: f64,
    /// The score.
    pub score: f64,
    /// Why.
    pub rationale: String,
    /// The factors.
    pub factors: Json,
    /// Context boosts.
    pub context_boosts: Json,
}

/// How often a user agreed with the prioritiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedbackStats {
    /// Decisions in the window.
    pub decisions: u64,
    /// Of which the user judged.
    pub with_feedback: u64,
    /// Of which the user found right.
    pub correct: u64,
    /// `correct / with_feedback`; `None` without feedback.
    pub accuracy: Option<f64>,
}

/// Email prioritisation and shared inboxes.
#[async_trait]
pub trait EmailStore: Send + Sync + fmt::Debug {
    /// Stores a user's settings.
    async fn save_user_config(&self, tenant: &TenantId, user_id: &str, config: Map<String, Json>) -> Result<EmailUserConfig>;
    /// A user's settings.
    async fn get_user_config(&self, tenant: &TenantId, user_id: &str) -> Result<Option<EmailUserConfig>>;
    /// Deletes a user's settings; whether they existed.
    async fn delete_user_config(&self, tenant: &TenantId, user_id: &str) -> Result<bool>;
    /// Every user's settings in the workspace, by user.
    async fn list_workspace_configs(&self, tenant: &TenantId) -> Result<Vec<EmailUserConfig>>;

    /// Adds (or renames) a user's VIP sender; the address in any case.
    async fn add_vip_sender(&self, tenant: &TenantId, user_id: &str, email: &str, name: Option<&str>) -> Result<VipSender>;
    /// Removes a VIP sender; whether it was one.
    async fn remove_vip_sender(&self, tenant: &TenantId, user_id: &str, email: &str) -> Result<bool>;
    /// A user's VIP senders, by address.
    async fn get_vip_senders(&self, tenant: &TenantId, user_id: &str) -> Result<Vec<VipSender>>;
    /// Whether an address (in any case) is one of the user's VIP senders.
    async fn is_vip_sender(&self, tenant: &TenantId, user_id: &str, email: &str) -> Result<bool>;

    /// Creates a shared inbox; `Conflict` if its id is taken.
    async fn create_shared_inbox(&self, tenant: &TenantId, inbox: NewSharedInbox) -> Result<SharedInbox>;
    /// A shared inbox.
    async fn get_shared_inbox(&self, tenant: &TenantId, inbox_id: &str) -> Result<Option<SharedInbox>>;
    /// The workspace's shared inboxes (of which `member` is a member, if given), by id.
    async fn list_shared_inboxes(&self, tenant: &TenantId, member: Option<&str>) -> Result<Vec<SharedInbox>>;
    /// Changes a shared inbox.
    async fn update_shared_inbox(&self, tenant: &TenantId, inbox_id: &str, changes: SharedInboxChanges) -> Result<SharedInbox>;
    /// Deletes a shared inbox and its messages; whether it existed.
    async fn delete_shared_inbox(&self, tenant: &TenantId, inbox_id: &str) -> Result<bool>;

    /// Stores a message of an existing shared inbox (a new one, or a new version of one).
    async fn save_message(&self, message: &SharedMessage) -> Result<SharedMessage>;
    /// A message.
    async fn get_message(&self, tenant: &TenantId, message_id: &str) -> Result<Option<SharedMessage>>;
    /// An inbox's messages (in a status, assigned to someone, as asked), newest first.
    async fn list_inbox_messages(
        &self,
        tenant: &TenantId,
        inbox_id: &str,
        status: Option<MessageStatus>,
        assigned_to: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<SharedMessage>>;
    /// Moves a message to a status (and assigns it, if given).
    async fn update_message_status(
        &self,
        tenant: &TenantId,
        message_id: &str,
        status: MessageStatus,
        assigned_to: Option<&str>,
    ) -> Result<SharedMessage>;
    /// Tags a message; concurrent tags are all kept.
    async fn add_message_tag(&self, tenant: &TenantId, message_id: &str, tag: &str) -> Result<SharedMessage>;
    /// How many messages of an inbox are in each status.
    async fn get_inbox_stats(&self, tenant: &TenantId, inbox_id: &str) -> Result<BTreeMap<MessageStatus, u64>>;
    /// The inbox's messages whose subject, sender or snippet hold every term of `query`, best
    /// first, `limit` after `offset`; and how many match.
    #[allow(clippy::too_many_arguments)]
    async fn search_messages(
        &self,
        tenant: &TenantId,
        inbox_id: &str,
        query: &str,
        status: Option<MessageStatus>,
        assigned_to: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<SharedMessage>, u64)>;

    /// Creates a routing rule.
    async fn create_routing_rule(&self, tenant: &TenantId, rule: NewRoutingRule) -> Result<RoutingRule>;
    /// A routing rule.
    async fn get_routing_rule(&self, tenant: &TenantId, rule_id: &str) -> Result<Option<RoutingRule>>;
    /// The rules that apply (to an inbox: its own and those of every inbox), highest priority
    /// first, then oldest; enabled ones only, if asked.
    async fn list_routing_rules(&self, tenant: &TenantId, inbox_id: Option<&str>, enabled_only: bool) -> Result<Vec<RoutingRule>>;
    /// Changes a routing rule.
    async fn update_routing_rule(&self, tenant: &TenantId, rule_id: &str, changes: RoutingRuleChanges) -> Result<RoutingRule>;
    /// Deletes a routing rule; whether it existed.
    async fn delete_routing_rule(&self, tenant: &TenantId, rule_id: &str) -> Result<bool>;
    /// Counts one match of a rule, now; concurrent matches are all counted.
    async fn increment_rule_match_count(&self, tenant: &TenantId, rule_id: &str) -> Result<RoutingRule>;

    /// Appends a prioritisation decision, now.
    async fn record_prioritization_decision(&self, tenant: &TenantId, decision: NewDecision) -> Result<PrioritizationDecision>;
    /// Records the user's verdict on the latest decision about an email → that decision, if any.
    async fn record_user_feedback(
        &self,
        tenant: &TenantId,
        user_id: &str,
        email_id: &str,
        is_correct: bool,
    ) -> Result<Option<PrioritizationDecision>>;
    /// The user's decisions of the last `days` days and the verdicts on them.
    async fn get_feedback_stats(&self, tenant: &TenantId, user_id: &str, days: u32) -> Result<FeedbackStats>;
}

/// [`EmailStore`] on any backend.
pub struct Emails<B: ?Sized = dyn Engine> {
    configs: Table<EmailUserConfig>,
    vips: Table<VipSender>,
    inboxes: Table<SharedInbox>,
    members: Table<Posting<SharedInbox>>,
    messages: Table<SharedMessage>,
    rules: Table<RoutingRule>,
    decisions: Table<PrioritizationDecision>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Emails { configs, vips, inboxes, members, messages, rules, decisions });

fn vip_id(user_id: &str, email: &str) -> Result<(String, String)> {
    validate_id("user_id", user_id)?;
    let email = email.trim().to_lowercase();
    check_address("email", &email)?;
    Ok((joined_id(user_id, &email), email))
}

fn checked(field: &'static str, value: &str) -> Result<String> {
    validate_id(field, value)?;
    Ok(value.to_owned())
}

impl<B: ?Sized> Emails<B> {
    fn message_filter(inbox_id: &str, status: Option<MessageStatus>, assigned_to: Option<&str>) -> Result<Filter> {
        let mut filter = Filter::all().eq("inbox_id", checked("inbox_id", inbox_id)?);
        if let Some(status) = status {
            filter = filter.eq("status", status.as_str());
        }
        if let Some(assignee) = assigned_to {
            filter = filter.eq("assigned_to", checked("assigned_to", assignee)?);
        }
        Ok(filter)
    }
}

#[async_trait]
impl<B: ?Sized> EmailStore for Emails<B> {
    async fn save_user_config(&self, tenant: &TenantId, user_id: &str, config: Map<String, Json>) -> Result<EmailUserConfig> {
        let now = self.configs.now();
        let record =
            EmailUserConfig { tenant: tenant.clone(), user_id: user_id.to_owned(), config, version: 0, created_at: now, updated_at: now };
        self.configs.upsert(&record).await
    }

    async fn get_user_config(&self, tenant: &TenantId, user_id: &str) -> Result<Option<EmailUserConfig>> {
        self.configs.get(tenant, user_id).await
    }

    async fn delete_user_config(&self, tenant: &TenantId, user_id: &str) -> Result<bool> {
        self.configs.delete(tenant, user_id).await
    }

    async fn list_workspace_configs(&self, tenant: &TenantId) -> Result<Vec<EmailUserConfig>> {
        self.configs.list_all(Scope::Tenant(tenant), Query::new(Filter::all())).await
    }

    async fn add_vip_sender(&self, tenant: &TenantId, user_id: &str, email: &str, name: Option<&str>) -> Result<VipSender> {
        let (_, email) = vip_id(user_id, email)?;
        let now = self.vips.now();
        let vip = VipSender {
            tenant: tenant.clone(),
            user_id: user_id.to_owned(),
            email,
            name: name.map(str::to_owned),
            version: 0,
            created_at: now,
            updated_at: now,
        };
        self.vips.upsert(&vip).await
    }

    async fn remove_vip_sender(&self, tenant: &TenantId, user_id: &str, email: &str) -> Result<bool> {
        self.vips.delete(tenant, &vip_id(user_id, email)?.0).await
    }

    async fn get_vip_senders(&self, tenant: &TenantId, user_id: &str) -> Result<Vec<VipSender>> {
        let mut vips =
            self.vips.list_all(Scope::Tenant(tenant), Query::new(Filter::all().eq("user_id", checked("user_id", user_id)?))).await?;
        vips.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(vips)
    }

    async fn is_vip_sender(&self, tenant: &TenantId, user_id: &str, email: &str) -> Result<bool> {
        Ok(self.vips.get(tenant, &vip_id(user_id, email)?.0).await?.is_some())
    }

    async fn create_shared_inbox(&self, tenant: &TenantId, inbox: NewSharedInbox) -> Result<SharedInbox> {
        let now = self.inboxes.now();
        let record = SharedInbox {
            tenant: tenant.clone(),
            id: inbox.id,
            name: inbox.name,
            description: inbox.description,
            email_address: inbox.email_address,
            members: inbox.members,
            settings: inbox.settings,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        self.members.insert_record(&self.inboxes, &record).await
    }

    async fn get_shared_inbox(&self, tenant: &TenantId, inbox_id: &str) -> Result<Option<SharedInbox>> {
        self.inboxes.get(tenant, inbox_id).await
    }

    async fn list_shared_inboxes(&self, tenant: &TenantId, member: Option<&str>) -> Result<Vec<SharedInbox>> {
        match member {
            Some(member) => self.members.records(&self.inboxes, Scope::Tenant(tenant), &[&checked("member", member)?]).await,
            None => self.inboxes.list_all(Scope::Tenant(tenant), Query::new(Filter::all())).await,
        }
    }

    async fn update_shared_inbox(&self, tenant: &TenantId, inbox_id: &str, changes: SharedInboxChanges) -> Result<SharedInbox> {
        self.members
            .patch_record(&self.inboxes, tenant, inbox_id, |inbox| {
                let changes = changes.clone();
                if let Some(name) = changes.name {
                    inbox.name = name;
                }
                if let Some(description) = changes.description {
                    inbox.description = Some(description);
                }
                if let Some(address) = changes.email_address {
                    inbox.email_address = Some(address);
                }
                if let Some(members) = changes.members {
                    inbox.members = members;
                }
                if let Some(settings) = changes.settings {
                    inbox.settings = settings;
                }
                Ok(())
            })
            .await
    }

    async fn delete_shared_inbox(&self, tenant: &TenantId, inbox_id: &str) -> Result<bool> {
        // The inbox goes first: a message saved afterwards finds no inbox and is refused.
        let existed = self.members.delete_record(&self.inboxes, tenant, inbox_id).await?;
        self.messages.delete_where(Scope::Tenant(tenant), Filter::all().eq("inbox_id", checked("inbox_id", inbox_id)?)).await?;
        Ok(existed)
    }

    async fn save_message(&self, message: &SharedMessage) -> Result<SharedMessage> {
        message.validate()?;
        if self.inboxes.get(&message.tenant, &message.inbox_id).await?.is_none() {
            return Err(StorageError::not_found(SharedInbox::TABLE.entity, &message.inbox_id));
        }
        self.messages.upsert(message).await
    }

    async fn get_message(&self, tenant: &TenantId, message_id: &str) -> Result<Option<SharedMessage>> {
        self.messages.get(tenant, message_id).await
    }

    async fn list_inbox_messages(
        &self,
        tenant: &TenantId,
        inbox_id: &str,
        status: Option<MessageStatus>,
        assigned_to: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<SharedMessage>> {
        let filter = Self::message_filter(inbox_id, status, assigned_to)?;
        self.messages.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("received_at")), page).await
    }

    async fn update_message_status(
        &self,
        tenant: &TenantId,
        message_id: &str,
        status: MessageStatus,
        assigned_to: Option<&str>,
    ) -> Result<SharedMessage> {
        self.messages
            .patch(tenant, message_id, |message| {
                message.status = status;
                if let Some(assignee) = assigned_to {
                    message.assigned_to = Some(assignee.to_owned());
                }
                Ok(())
            })
            .await
    }

    async fn add_message_tag(&self, tenant: &TenantId, message_id: &str, tag: &str) -> Result<SharedMessage> {
        let tag = checked("tag", tag)?;
        self.messages
            .patch(tenant, message_id, |message| {
                message.tags.insert(tag.clone());
                Ok(())
            })
            .await
    }

    async fn get_inbox_stats(&self, tenant: &TenantId, inbox_id: &str) -> Result<BTreeMap<MessageStatus, u64>> {
        let mut stats = BTreeMap::new();
        for status in MessageStatus::ALL {
            let filter = Self::message_filter(inbox_id, Some(status), None)?;
            stats.insert(status, self.messages.count(Scope::Tenant(tenant), filter).await?);
        }
        Ok(stats)
    }

    async fn search_messages(
        &self,
        tenant: &TenantId,
        inbox_id: &str,
        query: &str,
        status: Option<MessageStatus>,
        assigned_to: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<SharedMessage>, u64)> {
        self.messages.search(tenant, query, Self::message_filter(inbox_id, status, assigned_to)?, limit, offset).await
    }

    async fn create_routing_rule(&self, tenant: &TenantId, rule: NewRoutingRule) -> Result<RoutingRule> {
        let now = self.rules.now();
        let record = RoutingRule {
            tenant: tenant.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            inbox_id: rule.inbox_id,
            name: rule.name,
            priority: rule.priority,
            enabled: rule.enabled,
            conditions: rule.conditions,
            actions: rule.actions,
            match_count: 0,
            last_matched_at: None,
            made_at: now,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        self.rules.insert(&record).await
    }

    async fn get_routing_rule(&self, tenant: &TenantId, rule_id: &str) -> Result<Option<RoutingRule>> {
        self.rules.get(tenant, rule_id).await
    }

    async fn list_routing_rules(&self, tenant: &TenantId, inbox_id: Option<&str>, enabled_only: bool) -> Result<Vec<RoutingRule>> {
        let base = if enabled_only { Filter::all().eq("enabled", true) } else { Filter::all() };
        let ordered = |filter: Filter| Query::new(filter).order(Order::desc("order_key"));
        let mut rules = match inbox_id {
            // Its own rules and the rules of every inbox: two lists, merged in order.
            Some(inbox_id) => {
                let mut own = self
                    .rules
                    .list_all(Scope::Tenant(tenant), ordered(base.clone().eq("inbox_id", checked("inbox_id", inbox_id)?)))
                    .await?;
                own.extend(self.rules.list_all(Scope::Tenant(tenant), ordered(base.is_null("inbox_id"))).await?);
                own
            }
            None => self.rules.list_all(Scope::Tenant(tenant), ordered(base)).await?,
        };
        rules.sort_by(|a, b| b.order_key().cmp(&a.order_key()).then_with(|| a.id.cmp(&b.id)));
        Ok(rules)
    }

    async fn update_routing_rule(&self, tenant: &TenantId, rule_id: &str, changes: RoutingRuleChanges) -> Result<RoutingRule> {
        self.rules
            .patch(tenant, rule_id, |rule| {
                let changes = changes.clone();
                if let Some(name) = changes.name {
                    rule.name = name;
                }
                if let Some(priority) = changes.priority {
                    rule.priority = priority;
                }
                if let Some(enabled) = changes.enabled {
                    rule.enabled = enabled;
                }
                if let Some(conditions) = changes.conditions {
                    rule.conditions = conditions;
                }
                if let Some(actions) = changes.actions {
                    rule.actions = actions;
                }
                Ok(())
            })
            .await
    }

    async fn delete_routing_rule(&self, tenant: &TenantId, rule_id: &str) -> Result<bool> {
        self.rules.delete(tenant, rule_id).await
    }

    async fn increment_rule_match_count(&self, tenant: &TenantId, rule_id: &str) -> Result<RoutingRule> {
        let now = self.rules.now();
        self.rules
            .patch(tenant, rule_id, |rule| {
                rule.match_count = rule.match_count.saturating_add(1);
                rule.last_matched_at = Some(now);
                Ok(())
            })
            .await
    }

    async fn record_prioritization_decision(&self, tenant: &TenantId, decision: NewDecision) -> Result<PrioritizationDecision> {
        let now = self.decisions.now();
        let record = PrioritizationDecision {
            tenant: tenant.clone(),
            id: uuid::Uuid::now_v7().to_string(),
            user_id: decision.user_id,
            email_id: decision.email_id,
            tier_used: decision.tier_used,
            priority: decision.priority,
            confidence: decision.confidence,
            score: decision.score,
            rationale: decision.rationale,
            factors: decision.factors,
            context_boosts: decision.context_boosts,
            user_feedback: None,
            feedback_at: None,
            decided_at: now,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        self.decisions.insert(&record).await
    }

    async fn record_user_feedback(
        &self,
        tenant: &TenantId,
        user_id: &str,
        email_id: &str,
        is_correct: bool,
    ) -> Result<Option<PrioritizationDecision>> {
        let filter = Filter::all().eq("user_id", checked("user_id", user_id)?).eq("email_id", checked("email_id", email_id)?);
        let latest =
            self.decisions.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("decided_at")), &PageRequest::first(1)).await?;
        let Some(decision) = latest.items.into_iter().next() else { return Ok(None) };
        let now = self.decisions.now();
        let judged = self
            .decisions
            .patch(tenant, &decision.id, |decision| {
                decision.user_feedback = Some(is_correct);
                decision.feedback_at = Some(now);
                Ok(())
            })
            .await?;
        Ok(Some(judged))
    }

    async fn get_feedback_stats(&self, tenant: &TenantId, user_id: &str, days: u32) -> Result<FeedbackStats> {
        let since = crate::limits::sub("days", self.decisions.now(), TimeDelta::days(i64::from(days)))?;
        let window = || Ok::<_, StorageError>(Filter::all().eq("user_id", checked("user_id", user_id)?).ge("decided_at", since));
        let scope = Scope::Tenant(tenant);
        let decisions = self.decisions.count(scope, window()?).await?;
        let with_feedback = self.decisions.count(scope, window()?.not_null("feedback")).await?;
        let correct = self.decisions.count(scope, window()?.eq("feedback", "correct")).await?;
        #[allow(clippy::cast_precision_loss)]
        let accuracy = (with_feedback > 0).then(|| correct as f64 / with_feedback as f64);
        Ok(FeedbackStats { decisions, with_feedback, correct, accuracy })
    }
}
