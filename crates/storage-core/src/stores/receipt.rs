//! Decision receipts: the compliance record of a gauntlet run's verdict.
//!
//! A receipt is written once per gauntlet run and never replaced: a second save for the same
//! run is `Conflict`. Its content is covered by a SHA-256 checksum that every read checks; a
//! signature made by the application over that checksum, an RFC 3161 timestamp and a legal hold
//! are the only things that change afterwards.
//!
//! Deletions — retention, erasure requests, an administrator's — are written to the tenant's
//! audit chain ([`crate::stores::audit`]: append-only, hash-chained, verifiable) **in the same
//! atomic unit** as the deletion: both happen or neither does. That chain is the deletion log
//! ([`ReceiptStore::deletions`], [`ReceiptStore::verify_deletion_log`]). A receipt under legal
//! hold is never deleted: a deletion first erases the receipt at the version it read (its content
//! overwritten and the record expired, so every read stops seeing it at once), and a hold placed
//! meanwhile changes that version, so the unit fails and the receipt is read again.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Direction, Filter, Order, Query, Scope};
use crate::stores::audit::{Audit, AuditEntry, AuditEvent, AuditQuery, ChainReport};
use crate::table::Table;
use crate::token::hash_token;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// How long receipts are kept unless configured (`ARAGORA_RECEIPT_RETENTION_DAYS`, ~7 years).
pub const DEFAULT_RECEIPT_RETENTION: TimeDelta = TimeDelta::days(2555);
/// The shortest search query, in characters.
pub const MIN_SEARCH_CHARS: usize = 3;
/// The most results one search returns.
pub const MAX_SEARCH_RESULTS: u32 = 100;
/// Receipts deleted per atomic unit (each with its log entry).
const DELETE_BATCH: u32 = 200;
/// How often a batch is read again when receipts in it changed meanwhile.
const DELETE_ATTEMPTS: usize = 8;
/// The resource type of deletion log entries.
const RESOURCE_TYPE: &str = "receipt";
/// The action prefix of deletion log entries (the reason follows).
const DELETED_PREFIX: &str = "receipt.deleted.";

/// Why a receipt was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionReason {
    /// Its retention period ended.
    RetentionExpired,
    /// Its owner asked.
    UserRequest,
    /// An erasure request under the GDPR.
    GdprErasure,
    /// An administrator removed it.
    AdminAction,
    /// It was wrong.
    DataCorrection,
    /// It was kept for a legal hold that has been released.
    LegalHoldRelease,
}

impl DeletionReason {
    /// Every reason.
    pub const ALL: [Self; 6] =
        [Self::RetentionExpired, Self::UserRequest, Self::GdprErasure, Self::AdminAction, Self::DataCorrection, Self::LegalHoldRelease];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetentionExpired => "retention_expired",
            Self::UserRequest => "user_request",
            Self::GdprErasure => "gdpr_erasure",
            Self::AdminAction => "admin_action",
            Self::DataCorrection => "data_correction",
            Self::LegalHoldRelease => "legal_hold_release",
        }
    }

    fn action(self) -> String {
        format!("{DELETED_PREFIX}{}", self.as_str())
    }

    fn from_action(action: &str) -> Option<Self> {
        let name = action.strip_prefix(DELETED_PREFIX)?;
        Self::ALL.into_iter().find(|reason| reason.as_str() == name)
    }
}

/// How a receipt was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    /// Ed25519 over the checksum.
    Ed25519,
    /// RSA PKCS#1 v1.5 with SHA-256 over the checksum.
    RsaSha256,
    /// HMAC-SHA256 over the checksum.
    HmacSha256,
}

/// The application's signature over a receipt's checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptSignature {
    /// The signature, base64 (standard alphabet).
    pub signature: String,
    /// How it was made.
    pub algorithm: SignatureAlgorithm,
    /// Which key made it.
    pub key_id: String,
    /// When it was stored (set by the store).
    pub signed_at: DateTime<Utc>,
}

/// The key a signature is checked with, chosen by the caller: the stored algorithm is never
/// trusted to pick how a signature is checked.
#[derive(Clone)]
pub enum VerifyingKey {
    /// An Ed25519 public key (32 bytes).
    Ed25519(Vec<u8>),
    /// An RSA public key (DER, `RSAPublicKey`), 2048 to 8192 bits.
    RsaSha256(Vec<u8>),
    /// An HMAC-SHA256 secret.
    HmacSha256(crate::Secret<Vec<u8>>),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ed25519(_) => "VerifyingKey::Ed25519",
            Self::RsaSha256(_) => "VerifyingKey::RsaSha256",
            Self::HmacSha256(_) => "VerifyingKey::HmacSha256(..)",
        })
    }
}

impl VerifyingKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Self::Ed25519(_) => SignatureAlgorithm::Ed25519,
            Self::RsaSha256(_) => SignatureAlgorithm::RsaSha256,
            Self::HmacSha256(_) => SignatureAlgorithm::HmacSha256,
        }
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature::{ED25519, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
        match self {
            Self::Ed25519(key) => UnparsedPublicKey::new(&ED25519, key).verify(message, signature).is_ok(),
            Self::RsaSha256(key) => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key).verify(message, signature).is_ok(),
            Self::HmacSha256(key) => {
                ring::hmac::verify(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose()), message, signature).is_ok()
            }
        }
    }
}

