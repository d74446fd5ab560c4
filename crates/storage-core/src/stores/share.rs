//! Share links (catalogue #42 and #30): bearer tokens for a debate or a decision receipt, stored
//! only as SHA-256 digests in a directory that spans tenants, with an expiry, revocation and a
//! maximum number of uses counted in one conditional increment (so a view-once link opens once,
//! however many requests race for it).

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::limits::{add, check_instant};
use crate::query::{Filter, Query, Scope};
use crate::table::{Table, int_value};
use crate::token::{generate_token, hash_token};
use crate::{Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// What a debate share token looks like: `shr_` and 43 random characters.
pub const SHARE_TOKEN_PREFIX: &str = "shr_";
/// What a receipt share token looks like: `rcs_` and 43 random characters.
pub const RECEIPT_SHARE_TOKEN_PREFIX: &str = "rcs_";
/// The most shares [`ReceiptShareStore::list_for_receipt`] returns.
pub const MAX_SHARES_PER_RECEIPT: u32 = 1_000;

/// Who may open a debate's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Only the owner's organisation, signed in: the link does not open.
    Private,
    /// Members of the organisation (the application checks membership).
    Team,
    /// Anyone with the link.
    Public,
}

impl Visibility {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Team => "team",
            Self::Public => "public",
        }
    }
}

/// A debate's sharing settings and its link (one per debate, in the debate's tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebateShare {
    /// The debate's organisation.
    pub tenant: TenantId,
    /// The debate.
    pub debate_id: String,
    /// Who may open the link.
    pub visibility: Visibility,
    /// Who shared it.
    pub owner_id: String,
    /// The digest of the link's token; `None` once revoked.
    pub token_digest: Option<String>,
    /// When the link stops opening (never when `None`).
    pub expires_at: Option<DateTime<Utc>>,
    /// How often the link may be opened (unbounded when `None`).
    pub max_views: Option<u64>,
    /// How often it was opened.
    #[serde(default)]
    pub view_count: u64,
    /// Whether viewers may comment.
    pub allow_comments: bool,
    /// Whether viewers may fork the debate.
    pub allow_forking: bool,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first shared.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for DebateShare {
    const TABLE: TableDef = TableDef {
        name: "debate_shares",
        entity: "debate share",
        id_field: "debate_id",
        indexes: &[
            IndexSpec::text("token_digest").global(),
            IndexSpec::text("owner_id"),
            IndexSpec::text("visibility"),
            IndexSpec::time("link_expires_at"),
            IndexSpec::counter("view_count"),
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
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            self.token_digest.as_ref().map(IndexValue::from),
            Some(IndexValue::from(&self.owner_id)),
            Some(IndexValue::from(self.visibility.as_str())),
            self.expires_at.map(IndexValue::Time),
            Some(int_value(self.view_count)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("debate_id", &self.debate_id)?;
        validate_id("owner_id", &self.owner_id)?;
        check_uses("max_views", self.max_views)
    }
    fn set_counter(&mut self, _column: &str, value: i64) -> Result<()> {
        self.view_count = u64::try_from(value).map_err(|_| StorageError::invalid("view_count", "is negative"))?;
        Ok(())
    }
}

/// What a debate is shared with: [`ShareStore::save`]'s input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSettings {
    /// The debate.
    pub debate_id: String,
    /// Who may open the link.
    pub visibility: Visibility,
    /// Who shares it.
    pub owner_id: String,
    /// When the link stops opening.
    pub expires_at: Option<DateTime<Utc>>,
    /// How often the link may be opened.
    pub max_views: Option<u64>,
    /// Whether viewers may comment.
    pub allow_comments: bool,
    /// Whether viewers may fork.
    pub allow_forking: bool,
}

/// A saved share, and its token when this save minted one (shown only here).
#[derive(Debug, Clone)]
pub struct SavedShare {
    /// The share.
    pub share: DebateShare,
    /// The new link's token: on the first save, and on the first save after a revocation.
    pub token: Option<Secret<String>>,
}

/// How many debates a tenant shares, by visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShareStats {
    /// Shared privately.
    pub private: u64,
    /// Shared with the team.
    pub team: u64,
    /// Shared publicly.
    pub public: u64,
    /// With a live link.
    pub with_link: u64,
}

