//! Admin impersonation (catalogue #43): sessions keyed by the SHA-256 digest of their bearer id,
//! started and ended once, and every step written to the platform's append-only, hash-chained
//! audit log in the same atomic unit as the session change it records.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::{Engine, Store};
use crate::limits::{add, sub};
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::audit::{Audit, AuditEntry, AuditEvent, AuditQuery, AuditStore};
use crate::stores::user::{normalize_email, system};
use crate::table::{Table, int_value};
use crate::token::{generate_token, hash_token};
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// What a session id looks like: `imp_` and 43 random characters.
pub const SESSION_ID_PREFIX: &str = "imp_";
/// The longest session.
pub const MAX_SESSION_TTL: TimeDelta = TimeDelta::hours(8);
/// The longest reason, in bytes.
pub const MAX_REASON_BYTES: usize = 2_048;
/// The audit actions this store writes: `impersonation.start`, `.action`, `.end`, `.timeout`,
/// `.denied` and `.retention`.
pub const AUDIT_PREFIX: &str = "impersonation.";
/// How often a session change reads again when the session or the audit chain moved under it.
const CHANGE_ATTEMPTS: usize = 32;
/// The most sessions one sweep or list handles.
const BATCH: u32 = 1_000;

/// One impersonation: an admin acting as a user, until it ends or times out (in the system
/// tenant, by the digest of its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpersonationSession {
    /// The SHA-256 digest of the session id.
    pub session_digest: String,
    /// The admin.
    pub admin_id: String,
    /// The admin's email, lower-cased.
    pub admin_email: String,
    /// The impersonated user.
    pub target_id: String,
    /// The user's email, lower-cased.
    pub target_email: String,
    /// Why (required).
    pub reason: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it times out.
    pub expires_at: DateTime<Utc>,
    /// Actions the admin performed in it.
    #[serde(default)]
    pub actions_performed: u64,
    /// When it ended (or timed out).
    pub ended_at: Option<DateTime<Utc>>,
    /// Who ended it (`timeout` when it timed out).
    pub ended_by: Option<String>,
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

impl ImpersonationSession {
    /// Whether it is running at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && now < self.expires_at
    }
}

impl Document for ImpersonationSession {
    const TABLE: TableDef = TableDef {
        name: "impersonation_sessions",
        entity: "impersonation session",
        id_field: "session_id",
        indexes: &[
            IndexSpec::text("admin_id"),
            IndexSpec::text("target_id"),
            IndexSpec::time("started_at"),
            IndexSpec::time("session_expires_at"),
            IndexSpec::time("ended_at"),
            IndexSpec::counter("actions_performed"),
        ],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        self.session_digest.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(&self.admin_id)),
            Some(IndexValue::from(&self.target_id)),
            Some(IndexValue::Time(self.started_at)),
            Some(IndexValue::Time(self.expires_at)),
            self.ended_at.map(IndexValue::Time),
            Some(int_value(self.actions_performed)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("session_id", &self.session_digest)?;
        validate_id("admin_id", &self.admin_id)?;
        validate_id("target_id", &self.target_id)?;
        normalize_email("admin_email", &self.admin_email)?;
        normalize_email("target_email", &self.target_email)?;
        if self.reason.trim().is_empty() || self.reason.len() > MAX_REASON_BYTES || self.reason.contains('\0') {
            return Err(StorageError::invalid("reason", format!("is required, at most {MAX_REASON_BYTES} bytes, without NUL")));
        }
        if let Some(by) = &self.ended_by {
            validate_id("ended_by", by)?;
        }
        Ok(())
    }
    fn set_counter(&mut self, _column: &str, value: i64) -> Result<()> {
        self.actions_performed = u64::try_from(value).map_err(|_| StorageError::invalid("actions_performed", "is negative"))?;
        Ok(())
    }
}

/// A session to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImpersonation {
    /// The admin.
    pub admin_id: String,
    /// The admin's email.
    pub admin_email: String,
    /// The user to act as.
    pub target_id: String,
    /// The user's email.
    pub target_email: String,
    /// Why (required; kept in the session and the audit log).
    pub reason: String,
    /// How long it may last (at most [`MAX_SESSION_TTL`]).
    pub ttl: TimeDelta,
    /// The admin's address (sealed in the audit log).
    pub ip_address: Option<String>,
    /// The admin's user agent (sealed in the audit log).
    pub user_agent: Option<String>,
}