/// An RFC 3161 timestamp of a receipt, from a timestamping authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedTimestamp {
    /// The authority's response, base64.
    pub token: String,
    /// The authority.
    pub tsa_url: String,
    /// When it was stored (set by the store).
    pub at: DateTime<Utc>,
}

/// A legal hold: while it stands, the receipt is never deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    /// Why.
    pub reason: String,
    /// By whom.
    pub placed_by: String,
    /// The legal matter.
    pub matter_id: Option<String>,
    /// When (set by the store).
    pub placed_at: DateTime<Utc>,
}

/// A decision receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The organisation.
    pub tenant: TenantId,
    /// The receipt's id.
    pub receipt_id: String,
    /// The gauntlet run it records: one receipt per run.
    pub gauntlet_id: String,
    /// The debate, if any.
    pub debate_id: Option<String>,
    /// The verdict (`APPROVED`, `REJECTED`, `NEEDS_REVIEW`, `INCONCLUSIVE`, ...).
    pub verdict: String,
    /// Confidence in the verdict, 0 to 1.
    pub confidence: f64,
    /// The risk level (`LOW`, `MEDIUM`, `HIGH`, `CRITICAL`, ...).
    pub risk_level: String,
    /// The risk score, 0 to 1.
    pub risk_score: f64,
    /// When the decision was made (the store's clock if not given).
    pub issued_at: Option<DateTime<Utc>>,
    /// The person the decision is about: what an access or erasure request finds it by.
    pub subject_id: Option<String>,
    /// The audit trail of the run (a link, set once; not part of the checksum).
    pub audit_trail_id: Option<String>,
    /// The full receipt as the application produced it.
    pub data: Value,
    /// SHA-256 over the content above (set by the store at save, checked on every read).
    pub checksum: String,
    /// Kept until (set by the store: issued + retention).
    pub retain_until: DateTime<Utc>,
    /// The application's signature, once signed.
    pub signature: Option<ReceiptSignature>,
    /// A trusted timestamp, once added.
    pub timestamp: Option<TrustedTimestamp>,
    /// The legal hold, while one stands.
    pub legal_hold: Option<LegalHold>,
    /// When its deletion erased it (a deleted receipt is never returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    erased_at: Option<DateTime<Utc>>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When saved.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed (signature, timestamp, hold).
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

/// A score of 0 to 1 as a sortable integer (thousandths).
fn milli(score: f64) -> i64 {
    // Checked to be within 0..=1 before any write.
    (score.clamp(0.0, 1.0) * 1_000.0).round() as i64
}

/// The string leaves of a JSON value, for search.
fn text_of(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push(' ');
            out.push_str(s);
        }
        Value::Array(items) => items.iter().for_each(|v| text_of(v, out)),
        Value::Object(map) => map.values().for_each(|v| text_of(v, out)),
        _ => {}
    }
}

