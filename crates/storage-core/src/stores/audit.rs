//! The audit log: append-only and tamper-evident.
//!
//! Each tenant (organisation; [`TenantId::system`] for platform events) has one hash chain. An
//! entry carries its sequence number, the previous entry's hash and its own hash over everything
//! it says; the tenant's head record holds the last sequence number and hash. Appends are
//! checked against the head's version, so concurrent writers — in one process or many — never
//! fork the chain, and within a process concurrent appends of a tenant are chained and committed
//! together (one unit, one commit). [`AuditStore::verify`] recomputes the chain and names the
//! first entry that was altered, removed, reordered or added behind the log's back.
//!
//! There is no update or delete; retention ([`AuditStore::cleanup_old_entries`]) removes the
//! oldest entries, moves the chain's anchor past them and leaves an entry saying so.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value as IndexValue};
use crate::engine::{Applied, Engine};
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::usage::validate_kind;
use crate::table::{Table, Unit, retry_contended};
use crate::token::hash_token;
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

/// The hash before the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Action prefixes that make an entry a security event.
pub const SECURITY_PREFIXES: [&str; 6] = ["login.", "password.", "api_key.", "permission.", "auth.", "lockout."];
/// The action of the entry retention leaves.
pub const RETENTION_ACTION: &str = "audit.retention";
/// Entries read per batch when verifying.
const VERIFY_BATCH: usize = 500;
/// The id of a tenant's head record.
const HEAD_ID: &str = "head";

/// What happened: the caller's part of an entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditEvent {
    /// What was done, e.g. `user.login` or `org.member_added` (a-z, 0-9, `_`, `-`, `.`, `:`).
    pub action: String,
    /// Who did it.
    pub actor_id: Option<String>,
    /// The kind of thing it was done to.
    pub resource_type: Option<String>,
    /// The thing it was done to.
    pub resource_id: Option<String>,
    /// Its value before.
    pub old_value: Option<Value>,
    /// Its value after.
    pub new_value: Option<Value>,
    /// Anything else.
    pub metadata: Map<String, Value>,
    /// The client's address (personal data: sealed at rest).
    pub ip_address: Option<String>,
    /// The client's user agent (personal data: sealed at rest).
    pub user_agent: Option<String>,
}

impl AuditEvent {
    /// An event of `action`.
    pub fn new(action: impl Into<String>) -> Self {
        Self { action: action.into(), ..Self::default() }
    }
    /// Done by `actor_id`.
    pub fn actor(mut self, actor_id: impl Into<String>) -> Self {
        self.actor_id = Some(actor_id.into());
        self
    }
    /// Done to `resource_id` of kind `resource_type`.
    pub fn resource(mut self, resource_type: impl Into<String>, resource_id: impl Into<String>) -> Self {
        self.resource_type = Some(resource_type.into());
        self.resource_id = Some(resource_id.into());
        self
    }
    /// Changing `old` into `new`.
    pub fn change(mut self, old: Option<Value>, new: Option<Value>) -> Self {
        (self.old_value, self.new_value) = (old, new);
        self
    }
    /// With a metadata entry.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
    /// From this client.
    pub fn client(mut self, ip_address: Option<String>, user_agent: Option<String>) -> Self {
        (self.ip_address, self.user_agent) = (ip_address, user_agent);
        self
    }

    fn validate(&self) -> Result<()> {
        validate_kind("action", &self.action)?;
        for (field, value) in [("actor_id", &self.actor_id), ("resource_type", &self.resource_type), ("resource_id", &self.resource_id)] {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        for (field, value) in [("ip_address", &self.ip_address), ("user_agent", &self.user_agent)] {
            if let Some(value) = value {
                crate::limits::check_text(field, value)?;
            }
        }
        Ok(())
    }
}

/// One entry of a tenant's audit chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The organisation, or [`TenantId::system`].
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The entry's place in the tenant's chain, from 1.
    pub seq: u64,
    /// When it was appended (the store's clock).
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub event: StoredEvent,
    /// The previous entry's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// This entry's hash: SHA-256 over everything above.
    pub hash: String,
    /// Version (always 1: entries are never rewritten).
    #[serde(default)]
    pub version: u64,
    /// When stored.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When stored.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

/// The event as an entry stores it (the client fields are sealed, not in the body).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// What was done.
    pub action: String,
    /// Who did it.
    pub actor_id: Option<String>,
    /// The kind of thing it was done to.
    pub resource_type: Option<String>,
    /// The thing it was done to.
    pub resource_id: Option<String>,
    /// Its value before.
    pub old_value: Option<Value>,
    /// Its value after.
    pub new_value: Option<Value>,
    /// Anything else.
    pub metadata: Map<String, Value>,
    /// The client's address.
    #[serde(skip)]
    pub ip_address: Option<String>,
    /// The client's user agent.
    #[serde(skip)]
    pub user_agent: Option<String>,
}

