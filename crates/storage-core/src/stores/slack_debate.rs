//! Debates started from Slack: one per thread, moving pending → running → completed or failed
//! (or cancelled before it ends), with the receipt or error of how it ended.

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

/// Where a Slack debate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebateStatus {
    /// Asked for, not started.
    Pending,
    /// Running.
    Running,
    /// Finished, with a receipt.
    Completed,
    /// Ended with an error.
    Failed,
    /// Stopped before it ended.
    Cancelled,
}

impl DebateStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the debate has ended (nothing moves it on).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Whether a debate in this status may move to `next`.
    pub fn may_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Running | Self::Failed | Self::Cancelled)
                | (Self::Running, Self::Completed | Self::Failed | Self::Cancelled)
        )
    }

    const ALL: [Self; 5] = [Self::Pending, Self::Running, Self::Completed, Self::Failed, Self::Cancelled];
}

/// A debate started from a Slack channel or thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlackDebate {
    /// The tenant of the workspace.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The debate's id.
    pub debate_id: String,
    /// The Slack team id.
    pub workspace_id: String,
    /// The channel.
    pub channel_id: String,
    /// The thread the debate answers in, once known.
    pub thread_ts: Option<String>,
    /// What is debated.
    pub topic: String,
    /// The Slack user who asked.
    pub user_id: String,
    /// Where it stands.
    pub status: DebateStatus,
    /// The decision receipt, once completed.
    pub receipt_id: Option<String>,
    /// Why it failed.
    pub error_message: Option<String>,
    /// When it was asked for.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
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

impl SlackDebate {
    /// A pending debate asked for now by `user_id` in a channel.
    pub fn new(
        tenant: TenantId,
        debate_id: impl Into<String>,
        workspace_id: impl Into<String>,
        channel_id: impl Into<String>,
        topic: impl Into<String>,
        user_id: impl Into<String>,
        started_at: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant,
            debate_id: debate_id.into(),
            workspace_id: workspace_id.into(),
            channel_id: channel_id.into(),
            thread_ts: None,
            topic: topic.into(),
            user_id: user_id.into(),
            status: DebateStatus::Pending,
            receipt_id: None,
            error_message: None,
            started_at,
            completed_at: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// The thread's key: workspace, channel and thread, unambiguous whatever they contain.
    fn thread_key(&self) -> Option<String> {
        self.thread_ts.as_ref().map(|ts| crate::stores::joined_id(&self.workspace_id, &crate::stores::joined_id(&self.channel_id, ts)))
    }
}

impl Document for SlackDebate {
    const TABLE: TableDef = TableDef {
        name: "slack_debates",
        entity: "slack debate",
        id_field: "debate_id",
        indexes: &[
            IndexSpec::text("thread_key").unique(),
            IndexSpec::text("workspace_id"),
            IndexSpec::text("user_id"),
            IndexSpec::text("status"),
            IndexSpec::time("started_at"),
        ],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.debate_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![
            self.thread_key().map(Value::Text),
            Some(Value::from(&self.workspace_id)),
            Some(Value::from(&self.user_id)),
            Some(Value::from(self.status.as_str())),
            Some(Value::Time(self.started_at)),
        ]
    }
    fn validate(&self) -> Result<()> {
        for (field, value) in [("workspace_id", &self.workspace_id), ("channel_id", &self.channel_id), ("user_id", &self.user_id)] {
            validate_id(field, value)?;
        }
        for (field, value) in [("thread_ts", &self.thread_ts), ("receipt_id", &self.receipt_id)] {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        crate::limits::check_text("topic", &self.topic)?;
        if let Some(error) = &self.error_message {
            crate::limits::check_text("error_message", error)?;
        }
        Ok(())
    }
}

/// How a debate's status changes through [`SlackDebateStore::update_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebateOutcome {
    /// Started running.
    Running,
    /// Completed, with its receipt.
    Completed {
        /// The decision receipt.
        receipt_id: String,
    },
    /// Failed, with the reason.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// Cancelled.
    Cancelled,
}

impl DebateOutcome {
    fn status(&self) -> DebateStatus {
        match self {
            Self::Running => DebateStatus::Running,
            Self::Completed { .. } => DebateStatus::Completed,
            Self::Failed { .. } => DebateStatus::Failed,
            Self::Cancelled => DebateStatus::Cancelled,
        }
    }
}

/// Debates started from Slack.
#[async_trait]
pub trait SlackDebateStore: Send + Sync + fmt::Debug {
    /// Stores a new debate; `Conflict` if its id or its thread is taken.
    async fn save(&self, debate: &SlackDebate) -> Result<SlackDebate>;
    /// The debate with this id.
    async fn get(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<SlackDebate>>;
    /// The debate of a thread.
    async fn get_by_thread(&self, tenant: &TenantId, workspace_id: &str, channel_id: &str, thread_ts: &str) -> Result<Option<SlackDebate>>;
    /// One page of the pending and running debates (of one workspace or all), newest first.
    async fn list_active(&self, tenant: &TenantId, workspace_id: Option<&str>, page: &PageRequest) -> Result<Page<SlackDebate>>;
    /// One page of a user's debates in a workspace, newest first.
    async fn list_by_user(&self, tenant: &TenantId, workspace_id: &str, user_id: &str, page: &PageRequest) -> Result<Page<SlackDebate>>;
    /// Moves the debate on; `Conflict` for a move its status does not allow (an ended debate
    /// never changes), and then nothing changes.
    async fn update_status(&self, tenant: &TenantId, debate_id: &str, outcome: DebateOutcome) -> Result<SlackDebate>;
    /// Records the thread the debate answers in; `Conflict` if it has another one or another
    /// debate has this one.
    async fn update_thread(&self, tenant: &TenantId, debate_id: &str, thread_ts: &str) -> Result<SlackDebate>;
    /// Removes a debate; whether it existed.
    async fn delete(&self, tenant: &TenantId, debate_id: &str) -> Result<bool>;
    /// Removes the ended debates (completed, failed or cancelled) of every tenant started more
    /// than `max_age` ago; how many.
    async fn cleanup_old(&self, max_age: TimeDelta) -> Result<u64>;
    /// How many debates per status (of one workspace or all).
    async fn get_stats(&self, tenant: &TenantId, workspace_id: Option<&str>) -> Result<BTreeMap<DebateStatus, u64>>;
}

/// [`SlackDebateStore`] on any backend.
pub struct SlackDebates<B: ?Sized = dyn Engine> {
    debates: Table<SlackDebate>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(SlackDebates { debates });

fn in_workspace(workspace_id: Option<&str>) -> Result<Filter> {
    Ok(match workspace_id {
        Some(ws) => {
            validate_id("workspace_id", ws)?;
            Filter::all().eq("workspace_id", ws)
        }
        None => Filter::all(),
    })
}

#[async_trait]
impl<B: ?Sized> SlackDebateStore for SlackDebates<B> {
    async fn save(&self, debate: &SlackDebate) -> Result<SlackDebate> {
        self.debates.insert(debate).await
    }