impl Receipt {
    /// A receipt of `gauntlet_id`'s verdict; the store sets its checksum, retention and times.
    pub fn new(
        tenant: TenantId,
        receipt_id: impl Into<String>,
        gauntlet_id: impl Into<String>,
        verdict: impl Into<String>,
        data: Value,
    ) -> Self {
        Self {
            tenant,
            receipt_id: receipt_id.into(),
            gauntlet_id: gauntlet_id.into(),
            debate_id: None,
            verdict: verdict.into(),
            confidence: 0.0,
            risk_level: "MEDIUM".to_owned(),
            risk_score: 0.0,
            issued_at: None,
            subject_id: None,
            audit_trail_id: None,
            data,
            checksum: String::new(),
            retain_until: DateTime::<Utc>::UNIX_EPOCH,
            signature: None,
            timestamp: None,
            legal_hold: None,
            erased_at: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// The checksum of the receipt's content: everything the decision says, not its signature,
    /// timestamp, hold or link to its audit trail.
    pub fn compute_checksum(&self) -> String {
        // A JSON array of the fields, serialized in place (no copy of `data`): lists check it on
        // every receipt they return.
        let canonical = (
            self.tenant.as_str(),
            &self.receipt_id,
            &self.gauntlet_id,
            &self.debate_id,
            &self.verdict,
            self.confidence,
            &self.risk_level,
            self.risk_score,
            self.issued_at.map(|at| at.timestamp_micros()),
            &self.subject_id,
            &self.data,
        );
        hash_token(&serde_json::to_string(&canonical).unwrap_or_default())
    }

    /// Whether its content still matches its checksum.
    pub fn is_intact(&self) -> bool {
        self.compute_checksum() == self.checksum
    }

    /// The receipt, if intact.
    fn check(self, backend: crate::DatabaseBackend) -> Result<Self> {
        if self.is_intact() {
            Ok(self)
        } else {
            Err(StorageError::corrupt(backend, format!("receipt `{}` no longer matches its checksum", self.receipt_id)))
        }
    }

    /// The receipt erased: content gone, expired at `now` (so no read sees it), to be purged.
    fn erased(&self, now: DateTime<Utc>) -> Self {
        let mut erased = self.clone();
        erased.data = Value::Null;
        erased.subject_id = None;
        erased.erased_at = Some(now);
        erased
    }

    fn deletion_event(&self, reason: DeletionReason, operator: &str) -> AuditEvent {
        let mut event = AuditEvent::new(reason.action()).actor(operator).resource(RESOURCE_TYPE, &self.receipt_id);
        event.metadata.insert("checksum".to_owned(), self.checksum.clone().into());
        event.metadata.insert("gauntlet_id".to_owned(), self.gauntlet_id.clone().into());
        event.metadata.insert("verdict".to_owned(), self.verdict.clone().into());
        event
    }
}

fn check_score(field: &str, score: f64) -> Result<()> {
    if (0.0..=1.0).contains(&score) { Ok(()) } else { Err(StorageError::invalid(field, format!("{score} is outside 0 to 1"))) }
}

impl Document for Receipt {
    const TABLE: TableDef = TableDef {
        name: "decision_receipts",
        entity: "receipt",
        id_field: "receipt_id",
        indexes: &[
            IndexSpec::text("gauntlet_id").unique(),
            IndexSpec::text("debate_id"),
            IndexSpec::text("verdict"),
            IndexSpec::text("risk_level"),
            IndexSpec::time("issued_at"),
            IndexSpec::int("confidence"),
            IndexSpec::int("risk_score"),
            IndexSpec::time("signed_at"),
            IndexSpec::time("retain_until"),
            IndexSpec::bool("legal_hold"),
            IndexSpec::text("matter_id"),
            IndexSpec::text("subject_id"),
        ],
        expires: true,
        sealed: false,
        search: true,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.receipt_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(&self.gauntlet_id)),
            self.debate_id.as_ref().map(IndexValue::from),
            Some(IndexValue::from(&self.verdict)),
            Some(IndexValue::from(&self.risk_level)),
            self.issued_at.map(IndexValue::Time),
            Some(IndexValue::Int(milli(self.confidence))),
            Some(IndexValue::Int(milli(self.risk_score))),
            self.signature.as_ref().map(|s| IndexValue::Time(s.signed_at)),
            Some(IndexValue::Time(self.retain_until)),
            Some(IndexValue::Bool(self.legal_hold.is_some())),
            self.legal_hold.as_ref().and_then(|h| h.matter_id.as_ref()).map(IndexValue::from),
            self.subject_id.as_ref().map(IndexValue::from),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("gauntlet_id", &self.gauntlet_id)?;
        validate_id("verdict", &self.verdict)?;
        validate_id("risk_level", &self.risk_level)?;
        for (field, value) in [("debate_id", &self.debate_id), ("subject_id", &self.subject_id), ("audit_trail_id", &self.audit_trail_id)] {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        check_score("confidence", self.confidence)?;
        check_score("risk_score", self.risk_score)?;
        if let Some(signature) = &self.signature {
            validate_id("key_id", &signature.key_id)?;
            STANDARD.decode(&signature.signature).map_err(|_| StorageError::invalid("signature", "is not base64"))?;
        }
        if let Some(timestamp) = &self.timestamp {
            crate::limits::check_text("timestamp_token", &timestamp.token)?;
            crate::limits::check_text("tsa_url", &timestamp.tsa_url)?;
        }
        if let Some(hold) = &self.legal_hold {
            crate::limits::check_text("reason", &hold.reason)?;
            validate_id("placed_by", &hold.placed_by)?;
            if let Some(matter) = &hold.matter_id {
                validate_id("matter_id", matter)?;
            }
        }
        Ok(())
    }
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.erased_at
    }
    fn search_text(&self) -> String {
        let mut text = format!("{} {} {} {}", self.receipt_id, self.gauntlet_id, self.verdict, self.risk_level);
        text_of(&self.data, &mut text);
        text
    }
}

/// How receipts are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReceiptSort {
    /// By when the decision was made.
    #[default]
    IssuedAt,
    /// By confidence.
    Confidence,
    /// By risk score.
    RiskScore,
    /// By when signed (unsigned receipts are not listed).
    SignedAt,
}

/// Which receipts a list, count or search selects. Every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct ReceiptQuery {
    /// Of this verdict.
    pub verdict: Option<String>,
    /// Of this risk level.
    pub risk_level: Option<String>,
    /// Of this debate.
    pub debate_id: Option<String>,
    /// Issued at or after.
    pub from: Option<DateTime<Utc>>,
    /// Issued at or before.
    pub to: Option<DateTime<Utc>>,
    /// Only signed receipts.
    pub signed_only: bool,
    /// The order (lists only).
    pub sort: ReceiptSort,
    /// Its direction (lists only).
    pub direction: Direction,
}