/// A started session and its id, which is shown only here.
#[derive(Debug, Clone)]
pub struct StartedSession {
    /// The bearer id of the session.
    pub session_id: Secret<String>,
    /// The session.
    pub session: ImpersonationSession,
}

/// Which audit entries [`ImpersonationStore::audit_log`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImpersonationAuditQuery {
    /// By this admin.
    pub admin_id: Option<String>,
    /// About this user.
    pub target_id: Option<String>,
    /// Of this kind: `start`, `action`, `end`, `timeout`, `denied` or `retention`.
    pub event_type: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
}

/// Admin impersonation sessions and their audit trail.
#[async_trait]
pub trait ImpersonationStore: Send + Sync + fmt::Debug {
    /// Starts a session and audits it, in one unit. `InvalidInput` for a missing reason, a bad
    /// email or id, a TTL that is not positive or longer than [`MAX_SESSION_TTL`].
    async fn start(&self, session: NewImpersonation) -> Result<StartedSession>;
    /// The session with this id (ended ones included).
    async fn get(&self, session_id: &str) -> Result<Option<ImpersonationSession>>;
    /// Counts and audits one action of a running session, in one unit. `NotFound` for an unknown
    /// session, `Conflict` for one that ended or timed out.
    async fn record_action(&self, session_id: &str, details: Map<String, Value>) -> Result<ImpersonationSession>;
    /// Ends a running session, exactly once (a second end is `Conflict`), and audits it.
    async fn end(&self, session_id: &str, ended_by: &str) -> Result<ImpersonationSession>;
    /// Audits a refused impersonation attempt.
    async fn log_denied(&self, admin_id: &str, target_id: &str, error: &str) -> Result<AuditEntry>;
    /// The running sessions, of one admin or all, newest first (at most 1,000).
    async fn active_sessions(&self, admin_id: Option<&str>) -> Result<Vec<ImpersonationSession>>;
    /// An admin's sessions, newest first, a page at a time.
    async fn sessions_for_admin(&self, admin_id: &str, include_ended: bool, page: &PageRequest) -> Result<Page<ImpersonationSession>>;
    /// The audit entries of impersonation, newest first.
    async fn audit_log(&self, query: &ImpersonationAuditQuery, page: &PageRequest) -> Result<Page<AuditEntry>>;
    /// Ends (as `timeout`) and audits up to 1,000 sessions past their expiry; them.
    async fn expire_sessions(&self) -> Result<Vec<ImpersonationSession>>;
    /// Deletes sessions that ended more than `older_than` ago, and audits how many (the audit
    /// log itself is append-only and kept); how many.
    async fn cleanup_old_sessions(&self, older_than: TimeDelta) -> Result<u64>;
}

/// [`ImpersonationStore`] on any backend.
pub struct Impersonations<B: ?Sized = dyn Engine> {
    sessions: Table<ImpersonationSession>,
    audit: Audit<B>,
    _backend: PhantomData<fn(&B)>,
}

impl<B: ?Sized + 'static> Store for Impersonations<B> {
    fn on(engine: &dyn Engine) -> Self {
        Self { sessions: engine.table(), audit: Audit::on(engine), _backend: PhantomData }
    }
}

impl<B: ?Sized> Clone for Impersonations<B> {
    fn clone(&self) -> Self {
        Self { sessions: self.sessions.clone(), audit: self.audit.clone(), _backend: PhantomData }
    }
}

impl<B: ?Sized> fmt::Debug for Impersonations<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Impersonations").field("sessions", &self.sessions).finish_non_exhaustive()
    }
}

crate::seed_constructors!(Impersonations);

/// The audit event of a session step.
fn event(kind: &str, actor: &str, session: &ImpersonationSession) -> AuditEvent {
    let mut event = AuditEvent::new(format!("{AUDIT_PREFIX}{kind}")).actor(actor).resource("user", &session.target_id);
    event.metadata.insert("admin_id".into(), Value::from(session.admin_id.as_str()));
    event.metadata.insert("session".into(), Value::from(session.session_digest.get(..16).unwrap_or_default()));
    event
}

