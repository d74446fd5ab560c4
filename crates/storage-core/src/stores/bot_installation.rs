//! Chat-platform bot installations: Slack workspaces, Microsoft Teams tenants and Discord guilds
//! in one schema (the original's four stores, one per platform and one duplicate).
//!
//! An installation belongs to the tenant that installed it, and an inbound event finds it by
//! platform and the platform's id alone (team, tenant or guild id): a global unique key, so one
//! workspace is never installed in two tenants at once. Tokens and the signing secret are sealed.
//! A refresh lease makes one worker at a time refresh a credential; the HTTP refresh itself stays
//! in the application.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::gmail_token::TokenRefresh;
use crate::table::Table;
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Mutex;
use uuid::Uuid;

/// A chat platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// A Slack workspace (team id).
    Slack,
    /// A Microsoft Teams tenant (Azure AD tenant id).
    Teams,
    /// A Discord guild (guild id).
    Discord,
}

impl Platform {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Teams => "teams",
            Self::Discord => "discord",
        }
    }
}

/// Who holds the right to refresh an installation's tokens, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshLease {
    /// The installation's platform.
    pub platform: Platform,
    /// The installation's id on its platform.
    pub external_id: String,
    /// The fencing token: only its holder completes or releases the lease.
    pub token: Uuid,
    /// The worker that asked for it.
    pub holder: String,
    /// When it lapses, and another worker may take it.
    pub until: DateTime<Utc>,
}

/// A bot installed in a workspace, tenant or guild of a chat platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotInstallation {
    /// The tenant that installed it ([`TenantId::system`] until one claims it, if the
    /// application installs before it knows the tenant).
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The platform.
    pub platform: Platform,
    /// The platform's id: Slack team id, Azure AD tenant id, Discord guild id.
    pub external_id: String,
    /// The workspace's, tenant's or guild's name.
    pub name: String,
    /// The bot's user id on the platform.
    pub bot_id: Option<String>,
    /// The bot token; sealed. Empty once revoked.
    #[serde(skip)]
    pub access_token: Secret<String>,
    /// The refresh token, where the platform rotates tokens; sealed.
    #[serde(skip)]
    pub refresh_token: Option<Secret<String>>,
    /// The request-signing secret (Slack); sealed.
    #[serde(skip)]
    pub signing_secret: Option<Secret<String>>,
    /// When the access token expires, if it does.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// The OAuth scopes granted.
    pub scopes: Vec<String>,
    /// The user who installed it.
    pub installed_by: Option<String>,
    /// When it was installed.
    pub installed_at: DateTime<Utc>,
    /// The Bot Framework service URL (Teams).
    pub service_url: Option<String>,
    /// Whether events are served; a revoked or uninstalled bot is inactive.
    pub is_active: bool,
    /// The current refresh lease, if any.
    pub refresh_lease: Option<RefreshLease>,
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

impl BotInstallation {
    /// An active installation of `platform`'s `external_id` in `tenant`, installed now.
    pub fn new(
        tenant: TenantId,
        platform: Platform,
        external_id: impl Into<String>,
        name: impl Into<String>,
        access_token: impl Into<Secret<String>>,
        installed_at: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant,
            platform,
            external_id: external_id.into(),
            name: name.into(),
            bot_id: None,
            access_token: access_token.into(),
            refresh_token: None,
            signing_secret: None,
            token_expires_at: None,
            scopes: Vec::new(),
            installed_by: None,
            installed_at,
            service_url: None,
            is_active: true,
            refresh_lease: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// With a refresh token and the access token's expiry.
    pub fn with_refresh(mut self, refresh_token: impl Into<Secret<String>>, expires_at: DateTime<Utc>) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self.token_expires_at = Some(expires_at);
        self
    }

    /// Whether the access token has expired, or will within `buffer` of `now`.
    pub fn is_token_expired(&self, now: DateTime<Utc>, buffer: TimeDelta) -> bool {
        self.token_expires_at.is_some_and(|at| at <= now.checked_add_signed(buffer).unwrap_or(DateTime::<Utc>::MAX_UTC))
    }
}

/// The installation's id and global key: the platform and its id, unambiguous (a platform name
/// has no `:`).
fn key(platform: Platform, external_id: &str) -> String {
    format!("{}:{external_id}", platform.as_str())
}