impl From<AuditEvent> for StoredEvent {
    fn from(e: AuditEvent) -> Self {
        Self {
            action: e.action,
            actor_id: e.actor_id,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            old_value: e.old_value,
            new_value: e.new_value,
            metadata: e.metadata,
            ip_address: e.ip_address,
            user_agent: e.user_agent,
        }
    }
}

/// The id of entry `seq`: zero-padded, so ids sort as sequence numbers do.
fn entry_id(seq: u64) -> String {
    format!("{seq:020}")
}

impl AuditEntry {
    /// Whether the action is a security event (sign-in, password, API key, permission, lockout).
    pub fn is_security_event(&self) -> bool {
        SECURITY_PREFIXES.iter().any(|p| self.event.action.starts_with(p))
    }

    /// The hash this entry should carry: SHA-256 over a canonical encoding of every field
    /// (objects have sorted keys; the client fields included).
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.tenant.as_str(),
            self.seq,
            self.at.timestamp_micros(),
            self.event.action,
            self.event.actor_id,
            self.event.resource_type,
            self.event.resource_id,
            self.event.old_value,
            self.event.new_value,
            self.event.metadata,
            self.event.ip_address,
            self.event.user_agent,
            self.prev_hash,
        ]);
        hash_token(&canonical.to_string())
    }
}

impl Document for AuditEntry {
    const TABLE: TableDef = TableDef {
        name: "audit_log",
        entity: "audit entry",
        id_field: "seq",
        indexes: &[
            IndexSpec::int("seq"),
            IndexSpec::time("at"),
            IndexSpec::text("actor_id"),
            IndexSpec::text("action"),
            IndexSpec::text("resource_type"),
            IndexSpec::text("resource_id"),
            IndexSpec::bool("security"),
        ],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        entry_id(self.seq)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(crate::table::int_value(self.seq)),
            Some(IndexValue::Time(self.at)),
            self.event.actor_id.as_ref().map(IndexValue::from),
            Some(IndexValue::from(&self.event.action)),
            self.event.resource_type.as_ref().map(IndexValue::from),
            self.event.resource_id.as_ref().map(IndexValue::from),
            Some(IndexValue::Bool(self.is_security_event())),
        ]
    }
    fn validate(&self) -> Result<()> {
        AuditEvent {
            action: self.event.action.clone(),
            actor_id: self.event.actor_id.clone(),
            resource_type: self.event.resource_type.clone(),
            resource_id: self.event.resource_id.clone(),
            ip_address: self.event.ip_address.clone(),
            user_agent: self.event.user_agent.clone(),
            ..AuditEvent::default()
        }
        .validate()
    }
    fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::new();
        for (name, value) in [("ip_address", &self.event.ip_address), ("user_agent", &self.event.user_agent)] {
            if let Some(value) = value {
                secrets.insert(name.to_owned(), Secret::new(value.clone()));
            }
        }
        secrets
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.event.ip_address = secrets.remove("ip_address").map(Secret::into_inner);
        self.event.user_agent = secrets.remove("user_agent").map(Secret::into_inner);
        Ok(())
    }
}

/// A tenant's chain head: the last entry, and the anchor retention moved the start to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// The organisation, or [`TenantId::system`].
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The last entry's sequence number (0 before the first).
    pub seq: u64,
    /// The last entry's hash.
    pub hash: String,
    /// Entries up to this one were removed by retention (0: none).
    pub anchor_seq: u64,
    /// The hash of entry `anchor_seq`, which the first remaining entry must follow.
    pub anchor_hash: String,
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