impl ReceiptQuery {
    fn filter(&self) -> Result<Filter> {
        let mut filter = Filter::all();
        for (column, value) in [("verdict", &self.verdict), ("risk_level", &self.risk_level), ("debate_id", &self.debate_id)] {
            if let Some(value) = value {
                validate_id(column, value)?;
                filter = filter.eq(column, value.as_str());
            }
        }
        if let Some(from) = self.from {
            filter = filter.ge("issued_at", from);
        }
        if let Some(to) = self.to {
            filter = filter.le("issued_at", to);
        }
        if self.signed_only {
            filter = filter.not_null("signed_at");
        }
        Ok(filter)
    }

    fn order(&self) -> Order {
        let column = match self.sort {
            ReceiptSort::IssuedAt => "issued_at",
            ReceiptSort::Confidence => "confidence",
            ReceiptSort::RiskScore => "risk_score",
            ReceiptSort::SignedAt => "signed_at",
        };
        Order { column: Some(column), direction: self.direction }
    }
}

/// What [`ReceiptStore::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptVerification {
    /// Whether the content matches its checksum.
    pub intact: bool,
    /// The signature check.
    pub signature: SignatureCheck,
}

/// The outcome of checking a receipt's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// No key was given.
    NotChecked,
    /// The receipt is not signed.
    NotSigned,
    /// The signature is the key's, over the receipt's current checksum.
    Valid,
    /// It is not, and why.
    Invalid(String),
}

/// One entry of the deletion log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptDeletion {
    /// Its place in the tenant's audit chain.
    pub seq: u64,
    /// The deleted receipt.
    pub receipt_id: String,
    /// Its checksum when deleted.
    pub checksum: String,
    /// Its gauntlet run.
    pub gauntlet_id: String,
    /// Its verdict.
    pub verdict: String,
    /// Why.
    pub reason: DeletionReason,
    /// Who or what deleted it.
    pub operator: String,
    /// When.
    pub deleted_at: DateTime<Utc>,
    /// The entry's hash in the chain.
    pub hash: String,
}

impl ReceiptDeletion {
    fn from_entry(entry: AuditEntry) -> Option<Self> {
        let text = |key: &str| entry.event.metadata.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        Some(Self {
            seq: entry.seq,
            receipt_id: entry.event.resource_id.clone()?,
            checksum: text("checksum"),
            gauntlet_id: text("gauntlet_id"),
            verdict: text("verdict"),
            reason: DeletionReason::from_action(&entry.event.action)?,
            operator: entry.event.actor_id.clone().unwrap_or_default(),
            deleted_at: entry.at,
            hash: entry.hash,
        })
    }
}

/// Which deletions a list or count selects. Every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct DeletionQuery {
    /// For this reason.
    pub reason: Option<DeletionReason>,
    /// By this operator.
    pub operator: Option<String>,
    /// Of this receipt.
    pub receipt_id: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
}

impl DeletionQuery {
    fn audit(&self) -> AuditQuery {
        AuditQuery {
            actor_id: self.operator.clone(),
            action: Some(self.reason.map_or_else(|| format!("{DELETED_PREFIX}*"), DeletionReason::action)),
            resource_type: Some(RESOURCE_TYPE.to_owned()),
            resource_id: self.receipt_id.clone(),
            since: self.since,
            until: self.until,
            security_only: false,
        }
    }
}

/// Counts of a tenant's receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiptStats {
    /// Every receipt.
    pub total: u64,
    /// Signed ones.
    pub signed: u64,
    /// Ones under legal hold.
    pub held: u64,
    /// Ones past their retention, waiting for the next cleanup (held ones included).
    pub past_retention: u64,
}

