//! Users: accounts, login lookups, API keys, MFA secrets, lockout and session revocation.
//!
//! Users belong to no organisation's tenant: they live in [`TenantId::system`], so an email or an
//! API key finds its user at login, before any tenant is known. Membership (the user's
//! organisation and role) is changed through [`crate::OrganizationStore`], which keeps every
//! organisation with an owner.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::limits::add;
use crate::query::{Filter, Query, Scope};
use crate::stores::organization::{MemberChange, Organization, Role, change_membership};
use crate::table::{Table, int_value, retry_contended};
use crate::token::{generate_token, hash_token};
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// What an API key looks like: `ara_` and 43 random characters.
pub const API_KEY_PREFIX: &str = "ara_";
/// How many leading characters of an API key are kept in clear, to tell keys apart in a UI.
pub const API_KEY_VISIBLE: usize = 12;

/// An account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// A UUID the store assigns.
    pub id: String,
    /// The email, lower-cased; unique across all users.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The organisation the user belongs to, if any.
    pub org_id: Option<String>,
    /// The role in that organisation.
    pub role: Role,
    /// Whether the account may sign in.
    pub is_active: bool,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// The password hash the application computed (argon2, bcrypt, ...); sealed at rest.
    #[serde(skip)]
    pub password_hash: Option<Secret<String>>,
    /// Its salt, if the scheme keeps one apart; sealed at rest.
    #[serde(skip)]
    pub password_salt: Option<Secret<String>>,
    /// The user's API key, as a digest: the key itself is shown once, by [`UserStore::issue_api_key`].
    pub api_key: Option<ApiKeyInfo>,
    /// Whether multi-factor authentication is on.
    pub mfa_enabled: bool,
    /// The TOTP secret; sealed at rest.
    #[serde(skip)]
    pub mfa_secret: Option<Secret<String>>,
    /// Unused backup codes; sealed at rest.
    #[serde(skip)]
    pub mfa_backup_codes: Vec<Secret<String>>,
    /// Bumped to revoke every session token issued before (see [`UserStore::increment_token_version`]).
    pub token_version: u64,
    /// Failed sign-ins since the last success.
    pub failed_login_attempts: u32,
    /// Sign-in is refused until then.
    pub lockout_until: Option<DateTime<Utc>>,
    /// The last failed sign-in.
    pub last_failed_login_at: Option<DateTime<Utc>>,
    /// The last successful sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
    /// The user's preferences, stored as given.
    pub preferences: Map<String, Value>,
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

/// A user's API key, without the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// The first [`API_KEY_VISIBLE`] characters of the key.
    pub prefix: String,
    /// The SHA-256 digest of the key, in hex: what a lookup compares.
    pub digest: String,
    /// What the key may do (application-defined).
    pub scopes: Vec<String>,
    /// When issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a new user starts with.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The email (any case; stored lower-cased).
    pub email: String,
    /// The display name.
    pub name: String,
    /// The password hash, computed by the application.
    pub password_hash: Option<Secret<String>>,
    /// Its salt, if kept apart.
    pub password_salt: Option<Secret<String>>,
    /// The organisation to join at once, with a role.
    pub org: Option<(String, Role)>,
}

impl NewUser {
    /// A user with this email and name, no password, in no organisation.
    pub fn new(email: impl Into<String>, name: impl Into<String>) -> Self {
        Self { email: email.into(), name: name.into(), password_hash: None, password_salt: None, org: None }
    }
    /// With a password hash and salt.
    pub fn with_password(mut self, hash: impl Into<Secret<String>>, salt: impl Into<Secret<String>>) -> Self {
        self.password_hash = Some(hash.into());
        self.password_salt = Some(salt.into());
        self
    }
    /// Joining `org_id` as `role`.
    pub fn in_org(mut self, org_id: impl Into<String>, role: Role) -> Self {
        self.org = Some((org_id.into(), role));
        self
    }
}