/// Debate share links.
#[async_trait]
pub trait ShareStore: Send + Sync + fmt::Debug {
    /// Saves a debate's sharing settings (replacing earlier ones, keeping the link and its view
    /// count); mints a link when the debate has none.
    async fn save(&self, tenant: &TenantId, settings: ShareSettings) -> Result<SavedShare>;
    /// The debate's share.
    async fn get(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<DebateShare>>;
    /// The share a live link opens (not revoked, not expired, not private), without counting a
    /// view.
    async fn get_by_token(&self, token: &str) -> Result<Option<DebateShare>>;
    /// Opens a link: counts one view, never past `max_views`, however many requests race.
    /// `NotFound` for an unknown, revoked or expired link or a private debate; `Conflict` when its
    /// views are used up.
    async fn open(&self, token: &str) -> Result<DebateShare>;
    /// Revokes the debate's link (a later save mints a new one). `NotFound` if not shared.
    async fn revoke_token(&self, tenant: &TenantId, debate_id: &str) -> Result<DebateShare>;
    /// Stops sharing the debate; whether it was shared.
    async fn delete(&self, tenant: &TenantId, debate_id: &str) -> Result<bool>;
    /// Deletes the shares of every tenant whose link expired; how many.
    async fn cleanup_expired(&self) -> Result<u64>;
    /// How many debates the tenant shares, by visibility.
    async fn stats(&self, tenant: &TenantId) -> Result<ShareStats>;
}

/// A decision receipt's share link (many per receipt), in the receipt's tenant; gone at expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptShare {
    /// The receipt's tenant.
    pub tenant: TenantId,
    /// A UUID the store assigns.
    pub id: String,
    /// The shared receipt.
    pub receipt_id: String,
    /// The digest of the link's token.
    pub token_digest: String,
    /// When the link stops opening and is forgotten.
    pub expires_at: DateTime<Utc>,
    /// How often it may be opened (unbounded when `None`).
    pub max_accesses: Option<u64>,
    /// How often it was opened.
    #[serde(default)]
    pub access_count: u64,
    /// Who shared it.
    pub created_by: Option<String>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When shared.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last opened.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for ReceiptShare {
    const TABLE: TableDef = TableDef {
        name: "receipt_shares",
        entity: "receipt share",
        id_field: "share_id",
        indexes: &[IndexSpec::text("receipt_id"), IndexSpec::text("token_digest").global(), IndexSpec::counter("access_count")],
        expires: true,
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
        vec![Some(IndexValue::from(&self.receipt_id)), Some(IndexValue::from(&self.token_digest)), Some(int_value(self.access_count))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("share_id", &self.id)?;
        validate_id("receipt_id", &self.receipt_id)?;
        if let Some(by) = &self.created_by {
            validate_id("created_by", by)?;
        }
        check_uses("max_accesses", self.max_accesses)
    }
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        Some(self.expires_at)
    }
    fn set_counter(&mut self, _column: &str, value: i64) -> Result<()> {
        self.access_count = u64::try_from(value).map_err(|_| StorageError::invalid("access_count", "is negative"))?;
        Ok(())
    }
}

/// A new receipt share and its token, shown only here.
#[derive(Debug, Clone)]
pub struct IssuedReceiptShare {
    /// The token to put in the link.
    pub token: Secret<String>,
    /// The share.
    pub share: ReceiptShare,
}

/// Decision receipt share links.
#[async_trait]
pub trait ReceiptShareStore: Send + Sync + fmt::Debug {
    /// Shares a receipt for `ttl` (positive), opened at most `max_accesses` times.
    async fn create(
        &self,
        tenant: &TenantId,
        receipt_id: &str,
        ttl: TimeDelta,
        max_accesses: Option<u64>,
        created_by: Option<&str>,
    ) -> Result<IssuedReceiptShare>;
    /// The share a live link opens, without counting an access.
    async fn get_by_token(&self, token: &str) -> Result<Option<ReceiptShare>>;
    /// Opens a link: counts one access, never past `max_accesses`, however many requests race.
    /// `NotFound` for an unknown, revoked or expired link; `Conflict` when its accesses are used up.
    async fn access(&self, token: &str) -> Result<ReceiptShare>;
    /// The live shares of a receipt (at most [`MAX_SHARES_PER_RECEIPT`]).
    async fn list_for_receipt(&self, tenant: &TenantId, receipt_id: &str) -> Result<Vec<ReceiptShare>>;
    /// Revokes one share; whether it was live.
    async fn revoke(&self, tenant: &TenantId, share_id: &str) -> Result<bool>;
    /// Revokes every share of a receipt; how many.
    async fn delete_by_receipt(&self, tenant: &TenantId, receipt_id: &str) -> Result<u64>;
    /// Forgets expired shares of every tenant; how many.
    async fn cleanup_expired(&self) -> Result<u64>;
}

/// A use limit is at least one (a link that can never open is a mistake) and storable.
fn check_uses(field: &str, uses: Option<u64>) -> Result<()> {
    match uses {
        Some(0) => Err(StorageError::invalid(field, "must be at least 1 (or none, for no limit)")),
        Some(n) if i64::try_from(n).map_or(true, |n| n > crate::limits::MAX_INT) => {
            Err(StorageError::invalid(field, format!("`{n}` is out of range")))
        }
        _ => Ok(()),
    }
}

/// A link token's digest, after checking it is a plausible token.
fn digest(token: &str) -> Result<String> {
    validate_id("token", token)?;
    Ok(hash_token(token))
}

/// Counts one use of the link `token` of `table` whose record passes `opens`: one conditional
/// increment of `counter` capped at the record's `limit`. The record as it is after the use.
async fn use_link<D: Document>(
    table: &Table<D>,
    token: &str,
    opens: impl Fn(&D) -> bool + Send,
    limit: impl Fn(&D) -> Option<u64> + Send,
    counter: &'static str,
) -> Result<D> {
    let missing = || StorageError::not_found(D::TABLE.entity, "(token)");
    let doc = table.find_global("token_digest", digest(token)?).await?.filter(|doc| opens(doc)).ok_or_else(missing)?;
    let cap = limit(&doc).map(|n| i64::try_from(n).unwrap_or(crate::limits::MAX_INT));
    match table.increment(doc.tenant(), &doc.id(), counter, 1, cap).await {
        Ok(count) => {
            let mut used = doc;
            used.set_counter(counter, count)?;
            Ok(used)
        }
        Err(StorageError::NotFound { .. }) => Err(missing()),
        Err(StorageError::Conflict { .. }) => Err(StorageError::conflict(D::TABLE.entity, "(token)", "the link's uses are used up")),
        Err(e) => Err(e),
    }
}

/// [`ShareStore`] on any backend.
pub struct Shares<B: ?Sized = dyn Engine> {
    shares: Table<DebateShare>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Shares { shares });

impl<B: ?Sized> Shares<B> {
    /// Whether the link of `share` opens at `now`.
    fn opens(share: &DebateShare, now: DateTime<Utc>) -> bool {
        share.visibility != Visibility::Private && share.token_digest.is_some() && share.expires_at.is_none_or(|at| now < at)
    }
}

#[async_trait]
impl<B: ?Sized> ShareStore for Shares<B> {
    async fn save(&self, tenant: &TenantId, settings: ShareSettings) -> Result<SavedShare> {
        validate_id("debate_id", &settings.debate_id)?;
        let expires_at = settings.expires_at.map(|at| check_instant("expires_at", crate::clock::truncate_micros(at))).transpose()?;
        let fresh_token = Secret::new(format!("{SHARE_TOKEN_PREFIX}{}", generate_token()?));
        let fresh_digest = hash_token(fresh_token.expose());
        let apply = |share: &mut DebateShare| {
            share.visibility = settings.visibility;
            share.owner_id.clone_from(&settings.owner_id);
            share.expires_at = expires_at;
            share.max_views = settings.max_views;
            share.allow_comments = settings.allow_comments;
            share.allow_forking = settings.allow_forking;
            if share.token_digest.is_none() {
                share.token_digest = Some(fresh_digest.clone());
            }
            Ok(())
        };
        for _ in 0..2 {
            match self.shares.patch(tenant, &settings.debate_id, apply).await {
                Ok(share) => {
                    let minted = share.token_digest.as_deref() == Some(fresh_digest.as_str());
                    return Ok(SavedShare { token: minted.then(|| fresh_token.clone()), share });
                }
                Err(StorageError::NotFound { .. }) => {
                    let mut share = DebateShare {
                        tenant: tenant.clone(),
                        debate_id: settings.debate_id.clone(),
                        visibility: settings.visibility,
                        owner_id: settings.owner_id.clone(),
                        token_digest: None,
                        expires_at,
                        max_views: None,
                        view_count: 0,
                        allow_comments: false,
                        allow_forking: false,
                        version: 0,
                        created_at: DateTime::<Utc>::UNIX_EPOCH,
                        updated_at: DateTime::<Utc>::UNIX_EPOCH,
                    };
                    apply(&mut share)?;
                    match self.shares.insert(&share).await {
                        Ok(share) => return Ok(SavedShare { share, token: Some(fresh_token) }),
                        // Shared concurrently: update that one instead.
                        Err(StorageError::Conflict { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::conflict(DebateShare::TABLE.entity, settings.debate_id, "saved concurrently; try again"))
    }

    async fn get(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<DebateShare>> {
        self.shares.get(tenant, debate_id).await
    }

    async fn get_by_token(&self, token: &str) -> Result<Option<DebateShare>> {
        let now = self.shares.now();
        Ok(self.shares.find_global("token_digest", digest(token)?).await?.filter(|share| Self::opens(share, now)))
    }

    async fn open(&self, token: &str) -> Result<DebateShare> {
        let now = self.shares.now();
        use_link(&self.shares, token, |share| Self::opens(share, now), |share| share.max_views, "view_count").await
    }

    async fn revoke_token(&self, tenant: &TenantId, debate_id: &str) -> Result<DebateShare> {
        self.shares
            .patch(tenant, debate_id, |share| {
                share.token_digest = None;
                Ok(())
            })
            .await
    }

    async fn delete(&self, tenant: &TenantId, debate_id: &str) -> Result<bool> {
        self.shares.delete(tenant, debate_id).await
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        self.shares.delete_where(Scope::AllTenants, Filter::all().le("link_expires_at", self.shares.now())).await
    }

    async fn stats(&self, tenant: &TenantId) -> Result<ShareStats> {
        let scope = Scope::Tenant(tenant);
        let count = |visibility: Visibility| self.shares.count(scope, Filter::all().eq("visibility", visibility.as_str()));
        let live_links = Filter::all().not_null("token_digest");
        Ok(ShareStats {
            private: count(Visibility::Private).await?,
            team: count(Visibility::Team).await?,
            public: count(Visibility::Public).await?,
            with_link: self.shares.count(scope, live_links).await?,
        })
    }
}

/// [`ReceiptShareStore`] on any backend.
pub struct ReceiptShares<B: ?Sized = dyn Engine> {
    shares: Table<ReceiptShare>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(ReceiptShares { shares });

#[async_trait]
impl<B: ?Sized> ReceiptShareStore for ReceiptShares<B> {
    async fn create(
        &self,
        tenant: &TenantId,
        receipt_id: &str,
        ttl: TimeDelta,
        max_accesses: Option<u64>,
        created_by: Option<&str>,
    ) -> Result<IssuedReceiptShare> {
        if ttl <= TimeDelta::zero() {
            return Err(StorageError::invalid("ttl", "must be positive"));
        }
        let token = Secret::new(format!("{RECEIPT_SHARE_TOKEN_PREFIX}{}", generate_token()?));
        let share = ReceiptShare {
            tenant: tenant.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            receipt_id: receipt_id.to_owned(),
            token_digest: hash_token(token.expose()),
            expires_at: add("ttl", self.shares.now(), ttl)?,
            max_accesses,
            access_count: 0,
            created_by: created_by.map(str::to_owned),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let share = self.shares.insert(&share).await?;
        Ok(IssuedReceiptShare { token, share })
    }

    async fn get_by_token(&self, token: &str) -> Result<Option<ReceiptShare>> {
        self.shares.find_global("token_digest", digest(token)?).await
    }

    async fn access(&self, token: &str) -> Result<ReceiptShare> {
        use_link(&self.shares, token, |_| true, |share| share.max_accesses, "access_count").await
    }

    async fn list_for_receipt(&self, tenant: &TenantId, receipt_id: &str) -> Result<Vec<ReceiptShare>> {
        validate_id("receipt_id", receipt_id)?;
        let query = Query::new(Filter::all().eq("receipt_id", receipt_id));
        let page = self.shares.list(Scope::Tenant(tenant), query, &crate::PageRequest::first(MAX_SHARES_PER_RECEIPT)).await?;
        Ok(page.items)
    }

    async fn revoke(&self, tenant: &TenantId, share_id: &str) -> Result<bool> {
        self.shares.delete(tenant, share_id).await
    }

    async fn delete_by_receipt(&self, tenant: &TenantId, receipt_id: &str) -> Result<u64> {
        validate_id("receipt_id", receipt_id)?;
        self.shares.delete_where(Scope::Tenant(tenant), Filter::all().eq("receipt_id", receipt_id)).await
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        self.shares.purge_expired().await
    }
}
