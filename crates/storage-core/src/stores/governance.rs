//! Governance records of an organisation: approval requests (a state machine with one winning
//! decision and a timeout), claim verifications, and debate decisions.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::limits::add;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// Where an approval request stands. A pending request past its deadline reads as
/// [`ApprovalStatus::Expired`], and no decision can be taken on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Not decided in time.
    Expired,
    /// Withdrawn by the requester.
    Cancelled,
}

impl ApprovalStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A request for approval of a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The organisation.
    pub tenant: TenantId,
    /// The request's id.
    pub id: String,
    /// What is asked.
    pub title: String,
    /// Why.
    pub description: String,
    /// The risk (`low`, `medium`, `high`, `critical`, ...).
    pub risk_level: String,
    /// Where it stands (as stored; see [`Approval::status_at`]).
    pub status: ApprovalStatus,
    /// Who asked.
    pub requested_by: String,
    /// When it was asked (set by the store).
    pub requested_at: DateTime<Utc>,
    /// The changes to approve, as the application describes them.
    pub changes: Value,
    /// How long a decision may take.
    pub timeout_seconds: u32,
    /// The deadline: `requested_at + timeout_seconds` (set by the store).
    pub expires_at: DateTime<Utc>,
    /// Who decided (or cancelled).
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was rejected.
    pub rejection_reason: Option<String>,
    /// The workspace within the organisation.
    pub workspace_id: Option<String>,
    /// Anything else.
    pub metadata: Map<String, Value>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When stored.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Approval {
    /// A pending request.
    pub fn new(
        tenant: TenantId,
        id: impl Into<String>,
        title: impl Into<String>,
        requested_by: impl Into<String>,
        timeout_seconds: u32,
    ) -> Self {
        Self {
            tenant,
            id: id.into(),
            title: title.into(),
            description: String::new(),
            risk_level: "medium".into(),
            status: ApprovalStatus::Pending,
            requested_by: requested_by.into(),
            requested_at: DateTime::<Utc>::UNIX_EPOCH,
            changes: Value::Null,
            timeout_seconds,
            expires_at: DateTime::<Utc>::UNIX_EPOCH,
            decided_by: None,
            decided_at: None,
            rejection_reason: None,
            workspace_id: None,
            metadata: Map::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// The status at `now`: pending past the deadline is expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> ApprovalStatus {
        match self.status {
            ApprovalStatus::Pending if now >= self.expires_at => ApprovalStatus::Expired,
            status => status,
        }
    }
}

/// A decision on an approval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// Approve it.
    Approve {
        /// Who approves.
        by: String,
    },
    /// Reject it.
    Reject {
        /// Who rejects.
        by: String,
        /// Why.
        reason: String,
    },
    /// Withdraw it.
    Cancel {
        /// Who withdraws.
        by: String,
    },
}

/// A verification of a claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// The organisation.
    pub tenant: TenantId,
    /// The verification's id.
    pub id: String,
    /// The claim verified.
    pub claim: String,
    /// Its kind.
    pub claim_type: Option<String>,
    /// The context it was made in.
    pub context: String,
    /// The result, as the verifier produced it.
    pub result: Value,
    /// Who (or what) verified it.
    pub verified_by: String,
    /// Confidence, 0 to 1.
    pub confidence: f64,
    /// The proof, if any.
    pub proof_tree: Option<Value>,
    /// The workspace within the organisation.
    pub workspace_id: Option<String>,
    /// When it was verified (set by the store).
    pub at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When stored.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When stored.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

/// The decision a debate reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The organisation.
    pub tenant: TenantId,
    /// The decision's id.
    pub id: String,
    /// The debate.
    pub debate_id: String,
    /// What was concluded.
    pub conclusion: String,
    /// Whether the agents reached consensus.
    pub consensus_reached: bool,
    /// Confidence, 0 to 1.
    pub confidence: f64,
    /// The evidence, vote pivots and belief changes, as the debate engine produced them.
    pub evidence: Value,
    /// The agents involved.
    pub agents_involved: Vec<String>,
    /// The workspace within the organisation.
    pub workspace_id: Option<String>,
    /// Anything else.
    pub metadata: Map<String, Value>,
    /// When it was decided (set by the store).
    pub at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When stored.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When stored.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