/// A change to a user: only these fields can change through [`UserStore::update_user`]; the
/// organisation and role change through [`crate::OrganizationStore`], keys and lockout through
/// their own operations.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// A new email (unique across users).
    pub email: Option<String>,
    /// A new display name.
    pub name: Option<String>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// Mark the email verified or not.
    pub email_verified: Option<bool>,
    /// A new password hash and salt.
    pub password: Option<(Secret<String>, Secret<String>)>,
    /// Turn MFA on, or off (`Some(None)`).
    pub mfa: Option<Option<Mfa>>,
    /// Replace the preferences.
    pub preferences: Option<Map<String, Value>>,
    /// Record a successful sign-in at this instant.
    pub last_login_at: Option<DateTime<Utc>>,
}

/// What turning multi-factor authentication on stores (sealed).
#[derive(Debug, Clone)]
pub struct Mfa {
    /// The TOTP secret.
    pub secret: Secret<String>,
    /// One-time backup codes.
    pub backup_codes: Vec<Secret<String>>,
}

impl UserChanges {
    fn apply(&self, user: &mut User) {
        if let Some(email) = &self.email {
            user.email = email.to_lowercase();
        }
        if let Some(name) = &self.name {
            user.name.clone_from(name);
        }
        if let Some(active) = self.is_active {
            user.is_active = active;
        }
        if let Some(verified) = self.email_verified {
            user.email_verified = verified;
        }
        if let Some((hash, salt)) = &self.password {
            user.password_hash = Some(hash.clone());
            user.password_salt = Some(salt.clone());
        }
        match &self.mfa {
            Some(Some(mfa)) => {
                user.mfa_enabled = true;
                user.mfa_secret = Some(mfa.secret.clone());
                user.mfa_backup_codes.clone_from(&mfa.backup_codes);
            }
            Some(None) => {
                user.mfa_enabled = false;
                user.mfa_secret = None;
                user.mfa_backup_codes.clear();
            }
            None => {}
        }
        if let Some(preferences) = &self.preferences {
            user.preferences.clone_from(preferences);
        }
        if let Some(at) = self.last_login_at {
            user.last_login_at = Some(at);
        }
    }
}

/// When failed sign-ins lock an account. The failure that brings the count to a step's
/// `failures` locks the account for that step's duration. One policy for every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutPolicy {
    steps: Vec<(u32, TimeDelta)>,
}

impl LockoutPolicy {
    /// Steps of (failures, lock duration); refused unless failures grow and durations are positive.
    pub fn new(steps: impl IntoIterator<Item = (u32, TimeDelta)>) -> Result<Self> {
        let steps: Vec<(u32, TimeDelta)> = steps.into_iter().collect();
        let growing = steps.windows(2).all(|pair| matches!(pair, [(a, _), (b, _)] if a < b));
        if steps.is_empty() || !growing || steps.iter().any(|(n, d)| *n == 0 || *d <= TimeDelta::zero()) {
            return Err(StorageError::invalid("lockout policy", "steps need growing failure counts above 0 and positive durations"));
        }
        Ok(Self { steps })
    }

    /// The lock a failure count reaching `failures` imposes, if it is a step.
    fn lock_for(&self, failures: u32) -> Option<TimeDelta> {
        self.steps.iter().find(|(n, _)| *n == failures).map(|(_, d)| *d)
    }
}

impl Default for LockoutPolicy {
    /// 5 failures: 15 minutes; 10: an hour; 20: a day.
    fn default() -> Self {
        Self { steps: vec![(5, TimeDelta::minutes(15)), (10, TimeDelta::hours(1)), (20, TimeDelta::days(1))] }
    }
}

/// An account's lockout state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutInfo {
    /// Failed sign-ins since the last success.
    pub failed_attempts: u32,
    /// Locked until then (possibly in the past).
    pub lockout_until: Option<DateTime<Utc>>,
    /// Whether sign-in is refused now.
    pub locked: bool,
    /// Whether this failure is the one that locked the account.
    pub just_locked: bool,
}

/// A newly issued API key: shown once, stored only as a digest.
#[derive(Debug, Clone)]
pub struct IssuedApiKey {
    /// The key to hand to the user.
    pub key: Secret<String>,
    /// The user, with the key's [`ApiKeyInfo`].
    pub user: User,
}

/// Filters of the admin list of users.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Only this organisation's members.
    pub org_id: Option<String>,
    /// Only this role.
    pub role: Option<Role>,
    /// Only active accounts.
    pub active_only: bool,
}

