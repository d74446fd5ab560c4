//! Gauntlet runs: adversarial test runs of a template, in flight and finished, moving
//! pending → running → completed or failed (or cancelled before they end), as the store allows.
//!
//! `save` creates: a run's status and times are the store's, so a second save of an id is
//! `Conflict` rather than a replace that would put a finished run back in the queue (and its
//! `created_at` is never reset). Every later change is `update_status`, a conditional transition
//! at the version read: among concurrent callers exactly one moves a run out of a status.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// The most active runs of one status that [`GauntletRunStore::get_queue_analytics`] positions.
pub const MAX_ANALYTICS_RUNS: u32 = 1_000;
/// The most tags a run may carry.
pub const MAX_TAGS: usize = 64;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Queued.
    Pending,
    /// Running.
    Running,
    /// Finished with a result.
    Completed,
    /// Ended with an error.
    Failed,
    /// Stopped before it ended.
    Cancelled,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [Self; 5] = [Self::Pending, Self::Running, Self::Completed, Self::Failed, Self::Cancelled];

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

    /// Whether the run has ended (nothing moves it on).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Whether a run in this status may move to `next`.
    pub fn may_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Running | Self::Failed | Self::Cancelled)
                | (Self::Running, Self::Completed | Self::Failed | Self::Cancelled)
        )
    }
}

/// A gauntlet run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GauntletRun {
    /// The organisation.
    pub tenant: TenantId,
    /// The run's id.
    pub run_id: String,
    /// The template it runs.
    pub template_id: String,
    /// Where it stands (set by the store).
    pub status: RunStatus,
    /// Its configuration.
    pub config_data: Value,
    /// Its result, once it has one.
    pub result_data: Option<Value>,
    /// When it was queued (set by the store).
    pub queued_at: DateTime<Utc>,
    /// When it started running (set by the store, once).
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (set by the store).
    pub completed_at: Option<DateTime<Utc>>,
    /// Who started it.
    pub triggered_by: Option<String>,
    /// Its workspace.
    pub workspace_id: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When saved; kept by every later write.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl GauntletRun {
    /// A pending run of `template_id`.
    pub fn new(tenant: TenantId, run_id: impl Into<String>, template_id: impl Into<String>, config_data: Value) -> Self {
        Self {
            tenant,
            run_id: run_id.into(),
            template_id: template_id.into(),
            status: RunStatus::Pending,
            config_data,
            result_data: None,
            queued_at: DateTime::<Utc>::UNIX_EPOCH,
            started_at: None,
            completed_at: None,
            triggered_by: None,
            workspace_id: None,
            tags: Vec::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

impl Document for GauntletRun {
    const TABLE: TableDef = TableDef {
        name: "gauntlet_runs",
        entity: "gauntlet run",
        id_field: "run_id",
        indexes: &[
            IndexSpec::text("status"),
            IndexSpec::text("template_id"),
            IndexSpec::text("workspace_id"),
            IndexSpec::time("queued_at"),
        ],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.run_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(self.status.as_str())),
            Some(IndexValue::from(&self.template_id)),
            self.workspace_id.as_ref().map(IndexValue::from),
            Some(IndexValue::Time(self.queued_at)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("template_id", &self.template_id)?;
        for (field, value) in [("triggered_by", &self.triggered_by), ("workspace_id", &self.workspace_id)] {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        check_tags(&self.tags)
    }
}

/// Checks a record's tags: at most [`MAX_TAGS`], each an id-like text.
pub(crate) fn check_tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(StorageError::invalid("tags", format!("{} tags; at most {MAX_TAGS}", tags.len())));
    }
    tags.iter().try_for_each(|tag| validate_id("tags", tag))
}

/// An active run's place in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRun {
    /// The run.
    pub run_id: String,
    /// Its status (running or pending).
    pub status: RunStatus,
    /// Its place among the runs of that status, oldest first, from 1.
    pub position: u32,
}

/// The queue as it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueAnalytics {
    /// Runs per status.
    pub counts: BTreeMap<RunStatus, u64>,
    /// The running runs, then the pending ones, each oldest first (at most
    /// [`MAX_ANALYTICS_RUNS`] of each status).
    pub active: Vec<QueuedRun>,
}