/// Decision receipts and their deletion log.
#[async_trait]
pub trait ReceiptStore: Send + Sync + fmt::Debug {
    /// Saves a receipt, once: `Conflict` if its id or its gauntlet run already has one. The
    /// store sets its checksum, retention and times; a signature, timestamp or hold given here
    /// is ignored (they have their own calls).
    async fn save(&self, receipt: &Receipt) -> Result<Receipt>;
    /// The receipt; an error if it no longer matches its checksum.
    async fn get(&self, tenant: &TenantId, receipt_id: &str) -> Result<Option<Receipt>>;
    /// The receipt of a gauntlet run.
    async fn get_by_gauntlet(&self, tenant: &TenantId, gauntlet_id: &str) -> Result<Option<Receipt>>;
    /// One page of the receipts passing `query`, in its order.
    async fn list(&self, tenant: &TenantId, query: &ReceiptQuery, page: &PageRequest) -> Result<Page<Receipt>>;
    /// How many receipts pass `query`.
    async fn count(&self, tenant: &TenantId, query: &ReceiptQuery) -> Result<u64>;
    /// The receipts passing `query` whose text holds every word of `text` (at least
    /// [`MIN_SEARCH_CHARS`] characters; shorter finds nothing), best first, at most
    /// [`MAX_SEARCH_RESULTS`] after `offset`, and how many match in all.
    async fn search(&self, tenant: &TenantId, text: &str, query: &ReceiptQuery, limit: u32, offset: u32) -> Result<(Vec<Receipt>, u64)>;
    /// Stores the application's signature over the receipt's checksum, once (`Conflict` if it
    /// is already signed).
    async fn update_signature(
        &self,
        tenant: &TenantId,
        receipt_id: &str,
        signature: &str,
        algorithm: SignatureAlgorithm,
        key_id: &str,
    ) -> Result<Receipt>;
    /// Checks the receipt's checksum and, with `key`, its signature (made with that key's
    /// algorithm over the checksum). `NotFound` for a missing receipt.
    async fn verify(&self, tenant: &TenantId, receipt_id: &str, key: Option<&VerifyingKey>) -> Result<ReceiptVerification>;
    /// Links the receipt to its run's audit trail, once (`Conflict` if linked to another).
    async fn link_trail(&self, tenant: &TenantId, receipt_id: &str, trail_id: &str) -> Result<Receipt>;
    /// Stores an RFC 3161 timestamp of the receipt. `NotFound` for a missing receipt.
    async fn add_timestamp(&self, tenant: &TenantId, receipt_id: &str, token: &str, tsa_url: &str) -> Result<Receipt>;
    /// Places a legal hold (`Conflict` if one stands). `NotFound` for a missing receipt.
    async fn place_legal_hold(
        &self,
        tenant: &TenantId,
        receipt_id: &str,
        reason: &str,
        placed_by: &str,
        matter_id: Option<&str>,
    ) -> Result<Receipt>;
    /// Releases the legal hold (`Conflict` if none stands). `NotFound` for a missing receipt.
    async fn remove_legal_hold(&self, tenant: &TenantId, receipt_id: &str) -> Result<Receipt>;
    /// One page of the receipts under legal hold (of one matter, or all), by id.
    async fn list_under_legal_hold(&self, tenant: &TenantId, matter_id: Option<&str>, page: &PageRequest) -> Result<Page<Receipt>>;
    /// One page of the receipts about a person (an access request), newest first.
    async fn get_by_subject(&self, tenant: &TenantId, subject_id: &str, page: &PageRequest) -> Result<Page<Receipt>>;
    /// Deletes a receipt, logging why and by whom in the same unit; whether it existed.
    /// `Conflict` while it is under legal hold.
    async fn delete(&self, tenant: &TenantId, receipt_id: &str, reason: DeletionReason, operator: &str) -> Result<bool>;
    /// Deletes every receipt about a person (an erasure request), each logged; how many were
    /// deleted and how many are kept under legal hold.
    async fn erase_subject(&self, tenant: &TenantId, subject_id: &str, operator: &str) -> Result<(u64, u64)>;
    /// Deletes the receipts past their retention in every tenant, never one under legal hold,
    /// each logged in the unit that deletes it; how many.
    async fn cleanup_expired(&self, operator: &str) -> Result<u64>;
    /// Counts of the tenant's receipts.
    async fn get_stats(&self, tenant: &TenantId) -> Result<ReceiptStats>;
    /// One page of the deletion log, newest first.
    async fn deletions(&self, tenant: &TenantId, query: &DeletionQuery, page: &PageRequest) -> Result<Page<ReceiptDeletion>>;
    /// How many deletions pass `query`.
    async fn count_deletions(&self, tenant: &TenantId, query: &DeletionQuery) -> Result<u64>;
    /// How many deletions per reason.
    async fn deletion_stats(&self, tenant: &TenantId) -> Result<BTreeMap<DeletionReason, u64>>;
    /// Recomputes the tenant's audit chain, which holds the deletion log: the first altered,
    /// removed or inserted entry, if any.
    async fn verify_deletion_log(&self, tenant: &TenantId) -> Result<ChainReport>;
}

/// [`ReceiptStore`] on any backend.
pub struct Receipts<B: ?Sized = dyn Engine> {
    receipts: Table<Receipt>,
    audit: Audit<B>,
    retention: TimeDelta,
}

impl<B: ?Sized + 'static> crate::Store for Receipts<B> {
    fn on(engine: &dyn Engine) -> Self {
        Self { receipts: engine.table(), audit: Audit::on(engine), retention: DEFAULT_RECEIPT_RETENTION }
    }
}

impl<B: ?Sized> Clone for Receipts<B> {
    fn clone(&self) -> Self {
        Self { receipts: self.receipts.clone(), audit: self.audit.clone(), retention: self.retention }
    }
}

impl<B: ?Sized> fmt::Debug for Receipts<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipts").field("receipts", &self.receipts).field("retention", &self.retention).finish_non_exhaustive()
    }
}

crate::seed_constructors!(Receipts);

impl<B: ?Sized> Receipts<B> {
    /// The same store, keeping new receipts for `retention` after they were issued.
    pub fn with_retention(mut self, retention: TimeDelta) -> Result<Self> {
        if retention <= TimeDelta::zero() {
            return Err(StorageError::invalid("retention", "must be positive"));
        }
        self.retention = retention;
        Ok(self)
    }

    fn backend(&self) -> crate::DatabaseBackend {
        self.receipts.backend()
    }