/// Counts for an admin dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStats {
    /// Every account.
    pub total: u64,
    /// Active accounts.
    pub active: u64,
    /// Accounts with a verified email.
    pub email_verified: u64,
}

/// The number of characters of `email` before the `@`, and whether it has a domain: a light check
/// (the application verifies addresses by mail).
pub(crate) fn normalize_email(field: &str, email: &str) -> Result<String> {
    validate_id(field, email)?;
    let lower = email.trim().to_lowercase();
    match lower.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !lower.chars().any(char::is_whitespace) => Ok(lower),
        _ => Err(StorageError::invalid(field, format!("`{}` is not an email address", email.escape_debug()))),
    }
}

impl Document for User {
    const TABLE: TableDef = TableDef {
        name: "users",
        entity: "user",
        id_field: "user_id",
        indexes: &[
            IndexSpec::text("email").unique(),
            IndexSpec::text("api_key_digest").unique(),
            IndexSpec::text("org_id"),
            IndexSpec::text("role"),
            IndexSpec::bool("is_active"),
            IndexSpec::bool("email_verified"),
            IndexSpec::counter("token_version"),
        ],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(&self.email)),
            self.api_key.as_ref().map(|key| IndexValue::from(&key.digest)),
            self.org_id.as_ref().map(IndexValue::from),
            self.org_id.as_ref().map(|_| IndexValue::from(self.role.as_str())),
            Some(IndexValue::Bool(self.is_active)),
            Some(IndexValue::Bool(self.email_verified)),
            Some(int_value(self.token_version)),
        ]
    }
    fn set_counter(&mut self, column: &str, value: i64) -> Result<()> {
        match column {
            "token_version" => {
                self.token_version = u64::try_from(value).map_err(|_| StorageError::invalid(column, "is negative"))?;
                Ok(())
            }
            other => Err(StorageError::invalid("counter", format!("`{other}` is not a counter of users"))),
        }
    }
    fn validate(&self) -> Result<()> {
        validate_id("user_id", &self.id)?;
        if normalize_email("email", &self.email)? != self.email {
            return Err(StorageError::invalid("email", "must be stored lower-cased"));
        }
        crate::limits::check_text("name", &self.name)?;
        if let Some(org) = &self.org_id {
            validate_id("org_id", org)?;
        }
        if let Some(key) = &self.api_key {
            for scope in &key.scopes {
                validate_id("api key scope", scope)?;
            }
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::new();
        let mut put = |name: &str, value: &Option<Secret<String>>| {
            if let Some(value) = value {
                secrets.insert(name.to_owned(), value.clone());
            }
        };
        put("password_hash", &self.password_hash);
        put("password_salt", &self.password_salt);
        put("mfa_secret", &self.mfa_secret);
        if !self.mfa_backup_codes.is_empty() {
            let codes: Vec<&str> = self.mfa_backup_codes.iter().map(|c| c.expose().as_str()).collect();
            secrets.insert("mfa_backup_codes".to_owned(), Secret::new(serde_json::to_string(&codes).unwrap_or_default()));
        }
        secrets
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.password_hash = secrets.remove("password_hash");
        self.password_salt = secrets.remove("password_salt");
        self.mfa_secret = secrets.remove("mfa_secret");
        self.mfa_backup_codes = match secrets.remove("mfa_backup_codes") {
            Some(codes) => serde_json::from_str::<Vec<String>>(codes.expose())
                .map_err(|_| StorageError::crypto("the sealed backup codes do not decode"))?
                .into_iter()
                .map(Secret::new)
                .collect(),
            None => Vec::new(),
        };
        Ok(())
    }
}

/// The library's own tenant, as a reference for [`Document::tenant`].
pub(crate) fn system() -> &'static TenantId {
    static SYSTEM: std::sync::LazyLock<TenantId> = std::sync::LazyLock::new(TenantId::system);
    &SYSTEM
}