impl Document for AuditHead {
    const TABLE: TableDef = TableDef {
        name: "audit_heads",
        entity: "audit head",
        id_field: "head",
        indexes: &[IndexSpec::int("seq")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        HEAD_ID.to_owned()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(crate::table::int_value(self.seq))]
    }
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

impl AuditHead {
    fn genesis(tenant: &TenantId) -> Self {
        Self {
            tenant: tenant.clone(),
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
            anchor_seq: 0,
            anchor_hash: GENESIS_HASH.to_owned(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// Which entries a query selects. Every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Done by this actor.
    pub actor_id: Option<String>,
    /// This action; a trailing `*` matches a prefix (`user.*`).
    pub action: Option<String>,
    /// To this kind of resource.
    pub resource_type: Option<String>,
    /// To this resource.
    pub resource_id: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Only security events.
    pub security_only: bool,
}

/// Where a chain broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The first entry that does not follow from the ones before.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// The outcome of [`AuditStore::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries checked.
    pub checked: u64,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync + fmt::Debug {
    /// Appends an event to the tenant's chain; the entry, with its sequence number and hash.
    async fn log_event(&self, tenant: &TenantId, event: AuditEvent) -> Result<AuditEntry>;
    /// Entry `seq` of the tenant's chain.
    async fn get_entry(&self, tenant: &TenantId, seq: u64) -> Result<Option<AuditEntry>>;
    /// One page of the entries passing `query`, newest first.
    async fn get_log(&self, tenant: &TenantId, query: &AuditQuery, page: &PageRequest) -> Result<Page<AuditEntry>>;
    /// How many entries pass `query`.
    async fn get_log_count(&self, tenant: &TenantId, query: &AuditQuery) -> Result<u64>;
    /// The newest entries of the last `hours`, of one actor or all.
    async fn get_recent_activity(&self, tenant: &TenantId, actor_id: Option<&str>, hours: u32, limit: u32) -> Result<Vec<AuditEntry>>;
    /// One page of security events (sign-in, password, API key, permission, lockout), newest first.
    async fn get_security_events(&self, tenant: &TenantId, actor_id: Option<&str>, page: &PageRequest) -> Result<Page<AuditEntry>>;
    /// Recomputes the tenant's chain (entries `from..=to` of what retention left, all by
    /// default): the first broken link, if any.
    async fn verify(&self, tenant: &TenantId, from: Option<u64>, to: Option<u64>) -> Result<ChainReport>;
    /// Removes the entries older than `max_age` in every tenant, moving each chain's anchor past
    /// them and appending an [`RETENTION_ACTION`] entry that says what went; how many went.
    async fn cleanup_old_entries(&self, max_age: TimeDelta) -> Result<u64>;
}

/// An append waiting for its turn.
struct Queued {
    tenant: TenantId,
    event: StoredEvent,
    answer: tokio::sync::oneshot::Sender<Result<AuditEntry>>,
}

/// Lanes that concurrent appends share: the appends queued in a lane are chained and committed
/// together by whichever caller gets the lane's turn.
const LANES: usize = 16;

struct Lane {
    queue: Mutex<Vec<Queued>>,
    turn: tokio::sync::Mutex<()>,
}

/// [`AuditStore`] on any backend.
pub struct Audit<B: ?Sized = dyn Engine> {
    entries: Table<AuditEntry>,
    heads: Table<AuditHead>,
    lanes: Arc<[Lane; LANES]>,
    /// The heads this process last wrote, so an append need not read its head first; one that
    /// another writer moved meanwhile fails its version check and is read again.
    written_heads: Arc<Mutex<HashMap<TenantId, AuditHead>>>,
    _backend: PhantomData<fn(&B)>,
}

/// Tenants whose last written head is remembered; beyond this the memory starts over.
const REMEMBERED_HEADS: usize = 4_096;

impl<B: ?Sized + 'static> crate::Store for Audit<B> {
    fn on(engine: &dyn Engine) -> Self {
        let lanes = std::array::from_fn(|_| Lane { queue: Mutex::new(Vec::new()), turn: tokio::sync::Mutex::new(()) });
        Self {
            entries: engine.table(),
            heads: engine.table(),
            lanes: Arc::new(lanes),
            written_heads: Arc::default(),
            _backend: PhantomData,
        }
    }
}

impl<B: ?Sized> Clone for Audit<B> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            heads: self.heads.clone(),
            lanes: Arc::clone(&self.lanes),
            written_heads: Arc::clone(&self.written_heads),
            _backend: PhantomData,
        }
    }
}

impl<B: ?Sized> fmt::Debug for Audit<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit").field("entries", &self.entries).finish_non_exhaustive()
    }
}