fn check_confidence(confidence: f64) -> Result<()> {
    if (0.0..=1.0).contains(&confidence) {
        Ok(())
    } else {
        Err(StorageError::invalid("confidence", format!("{confidence} is outside 0 to 1")))
    }
}

fn check_optional(field: &str, value: Option<&String>) -> Result<()> {
    value.map_or(Ok(()), |value| validate_id(field, value))
}

impl Document for Approval {
    const TABLE: TableDef = TableDef {
        name: "approvals",
        entity: "approval",
        id_field: "approval_id",
        indexes: &[
            IndexSpec::text("status"),
            IndexSpec::text("risk_level"),
            IndexSpec::time("requested_at"),
            IndexSpec::time("expires_at"),
        ],
        expires: false,
        sealed: false,
        search: false,
    };
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(self.status.as_str())),
            Some(IndexValue::from(&self.risk_level)),
            Some(IndexValue::Time(self.requested_at)),
            Some(IndexValue::Time(self.expires_at)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("approval_id", &self.id)?;
        crate::limits::check_text("title", &self.title)?;
        validate_id("risk_level", &self.risk_level)?;
        validate_id("requested_by", &self.requested_by)?;
        check_optional("decided_by", self.decided_by.as_ref())?;
        check_optional("workspace_id", self.workspace_id.as_ref())?;
        if self.timeout_seconds == 0 {
            return Err(StorageError::invalid("timeout_seconds", "must be positive"));
        }
        Ok(())
    }
}

impl Document for Verification {
    const TABLE: TableDef = TableDef {
        name: "verifications",
        entity: "verification",
        id_field: "verification_id",
        indexes: &[IndexSpec::text("claim_type"), IndexSpec::time("at")],
        expires: false,
        sealed: false,
        search: false,
    };
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![self.claim_type.as_ref().map(IndexValue::from), Some(IndexValue::Time(self.at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("verification_id", &self.id)?;
        check_optional("claim_type", self.claim_type.as_ref())?;
        validate_id("verified_by", &self.verified_by)?;
        check_optional("workspace_id", self.workspace_id.as_ref())?;
        check_confidence(self.confidence)
    }
}

impl Document for Decision {
    const TABLE: TableDef = TableDef {
        name: "decisions",
        entity: "decision",
        id_field: "decision_id",
        indexes: &[IndexSpec::text("debate_id"), IndexSpec::bool("consensus_reached"), IndexSpec::time("at")],
        expires: false,
        sealed: false,
        search: false,
    };
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.debate_id)), Some(IndexValue::Bool(self.consensus_reached)), Some(IndexValue::Time(self.at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("decision_id", &self.id)?;
        validate_id("debate_id", &self.debate_id)?;
        check_optional("workspace_id", self.workspace_id.as_ref())?;
        for agent in &self.agents_involved {
            validate_id("agent", agent)?;
        }
        check_confidence(self.confidence)
    }
}

/// How long each kind of governance record is kept by [`GovernanceStore::cleanup_old_records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GovernanceRetention {
    /// Decided, expired or cancelled approvals (by request time).
    pub approvals: TimeDelta,
    /// Verifications.
    pub verifications: TimeDelta,
    /// Decisions.
    pub decisions: TimeDelta,
}

impl Default for GovernanceRetention {
    /// 30, 7 and 90 days.
    fn default() -> Self {
        Self { approvals: TimeDelta::days(30), verifications: TimeDelta::days(7), decisions: TimeDelta::days(90) }
    }
}