    /// Changes a receipt that must exist and be intact.
    async fn change(
        &self,
        tenant: &TenantId,
        receipt_id: &str,
        change: impl Fn(&mut Receipt) -> Result<()> + Send + Sync,
    ) -> Result<Receipt> {
        let backend = self.backend();
        self.receipts
            .patch(tenant, receipt_id, |receipt| {
                if !receipt.is_intact() {
                    return Err(StorageError::corrupt(backend, format!("receipt `{receipt_id}` no longer matches its checksum")));
                }
                change(receipt)
            })
            .await
    }

    /// Deletes the receipts `ids` of `tenant` that `doomed` still selects when read, each
    /// logged, in one unit; read again while receipts in it change meanwhile. How many went.
    async fn delete_batch(
        &self,
        tenant: &TenantId,
        ids: &[&str],
        reason: DeletionReason,
        operator: &str,
        doomed: impl Fn(&Receipt) -> bool + Send + Sync,
    ) -> Result<u64> {
        for _ in 0..DELETE_ATTEMPTS {
            let current = self.receipts.get_many(tenant, ids).await?;
            let going: Vec<&Receipt> = current.iter().filter(|r| r.legal_hold.is_none() && doomed(r)).collect();
            if going.is_empty() {
                return Ok(0);
            }
            let now = self.receipts.now();
            let events = going.iter().map(|r| r.deletion_event(reason, operator)).collect();
            let erased: Vec<Receipt> = going.iter().map(|r| r.erased(now)).collect();
            let logged = self
                .audit
                .log_batch_with(tenant, events, |unit| erased.iter().try_for_each(|receipt| unit.update(&self.receipts, receipt)))
                .await;
            match logged {
                Ok(_) => return Ok(u64::try_from(going.len()).unwrap_or(u64::MAX)),
                // A hold was placed, or the receipt deleted, since it was read: read again.
                Err(StorageError::Conflict { entity, .. } | StorageError::NotFound { entity, .. }) if entity == Receipt::TABLE.entity => {}
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::conflict(Receipt::TABLE.entity, ids.first().copied().unwrap_or_default(), "kept changing while being deleted"))
    }

    /// Deletes the receipts issued before `cutoff` in every tenant, as retention does (never a
    /// held one, each logged): the audit trail store's retention of the receipts it saved.
    pub(crate) async fn delete_issued_before(&self, cutoff: DateTime<Utc>, operator: &str) -> Result<u64> {
        let old = Filter::all().lt("issued_at", cutoff).eq("legal_hold", false);
        self.delete_matching(Scope::AllTenants, old, DeletionReason::RetentionExpired, operator, move |r| {
            r.issued_at.is_some_and(|at| at < cutoff)
        })
        .await
    }

    /// Deletes the receipts passing `filter` in `scope` that `doomed` still selects, batch by batch.
    async fn delete_matching(
        &self,
        scope: Scope<'_>,
        filter: Filter,
        reason: DeletionReason,
        operator: &str,
        doomed: impl Fn(&Receipt) -> bool + Send + Sync + Copy,
    ) -> Result<u64> {
        validate_id("operator", operator)?;
        let mut request = PageRequest::first(DELETE_BATCH);
        let mut deleted = 0u64;
        loop {
            let page = self.receipts.list(scope, Query::new(filter.clone()), &request).await?;
            let mut by_tenant: BTreeMap<TenantId, Vec<&str>> = BTreeMap::new();
            for receipt in &page.items {
                by_tenant.entry(receipt.tenant.clone()).or_default().push(&receipt.receipt_id);
            }
            for (tenant, ids) in by_tenant {
                deleted = deleted.saturating_add(self.delete_batch(&tenant, &ids, reason, operator, doomed).await?);
            }
            match request.next(page.next.as_ref()) {
                Some(next) => request = next,
                None => break,
            }
        }
        self.receipts.purge_expired().await?;
        Ok(deleted)
    }
}

#[async_trait]
impl<B: ?Sized> ReceiptStore for Receipts<B> {
    async fn save(&self, receipt: &Receipt) -> Result<Receipt> {
        let now = self.receipts.now();
        let mut receipt = receipt.clone();
        let issued_at = crate::limits::check_instant("issued_at", receipt.issued_at.unwrap_or(now))?;
        receipt.issued_at = Some(issued_at);
        receipt.retain_until = crate::limits::add("retention", issued_at, self.retention)?;
        (receipt.signature, receipt.timestamp, receipt.legal_hold, receipt.erased_at) = (None, None, None, None);
        receipt.checksum = receipt.compute_checksum();
        self.receipts.insert(&receipt).await
    }

    async fn get(&self, tenant: &TenantId, receipt_id: &str) -> Result<Option<Receipt>> {
        self.receipts.get(tenant, receipt_id).await?.map(|r| r.check(self.backend())).transpose()
    }

    async fn get_by_gauntlet(&self, tenant: &TenantId, gauntlet_id: &str) -> Result<Option<Receipt>> {
        validate_id("gauntlet_id", gauntlet_id)?;
        self.receipts.get_by_unique(tenant, "gauntlet_id", gauntlet_id).await?.map(|r| r.check(self.backend())).transpose()
    }