fn session_digest(session_id: &str) -> Result<String> {
    validate_id("session_id", session_id)?;
    Ok(hash_token(session_id))
}

impl<B: ?Sized> Impersonations<B> {
    /// Applies `change` to the running session `digest` and audits it as `kind` by `actor`, in
    /// one unit, reading again whenever the session or the chain moved in between.
    async fn change_running(
        &self,
        digest: &str,
        kind: &str,
        actor: Option<&str>,
        details: &Map<String, Value>,
        change: impl Fn(&mut ImpersonationSession, DateTime<Utc>) + Send + Sync,
    ) -> Result<ImpersonationSession> {
        for _ in 0..CHANGE_ATTEMPTS {
            let now = self.sessions.now();
            let Some(mut session) = self.sessions.get(system(), digest).await? else {
                return Err(StorageError::not_found(ImpersonationSession::TABLE.entity, "(session)"));
            };
            if !session.is_active(now) {
                let why = if session.ended_at.is_some() { "it has ended" } else { "it timed out" };
                return Err(StorageError::conflict(ImpersonationSession::TABLE.entity, "(session)", why));
            }
            let actor = actor.map_or_else(|| session.admin_id.clone(), str::to_owned);
            change(&mut session, now);
            let mut audited = event(kind, &actor, &session);
            audited.metadata.extend(details.clone());
            match self.audit.log_with(system(), audited, |unit| unit.update(&self.sessions, &session)).await {
                Ok(_) => {
                    return self
                        .sessions
                        .get(system(), digest)
                        .await?
                        .ok_or_else(|| StorageError::not_found("impersonation session", "(session)"));
                }
                Err(StorageError::Conflict { .. } | StorageError::VersionMismatch { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::conflict(ImpersonationSession::TABLE.entity, "(session)", "still changing; try again"))
    }
}

#[async_trait]
impl<B: ?Sized> ImpersonationStore for Impersonations<B> {
    async fn start(&self, new: NewImpersonation) -> Result<StartedSession> {
        if new.ttl <= TimeDelta::zero() || new.ttl > MAX_SESSION_TTL {
            return Err(StorageError::invalid("ttl", format!("`{}` must be positive and at most {MAX_SESSION_TTL}", new.ttl)));
        }
        let session_id = Secret::new(format!("{SESSION_ID_PREFIX}{}", generate_token()?));
        let now = self.sessions.now();
        let session = ImpersonationSession {
            session_digest: hash_token(session_id.expose()),
            admin_id: new.admin_id,
            admin_email: normalize_email("admin_email", &new.admin_email)?,
            target_id: new.target_id,
            target_email: normalize_email("target_email", &new.target_email)?,
            reason: new.reason,
            started_at: now,
            expires_at: add("ttl", now, new.ttl)?,
            actions_performed: 0,
            ended_at: None,
            ended_by: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        session.validate()?;
        let mut audited = event("start", &session.admin_id, &session);
        audited.metadata.insert("reason".into(), Value::from(session.reason.as_str()));
        audited.ip_address = new.ip_address;
        audited.user_agent = new.user_agent;
        self.audit.log_with(system(), audited, |unit| unit.insert(&self.sessions, &session)).await?;
        let session = self.sessions.get(system(), &session.session_digest).await?.unwrap_or(session);
        Ok(StartedSession { session_id, session })
    }

    async fn get(&self, session_id: &str) -> Result<Option<ImpersonationSession>> {
        self.sessions.get(system(), &session_digest(session_id)?).await
    }

    async fn record_action(&self, session_id: &str, details: Map<String, Value>) -> Result<ImpersonationSession> {
        let digest = session_digest(session_id)?;
        self.change_running(&digest, "action", None, &details, |session, _| {
            session.actions_performed = session.actions_performed.saturating_add(1);
        })
        .await
    }

    async fn end(&self, session_id: &str, ended_by: &str) -> Result<ImpersonationSession> {
        let digest = session_digest(session_id)?;
        validate_id("ended_by", ended_by)?;
        self.change_running(&digest, "end", Some(ended_by), &Map::new(), |session, now| {
            session.ended_at = Some(now);
            session.ended_by = Some(ended_by.to_owned());
        })
        .await
    }

    async fn log_denied(&self, admin_id: &str, target_id: &str, error: &str) -> Result<AuditEntry> {
        validate_id("admin_id", admin_id)?;
        validate_id("target_id", target_id)?;
        let mut denied = AuditEvent::new(format!("{AUDIT_PREFIX}denied")).actor(admin_id).resource("user", target_id);
        denied.metadata.insert("error".into(), Value::from(error.chars().take(MAX_REASON_BYTES).collect::<String>()));
        self.audit.log_event(system(), denied).await
    }

    async fn active_sessions(&self, admin_id: Option<&str>) -> Result<Vec<ImpersonationSession>> {
        let now = self.sessions.now();
        let mut filter = Filter::all().is_null("ended_at").gt("session_expires_at", now);
        if let Some(admin) = admin_id {
            validate_id("admin_id", admin)?;
            filter = filter.eq("admin_id", admin);
        }
        let query = Query::new(filter).order(Order::desc("started_at"));
        Ok(self.sessions.list(Scope::Tenant(system()), query, &PageRequest::first(BATCH)).await?.items)
    }

    async fn sessions_for_admin(&self, admin_id: &str, include_ended: bool, page: &PageRequest) -> Result<Page<ImpersonationSession>> {
        validate_id("admin_id", admin_id)?;
        let mut filter = Filter::all().eq("admin_id", admin_id);
        if !include_ended {
            filter = filter.is_null("ended_at").gt("session_expires_at", self.sessions.now());
        }
        self.sessions.list(Scope::Tenant(system()), Query::new(filter).order(Order::desc("started_at")), page).await
    }

    async fn audit_log(&self, query: &ImpersonationAuditQuery, page: &PageRequest) -> Result<Page<AuditEntry>> {
        let action = match &query.event_type {
            Some(kind) => {
                validate_id("event_type", kind)?;
                format!("{AUDIT_PREFIX}{kind}")
            }
            None => format!("{AUDIT_PREFIX}*"),
        };
        let audit = AuditQuery {
            actor_id: query.admin_id.clone(),
            action: Some(action),
            resource_type: query.target_id.as_ref().map(|_| "user".to_owned()),
            resource_id: query.target_id.clone(),
            since: query.since,
            until: None,
            security_only: false,
        };
        self.audit.get_log(system(), &audit, page).await
    }

    async fn expire_sessions(&self) -> Result<Vec<ImpersonationSession>> {
        let now = self.sessions.now();
        let due = Filter::all().is_null("ended_at").le("session_expires_at", now);
        let page = self.sessions.list(Scope::Tenant(system()), Query::new(due), &PageRequest::first(BATCH)).await?;
        let mut expired = Vec::with_capacity(page.items.len());
        for session in page.items {
            let mut ended = session.clone();
            ended.ended_at = Some(ended.expires_at);
            ended.ended_by = Some("timeout".to_owned());
            let audited = event("timeout", "timeout", &ended);
            match self.audit.log_with(system(), audited, |unit| unit.update(&self.sessions, &ended)).await {
                Ok(_) => expired.push(ended),
                // Ended (or timed out by another sweeper) meanwhile: nothing to do.
                Err(StorageError::Conflict { .. } | StorageError::VersionMismatch { .. } | StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    async fn cleanup_old_sessions(&self, older_than: TimeDelta) -> Result<u64> {
        if older_than < TimeDelta::zero() {
            return Err(StorageError::invalid("older_than", "must not be negative"));
        }
        let before = sub("older_than", self.sessions.now(), older_than)?;
        let removed = self.sessions.delete_where(Scope::Tenant(system()), Filter::all().lt("ended_at", before)).await?;
        let mut audited = AuditEvent::new(format!("{AUDIT_PREFIX}retention")).actor("retention");
        audited.metadata.insert("sessions_deleted".into(), Value::from(removed));
        audited.metadata.insert("ended_before".into(), Value::from(before.to_rfc3339()));
        self.audit.log_event(system(), audited).await?;
        Ok(removed)
    }
}