fn lane_of(tenant: &TenantId) -> usize {
    let digest = ring::digest::digest(&ring::digest::SHA256, tenant.as_str().as_bytes());
    digest.as_ref().first().map_or(0, |b| usize::from(*b)).checked_rem(LANES).unwrap_or(0)
}

impl<B: ?Sized> Audit<B> {
    /// The tenant's head, or the genesis head if it has none yet.
    async fn head(&self, tenant: &TenantId) -> Result<AuditHead> {
        Ok(self.heads.get(tenant, HEAD_ID).await?.unwrap_or_else(|| AuditHead::genesis(tenant)))
    }

    /// The head this process last wrote for the tenant, if it remembers one, else the stored one.
    async fn head_to_append_to(&self, tenant: &TenantId) -> Result<AuditHead> {
        let remembered = self.written_heads.lock().unwrap_or_else(PoisonError::into_inner).get(tenant).cloned();
        match remembered {
            Some(head) => Ok(head),
            None => self.head(tenant).await,
        }
    }

    /// Remembers the head just written (`None`: forgets it, it may be stale).
    fn remember(&self, tenant: &TenantId, head: Option<AuditHead>) {
        let mut heads = self.written_heads.lock().unwrap_or_else(PoisonError::into_inner);
        match head {
            Some(head) => {
                if heads.len() >= REMEMBERED_HEADS && !heads.contains_key(tenant) {
                    heads.clear();
                }
                heads.insert(tenant.clone(), head);
            }
            None => {
                heads.remove(tenant);
            }
        }
    }

    /// Chains `events` after `head` at `now`: the entries and the new head.
    fn chain(head: &AuditHead, events: Vec<StoredEvent>, now: DateTime<Utc>) -> Result<(Vec<AuditEntry>, AuditHead)> {
        let mut head = head.clone();
        let mut entries = Vec::with_capacity(events.len());
        for event in events {
            let seq = head.seq.checked_add(1).ok_or_else(|| StorageError::invalid("seq", "the chain is full"))?;
            let mut entry = AuditEntry {
                tenant: head.tenant.clone(),
                seq,
                at: now,
                event,
                prev_hash: head.hash.clone(),
                hash: String::new(),
                version: 0,
                created_at: now,
                updated_at: now,
            };
            entry.hash = entry.compute_hash();
            (head.seq, head.hash) = (seq, entry.hash.clone());
            entries.push(entry);
        }
        Ok((entries, head))
    }

    /// Adds the head's move to `unit`: created with the first entry, then checked against the
    /// version read.
    fn advance(&self, unit: &mut Unit, head: &AuditHead) -> Result<()> {
        if head.version == 0 { unit.insert(&self.heads, head) } else { unit.update(&self.heads, head) }
    }

    /// Appends `events` to the tenant's chain in one unit (with `extra` changes, if any), reading
    /// the head again whenever another writer moved it first.
    /// With `anchor`, the chain's start moves forward to that entry in the same unit.
    async fn append(
        &self,
        tenant: &TenantId,
        events: Vec<StoredEvent>,
        extra: &(dyn Fn(&mut Unit) -> Result<()> + Send + Sync),
        anchor: Option<(u64, &str)>,
    ) -> Result<Vec<AuditEntry>> {
        retry_contended(|| async {
            let head = self.head_to_append_to(tenant).await?;
            let (mut entries, mut next) = Self::chain(&head, events.clone(), self.entries.now())?;
            if let Some((seq, hash)) = anchor.filter(|(seq, _)| *seq > head.anchor_seq) {
                (next.anchor_seq, next.anchor_hash) = (seq, hash.to_owned());
            }
            let mut unit = self.entries.unit(tenant);
            extra(&mut unit)?;
            self.advance(&mut unit, &next)?;
            for entry in &entries {
                unit.insert(&self.entries, entry)?;
            }
            let committed = unit.commit().await;
            if committed.is_err() {
                self.remember(tenant, None);
            }
            let applied = match committed {
                // Another writer created the head first, or took these sequence numbers: read again.
                Err(StorageError::Conflict { entity, id, .. })
                    if entity == AuditHead::TABLE.entity || entity == AuditEntry::TABLE.entity =>
                {
                    return Err(StorageError::VersionMismatch {
                        entity,
                        id,
                        expected: head.version,
                        actual: head.version.saturating_add(1),
                    });
                }
                // A change of the caller's went stale: running the same changes again cannot
                // help, so the caller re-reads (the chain itself did not move).
                Err(StorageError::VersionMismatch { entity, id, .. })
                    if entity != AuditHead::TABLE.entity && entity != AuditEntry::TABLE.entity =>
                {
                    return Err(StorageError::conflict(entity, id, "changed by another writer since it was read"));
                }
                other => other?,
            };
            // Inserted at version 1 or updated from the version read: one more either way.
            next.version = head.version.saturating_add(1);
            self.remember(tenant, Some(next));
            let stamps = applied.iter().rev().take(entries.len()).rev();
            for (entry, applied) in entries.iter_mut().zip(stamps) {
                if let Applied::Written(meta) = applied {
                    entry.set_meta(*meta);
                }
            }
            Ok(entries)
        })
        .await
    }