/// Accounts: creation, login lookups, changes, API keys, lockout.
#[async_trait]
pub trait UserStore: Send + Sync + fmt::Debug {
    /// Creates a user (joining `new.org` in the same step); `Conflict` if the email is taken, in
    /// any case.
    async fn create_user(&self, new: NewUser) -> Result<User>;
    /// The user with this id.
    async fn get_user_by_id(&self, user_id: &str) -> Result<Option<User>>;
    /// The users with these ids that exist, by id.
    async fn get_users_batch(&self, user_ids: &[&str]) -> Result<BTreeMap<String, User>>;
    /// The user with this email, whatever its case.
    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// The user whose unexpired API key this is.
    async fn get_user_by_api_key(&self, key: &str) -> Result<Option<User>>;
    /// Applies `changes` (a typed change set; nothing else can change) and returns the user.
    async fn update_user(&self, user_id: &str, changes: &UserChanges) -> Result<User>;
    /// Applies each change to its user, all or none; the users.
    async fn update_users_batch(&self, changes: &[(&str, UserChanges)]) -> Result<Vec<User>>;
    /// Deletes the user; whether it existed. `Conflict` if it is the last owner of its
    /// organisation.
    async fn delete_user(&self, user_id: &str) -> Result<bool>;
    /// The user's preferences.
    async fn get_user_preferences(&self, user_id: &str) -> Result<Option<Map<String, Value>>>;
    /// Replaces the user's preferences.
    async fn set_user_preferences(&self, user_id: &str, preferences: Map<String, Value>) -> Result<User>;
    /// Bumps the token version (revoking sessions issued before) atomically; the new version.
    /// `NotFound` for an unknown user.
    async fn increment_token_version(&self, user_id: &str) -> Result<u64>;
    /// Issues a new API key (replacing any previous one); the key is returned once.
    async fn issue_api_key(&self, user_id: &str, scopes: Vec<String>, expires_at: Option<DateTime<Utc>>) -> Result<IssuedApiKey>;
    /// Removes the user's API key.
    async fn revoke_api_key(&self, user_id: &str) -> Result<User>;
    /// Whether the account with this email is locked now.
    async fn is_account_locked(&self, email: &str) -> Result<bool>;
    /// Counts a failed sign-in and applies the lockout policy, in one atomic step; `None` for an
    /// unknown email.
    async fn record_failed_login(&self, email: &str) -> Result<Option<LockoutInfo>>;
    /// Clears the failed sign-ins and any lock (after a successful sign-in or by an admin).
    async fn reset_failed_login_attempts(&self, email: &str) -> Result<bool>;
    /// The account's lockout state.
    async fn get_lockout_info(&self, email: &str) -> Result<Option<LockoutInfo>>;
    /// One page of users passing `query`, by id.
    async fn list_all_users(&self, query: &UserQuery, page: &PageRequest) -> Result<Page<User>>;
    /// How many users pass `query`.
    async fn count_users(&self, query: &UserQuery) -> Result<u64>;
    /// Counts for an admin dashboard.
    async fn get_admin_stats(&self) -> Result<UserStats>;
}

/// [`UserStore`] on any backend.
pub struct Users<B: ?Sized = dyn Engine> {
    users: Table<User>,
    orgs: Table<Organization>,
    lockout: std::sync::Arc<LockoutPolicy>,
    _backend: PhantomData<fn(&B)>,
}

impl<B: ?Sized + 'static> crate::Store for Users<B> {
    fn on(engine: &dyn Engine) -> Self {
        Self { users: engine.table(), orgs: engine.table(), lockout: Default::default(), _backend: PhantomData }
    }
}

impl<B: ?Sized> Clone for Users<B> {
    fn clone(&self) -> Self {
        Self { users: self.users.clone(), orgs: self.orgs.clone(), lockout: self.lockout.clone(), _backend: PhantomData }
    }
}

impl<B: ?Sized> fmt::Debug for Users<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users").field("users", &self.users).field("lockout", &self.lockout).finish()
    }
}

impl<B: ?Sized> Users<B> {
    /// The same store with another lockout policy.
    pub fn with_lockout_policy(mut self, policy: LockoutPolicy) -> Self {
        self.lockout = std::sync::Arc::new(policy);
        self
    }

    async fn by_email(&self, email: &str) -> Result<Option<User>> {
        let email = normalize_email("email", email)?;
        self.users.get_by_unique(system(), "email", email).await
    }

