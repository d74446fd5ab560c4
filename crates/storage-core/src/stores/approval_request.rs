//! Approval requests raised by workflow steps: a human approves or rejects each once, before its
//! deadline; past it, the request expires.
//!
//! `respond` is a conditional transition checked against the version read: among any number of
//! concurrent approvers exactly one decides, and the others are told it was decided.
//!
//! The deadline (`expires_at`) is an index, not the engine's expiry: an expired request stays
//! readable, with the status `expired`. A request is overdue from its deadline on (`expires_at
//! <= now`, the rule the engine's own expiry keeps), compared as instants, never as text: from
//! then `respond` refuses it, `list_expired` lists it and `expire_due` marks it expired.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::gauntlet_run::check_tags;
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;

/// Requests expired per unit of work by [`ApprovalRequestStore::expire_due`].
const EXPIRE_BATCH: u32 = 500;
/// The highest priority.
pub const HIGHEST_PRIORITY: u8 = 1;
/// The lowest priority.
pub const LOWEST_PRIORITY: u8 = 5;
/// The longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;
/// Spacing between priorities in the pending order: above any time in milliseconds.
const PRIORITY_STEP: i64 = 1_000_000_000_000_000;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Not decided before its deadline.
    Expired,
}

impl RequestStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }
}

/// An approval request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The organisation.
    pub tenant: TenantId,
    /// The request's id.
    pub request_id: String,
    /// The workflow that asks.
    pub workflow_id: String,
    /// Its step.
    pub step_id: String,
    /// What is asked.
    pub title: String,
    /// Where it stands (set by the store).
    pub status: RequestStatus,
    /// More about it.
    pub description: Option<String>,
    /// What the workflow hands the approver.
    pub request_data: Value,
    /// What the approver answered.
    pub response_data: Option<Value>,
    /// Who asks.
    pub requester_id: Option<String>,
    /// Who decided (set by the store).
    pub responder_id: Option<String>,
    /// The deadline for a decision.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was decided or expired (set by the store).
    pub responded_at: Option<DateTime<Utc>>,
    /// Its workspace.
    pub workspace_id: Option<String>,
    /// 1 (highest) to 5 (lowest).
    pub priority: u8,
    /// Labels.
    pub tags: Vec<String>,
    /// When it was asked (set by the store).
    pub requested_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When created.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl ApprovalRequest {
    /// A pending request of priority 3.
    pub fn new(
        tenant: TenantId,
        request_id: impl Into<String>,
        workflow_id: impl Into<String>,
        step_id: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        Self {
            tenant,
            request_id: request_id.into(),
            workflow_id: workflow_id.into(),
            step_id: step_id.into(),
            title: title.into(),
            status: RequestStatus::Pending,
            description: None,
            request_data: Value::Null,
            response_data: None,
            requester_id: None,
            responder_id: None,
            expires_at: None,
            responded_at: None,
            workspace_id: None,
            priority: 3,
            tags: Vec::new(),
            requested_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// The pending order: priority first, then newest first; set only while pending.
    fn pending_rank(&self) -> Option<i64> {
        let newest_first = PRIORITY_STEP.saturating_sub(self.requested_at.timestamp_millis().clamp(0, PRIORITY_STEP.saturating_sub(1)));
        (self.status == RequestStatus::Pending).then(|| i64::from(self.priority).saturating_mul(PRIORITY_STEP).saturating_add(newest_first))
    }
}

impl Document for ApprovalRequest {
    const TABLE: TableDef = TableDef {
        name: "approval_requests",
        entity: "approval request",
        id_field: "request_id",
        indexes: &[
            IndexSpec::text("status"),
            IndexSpec::text("workflow_id"),
            IndexSpec::text("workspace_id"),
            IndexSpec::time("deadline"),
            IndexSpec::time("requested_at"),
            IndexSpec::int("pending_rank"),
        ],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.request_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(self.status.as_str())),
            Some(IndexValue::from(&self.workflow_id)),
            self.workspace_id.as_ref().map(IndexValue::from),
            self.expires_at.map(IndexValue::Time),
            Some(IndexValue::Time(self.requested_at)),
            self.pending_rank().map(IndexValue::Int),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("workflow_id", &self.workflow_id)?;
        validate_id("step_id", &self.step_id)?;
        if self.title.trim().is_empty() {
            return Err(StorageError::invalid("title", "must not be empty"));
        }
        crate::limits::check_text("title", &self.title)?;
        check_prose("description", self.description.as_deref(), MAX_DESCRIPTION_BYTES)?;
        if let Some(deadline) = self.expires_at {
            crate::limits::check_instant("expires_at", deadline)?;
        }
        for (field, value) in
            [("requester_id", &self.requester_id), ("responder_id", &self.responder_id), ("workspace_id", &self.workspace_id)]
        {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        if !(HIGHEST_PRIORITY..=LOWEST_PRIORITY).contains(&self.priority) {
            return Err(StorageError::invalid("priority", format!("{} is outside {HIGHEST_PRIORITY} to {LOWEST_PRIORITY}", self.priority)));
        }
        check_tags(&self.tags)
    }
}

/// Free text kept in the body, never indexed: lines and tabs are fine, other control characters
/// and more than `max` bytes are not.
pub(crate) fn check_prose(field: &str, text: Option<&str>, max: usize) -> Result<()> {
    let Some(text) = text else { return Ok(()) };
    if text.len() > max {
        return Err(StorageError::invalid(field, format!("is {} bytes long; the limit is {max}", text.len())));
    }
    if let Some(c) = text.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(StorageError::invalid(field, format!("contains the control character {c:?}")));
    }
    Ok(())
}

/// How an approver decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalResponse {
    /// Yes.
    Approve,
    /// No.
    Reject,
}