    /// Appends an event in the same unit as the audited change that `build` adds (records of the
    /// same tenant, on the same backend): both commit, or neither. `build` may run more than once
    /// (when another writer moved the chain first), so it must add the same changes each time; a
    /// change of `build`'s whose record changed since it was read fails the call with `Conflict`.
    pub async fn log_with(
        &self,
        tenant: &TenantId,
        event: AuditEvent,
        build: impl Fn(&mut Unit) -> Result<()> + Send + Sync,
    ) -> Result<AuditEntry> {
        event.validate()?;
        let mut entries = self.append(tenant, vec![event.into()], &build, None).await?;
        entries.pop().ok_or_else(|| StorageError::backend(self.entries.backend(), "an append returned no entry"))
    }

    /// Appends `events`, in order, in the same unit as the changes `build` adds (see
    /// [`Audit::log_with`]); the entries. A change of `build`'s that finds its record changed
    /// since it was read fails the call with `Conflict`, so the caller can read again.
    pub async fn log_batch_with(
        &self,
        tenant: &TenantId,
        events: Vec<AuditEvent>,
        build: impl Fn(&mut Unit) -> Result<()> + Send + Sync,
    ) -> Result<Vec<AuditEntry>> {
        for event in &events {
            event.validate()?;
        }
        self.append(tenant, events.into_iter().map(StoredEvent::from).collect(), &build, None).await
    }

    /// Takes the lane's turn and appends everything queued in it, tenant by tenant.
    async fn drain(&self, lane: &Lane) {
        let queued = std::mem::take(&mut *lane.queue.lock().unwrap_or_else(PoisonError::into_inner));
        let mut by_tenant: BTreeMap<TenantId, Vec<Queued>> = BTreeMap::new();
        for item in queued {
            by_tenant.entry(item.tenant.clone()).or_default().push(item);
        }
        for (tenant, items) in by_tenant {
            let events: Vec<StoredEvent> = items.iter().map(|q| q.event.clone()).collect();
            match self.append(&tenant, events, &|_| Ok(()), None).await {
                Ok(entries) => {
                    for (item, entry) in items.into_iter().zip(entries) {
                        let _ = item.answer.send(Ok(entry));
                    }
                }
                Err(e) => {
                    for item in items {
                        let _ = item.answer.send(Err(for_waiter(&e, self.entries.backend())));
                    }
                }
            }
        }
    }

    fn filter(query: &AuditQuery) -> Result<Filter> {
        let mut filter = Filter::all();
        for (column, value) in [("actor_id", &query.actor_id), ("resource_type", &query.resource_type), ("resource_id", &query.resource_id)]
        {
            if let Some(value) = value {
                validate_id(column, value)?;
                filter = filter.eq(column, value.as_str());
            }
        }
        if let Some(action) = &query.action {
            filter = match action.strip_suffix('*') {
                Some(prefix) => {
                    crate::limits::check_text("action", prefix)?;
                    filter.prefix("action", prefix)
                }
                None => {
                    validate_kind("action", action)?;
                    filter.eq("action", action.as_str())
                }
            };
        }
        if let Some(since) = query.since {
            filter = filter.ge("at", since);
        }
        if let Some(until) = query.until {
            filter = filter.lt("at", until);
        }
        if query.security_only {
            filter = filter.eq("security", true);
        }
        Ok(filter)
    }