/// Approvals, verifications and decisions.
#[async_trait]
pub trait GovernanceStore: Send + Sync + fmt::Debug {
    /// Files an approval request (pending; its deadline set from its timeout); `Conflict` if
    /// its id is taken.
    async fn save_approval(&self, approval: &Approval) -> Result<Approval>;
    /// Decides a pending request: exactly one decision wins; a request already decided,
    /// cancelled or past its deadline is a `Conflict`.
    async fn decide_approval(&self, tenant: &TenantId, id: &str, decision: ApprovalDecision) -> Result<Approval>;
    /// The request with this id.
    async fn get_approval(&self, tenant: &TenantId, id: &str) -> Result<Option<Approval>>;
    /// One page of requests, newest first, of one status and risk or all (a status of
    /// `Expired` lists the requests whose deadline passed undecided).
    async fn list_approvals(
        &self,
        tenant: &TenantId,
        status: Option<ApprovalStatus>,
        risk_level: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Approval>>;
    /// Marks every undecided request past its deadline expired, in every tenant; how many.
    async fn expire_overdue(&self) -> Result<u64>;
    /// Deletes a request; whether it existed.
    async fn delete_approval(&self, tenant: &TenantId, id: &str) -> Result<bool>;
    /// Records a verification (write-once).
    async fn save_verification(&self, verification: &Verification) -> Result<Verification>;
    /// The verification with this id.
    async fn get_verification(&self, tenant: &TenantId, id: &str) -> Result<Option<Verification>>;
    /// One page of verifications, newest first, of one claim type or all.
    async fn list_verifications(&self, tenant: &TenantId, claim_type: Option<&str>, page: &PageRequest) -> Result<Page<Verification>>;
    /// Records a decision (write-once).
    async fn save_decision(&self, decision: &Decision) -> Result<Decision>;
    /// The decision with this id.
    async fn get_decision(&self, tenant: &TenantId, id: &str) -> Result<Option<Decision>>;
    /// Every decision of a debate, newest first.
    async fn get_decisions_for_debate(&self, tenant: &TenantId, debate_id: &str) -> Result<Vec<Decision>>;
    /// One page of decisions, newest first; with `consensus_only`, those that reached consensus.
    async fn list_decisions(&self, tenant: &TenantId, consensus_only: bool, page: &PageRequest) -> Result<Page<Decision>>;
    /// Deletes the records older than their retention, in every tenant (pending approvals are
    /// kept); how many.
    async fn cleanup_old_records(&self, retention: GovernanceRetention) -> Result<u64>;
}

/// [`GovernanceStore`] on any backend.
pub struct Governance<B: ?Sized = dyn Engine> {
    approvals: Table<Approval>,
    verifications: Table<Verification>,
    decisions: Table<Decision>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Governance { approvals, verifications, decisions });

#[async_trait]
impl<B: ?Sized> GovernanceStore for Governance<B> {
    async fn save_approval(&self, approval: &Approval) -> Result<Approval> {
        let now = self.approvals.now();
        let mut approval = approval.clone();
        (approval.status, approval.requested_at) = (ApprovalStatus::Pending, now);
        (approval.decided_by, approval.decided_at, approval.rejection_reason) = (None, None, None);
        approval.expires_at = add("timeout_seconds", now, TimeDelta::seconds(i64::from(approval.timeout_seconds)))?;
        self.approvals.insert(&approval).await
    }

    async fn decide_approval(&self, tenant: &TenantId, id: &str, decision: ApprovalDecision) -> Result<Approval> {
        let (to, by, reason) = match &decision {
            ApprovalDecision::Approve { by } => (ApprovalStatus::Approved, by, None),
            ApprovalDecision::Reject { by, reason } => (ApprovalStatus::Rejected, by, Some(reason.clone())),
            ApprovalDecision::Cancel { by } => (ApprovalStatus::Cancelled, by, None),
        };
        validate_id("decided_by", by)?;
        let now = self.approvals.now();
        self.approvals
            .patch(tenant, id, |approval| match approval.status_at(now) {
                ApprovalStatus::Pending => {
                    approval.status = to;
                    (approval.decided_by, approval.decided_at, approval.rejection_reason) = (Some(by.clone()), Some(now), reason.clone());
                    Ok(())
                }
                status => Err(StorageError::conflict(Approval::TABLE.entity, id, format!("the request is {}", status.as_str()))),
            })
            .await
    }

    async fn get_approval(&self, tenant: &TenantId, id: &str) -> Result<Option<Approval>> {
        self.approvals.get(tenant, id).await
    }