/// Approval requests.
#[async_trait]
pub trait ApprovalRequestStore: Send + Sync + fmt::Debug {
    /// Raises a request (pending); `Conflict` if the id is taken.
    async fn create(&self, request: &ApprovalRequest) -> Result<ApprovalRequest>;
    /// The request.
    async fn get(&self, tenant: &TenantId, request_id: &str) -> Result<Option<ApprovalRequest>>;
    /// Deletes a request; whether it existed.
    async fn delete(&self, tenant: &TenantId, request_id: &str) -> Result<bool>;
    /// One page of requests (of a status, of a workflow, both or all), newest first (ties by id).
    async fn list(
        &self,
        tenant: &TenantId,
        status: Option<RequestStatus>,
        workflow_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ApprovalRequest>>;
    /// One page of the requests of a status, newest first.
    async fn list_by_status(&self, tenant: &TenantId, status: RequestStatus, page: &PageRequest) -> Result<Page<ApprovalRequest>> {
        self.list(tenant, Some(status), None, page).await
    }
    /// One page of the requests of a workflow, newest first.
    async fn list_by_workflow(&self, tenant: &TenantId, workflow_id: &str, page: &PageRequest) -> Result<Page<ApprovalRequest>> {
        self.list(tenant, None, Some(workflow_id), page).await
    }
    /// One page of the pending requests: highest priority (1) first, then newest (to the
    /// millisecond), then by id — one integer index set only while pending, so pages are stable
    /// and a decided request leaves the list. An overdue request not yet swept by
    /// [`Self::expire_due`] is still listed (and `respond` refuses it).
    async fn list_pending(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ApprovalRequest>>;
    /// One page of the pending requests at or past their deadline, soonest deadline first.
    async fn list_expired(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ApprovalRequest>>;
    /// Decides a pending request before its deadline, once: `Conflict` if it was decided or
    /// expired (among concurrent approvers, exactly one decides).
    async fn respond(
        &self,
        tenant: &TenantId,
        request_id: &str,
        decision: ApprovalResponse,
        responder_id: &str,
        response_data: Option<Value>,
    ) -> Result<ApprovalRequest>;
    /// Marks the pending requests at or past their deadline expired (stamping `responded_at`),
    /// in one tenant or — a maintenance sweep for a scheduler — in all of them; how many. Each
    /// is a conditional transition like `respond`, so a request decided meanwhile stays decided.
    async fn expire_due(&self, scope: Scope<'_>) -> Result<u64>;
}

/// [`ApprovalRequestStore`] on any backend.
pub struct ApprovalRequests<B: ?Sized = dyn Engine> {
    requests: Table<ApprovalRequest>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(ApprovalRequests { requests });

fn overdue(now: DateTime<Utc>) -> Filter {
    Filter::all().eq("status", RequestStatus::Pending.as_str()).le("deadline", now)
}

#[async_trait]
impl<B: ?Sized> ApprovalRequestStore for ApprovalRequests<B> {
    async fn create(&self, request: &ApprovalRequest) -> Result<ApprovalRequest> {
        let mut request = request.clone();
        (request.status, request.responder_id, request.responded_at, request.response_data) = (RequestStatus::Pending, None, None, None);
        request.requested_at = self.requests.now();
        self.requests.insert(&request).await
    }

    async fn get(&self, tenant: &TenantId, request_id: &str) -> Result<Option<ApprovalRequest>> {
        self.requests.get(tenant, request_id).await
    }

    async fn delete(&self, tenant: &TenantId, request_id: &str) -> Result<bool> {
        self.requests.delete(tenant, request_id).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        status: Option<RequestStatus>,
        workflow_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ApprovalRequest>> {
        let mut filter = Filter::all();
        if let Some(status) = status {
            filter = filter.eq("status", status.as_str());
        }
        if let Some(workflow) = workflow_id {
            validate_id("workflow_id", workflow)?;
            filter = filter.eq("workflow_id", workflow);
        }
        self.requests.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("requested_at")), page).await
    }

    async fn list_pending(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ApprovalRequest>> {
        self.requests.list(Scope::Tenant(tenant), Query::new(Filter::all()).order(Order::asc("pending_rank")), page).await
    }

    async fn list_expired(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ApprovalRequest>> {
        let query = Query::new(overdue(self.requests.now())).order(Order::asc("deadline"));
        self.requests.list(Scope::Tenant(tenant), query, page).await
    }

    async fn respond(
        &self,
        tenant: &TenantId,
        request_id: &str,
        decision: ApprovalResponse,
        responder_id: &str,
        response_data: Option<Value>,
    ) -> Result<ApprovalRequest> {
        validate_id("responder_id", responder_id)?;
        let now = self.requests.now();
        self.requests
            .patch(tenant, request_id, |request| {
                let refused = |why: String| Err(StorageError::conflict(ApprovalRequest::TABLE.entity, request_id, why));
                if request.status != RequestStatus::Pending {
                    return refused(format!("was already {}", request.status.as_str()));
                }
                if request.expires_at.is_some_and(|deadline| deadline <= now) {
                    return refused("its deadline has passed".to_owned());
                }
                request.status = match decision {
                    ApprovalResponse::Approve => RequestStatus::Approved,
                    ApprovalResponse::Reject => RequestStatus::Rejected,
                };
                (request.responder_id, request.responded_at) = (Some(responder_id.to_owned()), Some(now));
                request.response_data.clone_from(&response_data);
                Ok(())
            })
            .await
    }

    async fn expire_due(&self, scope: Scope<'_>) -> Result<u64> {
        let now = self.requests.now();
        let mut expired = 0u64;
        let mut request_page = PageRequest::first(EXPIRE_BATCH);
        loop {
            // A keyset walk by id: what this pass expires leaves the filter without moving the
            // position, and one it could not expire (decided meanwhile) is not visited again.
            let due = self.requests.list(scope, Query::new(overdue(now)), &request_page).await?;
            for request in &due.items {
                let outcome = self
                    .requests
                    .patch(&request.tenant, &request.request_id, |current| {
                        if current.status != RequestStatus::Pending || current.expires_at.is_none_or(|deadline| deadline > now) {
                            return Err(StorageError::conflict(ApprovalRequest::TABLE.entity, &request.request_id, "decided meanwhile"));
                        }
                        (current.status, current.responded_at) = (RequestStatus::Expired, Some(now));
                        Ok(())
                    })
                    .await;
                match outcome {
                    Ok(_) => expired = expired.saturating_add(1),
                    // Decided or deleted since it was listed: it is not due any more.
                    Err(StorageError::Conflict { .. } | StorageError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            match request_page.next(due.next.as_ref()) {
                Some(next) => request_page = next,
                None => return Ok(expired),
            }
        }
    }
}