    /// Reads entries `seqs` of the tenant; an entry that cannot be read (its body altered so it
    /// no longer decodes, or moved to another row) is reported, not an error.
    async fn read_batch(&self, tenant: &TenantId, seqs: &[u64]) -> Result<Vec<(u64, std::result::Result<Option<AuditEntry>, String>)>> {
        let ids: Vec<String> = seqs.iter().copied().map(entry_id).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        match self.entries.get_many(tenant, &refs).await {
            Ok(found) => {
                let mut by_seq: BTreeMap<u64, AuditEntry> = found.into_iter().map(|e| (e.seq, e)).collect();
                Ok(seqs.iter().map(|seq| (*seq, Ok(by_seq.remove(seq)))).collect())
            }
            Err(StorageError::Backend { .. } | StorageError::Crypto { .. }) => {
                let mut one_by_one = Vec::with_capacity(seqs.len());
                for seq in seqs {
                    let read = match self.entries.get(tenant, &entry_id(*seq)).await {
                        Ok(entry) => Ok(entry),
                        Err(e @ (StorageError::Backend { .. } | StorageError::Crypto { .. })) => Err(e.to_string()),
                        Err(e) => return Err(e),
                    };
                    one_by_one.push((*seq, read));
                }
                Ok(one_by_one)
            }
            Err(e) => Err(e),
        }
    }
}

/// A verification that stopped at `seq`.
fn broken(checked: u64, seq: u64, reason: impl Into<String>) -> Result<ChainReport> {
    Ok(ChainReport { checked, broken: Some(BrokenLink { seq, reason: reason.into() }) })
}

/// The error of a batch, for each of its waiters (errors are not `Clone`: sources are boxed).
fn for_waiter(e: &StorageError, backend: crate::DatabaseBackend) -> StorageError {
    match e {
        StorageError::InvalidInput { field, reason } => StorageError::InvalidInput { field: field.clone(), reason: reason.clone() },
        StorageError::Conflict { entity, id, reason } => StorageError::Conflict { entity, id: id.clone(), reason: reason.clone() },
        StorageError::NotFound { entity, id } => StorageError::NotFound { entity, id: id.clone() },
        StorageError::Contended { .. } => StorageError::Contended { backend, source: e.to_string().into() },
        StorageError::Timeout { .. } => StorageError::Timeout { backend, source: e.to_string().into() },
        StorageError::Indeterminate { .. } => StorageError::Indeterminate { backend, source: e.to_string().into() },
        other if other.is_retryable() => StorageError::unavailable(backend, other.to_string()),
        other => StorageError::backend(backend, other.to_string()),
    }
}

#[async_trait]
impl<B: ?Sized> AuditStore for Audit<B> {
    async fn log_event(&self, tenant: &TenantId, event: AuditEvent) -> Result<AuditEntry> {
        event.validate()?;
        let lane = self.lanes.get(lane_of(tenant)).ok_or_else(|| StorageError::invalid("tenant", "no lane"))?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        lane.queue.lock().unwrap_or_else(PoisonError::into_inner).push(Queued { tenant: tenant.clone(), event: event.into(), answer });
        let mut answered = answered;
        let _turn = lane.turn.lock().await;
        // Whoever had the turn before may have appended this one already.
        if let Ok(result) = answered.try_recv() {
            return result;
        }
        self.drain(lane).await;
        answered.await.unwrap_or_else(|_| {
            Err(StorageError::unavailable(self.entries.backend(), "the append was interrupted; its outcome is unknown"))
        })
    }

    async fn get_entry(&self, tenant: &TenantId, seq: u64) -> Result<Option<AuditEntry>> {
        self.entries.get(tenant, &entry_id(seq)).await
    }

    async fn get_log(&self, tenant: &TenantId, query: &AuditQuery, page: &PageRequest) -> Result<Page<AuditEntry>> {
        self.entries.list(Scope::Tenant(tenant), Query::new(Self::filter(query)?).order(Order::desc("seq")), page).await
    }

    async fn get_log_count(&self, tenant: &TenantId, query: &AuditQuery) -> Result<u64> {
        self.entries.count(Scope::Tenant(tenant), Self::filter(query)?).await
    }

    async fn get_recent_activity(&self, tenant: &TenantId, actor_id: Option<&str>, hours: u32, limit: u32) -> Result<Vec<AuditEntry>> {
        let since = crate::limits::sub("hours", self.entries.now(), TimeDelta::hours(i64::from(hours)))?;
        let query = AuditQuery { actor_id: actor_id.map(str::to_owned), since: Some(since), ..AuditQuery::default() };
        Ok(self.get_log(tenant, &query, &PageRequest::first(limit)).await?.items)
    }

