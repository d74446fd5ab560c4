//! Finding workflows (catalogue #44): where each security finding of a tenant stands in triage,
//! who works on it and by when, moved only as the transition table allows.
//!
//! There is no whole-record save: every change is one call that the store applies at the
//! version it read (`Table::patch`) and records in the finding's history in the same write.
//! Concurrent transitions, assignments and comments are therefore applied one after another —
//! none lost — and a transition is checked against the state it really moves from.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::limits::check_instant;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::{Table, retry_contended};
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

/// The most events a finding's history keeps: past it, the oldest go (and are counted in
/// [`FindingWorkflow::history_dropped`]), so a finding never stops accepting changes.
pub const MAX_HISTORY: usize = 1_000;
/// The most findings one finding links to.
pub const MAX_LINKS: usize = 256;
/// The longest comment, in bytes.
pub const MAX_COMMENT_BYTES: usize = 16 * 1024;
/// The deepest chain of parents a finding may have.
pub const MAX_PARENT_DEPTH: usize = 64;

/// Where a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// Reported, not yet looked at.
    Open,
    /// Being triaged.
    Triaging,
    /// Being investigated.
    Investigating,
    /// Being fixed.
    Remediating,
    /// Fixed.
    Resolved,
    /// Not a real finding.
    FalsePositive,
    /// Known and accepted.
    AcceptedRisk,
    /// The same as another finding.
    Duplicate,
    /// Legacy: acknowledged (imported findings only; nothing moves a finding here).
    Acknowledged,
    /// Legacy: won't fix (imported findings only; nothing moves a finding here).
    WontFix,
}

impl FindingState {
    /// Every state.
    pub const ALL: [Self; 10] = [
        Self::Open,
        Self::Triaging,
        Self::Investigating,
        Self::Remediating,
        Self::Resolved,
        Self::FalsePositive,
        Self::AcceptedRisk,
        Self::Duplicate,
        Self::Acknowledged,
        Self::WontFix,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Triaging => "triaging",
            Self::Investigating => "investigating",
            Self::Remediating => "remediating",
            Self::Resolved => "resolved",
            Self::FalsePositive => "false_positive",
            Self::AcceptedRisk => "accepted_risk",
            Self::Duplicate => "duplicate",
            Self::Acknowledged => "acknowledged",
            Self::WontFix => "wont_fix",
        }
    }

    /// Whether work on the finding is over (so it is never overdue): resolved, a false positive,
    /// an accepted risk, a duplicate — and the legacy won't fix, an accepted risk by another name.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Resolved | Self::FalsePositive | Self::AcceptedRisk | Self::Duplicate | Self::WontFix)
    }

    /// Whether a finding in this state may move to `next`: the transition table.
    pub fn may_become(self, next: Self) -> bool {
        use FindingState::*;
        matches!(
            (self, next),
            (Open, Triaging | Investigating | FalsePositive | Duplicate)
                | (Triaging, Investigating | FalsePositive | AcceptedRisk | Duplicate | Open)
                | (Investigating, Remediating | FalsePositive | AcceptedRisk | Triaging)
                | (Remediating, Resolved | Investigating | AcceptedRisk)
                | (Resolved | FalsePositive | Duplicate, Open)
                | (AcceptedRisk, Open | Remediating)
                | (Acknowledged, Investigating | FalsePositive)
                | (WontFix, Open)
        )
    }
}

/// What happened to a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FindingChange {
    /// It entered the workflow in `state`.
    Created {
        /// Its first state.
        state: FindingState,
    },
    /// It moved.
    Transitioned {
        /// From.
        from: FindingState,
        /// To.
        to: FindingState,
    },
    /// It was assigned (to nobody: unassigned).
    Assigned {
        /// The assignee.
        to: Option<String>,
    },
    /// Its due date was set or cleared.
    DueDateSet {
        /// The due date.
        due: Option<DateTime<Utc>>,
    },
    /// Its priority was set.
    PrioritySet {
        /// The priority.
        priority: u8,
    },
    /// Someone commented.
    Commented,
    /// It was linked to another finding.
    Linked {
        /// The other finding.
        finding_id: String,
    },
    /// A link was removed.
    Unlinked {
        /// The other finding.
        finding_id: String,
    },
    /// Its parent was set or cleared.
    ParentSet {
        /// The parent.
        parent: Option<String>,
    },
}