    /// The id of the user with this email, for the operations that patch it.
    async fn id_of(&self, email: &str) -> Result<Option<String>> {
        Ok(self.by_email(email).await?.map(|user| user.id))
    }

    fn lockout_info(&self, user: &User, just_locked: bool) -> LockoutInfo {
        let now = self.users.now();
        LockoutInfo {
            failed_attempts: user.failed_login_attempts,
            lockout_until: user.lockout_until,
            locked: user.lockout_until.is_some_and(|until| until > now),
            just_locked,
        }
    }

    fn filter(query: &UserQuery) -> Result<Filter> {
        let mut filter = Filter::all();
        if let Some(org) = &query.org_id {
            validate_id("org_id", org)?;
            filter = filter.eq("org_id", org.as_str());
        }
        if let Some(role) = query.role {
            filter = filter.eq("role", role.as_str());
        }
        if query.active_only {
            filter = filter.eq("is_active", true);
        }
        Ok(filter)
    }
}

#[async_trait]
impl<B: ?Sized> UserStore for Users<B> {
    async fn create_user(&self, new: NewUser) -> Result<User> {
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            email: normalize_email("email", &new.email)?,
            name: new.name,
            org_id: None,
            role: Role::Member,
            is_active: true,
            email_verified: false,
            password_hash: new.password_hash,
            password_salt: new.password_salt,
            api_key: None,
            mfa_enabled: false,
            mfa_secret: None,
            mfa_backup_codes: Vec::new(),
            token_version: 0,
            failed_login_attempts: 0,
            lockout_until: None,
            last_failed_login_at: None,
            last_login_at: None,
            preferences: Map::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        match new.org {
            None => self.users.insert(&user).await,
            Some((org_id, role)) => {
                let created = change_membership(&self.users, &self.orgs, &user.id, MemberChange::Create(&user, &org_id, role)).await?;
                created.ok_or_else(|| StorageError::not_found(User::TABLE.entity, &user.id))
            }
        }
    }

    async fn get_user_by_id(&self, user_id: &str) -> Result<Option<User>> {
        self.users.get(system(), user_id).await
    }