impl Document for BotInstallation {
    const TABLE: TableDef = TableDef {
        name: "bot_installations",
        entity: "bot installation",
        id_field: "install_id",
        indexes: &[
            IndexSpec::text("install_key").global(),
            IndexSpec::text("platform"),
            IndexSpec::bool("is_active"),
            IndexSpec::time("installed_at"),
            IndexSpec::time("refresh_due_at"),
        ],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        key(self.platform, &self.external_id)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        // Only an active installation that can refresh is due for a refresh.
        let due = self.token_expires_at.filter(|_| self.is_active && self.refresh_token.is_some());
        vec![
            Some(Value::Text(self.id())),
            Some(Value::from(self.platform.as_str())),
            Some(Value::Bool(self.is_active)),
            Some(Value::Time(self.installed_at)),
            due.map(Value::Time),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("external_id", &self.external_id)?;
        crate::limits::check_text("name", &self.name)?;
        for (field, value) in [("bot_id", &self.bot_id), ("installed_by", &self.installed_by)] {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        if let Some(url) = &self.service_url {
            crate::limits::check_text("service_url", url)?;
        }
        for scope in &self.scopes {
            validate_id("scopes", scope)?;
        }
        if self.is_active && self.access_token.expose().is_empty() {
            return Err(StorageError::invalid("access_token", "an active installation needs a token"));
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::new();
        let named = [
            ("access_token", Some(&self.access_token)),
            ("refresh_token", self.refresh_token.as_ref()),
            ("signing_secret", self.signing_secret.as_ref()),
        ];
        for (name, value) in named {
            if let Some(value) = value.filter(|v| !v.expose().is_empty()) {
                secrets.insert(name.to_owned(), value.clone());
            }
        }
        secrets
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.access_token = secrets.remove("access_token").unwrap_or_default();
        self.refresh_token = secrets.remove("refresh_token");
        self.signing_secret = secrets.remove("signing_secret");
        Ok(())
    }
}

/// Bot installations of Slack, Teams and Discord.
#[async_trait]
pub trait BotInstallationStore: Send + Sync + fmt::Debug {
    /// Stores an installation (a new one, or a re-install by its tenant, keeping `created_at`);
    /// `Conflict` if another tenant holds this workspace, tenant or guild.
    async fn save(&self, installation: &BotInstallation) -> Result<BotInstallation>;
    /// The installation an inbound event names, whichever its tenant.
    async fn get(&self, platform: Platform, external_id: &str) -> Result<Option<BotInstallation>>;
    /// One page of a tenant's active installations (of one platform or all), newest first.
    async fn get_by_tenant(&self, tenant: &TenantId, platform: Option<Platform>, page: &PageRequest) -> Result<Page<BotInstallation>>;
    /// One page of the active installations of every tenant (of one platform or all): tenant by
    /// tenant, newest first within each.
    async fn list_active(&self, platform: Option<Platform>, page: &PageRequest) -> Result<Page<BotInstallation>>;
    /// How many installations (of one platform or all; active only or all) across tenants.
    async fn count(&self, platform: Option<Platform>, active_only: bool) -> Result<u64>;
    /// Stops serving events; the tokens stay.
    async fn deactivate(&self, platform: Platform, external_id: &str) -> Result<BotInstallation>;
    /// Blanks every token and secret and deactivates; the rest stays.
    async fn revoke_token(&self, platform: Platform, external_id: &str) -> Result<BotInstallation>;
    /// Removes the installation; whether it existed.
    async fn delete(&self, platform: Platform, external_id: &str) -> Result<bool>;
    /// Stores refreshed tokens (an administrative write: a worker holding a lease uses
    /// [`BotInstallationStore::complete_refresh`]).
    async fn update_tokens(&self, platform: Platform, external_id: &str, refresh: TokenRefresh) -> Result<BotInstallation>;
    /// One page of the active, refreshable installations of every tenant whose token expires
    /// within `within` (tenant by tenant, soonest first within each): the refresh scheduler's scan.
    async fn get_expiring_tokens(&self, within: TimeDelta, page: &PageRequest) -> Result<Page<BotInstallation>>;
    /// The right to refresh this installation's tokens for `ttl`, if no other worker holds it.
    async fn acquire_refresh_lease(
        &self,
        platform: Platform,
        external_id: &str,
        holder: &str,
        ttl: TimeDelta,
    ) -> Result<Option<RefreshLease>>;
    /// Stores the refreshed tokens and ends the lease; `Conflict` if the lease was lost (it
    /// lapsed and another worker took it, or it was released), and then nothing changes. A
    /// lapsed lease nobody took still completes: no other worker refreshed meanwhile.
    async fn complete_refresh(&self, lease: &RefreshLease, refresh: TokenRefresh) -> Result<BotInstallation>;
    /// Ends the lease without a refresh; whether it was still held.
    async fn release_refresh_lease(&self, lease: &RefreshLease) -> Result<bool>;
}

/// [`BotInstallationStore`] on any backend.
pub struct BotInstallations<B: ?Sized = dyn Engine> {
    installations: Table<BotInstallation>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(BotInstallations { installations });

/// The lease was lost: it lapsed and another worker took it, or it was released.
fn lease_lost(lease: &RefreshLease) -> StorageError {
    StorageError::conflict(BotInstallation::TABLE.entity, key(lease.platform, &lease.external_id), "the refresh lease is no longer held")
}

impl<B: ?Sized> BotInstallations<B> {
    /// The tenant holding an installation.
    async fn locate(&self, platform: Platform, external_id: &str) -> Result<TenantId> {
        validate_id("external_id", external_id)?;
        let id = key(platform, external_id);
        match self.installations.locate("install_key", id.as_str()).await? {
            Some((tenant, _)) => Ok(tenant),
            None => Err(StorageError::not_found(BotInstallation::TABLE.entity, id)),
        }
    }

    /// Applies `change` to an installation wherever it lives.
    async fn patch(
        &self,
        platform: Platform,
        external_id: &str,
        change: impl Fn(&mut BotInstallation) -> Result<()> + Send + Sync,
    ) -> Result<BotInstallation> {
        let tenant = self.locate(platform, external_id).await?;
        self.installations.patch(&tenant, &key(platform, external_id), change).await
    }

    fn filter(platform: Option<Platform>, active_only: bool) -> Filter {
        let mut filter = Filter::all();
        if let Some(platform) = platform {
            filter = filter.eq("platform", platform.as_str());
        }
        if active_only {
            filter = filter.eq("is_active", true);
        }
        filter
    }

    fn store_tokens(installation: &mut BotInstallation, refresh: &TokenRefresh) {
        installation.access_token = refresh.access_token.clone();
        if let Some(token) = &refresh.refresh_token {
            installation.refresh_token = Some(token.clone());
        }
        installation.token_expires_at = Some(refresh.token_expiry);
        installation.refresh_lease = None;
    }
}

fn check_tokens(refresh: &TokenRefresh) -> Result<()> {
    if refresh.access_token.expose().is_empty() {
        return Err(StorageError::invalid("access_token", "must not be empty"));
    }
    crate::limits::check_instant("token_expiry", refresh.token_expiry).map(|_| ())
}

#[async_trait]
impl<B: ?Sized> BotInstallationStore for BotInstallations<B> {
    async fn save(&self, installation: &BotInstallation) -> Result<BotInstallation> {
        self.installations.upsert(installation).await
    }

    async fn get(&self, platform: Platform, external_id: &str) -> Result<Option<BotInstallation>> {
        validate_id("external_id", external_id)?;
        self.installations.find_global("install_key", key(platform, external_id)).await
    }

    async fn get_by_tenant(&self, tenant: &TenantId, platform: Option<Platform>, page: &PageRequest) -> Result<Page<BotInstallation>> {
        let query = Query::new(Self::filter(platform, true)).order(Order::desc("installed_at"));
        self.installations.list(Scope::Tenant(tenant), query, page).await
    }

    async fn list_active(&self, platform: Option<Platform>, page: &PageRequest) -> Result<Page<BotInstallation>> {
        let query = Query::new(Self::filter(platform, true)).order(Order::desc("installed_at"));
        self.installations.list(Scope::AllTenants, query, page).await
    }

    async fn count(&self, platform: Option<Platform>, active_only: bool) -> Result<u64> {
        self.installations.count(Scope::AllTenants, Self::filter(platform, active_only)).await
    }

    async fn deactivate(&self, platform: Platform, external_id: &str) -> Result<BotInstallation> {
        self.patch(platform, external_id, |installation| {
            installation.is_active = false;
            Ok(())
        })
        .await
    }

    async fn revoke_token(&self, platform: Platform, external_id: &str) -> Result<BotInstallation> {
        self.patch(platform, external_id, |installation| {
            installation.access_token = Secret::default();
            installation.refresh_token = None;
            installation.signing_secret = None;
            installation.token_expires_at = None;
            installation.refresh_lease = None;
            installation.is_active = false;
            Ok(())
        })
        .await
    }

    async fn delete(&self, platform: Platform, external_id: &str) -> Result<bool> {
        match self.locate(platform, external_id).await {
            Ok(tenant) => self.installations.delete(&tenant, &key(platform, external_id)).await,
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn update_tokens(&self, platform: Platform, external_id: &str, refresh: TokenRefresh) -> Result<BotInstallation> {
        check_tokens(&refresh)?;
        self.patch(platform, external_id, |installation| {
            Self::store_tokens(installation, &refresh);
            Ok(())
        })
        .await
    }

    async fn get_expiring_tokens(&self, within: TimeDelta, page: &PageRequest) -> Result<Page<BotInstallation>> {
        if within < TimeDelta::zero() {
            return Err(StorageError::invalid("within", format!("`{within}` must not be negative")));
        }
        let until = crate::limits::add("within", self.installations.now(), within)?;
        let query = Query::new(Filter::all().le("refresh_due_at", until)).order(Order::asc("refresh_due_at"));
        self.installations.list(Scope::AllTenants, query, page).await
    }

    async fn acquire_refresh_lease(
        &self,
        platform: Platform,
        external_id: &str,
        holder: &str,
        ttl: TimeDelta,
    ) -> Result<Option<RefreshLease>> {
        validate_id("holder", holder)?;
        if ttl <= TimeDelta::zero() {
            return Err(StorageError::invalid("ttl", format!("`{ttl}` must be positive")));
        }
        let now = self.installations.now();
        let lease = RefreshLease {
            platform,
            external_id: external_id.to_owned(),
            token: Uuid::new_v4(),
            holder: holder.to_owned(),
            until: crate::limits::add("ttl", now, ttl)?,
        };
        // Whether this caller took it, as the last attempt of the patch saw it.
        let taken = Mutex::new(false);
        self.patch(platform, external_id, |installation| {
            let free = installation.refresh_lease.as_ref().is_none_or(|held| held.until <= now);
            *taken.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = free;
            if !free {
                // Nothing to write: abort the patch.
                return Err(lease_lost(&lease));
            }
            installation.refresh_lease = Some(lease.clone());
            Ok(())
        })
        .await
        .map(|_| Some(lease.clone()))
        .or_else(|e| match e {
            StorageError::Conflict { .. } if !*taken.lock().unwrap_or_else(std::sync::PoisonError::into_inner) => Ok(None),
            other => Err(other),
        })
    }

    async fn complete_refresh(&self, lease: &RefreshLease, refresh: TokenRefresh) -> Result<BotInstallation> {
        check_tokens(&refresh)?;
        self.patch(lease.platform, &lease.external_id, |installation| {
            if installation.refresh_lease.as_ref().is_none_or(|held| held.token != lease.token) {
                return Err(lease_lost(lease));
            }
            Self::store_tokens(installation, &refresh);
            Ok(())
        })
        .await
    }

    async fn release_refresh_lease(&self, lease: &RefreshLease) -> Result<bool> {
        let result = self
            .patch(lease.platform, &lease.external_id, |installation| {
                if installation.refresh_lease.as_ref().is_none_or(|held| held.token != lease.token) {
                    return Err(lease_lost(lease));
                }
                installation.refresh_lease = None;
                Ok(())
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(StorageError::Conflict { .. } | StorageError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A platform, as a type: what makes [`PlatformInstallations`] the seed's per-platform stores.
pub trait PlatformKind: Send + Sync + 'static {
    /// The platform.
    const PLATFORM: Platform;
}

/// Slack, as a type.
#[derive(Debug)]
pub enum Slack {}
/// Microsoft Teams, as a type.
#[derive(Debug)]
pub enum Teams {}
/// Discord, as a type.
#[derive(Debug)]
pub enum Discord {}

impl PlatformKind for Slack {
    const PLATFORM: Platform = Platform::Slack;
}
impl PlatformKind for Teams {
    const PLATFORM: Platform = Platform::Teams;
}
impl PlatformKind for Discord {
    const PLATFORM: Platform = Platform::Discord;
}

/// The installations of one platform: a view of [`BotInstallations`] under the seed's names
/// ([`SlackWorkspaceStore`], [`TeamsWorkspaceStore`], [`TeamsTenantStore`],
/// [`DiscordGuildStore`]), whose calls take the platform's own id and never see another
/// platform's installations.
pub struct PlatformInstallations<P, B: ?Sized = dyn Engine> {
    all: BotInstallations<B>,
    _platform: PhantomData<fn() -> P>,
}

/// The seed's Slack workspace store.
pub type SlackWorkspaceStore = PlatformInstallations<Slack>;
/// The seed's Teams workspace store.
pub type TeamsWorkspaceStore = PlatformInstallations<Teams>;
/// The seed's Teams tenant store (the same installations as [`TeamsWorkspaceStore`]).
pub type TeamsTenantStore = PlatformInstallations<Teams>;
/// The seed's Discord guild store.
pub type DiscordGuildStore = PlatformInstallations<Discord>;

impl<P: PlatformKind, B: ?Sized + 'static> crate::Store for PlatformInstallations<P, B> {
    fn on(engine: &dyn Engine) -> Self {
        Self { all: BotInstallations::on(engine), _platform: PhantomData }
    }
}

impl<P, B: ?Sized> Clone for PlatformInstallations<P, B> {
    fn clone(&self) -> Self {
        Self { all: self.all.clone(), _platform: PhantomData }
    }
}

impl<P: PlatformKind, B: ?Sized> fmt::Debug for PlatformInstallations<P, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformInstallations").field("platform", &P::PLATFORM).finish_non_exhaustive()
    }
}

impl<P: PlatformKind, B: ?Sized> PlatformInstallations<P, B> {
    /// Stores an installation of this platform (see [`BotInstallationStore::save`]).
    pub async fn save(&self, installation: &BotInstallation) -> Result<BotInstallation> {
        if installation.platform != P::PLATFORM {
            return Err(StorageError::invalid(
                "platform",
                format!("a {} installation given to the {} store", installation.platform.as_str(), P::PLATFORM.as_str()),
            ));
        }
        self.all.save(installation).await
    }
    /// The installation of a workspace, tenant or guild id, whichever its tenant.
    pub async fn get(&self, external_id: &str) -> Result<Option<BotInstallation>> {
        self.all.get(P::PLATFORM, external_id).await
    }
    /// One page of a tenant's active installations, newest first.
    pub async fn get_by_tenant(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<BotInstallation>> {
        self.all.get_by_tenant(tenant, Some(P::PLATFORM), page).await
    }
    /// One page of every tenant's active installations.
    pub async fn list_active(&self, page: &PageRequest) -> Result<Page<BotInstallation>> {
        self.all.list_active(Some(P::PLATFORM), page).await
    }
    /// How many installations (active only, if asked).
    pub async fn count(&self, active_only: bool) -> Result<u64> {
        self.all.count(Some(P::PLATFORM), active_only).await
    }
    /// Stops serving events.
    pub async fn deactivate(&self, external_id: &str) -> Result<BotInstallation> {
        self.all.deactivate(P::PLATFORM, external_id).await
    }
    /// Blanks every token and secret and deactivates.
    pub async fn revoke_token(&self, external_id: &str) -> Result<BotInstallation> {
        self.all.revoke_token(P::PLATFORM, external_id).await
    }
    /// Removes the installation; whether it existed.
    pub async fn delete(&self, external_id: &str) -> Result<bool> {
        self.all.delete(P::PLATFORM, external_id).await
    }
    /// Stores refreshed tokens.
    pub async fn update_tokens(&self, external_id: &str, refresh: TokenRefresh) -> Result<BotInstallation> {
        self.all.update_tokens(P::PLATFORM, external_id, refresh).await
    }
    /// The right to refresh an installation's tokens for `ttl`, if no other worker holds it.
    pub async fn acquire_refresh_lease(&self, external_id: &str, holder: &str, ttl: TimeDelta) -> Result<Option<RefreshLease>> {
        self.all.acquire_refresh_lease(P::PLATFORM, external_id, holder, ttl).await
    }
    /// Every platform's installations: the expiring-token scan and the lease completion live there.
    pub fn all_platforms(&self) -> &BotInstallations<B> {
        &self.all
    }
}