/// One entry of a finding's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingEvent {
    /// When (the store's clock).
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub change: FindingChange,
    /// Why, in the actor's words.
    pub comment: Option<String>,
}

/// A finding's workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingWorkflow {
    /// The organisation.
    pub tenant: TenantId,
    /// The finding.
    pub finding_id: String,
    /// Where it stands.
    pub state: FindingState,
    /// Since when (the store's clock).
    pub state_since: DateTime<Utc>,
    /// Every change, oldest first (the latest [`MAX_HISTORY`]).
    pub history: Vec<FindingEvent>,
    /// How many of the oldest events made room for newer ones.
    #[serde(default)]
    pub history_dropped: u64,
    /// Who works on it.
    pub assigned_to: Option<String>,
    /// Who assigned them.
    pub assigned_by: Option<String>,
    /// When.
    pub assigned_at: Option<DateTime<Utc>>,
    /// When it is due.
    pub due_date: Option<DateTime<Utc>>,
    /// 1 (highest) to 5.
    pub priority: u8,
    /// Related findings of the tenant.
    pub linked_findings: BTreeSet<String>,
    /// The finding it is part of.
    pub parent_finding_id: Option<String>,
    /// Seconds spent in each state left so far.
    pub time_in_states: BTreeMap<FindingState, u64>,
    /// When it entered the workflow (the store's clock).
    pub opened_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When stored first.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for FindingWorkflow {
    const TABLE: TableDef = TableDef {
        name: "finding_workflows",
        entity: "finding workflow",
        id_field: "finding_id",
        indexes: &[
            IndexSpec::text("state"),
            IndexSpec::text("assigned_to"),
            IndexSpec::time("due_date"),
            IndexSpec::text("parent_finding_id"),
            IndexSpec::time("opened_at"),
        ],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.finding_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(self.state.as_str())),
            self.assigned_to.as_ref().map(IndexValue::from),
            self.due_date.map(IndexValue::Time),
            self.parent_finding_id.as_ref().map(IndexValue::from),
            Some(IndexValue::Time(self.opened_at)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("finding_id", &self.finding_id)?;
        check_priority(self.priority)?;
        for (field, value) in
            [("assigned_to", &self.assigned_to), ("assigned_by", &self.assigned_by), ("parent_finding_id", &self.parent_finding_id)]
        {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        if self.parent_finding_id.as_ref() == Some(&self.finding_id) {
            return Err(StorageError::invalid("parent_finding_id", "a finding cannot be its own parent"));
        }
        if self.linked_findings.len() > MAX_LINKS {
            return Err(StorageError::invalid("linked_findings", format!("{} links; at most {MAX_LINKS}", self.linked_findings.len())));
        }
        for linked in &self.linked_findings {
            validate_id("linked_findings", linked)?;
            if *linked == self.finding_id {
                return Err(StorageError::invalid("linked_findings", "a finding cannot link to itself"));
            }
        }
        if self.history.len() > MAX_HISTORY {
            return Err(StorageError::invalid("history", format!("holds {} events; at most {MAX_HISTORY}", self.history.len())));
        }
        Ok(())
    }
}

impl FindingWorkflow {
    /// Appends an event, making room by dropping the oldest.
    fn record(&mut self, event: FindingEvent) {
        self.history.push(event);
        let excess = self.history.len().saturating_sub(MAX_HISTORY);
        if excess > 0 {
            self.history.drain(..excess);
            self.history_dropped = self.history_dropped.saturating_add(u64::try_from(excess).unwrap_or(u64::MAX));
        }
    }
}

fn check_priority(priority: u8) -> Result<()> {
    if (1..=5).contains(&priority) {
        Ok(())
    } else {
        Err(StorageError::invalid("priority", format!("{priority}; must be 1 (highest) to 5")))
    }
}

fn check_comment(comment: &str) -> Result<()> {
    crate::limits::check_prose("comment", comment, MAX_COMMENT_BYTES)
}

/// A finding entering the workflow: [`FindingWorkflowStore::create`]'s input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFinding {
    /// The finding.
    pub finding_id: String,
    /// Its first state: open, or (importing) any other.
    pub state: FindingState,
    /// 1 (highest) to 5.
    pub priority: u8,
    /// When it is due.
    pub due_date: Option<DateTime<Utc>>,
    /// Who works on it.
    pub assigned_to: Option<String>,
    /// The finding it is part of (which must exist).
    pub parent_finding_id: Option<String>,
    /// Who enters it.
    pub actor: String,
}