    async fn list(&self, tenant: &TenantId, query: &ReceiptQuery, page: &PageRequest) -> Result<Page<Receipt>> {
        let page = self.receipts.list(Scope::Tenant(tenant), Query::new(query.filter()?).order(query.order()), page).await?;
        Ok(Page { items: page.items.into_iter().map(|r| r.check(self.backend())).collect::<Result<_>>()?, next: page.next })
    }

    async fn count(&self, tenant: &TenantId, query: &ReceiptQuery) -> Result<u64> {
        self.receipts.count(Scope::Tenant(tenant), query.filter()?).await
    }

    async fn search(&self, tenant: &TenantId, text: &str, query: &ReceiptQuery, limit: u32, offset: u32) -> Result<(Vec<Receipt>, u64)> {
        if text.trim().chars().count() < MIN_SEARCH_CHARS {
            return Ok((Vec::new(), 0));
        }
        let (found, total) = self.receipts.search(tenant, text, query.filter()?, limit.min(MAX_SEARCH_RESULTS), offset).await?;
        Ok((found.into_iter().map(|r| r.check(self.backend())).collect::<Result<_>>()?, total))
    }

    async fn update_signature(
        &self,
        tenant: &TenantId,
        receipt_id: &str,
        signature: &str,
        algorithm: SignatureAlgorithm,
        key_id: &str,
    ) -> Result<Receipt> {
        validate_id("key_id", key_id)?;
        STANDARD.decode(signature).map_err(|_| StorageError::invalid("signature", "is not base64"))?;
        let signed_at = self.receipts.now();
        self.change(tenant, receipt_id, |receipt| {
            if receipt.signature.is_some() {
                return Err(StorageError::conflict(Receipt::TABLE.entity, receipt_id, "is already signed"));
            }
            receipt.signature = Some(ReceiptSignature { signature: signature.to_owned(), algorithm, key_id: key_id.to_owned(), signed_at });
            Ok(())
        })
        .await
    }

    async fn verify(&self, tenant: &TenantId, receipt_id: &str, key: Option<&VerifyingKey>) -> Result<ReceiptVerification> {
        let receipt =
            self.receipts.get(tenant, receipt_id).await?.ok_or_else(|| StorageError::not_found(Receipt::TABLE.entity, receipt_id))?;
        let intact = receipt.is_intact();
        let signature = match (key, &receipt.signature) {
            (None, _) => SignatureCheck::NotChecked,
            (Some(_), None) => SignatureCheck::NotSigned,
            (Some(key), Some(signed)) if signed.algorithm != key.algorithm() => {
                SignatureCheck::Invalid(format!("signed with {:?}, checked with a {:?} key", signed.algorithm, key.algorithm()))
            }
            (Some(key), Some(signed)) => match STANDARD.decode(&signed.signature) {
                Ok(bytes) if key.verifies(receipt.compute_checksum().as_bytes(), &bytes) => SignatureCheck::Valid,
                Ok(_) => SignatureCheck::Invalid("the signature does not match the key and the receipt's content".to_owned()),
                Err(_) => SignatureCheck::Invalid("the stored signature is not base64".to_owned()),
            },
        };
        Ok(ReceiptVerification { intact, signature })
    }

    async fn link_trail(&self, tenant: &TenantId, receipt_id: &str, trail_id: &str) -> Result<Receipt> {
        validate_id("audit_trail_id", trail_id)?;
        self.change(tenant, receipt_id, |receipt| match &receipt.audit_trail_id {
            Some(linked) if linked != trail_id => {
                Err(StorageError::conflict(Receipt::TABLE.entity, receipt_id, format!("already linked to trail `{linked}`")))
            }
            _ => {
                receipt.audit_trail_id = Some(trail_id.to_owned());
                Ok(())
            }
        })
        .await
    }

    async fn add_timestamp(&self, tenant: &TenantId, receipt_id: &str, token: &str, tsa_url: &str) -> Result<Receipt> {
        STANDARD.decode(token).map_err(|_| StorageError::invalid("token", "is not base64"))?;
        crate::limits::check_text("tsa_url", tsa_url)?;
        let at = self.receipts.now();
        self.change(tenant, receipt_id, |receipt| {
            receipt.timestamp = Some(TrustedTimestamp { token: token.to_owned(), tsa_url: tsa_url.to_owned(), at });
            Ok(())
        })
        .await
    }

    async fn place_legal_hold(
        &self,
        tenant: &TenantId,
        receipt_id: &str,
        reason: &str,
        placed_by: &str,
        matter_id: Option<&str>,
    ) -> Result<Receipt> {
        crate::limits::check_text("reason", reason)?;
        validate_id("placed_by", placed_by)?;
        if let Some(matter) = matter_id {
            validate_id("matter_id", matter)?;
        }
        let placed_at = self.receipts.now();
        self.change(tenant, receipt_id, |receipt| {
            if receipt.legal_hold.is_some() {
                return Err(StorageError::conflict(Receipt::TABLE.entity, receipt_id, "is already under legal hold"));
            }
            receipt.legal_hold = Some(LegalHold {
                reason: reason.to_owned(),
                placed_by: placed_by.to_owned(),
                matter_id: matter_id.map(str::to_owned),
                placed_at,
            });
            Ok(())
        })
        .await
    }