/// Gauntlet runs, per tenant. Lists run newest first (by `queued_at`, ties by id) with keyset
/// pages.
#[async_trait]
pub trait GauntletRunStore: Send + Sync + fmt::Debug {
    /// Queues a new run: pending, `queued_at` now, no start, end or result (whatever `run`
    /// says: those are the store's). `Conflict` if the id is taken, and the stored run is left as
    /// it was: a run is created once and then moved only by [`Self::update_status`].
    async fn save(&self, run: &GauntletRun) -> Result<GauntletRun>;
    /// The run.
    async fn get(&self, tenant: &TenantId, run_id: &str) -> Result<Option<GauntletRun>>;
    /// Whether the run exists.
    async fn exists(&self, tenant: &TenantId, run_id: &str) -> Result<bool> {
        Ok(self.get(tenant, run_id).await?.is_some())
    }
    /// Deletes a run; whether it existed.
    async fn delete(&self, tenant: &TenantId, run_id: &str) -> Result<bool>;
    /// One page of runs (of a status, of a template, both or all), newest first.
    async fn list(
        &self,
        tenant: &TenantId,
        status: Option<RunStatus>,
        template_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<GauntletRun>>;
    /// One page of the runs of a status, newest first.
    async fn list_by_status(&self, tenant: &TenantId, status: RunStatus, page: &PageRequest) -> Result<Page<GauntletRun>> {
        self.list(tenant, Some(status), None, page).await
    }
    /// One page of the runs of a template, newest first.
    async fn list_by_template(&self, tenant: &TenantId, template_id: &str, page: &PageRequest) -> Result<Page<GauntletRun>> {
        self.list(tenant, None, Some(template_id), page).await
    }
    /// One page of the pending and running runs, newest first.
    async fn list_active(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<GauntletRun>>;
    /// How many runs (of a status, or all).
    async fn count(&self, tenant: &TenantId, status: Option<RunStatus>) -> Result<u64>;
    /// Moves a run as [`RunStatus::may_become`] allows — `Conflict` otherwise (a final status
    /// never moves), and nothing changes; `NotFound` for no such run. Running stamps
    /// `started_at` once, a final status stamps `completed_at`; `result_data` replaces the stored
    /// result when given. Atomic: the check and the write are at one version, so among
    /// concurrent callers exactly one moves the run out of a status.
    async fn update_status(&self, tenant: &TenantId, run_id: &str, status: RunStatus, result_data: Option<Value>) -> Result<GauntletRun>;
    /// Counts per status (every status present, 0 included) and the active runs' places in the
    /// queue: running first, then pending, each oldest first from position 1 — the oldest
    /// [`MAX_ANALYTICS_RUNS`] of each status (the counts are exact).
    async fn get_queue_analytics(&self, tenant: &TenantId) -> Result<QueueAnalytics>;
}

/// [`GauntletRunStore`] on any backend.
pub struct GauntletRuns<B: ?Sized = dyn Engine> {
    runs: Table<GauntletRun>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(GauntletRuns { runs });

#[async_trait]
impl<B: ?Sized> GauntletRunStore for GauntletRuns<B> {
    async fn save(&self, run: &GauntletRun) -> Result<GauntletRun> {
        let mut run = run.clone();
        (run.status, run.started_at, run.completed_at, run.result_data) = (RunStatus::Pending, None, None, None);
        run.queued_at = self.runs.now();
        self.runs.insert(&run).await
    }

    async fn get(&self, tenant: &TenantId, run_id: &str) -> Result<Option<GauntletRun>> {
        self.runs.get(tenant, run_id).await
    }

    async fn delete(&self, tenant: &TenantId, run_id: &str) -> Result<bool> {
        self.runs.delete(tenant, run_id).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        status: Option<RunStatus>,
        template_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<GauntletRun>> {
        let mut filter = Filter::all();
        if let Some(status) = status {
            filter = filter.eq("status", status.as_str());
        }
        if let Some(template) = template_id {
            validate_id("template_id", template)?;
            filter = filter.eq("template_id", template);
        }
        self.runs.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("queued_at")), page).await
    }

    async fn list_active(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<GauntletRun>> {
        let filter = Filter::all().one_of("status", [RunStatus::Pending.as_str(), RunStatus::Running.as_str()]);
        self.runs.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("queued_at")), page).await
    }

    async fn count(&self, tenant: &TenantId, status: Option<RunStatus>) -> Result<u64> {
        let filter = status.map_or_else(Filter::all, |s| Filter::all().eq("status", s.as_str()));
        self.runs.count(Scope::Tenant(tenant), filter).await
    }

    async fn update_status(&self, tenant: &TenantId, run_id: &str, status: RunStatus, result_data: Option<Value>) -> Result<GauntletRun> {
        let now = self.runs.now();
        self.runs
            .patch(tenant, run_id, |run| {
                if !run.status.may_become(status) {
                    return Err(StorageError::conflict(
                        GauntletRun::TABLE.entity,
                        run_id,
                        format!("a {} run cannot become {}", run.status.as_str(), status.as_str()),
                    ));
                }
                run.status = status;
                if status == RunStatus::Running {
                    run.started_at.get_or_insert(now);
                }
                if status.is_final() {
                    run.completed_at = Some(now);
                }
                if let Some(result) = &result_data {
                    run.result_data = Some(result.clone());
                }
                Ok(())
            })
            .await
    }

    async fn get_queue_analytics(&self, tenant: &TenantId) -> Result<QueueAnalytics> {
        let mut analytics = QueueAnalytics::default();
        for status in RunStatus::ALL {
            analytics.counts.insert(status, self.count(tenant, Some(status)).await?);
        }
        for status in [RunStatus::Running, RunStatus::Pending] {
            let query = Query::new(Filter::all().eq("status", status.as_str())).order(Order::asc("queued_at"));
            let oldest = self.runs.list(Scope::Tenant(tenant), query, &PageRequest::first(MAX_ANALYTICS_RUNS)).await?;
            for (position, run) in (1..).zip(oldest.items) {
                analytics.active.push(QueuedRun { run_id: run.run_id, status, position });
            }
        }
        Ok(analytics)
    }
}