    async fn get(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<SlackDebate>> {
        self.debates.get(tenant, debate_id).await
    }

    async fn get_by_thread(&self, tenant: &TenantId, workspace_id: &str, channel_id: &str, thread_ts: &str) -> Result<Option<SlackDebate>> {
        let mut probe = SlackDebate::new(tenant.clone(), "probe", workspace_id, channel_id, "", "probe", DateTime::<Utc>::UNIX_EPOCH);
        probe.thread_ts = Some(thread_ts.to_owned());
        probe.validate()?;
        let Some(key) = probe.thread_key() else { return Ok(None) };
        self.debates.get_by_unique(tenant, "thread_key", key).await
    }

    async fn list_active(&self, tenant: &TenantId, workspace_id: Option<&str>, page: &PageRequest) -> Result<Page<SlackDebate>> {
        let active = [DebateStatus::Pending, DebateStatus::Running].map(DebateStatus::as_str);
        let query = Query::new(in_workspace(workspace_id)?.one_of("status", active)).order(Order::desc("started_at"));
        self.debates.list(Scope::Tenant(tenant), query, page).await
    }

    async fn list_by_user(&self, tenant: &TenantId, workspace_id: &str, user_id: &str, page: &PageRequest) -> Result<Page<SlackDebate>> {
        validate_id("user_id", user_id)?;
        let query = Query::new(in_workspace(Some(workspace_id))?.eq("user_id", user_id)).order(Order::desc("started_at"));
        self.debates.list(Scope::Tenant(tenant), query, page).await
    }

    async fn update_status(&self, tenant: &TenantId, debate_id: &str, outcome: DebateOutcome) -> Result<SlackDebate> {
        let next = outcome.status();
        let now = self.debates.now();
        self.debates
            .patch(tenant, debate_id, |debate| {
                if !debate.status.may_become(next) {
                    return Err(StorageError::conflict(
                        SlackDebate::TABLE.entity,
                        debate_id,
                        format!("a {} debate cannot become {}", debate.status.as_str(), next.as_str()),
                    ));
                }
                debate.status = next;
                match &outcome {
                    DebateOutcome::Completed { receipt_id } => debate.receipt_id = Some(receipt_id.clone()),
                    DebateOutcome::Failed { error } => debate.error_message = Some(error.clone()),
                    DebateOutcome::Running | DebateOutcome::Cancelled => {}
                }
                if next.is_final() {
                    debate.completed_at = Some(now);
                }
                Ok(())
            })
            .await
    }

    async fn update_thread(&self, tenant: &TenantId, debate_id: &str, thread_ts: &str) -> Result<SlackDebate> {
        validate_id("thread_ts", thread_ts)?;
        self.debates
            .patch(tenant, debate_id, |debate| match &debate.thread_ts {
                Some(ts) if ts != thread_ts => {
                    Err(StorageError::conflict(SlackDebate::TABLE.entity, debate_id, "the debate already answers in another thread"))
                }
                _ => {
                    debate.thread_ts = Some(thread_ts.to_owned());
                    Ok(())
                }
            })
            .await
    }

    async fn delete(&self, tenant: &TenantId, debate_id: &str) -> Result<bool> {
        self.debates.delete(tenant, debate_id).await
    }

    async fn cleanup_old(&self, max_age: TimeDelta) -> Result<u64> {
        let cutoff = crate::limits::sub("max_age", self.debates.now(), max_age)?;
        let ended = DebateStatus::ALL.into_iter().filter(|s| s.is_final()).map(DebateStatus::as_str);
        self.debates.delete_where(Scope::AllTenants, Filter::all().one_of("status", ended).lt("started_at", cutoff)).await
    }

    async fn get_stats(&self, tenant: &TenantId, workspace_id: Option<&str>) -> Result<BTreeMap<DebateStatus, u64>> {
        let base = in_workspace(workspace_id)?;
        let mut stats = BTreeMap::new();
        for status in DebateStatus::ALL {
            let n = self.debates.count(Scope::Tenant(tenant), base.clone().eq("status", status.as_str())).await?;
            stats.insert(status, n);
        }
        Ok(stats)
    }
}