impl NewFinding {
    /// An open finding of priority 3, unassigned, not due.
    pub fn new(finding_id: impl Into<String>, actor: impl Into<String>) -> Self {
        Self {
            finding_id: finding_id.into(),
            state: FindingState::Open,
            priority: 3,
            due_date: None,
            assigned_to: None,
            parent_finding_id: None,
            actor: actor.into(),
        }
    }
}

/// The workflows of findings, per tenant. Lists page newest first (by when a finding entered
/// the workflow), overdue findings soonest due first.
#[async_trait]
pub trait FindingWorkflowStore: Send + Sync + fmt::Debug {
    /// Enters a finding into the workflow. `Conflict` if it is in already (nothing changes: a
    /// finding is created once, then changed only by the calls below). A parent is checked as
    /// [`Self::set_parent`] checks it.
    async fn create(&self, tenant: &TenantId, finding: NewFinding) -> Result<FindingWorkflow>;
    /// The finding's workflow.
    async fn get(&self, tenant: &TenantId, finding_id: &str) -> Result<Option<FindingWorkflow>>;
    /// Removes the finding from the workflow; whether it was in. Its children keep naming it
    /// (an orphaned subtree, whose root is the child).
    async fn delete(&self, tenant: &TenantId, finding_id: &str) -> Result<bool>;
    /// Moves the finding to `to` if [`FindingState::may_become`] allows it from the state it is
    /// in when written — `Conflict` otherwise, and nothing changes — adding the time spent in the
    /// state left to [`FindingWorkflow::time_in_states`].
    async fn transition(
        &self,
        tenant: &TenantId,
        finding_id: &str,
        to: FindingState,
        actor: &str,
        comment: Option<&str>,
    ) -> Result<FindingWorkflow>;
    /// Assigns the finding to `assignee` (or nobody).
    async fn assign(&self, tenant: &TenantId, finding_id: &str, assignee: Option<&str>, actor: &str) -> Result<FindingWorkflow>;
    /// Sets or clears the due date.
    async fn set_due_date(&self, tenant: &TenantId, finding_id: &str, due: Option<DateTime<Utc>>, actor: &str) -> Result<FindingWorkflow>;
    /// Sets the priority, 1 (highest) to 5.
    async fn set_priority(&self, tenant: &TenantId, finding_id: &str, priority: u8, actor: &str) -> Result<FindingWorkflow>;
    /// Adds a comment to the history.
    async fn add_comment(&self, tenant: &TenantId, finding_id: &str, actor: &str, comment: &str) -> Result<FindingWorkflow>;
    /// Links the finding to another of the tenant's (which must exist); linking twice is one link.
    async fn link(&self, tenant: &TenantId, finding_id: &str, other: &str, actor: &str) -> Result<FindingWorkflow>;
    /// Removes a link (none is fine).
    async fn unlink(&self, tenant: &TenantId, finding_id: &str, other: &str, actor: &str) -> Result<FindingWorkflow>;
    /// Sets or clears the finding's parent, which must exist and must not be the finding or one of
    /// its descendants, nor make a chain deeper than [`MAX_PARENT_DEPTH`] (`InvalidInput`). The
    /// ancestors checked are written with the finding, at the versions read: two concurrent moves
    /// can never close a cycle.
    async fn set_parent(&self, tenant: &TenantId, finding_id: &str, parent: Option<&str>, actor: &str) -> Result<FindingWorkflow>;
    /// One page of every finding.
    async fn list_all(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<FindingWorkflow>>;
    /// One page of the findings in `state`.
    async fn list_by_state(&self, tenant: &TenantId, state: FindingState, page: &PageRequest) -> Result<Page<FindingWorkflow>>;
    /// One page of the findings assigned to `user`.
    async fn list_by_assignee(&self, tenant: &TenantId, user: &str, page: &PageRequest) -> Result<Page<FindingWorkflow>>;
    /// One page of the findings past their due date and not closed, soonest due first.
    async fn list_overdue(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<FindingWorkflow>>;
    /// One page of the findings whose parent is `parent`.
    async fn list_children(&self, tenant: &TenantId, parent: &str, page: &PageRequest) -> Result<Page<FindingWorkflow>>;
}

/// [`FindingWorkflowStore`] on any backend.
pub struct FindingWorkflows<B: ?Sized = dyn Engine> {
    findings: Table<FindingWorkflow>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(FindingWorkflows { findings });

impl<B: ?Sized> FindingWorkflows<B> {
    /// Applies `change` to the finding and appends `event` (with `comment`) to its history, in
    /// one write at the version read.
    async fn change(
        &self,
        tenant: &TenantId,
        finding_id: &str,
        actor: &str,
        comment: Option<&str>,
        change: impl Fn(&mut FindingWorkflow, DateTime<Utc>) -> Result<FindingChange> + Send + Sync,
    ) -> Result<FindingWorkflow> {
        validate_id("actor", actor)?;
        comment.map(check_comment).transpose()?;
        self.findings
            .patch(tenant, finding_id, |finding| {
                // Read on every attempt: a retry after a concurrent change is later than it.
                let now = self.findings.now();
                let change = change(finding, now)?;
                finding.record(FindingEvent { at: now, actor: actor.to_owned(), change, comment: comment.map(str::to_owned) });
                Ok(())
            })
            .await
    }

    /// The chain of parents from `parent` up, which must not reach `finding_id` (a cycle) nor be
    /// deeper than [`MAX_PARENT_DEPTH`]; `parent` must exist, a missing ancestor above it ends
    /// the chain (its subtree's root was deleted).
    async fn ancestors(&self, tenant: &TenantId, finding_id: &str, field: &str, parent: &str) -> Result<Vec<FindingWorkflow>> {
        let mut chain: Vec<FindingWorkflow> = Vec::new();
        let mut next = Some(parent.to_owned());
        while let Some(id) = next {
            if id == finding_id {
                return Err(StorageError::invalid(field, format!("`{parent}` is `{finding_id}` or one of its descendants")));
            }
            if chain.len() >= MAX_PARENT_DEPTH {
                return Err(StorageError::invalid(field, format!("`{parent}` has a chain of parents deeper than {MAX_PARENT_DEPTH}")));
            }
            let Some(ancestor) = self.findings.get(tenant, &id).await? else {
                if chain.is_empty() {
                    return Err(StorageError::invalid(field, format!("no finding `{}` in this tenant", parent.escape_debug())));
                }
                break;
            };
            next = ancestor.parent_finding_id.clone();
            chain.push(ancestor);
        }
        Ok(chain)
    }

    /// Writes `finding` (inserted when new) with the chain of ancestors it was checked against,
    /// each at the version read: if any was re-parented meanwhile, the unit fails and the caller
    /// checks again, so two concurrent moves can never close a cycle.
    async fn write_under(&self, finding: &FindingWorkflow, ancestors: &[FindingWorkflow], new: bool) -> Result<FindingWorkflow> {
        let mut unit = self.findings.unit(&finding.tenant);
        if new {
            unit.insert(&self.findings, finding)?;
        } else {
            unit.update(&self.findings, finding)?;
        }
        for ancestor in ancestors {
            unit.update(&self.findings, ancestor)?;
        }
        let applied = unit.commit().await?;
        Ok(crate::stores::written(finding.clone(), &applied, 0))
    }

    /// `other` is a finding of the tenant.
    async fn require(&self, tenant: &TenantId, field: &str, other: &str) -> Result<FindingWorkflow> {
        validate_id(field, other)?;
        self.findings
            .get(tenant, other)
            .await?
            .ok_or_else(|| StorageError::invalid(field, format!("no finding `{}` in this tenant", other.escape_debug())))
    }

    fn newest_first(filter: Filter) -> Query {
        Query::new(filter).order(Order::desc("opened_at"))
    }
}

#[async_trait]
impl<B: ?Sized> FindingWorkflowStore for FindingWorkflows<B> {
    async fn create(&self, tenant: &TenantId, finding: NewFinding) -> Result<FindingWorkflow> {
        validate_id("actor", &finding.actor)?;
        let now = self.findings.now();
        let due_date = finding.due_date.map(|due| check_instant("due_date", due)).transpose()?;
        let parent = finding.parent_finding_id.clone();
        let assigned = finding.assigned_to.is_some();
        let workflow = FindingWorkflow {
            tenant: tenant.clone(),
            finding_id: finding.finding_id,
            state: finding.state,
            state_since: now,
            history: vec![FindingEvent {
                at: now,
                actor: finding.actor.clone(),
                change: FindingChange::Created { state: finding.state },
                comment: None,
            }],
            history_dropped: 0,
            assigned_to: finding.assigned_to,
            assigned_by: assigned.then(|| finding.actor.clone()),
            assigned_at: assigned.then_some(now),
            due_date,
            priority: finding.priority,
            linked_findings: BTreeSet::new(),
            parent_finding_id: finding.parent_finding_id,
            time_in_states: BTreeMap::new(),
            opened_at: now,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        workflow.validate()?;
        let Some(parent) = parent else { return self.findings.insert(&workflow).await };
        retry_contended(|| async {
            // A finding deleted with its children still naming it may come back: the walk up
            // from its new parent must not meet it.
            let ancestors = self.ancestors(tenant, &workflow.finding_id, "parent_finding_id", &parent).await?;
            self.write_under(&workflow, &ancestors, true).await
        })
        .await
    }

    async fn get(&self, tenant: &TenantId, finding_id: &str) -> Result<Option<FindingWorkflow>> {
        self.findings.get(tenant, finding_id).await
    }

    async fn delete(&self, tenant: &TenantId, finding_id: &str) -> Result<bool> {
        self.findings.delete(tenant, finding_id).await
    }

    async fn transition(
        &self,
        tenant: &TenantId,
        finding_id: &str,
        to: FindingState,
        actor: &str,
        comment: Option<&str>,
    ) -> Result<FindingWorkflow> {
        self.change(tenant, finding_id, actor, comment, |finding, now| {
            let from = finding.state;
            if !from.may_become(to) {
                return Err(StorageError::conflict(
                    FindingWorkflow::TABLE.entity,
                    finding_id,
                    format!("a finding that is {} cannot become {}", from.as_str(), to.as_str()),
                ));
            }
            let spent = u64::try_from(now.signed_duration_since(finding.state_since).num_seconds()).unwrap_or(0);
            let total = finding.time_in_states.entry(from).or_insert(0);
            *total = total.saturating_add(spent);
            (finding.state, finding.state_since) = (to, now);
            Ok(FindingChange::Transitioned { from, to })
        })
        .await
    }

    async fn assign(&self, tenant: &TenantId, finding_id: &str, assignee: Option<&str>, actor: &str) -> Result<FindingWorkflow> {
        assignee.map(|user| validate_id("assignee", user)).transpose()?;
        self.change(tenant, finding_id, actor, None, |finding, now| {
            finding.assigned_to = assignee.map(str::to_owned);
            (finding.assigned_by, finding.assigned_at) = match assignee {
                Some(_) => (Some(actor.to_owned()), Some(now)),
                None => (None, None),
            };
            Ok(FindingChange::Assigned { to: finding.assigned_to.clone() })
        })
        .await
    }

    async fn set_due_date(&self, tenant: &TenantId, finding_id: &str, due: Option<DateTime<Utc>>, actor: &str) -> Result<FindingWorkflow> {
        let due = due.map(|due| check_instant("due_date", due)).transpose()?;
        self.change(tenant, finding_id, actor, None, |finding, _| {
            finding.due_date = due;
            Ok(FindingChange::DueDateSet { due })
        })
        .await
    }

    async fn set_priority(&self, tenant: &TenantId, finding_id: &str, priority: u8, actor: &str) -> Result<FindingWorkflow> {
        check_priority(priority)?;
        self.change(tenant, finding_id, actor, None, |finding, _| {
            finding.priority = priority;
            Ok(FindingChange::PrioritySet { priority })
        })
        .await
    }

    async fn add_comment(&self, tenant: &TenantId, finding_id: &str, actor: &str, comment: &str) -> Result<FindingWorkflow> {
        if comment.trim().is_empty() {
            return Err(StorageError::invalid("comment", "must not be empty"));
        }
        self.change(tenant, finding_id, actor, Some(comment), |_, _| Ok(FindingChange::Commented)).await
    }

    async fn link(&self, tenant: &TenantId, finding_id: &str, other: &str, actor: &str) -> Result<FindingWorkflow> {
        validate_id("finding_id", finding_id)?;
        if other == finding_id {
            return Err(StorageError::invalid("other", "a finding cannot link to itself"));
        }
        self.require(tenant, "other", other).await?;
        self.change(tenant, finding_id, actor, None, |finding, _| {
            finding.linked_findings.insert(other.to_owned());
            Ok(FindingChange::Linked { finding_id: other.to_owned() })
        })
        .await
    }

    async fn unlink(&self, tenant: &TenantId, finding_id: &str, other: &str, actor: &str) -> Result<FindingWorkflow> {
        validate_id("other", other)?;
        self.change(tenant, finding_id, actor, None, |finding, _| {
            finding.linked_findings.remove(other);
            Ok(FindingChange::Unlinked { finding_id: other.to_owned() })
        })
        .await
    }

    async fn set_parent(&self, tenant: &TenantId, finding_id: &str, parent: Option<&str>, actor: &str) -> Result<FindingWorkflow> {
        validate_id("finding_id", finding_id)?;
        validate_id("actor", actor)?;
        parent.map(|parent| validate_id("parent", parent)).transpose()?;
        retry_contended(|| async {
            let mut finding = self
                .findings
                .get(tenant, finding_id)
                .await?
                .ok_or_else(|| StorageError::not_found(FindingWorkflow::TABLE.entity, finding_id))?;
            let ancestors = match parent {
                Some(parent) => self.ancestors(tenant, finding_id, "parent", parent).await?,
                None => Vec::new(),
            };
            finding.parent_finding_id = parent.map(str::to_owned);
            let change = FindingChange::ParentSet { parent: finding.parent_finding_id.clone() };
            finding.record(FindingEvent { at: self.findings.now(), actor: actor.to_owned(), change, comment: None });
            self.write_under(&finding, &ancestors, false).await
        })
        .await
    }

    async fn list_all(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<FindingWorkflow>> {
        self.findings.list(Scope::Tenant(tenant), Self::newest_first(Filter::all()), page).await
    }

    async fn list_by_state(&self, tenant: &TenantId, state: FindingState, page: &PageRequest) -> Result<Page<FindingWorkflow>> {
        self.findings.list(Scope::Tenant(tenant), Self::newest_first(Filter::all().eq("state", state.as_str())), page).await
    }

    async fn list_by_assignee(&self, tenant: &TenantId, user: &str, page: &PageRequest) -> Result<Page<FindingWorkflow>> {
        validate_id("user", user)?;
        self.findings.list(Scope::Tenant(tenant), Self::newest_first(Filter::all().eq("assigned_to", user)), page).await
    }

    async fn list_overdue(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<FindingWorkflow>> {
        let open = FindingState::ALL.into_iter().filter(|state| !state.is_closed()).map(FindingState::as_str);
        let filter = Filter::all().lt("due_date", self.findings.now()).one_of("state", open);
        self.findings.list(Scope::Tenant(tenant), Query::new(filter).order(Order::asc("due_date")), page).await
    }

    async fn list_children(&self, tenant: &TenantId, parent: &str, page: &PageRequest) -> Result<Page<FindingWorkflow>> {
        validate_id("parent", parent)?;
        self.findings.list(Scope::Tenant(tenant), Self::newest_first(Filter::all().eq("parent_finding_id", parent)), page).await
    }
}