    async fn list_approvals(
        &self,
        tenant: &TenantId,
        status: Option<ApprovalStatus>,
        risk_level: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Approval>> {
        let now = self.approvals.now();
        let mut filter = match status {
            None => Filter::all(),
            Some(ApprovalStatus::Pending) => Filter::all().eq("status", "pending").gt("expires_at", now),
            Some(ApprovalStatus::Expired) => Filter::all().one_of("status", ["pending", "expired"]).le("expires_at", now),
            Some(status) => Filter::all().eq("status", status.as_str()),
        };
        if let Some(risk) = risk_level {
            validate_id("risk_level", risk)?;
            filter = filter.eq("risk_level", risk);
        }
        self.approvals.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("requested_at")), page).await
    }

    async fn expire_overdue(&self) -> Result<u64> {
        let now = self.approvals.now();
        let overdue = Query::new(Filter::all().eq("status", "pending").le("expires_at", now));
        let mut expired = 0u64;
        for approval in self.approvals.list_all(Scope::AllTenants, overdue).await? {
            let moved = self
                .approvals
                .patch(&approval.tenant, &approval.id, |a| {
                    if a.status_at(now) == ApprovalStatus::Expired && a.status == ApprovalStatus::Pending {
                        a.status = ApprovalStatus::Expired;
                    }
                    Ok(())
                })
                .await;
            match moved {
                Ok(_) => expired = expired.saturating_add(1),
                Err(StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    async fn delete_approval(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        self.approvals.delete(tenant, id).await
    }

    async fn save_verification(&self, verification: &Verification) -> Result<Verification> {
        let mut verification = verification.clone();
        verification.at = self.verifications.now();
        self.verifications.insert(&verification).await
    }

    async fn get_verification(&self, tenant: &TenantId, id: &str) -> Result<Option<Verification>> {
        self.verifications.get(tenant, id).await
    }

    async fn list_verifications(&self, tenant: &TenantId, claim_type: Option<&str>, page: &PageRequest) -> Result<Page<Verification>> {
        let filter = match claim_type {
            Some(kind) => {
                validate_id("claim_type", kind)?;
                Filter::all().eq("claim_type", kind)
            }
            None => Filter::all(),
        };
        self.verifications.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("at")), page).await
    }

    async fn save_decision(&self, decision: &Decision) -> Result<Decision> {
        let mut decision = decision.clone();
        decision.at = self.decisions.now();
        self.decisions.insert(&decision).await
    }

    async fn get_decision(&self, tenant: &TenantId, id: &str) -> Result<Option<Decision>> {
        self.decisions.get(tenant, id).await
    }

    async fn get_decisions_for_debate(&self, tenant: &TenantId, debate_id: &str) -> Result<Vec<Decision>> {
        validate_id("debate_id", debate_id)?;
        let query = Query::new(Filter::all().eq("debate_id", debate_id)).order(Order::desc("at"));
        self.decisions.list_all(Scope::Tenant(tenant), query).await
    }

    async fn list_decisions(&self, tenant: &TenantId, consensus_only: bool, page: &PageRequest) -> Result<Page<Decision>> {
        let filter = if consensus_only { Filter::all().eq("consensus_reached", true) } else { Filter::all() };
        self.decisions.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("at")), page).await
    }

    async fn cleanup_old_records(&self, retention: GovernanceRetention) -> Result<u64> {
        let now = self.approvals.now();
        let cutoff = |age: TimeDelta| {
            if age < TimeDelta::zero() {
                return Err(StorageError::invalid("retention", "must not be negative"));
            }
            crate::limits::sub("retention", now, age)
        };
        let settled = Filter::all()
            .one_of("status", ["approved", "rejected", "expired", "cancelled"])
            .lt("requested_at", cutoff(retention.approvals)?);
        let mut removed = self.approvals.delete_where(Scope::AllTenants, settled).await?;
        let overdue = Filter::all().eq("status", "pending").lt("expires_at", cutoff(retention.approvals)?);
        removed = removed.saturating_add(self.approvals.delete_where(Scope::AllTenants, overdue).await?);
        removed = removed.saturating_add(
            self.verifications.delete_where(Scope::AllTenants, Filter::all().lt("at", cutoff(retention.verifications)?)).await?,
        );
        removed = removed
            .saturating_add(self.decisions.delete_where(Scope::AllTenants, Filter::all().lt("at", cutoff(retention.decisions)?)).await?);
        Ok(removed)
    }
}