    async fn get_security_events(&self, tenant: &TenantId, actor_id: Option<&str>, page: &PageRequest) -> Result<Page<AuditEntry>> {
        let query = AuditQuery { actor_id: actor_id.map(str::to_owned), security_only: true, ..AuditQuery::default() };
        self.get_log(tenant, &query, page).await
    }

    async fn verify(&self, tenant: &TenantId, from: Option<u64>, to: Option<u64>) -> Result<ChainReport> {
        let head = self.head(tenant).await?;
        let first = head.anchor_seq.saturating_add(1);
        let start = from.unwrap_or(first).max(first);
        let end = to.unwrap_or(head.seq).min(head.seq);
        let mut checked = 0u64;
        // The hash the entry at `start` must follow.
        let mut prev = if start == first {
            head.anchor_hash.clone()
        } else {
            match self.read_batch(tenant, &[start.saturating_sub(1)]).await?.pop() {
                Some((_, Ok(Some(entry)))) => entry.hash,
                Some((seq, Ok(None))) => return broken(checked, seq, "the entry is missing"),
                Some((seq, Err(why))) => return broken(checked, seq, format!("the entry cannot be read: {why}")),
                None => return broken(checked, start, "the entry is missing"),
            }
        };
        let mut seq = start;
        while seq <= end {
            let last = seq.saturating_add(u64::try_from(VERIFY_BATCH).unwrap_or(1)).saturating_sub(1).min(end);
            let seqs: Vec<u64> = (seq..=last).collect();
            for (at, read) in self.read_batch(tenant, &seqs).await? {
                let entry = match read {
                    Ok(Some(entry)) => entry,
                    Ok(None) => return broken(checked, at, "the entry is missing"),
                    Err(why) => return broken(checked, at, format!("the entry cannot be read: {why}")),
                };
                if entry.prev_hash != prev {
                    return broken(checked, at, "it does not follow the entry before it");
                }
                if entry.compute_hash() != entry.hash {
                    return broken(checked, at, "its content does not match its hash");
                }
                prev = entry.hash;
                checked = checked.saturating_add(1);
            }
            seq = last.saturating_add(1);
        }
        if end == head.seq && start <= end && prev != head.hash {
            return broken(checked, head.seq, "the chain does not end where its head says");
        }
        let beyond = Filter::all().gt("seq", i64::try_from(head.seq).unwrap_or(i64::MAX));
        if to.is_none() && self.entries.count(Scope::Tenant(tenant), beyond).await? > 0 {
            return broken(checked, head.seq.saturating_add(1), "entries were added after the head");
        }
        Ok(ChainReport { checked, broken: None })
    }

    async fn cleanup_old_entries(&self, max_age: TimeDelta) -> Result<u64> {
        if max_age < TimeDelta::zero() {
            return Err(StorageError::invalid("max_age", "must not be negative"));
        }
        let cutoff = crate::limits::sub("max_age", self.entries.now(), max_age)?;
        let heads = self.heads.list_all(Scope::AllTenants, Query::new(Filter::all())).await?;
        let mut removed = 0u64;
        for head in heads {
            let tenant = head.tenant.clone();
            let old = Query::new(Filter::all().lt("at", cutoff)).order(Order::desc("seq"));
            let Some(newest_old) = self.entries.list(Scope::Tenant(&tenant), old, &PageRequest::first(1)).await?.items.into_iter().next()
            else {
                continue;
            };
            let (through, through_hash) = (newest_old.seq, newest_old.hash.clone());
            if through > head.anchor_seq {
                // The anchor moves past the old entries, with an entry saying so, in one unit;
                // then they go. If the removal is interrupted, the chain still verifies (it
                // starts after the anchor) and the next run finishes the removal.
                let event = AuditEvent::new(RETENTION_ACTION)
                    .with("through_seq", through)
                    .with("through_hash", through_hash.clone())
                    .with("cutoff", cutoff.to_rfc3339());
                self.append(&tenant, vec![event.into()], &|_| Ok(()), Some((through, &through_hash))).await?;
            }
            let gone = Filter::all().le("seq", i64::try_from(through).unwrap_or(i64::MAX));
            removed = removed.saturating_add(self.entries.delete_where(Scope::Tenant(&tenant), gone).await?);
        }
        Ok(removed)
    }
}