    async fn remove_legal_hold(&self, tenant: &TenantId, receipt_id: &str) -> Result<Receipt> {
        self.change(tenant, receipt_id, |receipt| match receipt.legal_hold.take() {
            Some(_) => Ok(()),
            None => Err(StorageError::conflict(Receipt::TABLE.entity, receipt_id, "is not under legal hold")),
        })
        .await
    }

    async fn list_under_legal_hold(&self, tenant: &TenantId, matter_id: Option<&str>, page: &PageRequest) -> Result<Page<Receipt>> {
        let mut filter = Filter::all().eq("legal_hold", true);
        if let Some(matter) = matter_id {
            validate_id("matter_id", matter)?;
            filter = filter.eq("matter_id", matter);
        }
        self.receipts.list(Scope::Tenant(tenant), Query::new(filter), page).await
    }

    async fn get_by_subject(&self, tenant: &TenantId, subject_id: &str, page: &PageRequest) -> Result<Page<Receipt>> {
        validate_id("subject_id", subject_id)?;
        let query = Query::new(Filter::all().eq("subject_id", subject_id)).order(Order::desc("issued_at"));
        self.receipts.list(Scope::Tenant(tenant), query, page).await
    }

    async fn delete(&self, tenant: &TenantId, receipt_id: &str, reason: DeletionReason, operator: &str) -> Result<bool> {
        validate_id("operator", operator)?;
        validate_id(Receipt::TABLE.id_field, receipt_id)?;
        let Some(receipt) = self.receipts.get(tenant, receipt_id).await? else { return Ok(false) };
        if receipt.legal_hold.is_some() {
            return Err(StorageError::conflict(Receipt::TABLE.entity, receipt_id, "is under legal hold"));
        }
        let deleted = self.delete_batch(tenant, &[receipt_id], reason, operator, |_| true).await?;
        if deleted == 0 {
            // Between the two reads it was held (refused) or deleted by another caller.
            if self.receipts.get(tenant, receipt_id).await?.is_some_and(|r| r.legal_hold.is_some()) {
                return Err(StorageError::conflict(Receipt::TABLE.entity, receipt_id, "is under legal hold"));
            }
            return Ok(false);
        }
        self.receipts.purge_expired().await?;
        Ok(true)
    }

    async fn erase_subject(&self, tenant: &TenantId, subject_id: &str, operator: &str) -> Result<(u64, u64)> {
        validate_id("subject_id", subject_id)?;
        let of_subject = || Filter::all().eq("subject_id", subject_id);
        let deleted = self
            .delete_matching(Scope::Tenant(tenant), of_subject().eq("legal_hold", false), DeletionReason::GdprErasure, operator, |_| true)
            .await?;
        let held = self.receipts.count(Scope::Tenant(tenant), of_subject()).await?;
        Ok((deleted, held))
    }

    async fn cleanup_expired(&self, operator: &str) -> Result<u64> {
        let now = self.receipts.now();
        let due = Filter::all().le("retain_until", now).eq("legal_hold", false);
        self.delete_matching(Scope::AllTenants, due, DeletionReason::RetentionExpired, operator, move |r| r.retain_until <= now).await
    }

    async fn get_stats(&self, tenant: &TenantId) -> Result<ReceiptStats> {
        let scope = Scope::Tenant(tenant);
        let now = self.receipts.now();
        Ok(ReceiptStats {
            total: self.receipts.count(scope, Filter::all()).await?,
            signed: self.receipts.count(scope, Filter::all().not_null("signed_at")).await?,
            held: self.receipts.count(scope, Filter::all().eq("legal_hold", true)).await?,
            past_retention: self.receipts.count(scope, Filter::all().le("retain_until", now)).await?,
        })
    }

    async fn deletions(&self, tenant: &TenantId, query: &DeletionQuery, page: &PageRequest) -> Result<Page<ReceiptDeletion>> {
        let entries = crate::AuditStore::get_log(&self.audit, tenant, &query.audit(), page).await?;
        Ok(Page { items: entries.items.into_iter().filter_map(ReceiptDeletion::from_entry).collect(), next: entries.next })
    }

    async fn count_deletions(&self, tenant: &TenantId, query: &DeletionQuery) -> Result<u64> {
        crate::AuditStore::get_log_count(&self.audit, tenant, &query.audit()).await
    }

    async fn deletion_stats(&self, tenant: &TenantId) -> Result<BTreeMap<DeletionReason, u64>> {
        let mut stats = BTreeMap::new();
        for reason in DeletionReason::ALL {
            let query = DeletionQuery { reason: Some(reason), ..DeletionQuery::default() };
            stats.insert(reason, self.count_deletions(tenant, &query).await?);
        }
        Ok(stats)
    }

    async fn verify_deletion_log(&self, tenant: &TenantId) -> Result<ChainReport> {
        crate::AuditStore::verify(&self.audit, tenant, None, None).await
    }
}