    async fn get_users_batch(&self, user_ids: &[&str]) -> Result<BTreeMap<String, User>> {
        Ok(self.users.get_many(system(), user_ids).await?.into_iter().map(|user| (user.id.clone(), user)).collect())
    }

    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.by_email(email).await
    }

    async fn get_user_by_api_key(&self, key: &str) -> Result<Option<User>> {
        validate_id("api key", key)?;
        let user = self.users.get_by_unique(system(), "api_key_digest", hash_token(key)).await?;
        let now = self.users.now();
        Ok(user.filter(|user| user.api_key.as_ref().is_some_and(|k| k.expires_at.is_none_or(|at| at > now))))
    }

    async fn update_user(&self, user_id: &str, changes: &UserChanges) -> Result<User> {
        if let Some(email) = &changes.email {
            normalize_email("email", email)?;
        }
        self.users
            .patch(system(), user_id, |user| {
                changes.apply(user);
                Ok(())
            })
            .await
    }

    async fn update_users_batch(&self, changes: &[(&str, UserChanges)]) -> Result<Vec<User>> {
        for (_, change) in changes {
            if let Some(email) = &change.email {
                normalize_email("email", email)?;
            }
        }
        retry_contended(|| async {
            let ids: Vec<&str> = changes.iter().map(|(id, _)| *id).collect();
            let found = self.get_users_batch(&ids).await?;
            let mut unit = self.users.unit(system());
            let mut updated = Vec::with_capacity(changes.len());
            for (id, change) in changes {
                let mut user = found.get(*id).cloned().ok_or_else(|| StorageError::not_found(User::TABLE.entity, *id))?;
                change.apply(&mut user);
                unit.update(&self.users, &user)?;
                updated.push(user);
            }
            let applied = unit.commit().await?;
            Ok(updated
                .into_iter()
                .zip(applied)
                .map(|(mut user, applied)| {
                    if let crate::Applied::Written(meta) = applied {
                        user.set_meta(meta);
                    }
                    user
                })
                .collect())
        })
        .await
    }

    async fn delete_user(&self, user_id: &str) -> Result<bool> {
        match change_membership(&self.users, &self.orgs, user_id, MemberChange::Delete).await {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound { entity: "user", .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get_user_preferences(&self, user_id: &str) -> Result<Option<Map<String, Value>>> {
        Ok(self.get_user_by_id(user_id).await?.map(|user| user.preferences))
    }

    async fn set_user_preferences(&self, user_id: &str, preferences: Map<String, Value>) -> Result<User> {
        self.update_user(user_id, &UserChanges { preferences: Some(preferences), ..UserChanges::default() }).await
    }

    async fn increment_token_version(&self, user_id: &str) -> Result<u64> {
        let version = self.users.increment(system(), user_id, "token_version", 1, None).await?;
        u64::try_from(version).map_err(|_| StorageError::invalid("token_version", "is negative"))
    }

    async fn issue_api_key(&self, user_id: &str, scopes: Vec<String>, expires_at: Option<DateTime<Utc>>) -> Result<IssuedApiKey> {
        let key = Secret::new(format!("{API_KEY_PREFIX}{}", generate_token()?));
        let info = ApiKeyInfo {
            prefix: key.expose().chars().take(API_KEY_VISIBLE).collect(),
            digest: hash_token(key.expose()),
            scopes,
            created_at: self.users.now(),
            expires_at: expires_at.map(|at| crate::limits::check_instant("expires_at", at)).transpose()?,
        };
        let user = self
            .users
            .patch(system(), user_id, |user| {
                user.api_key = Some(info.clone());
                Ok(())
            })
            .await?;
        Ok(IssuedApiKey { key, user })
    }

    async fn revoke_api_key(&self, user_id: &str) -> Result<User> {
        self.users
            .patch(system(), user_id, |user| {
                user.api_key = None;
                Ok(())
            })
            .await
    }

    async fn is_account_locked(&self, email: &str) -> Result<bool> {
        Ok(self.get_lockout_info(email).await?.is_some_and(|info| info.locked))
    }

    async fn record_failed_login(&self, email: &str) -> Result<Option<LockoutInfo>> {
        let Some(id) = self.id_of(email).await? else { return Ok(None) };
        let now = self.users.now();
        let policy = &self.lockout;
        let just_locked = std::sync::atomic::AtomicBool::new(false);
        let user = self
            .users
            .patch(system(), &id, |user| {
                user.failed_login_attempts = user.failed_login_attempts.saturating_add(1);
                user.last_failed_login_at = Some(now);
                let lock = policy.lock_for(user.failed_login_attempts);
                just_locked.store(lock.is_some(), std::sync::atomic::Ordering::Relaxed);
                if let Some(duration) = lock {
                    user.lockout_until = Some(add("lockout", now, duration)?);
                }
                Ok(())
            })
            .await;
        match user {
            Ok(user) => Ok(Some(self.lockout_info(&user, just_locked.load(std::sync::atomic::Ordering::Relaxed)))),
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn reset_failed_login_attempts(&self, email: &str) -> Result<bool> {
        let Some(id) = self.id_of(email).await? else { return Ok(false) };
        let reset = self
            .users
            .patch(system(), &id, |user| {
                user.failed_login_attempts = 0;
                user.lockout_until = None;
                Ok(())
            })
            .await;
        match reset {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get_lockout_info(&self, email: &str) -> Result<Option<LockoutInfo>> {
        Ok(self.by_email(email).await?.map(|user| self.lockout_info(&user, false)))
    }

    async fn list_all_users(&self, query: &UserQuery, page: &PageRequest) -> Result<Page<User>> {
        self.users.list(Scope::Tenant(system()), Query::new(Self::filter(query)?), page).await
    }

    async fn count_users(&self, query: &UserQuery) -> Result<u64> {
        self.users.count(Scope::Tenant(system()), Self::filter(query)?).await
    }

    async fn get_admin_stats(&self) -> Result<UserStats> {
        let scope = Scope::Tenant(system());
        Ok(UserStats {
            total: self.users.count(scope, Filter::all()).await?,
            active: self.users.count(scope, Filter::all().eq("is_active", true)).await?,
            email_verified: self.users.count(scope, Filter::all().eq("email_verified", true)).await?,
        })
    }
}
