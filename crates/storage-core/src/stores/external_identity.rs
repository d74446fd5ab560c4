//! Identities from external identity providers (SAML, OIDC, SCIM): who a provider's subject is
//! here. An active identity is unique per (provider, IdP tenant, external id) — a missing IdP
//! tenant included — and never moves to another user; a deactivated one frees its key, so the
//! subject can be linked again.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Query, Scope};
use crate::stores::oauth::validate_provider;
use crate::stores::user::{normalize_email, system};
use crate::table::{Table, retry_contended};
use crate::{Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// A provider's subject linked to a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalIdentity {
    /// `ext-` and a UUID, assigned by the store.
    pub id: String,
    /// The user it signs in.
    pub user_id: String,
    /// The provider: `okta`, `azure_ad`, ... (a-z, 0-9, `_`, `-`).
    pub provider: String,
    /// The subject's id at the provider.
    pub external_id: String,
    /// The provider's own tenant (directory), if it has several.
    pub idp_tenant: Option<String>,
    /// The email the provider reported, lower-cased.
    pub email: Option<String>,
    /// The display name the provider reported.
    pub display_name: Option<String>,
    /// The provider's claims as received (they may hold tokens and personal data): sealed.
    #[serde(skip)]
    pub raw_claims: Map<String, Value>,
    /// Whether it may sign in; a deactivated identity no longer holds its key.
    pub is_active: bool,
    /// The last sign-in through it.
    pub last_seen_at: Option<DateTime<Utc>>,
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

/// What a sign-in through a provider reports.
#[derive(Debug, Clone, Default)]
pub struct ExternalProfile {
    /// The provider.
    pub provider: String,
    /// The subject's id at the provider.
    pub external_id: String,
    /// The provider's tenant, if any.
    pub idp_tenant: Option<String>,
    /// The reported email.
    pub email: Option<String>,
    /// The reported name.
    pub display_name: Option<String>,
    /// The raw claims (sealed at rest).
    pub raw_claims: Map<String, Value>,
}

/// The unique key of an active identity: unambiguous whatever the parts contain (the provider
/// has no `/`; the IdP tenant is length-prefixed).
fn identity_key(provider: &str, idp_tenant: Option<&str>, external_id: &str) -> String {
    let idp = idp_tenant.unwrap_or("");
    format!("{provider}/{}/{idp}{external_id}", idp.len())
}

impl ExternalIdentity {
    fn key(&self) -> String {
        identity_key(&self.provider, self.idp_tenant.as_deref(), &self.external_id)
    }

    fn apply(&mut self, profile: &ExternalProfile, now: DateTime<Utc>) {
        self.email = profile.email.as_ref().map(|e| e.to_lowercase());
        self.display_name.clone_from(&profile.display_name);
        self.raw_claims.clone_from(&profile.raw_claims);
        self.last_seen_at = Some(now);
    }
}

impl Document for ExternalIdentity {
    const TABLE: TableDef = TableDef {
        name: "external_identities",
        entity: "external identity",
        id_field: "identity_id",
        indexes: &[
            IndexSpec::text("identity_key").unique(),
            IndexSpec::text("user_id"),
            IndexSpec::text("email"),
            IndexSpec::text("provider"),
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
            self.is_active.then(|| IndexValue::Text(self.key())),
            Some(IndexValue::from(&self.user_id)),
            self.email.as_ref().map(IndexValue::from),
            Some(IndexValue::from(&self.provider)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("identity_id", &self.id)?;
        validate_id("user_id", &self.user_id)?;
        validate_provider(&self.provider)?;
        validate_id("external_id", &self.external_id)?;
        if let Some(idp) = &self.idp_tenant {
            validate_id("idp_tenant", idp)?;
        }
        if let Some(email) = &self.email {
            normalize_email("email", email)?;
        }
        if let Some(name) = &self.display_name {
            crate::limits::check_text("display_name", name)?;
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::new();
        if !self.raw_claims.is_empty() {
            secrets.insert("raw_claims".to_owned(), Secret::new(Value::Object(self.raw_claims.clone()).to_string()));
        }
        secrets
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.raw_claims = match secrets.remove("raw_claims") {
            Some(claims) => serde_json::from_str(claims.expose()).map_err(|_| StorageError::crypto("the sealed claims do not decode"))?,
            None => Map::new(),
        };
        Ok(())
    }
}

/// External identities of users.
#[async_trait]
pub trait ExternalIdentityStore: Send + Sync + fmt::Debug {
    /// Links a new identity to `user_id`; `Conflict` if the subject already has an active one.
    async fn create(&self, user_id: &str, profile: &ExternalProfile) -> Result<ExternalIdentity>;
    /// At sign-in: the subject's active identity updated from `profile` (and seen now), or a new
    /// one for `user_id`. `Conflict` if the subject belongs to another user: it is never moved.
    async fn link_or_update(&self, user_id: &str, profile: &ExternalProfile) -> Result<ExternalIdentity>;
    /// The identity with this id.
    async fn get(&self, id: &str) -> Result<Option<ExternalIdentity>>;
    /// The active identity of this subject (no IdP tenant matches only identities without one).
    async fn get_by_external_id(&self, provider: &str, external_id: &str, idp_tenant: Option<&str>) -> Result<Option<ExternalIdentity>>;
    /// The user's identities, of one provider or all, active or not.
    async fn get_by_user_id(&self, user_id: &str, provider: Option<&str>) -> Result<Vec<ExternalIdentity>>;
    /// The identities reporting this email (any case), of one provider or all.
    async fn get_by_email(&self, email: &str, provider: Option<&str>) -> Result<Vec<ExternalIdentity>>;
    /// Records a sign-in through the identity now.
    async fn update_last_seen(&self, id: &str) -> Result<ExternalIdentity>;
    /// Deactivates the identity (kept, but no longer signs in, and its subject may be linked again).
    async fn deactivate(&self, id: &str) -> Result<ExternalIdentity>;
    /// Deletes the identity; whether it existed.
    async fn delete(&self, id: &str) -> Result<bool>;
}

/// [`ExternalIdentityStore`] on any backend.
pub struct ExternalIdentities<B: ?Sized = dyn Engine> {
    identities: Table<ExternalIdentity>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(ExternalIdentities { identities });

impl<B: ?Sized> ExternalIdentities<B> {
    fn new_identity(&self, user_id: &str, profile: &ExternalProfile) -> ExternalIdentity {
        let mut identity = ExternalIdentity {
            id: format!("ext-{}", uuid::Uuid::new_v4().simple()),
            user_id: user_id.to_owned(),
            provider: profile.provider.clone(),
            external_id: profile.external_id.clone(),
            idp_tenant: profile.idp_tenant.clone(),
            email: None,
            display_name: None,
            raw_claims: Map::new(),
            is_active: true,
            last_seen_at: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        identity.apply(profile, self.identities.now());
        identity
    }

    fn by(&self, column: &'static str, value: String, provider: Option<&str>) -> Result<Query> {
        let mut filter = Filter::all().eq(column, value);
        if let Some(provider) = provider {
            validate_provider(provider)?;
            filter = filter.eq("provider", provider);
        }
        Ok(Query::new(filter))
    }
}

#[async_trait]
impl<B: ?Sized> ExternalIdentityStore for ExternalIdentities<B> {
    async fn create(&self, user_id: &str, profile: &ExternalProfile) -> Result<ExternalIdentity> {
        self.identities.insert(&self.new_identity(user_id, profile)).await
    }

    async fn link_or_update(&self, user_id: &str, profile: &ExternalProfile) -> Result<ExternalIdentity> {
        let fresh = self.new_identity(user_id, profile);
        fresh.validate()?;
        retry_contended(|| async {
            match self.get_by_external_id(&profile.provider, &profile.external_id, profile.idp_tenant.as_deref()).await? {
                Some(existing) if existing.user_id != user_id => {
                    Err(StorageError::conflict(ExternalIdentity::TABLE.entity, existing.id, "this subject is linked to another user"))
                }
                Some(mut existing) => {
                    existing.apply(profile, self.identities.now());
                    self.identities.update(&existing).await
                }
                // A concurrent first sign-in may win the key: read again, then update or refuse.
                None => match self.identities.insert(&fresh).await {
                    Err(StorageError::Conflict { entity, id, .. }) => {
                        Err(StorageError::VersionMismatch { entity, id, expected: 0, actual: 1 })
                    }
                    other => other,
                },
            }
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<ExternalIdentity>> {
        self.identities.get(system(), id).await
    }

    async fn get_by_external_id(&self, provider: &str, external_id: &str, idp_tenant: Option<&str>) -> Result<Option<ExternalIdentity>> {
        validate_provider(provider)?;
        validate_id("external_id", external_id)?;
        if let Some(idp) = idp_tenant {
            validate_id("idp_tenant", idp)?;
        }
        self.identities.get_by_unique(system(), "identity_key", identity_key(provider, idp_tenant, external_id)).await
    }

    async fn get_by_user_id(&self, user_id: &str, provider: Option<&str>) -> Result<Vec<ExternalIdentity>> {
        validate_id("user_id", user_id)?;
        self.identities.list_all(Scope::Tenant(system()), self.by("user_id", user_id.to_owned(), provider)?).await
    }

    async fn get_by_email(&self, email: &str, provider: Option<&str>) -> Result<Vec<ExternalIdentity>> {
        let email = normalize_email("email", email)?;
        self.identities.list_all(Scope::Tenant(system()), self.by("email", email, provider)?).await
    }

    async fn update_last_seen(&self, id: &str) -> Result<ExternalIdentity> {
        let now = self.identities.now();
        self.identities
            .patch(system(), id, |identity| {
                identity.last_seen_at = Some(now);
                Ok(())
            })
            .await
    }

    async fn deactivate(&self, id: &str) -> Result<ExternalIdentity> {
        self.identities
            .patch(system(), id, |identity| {
                identity.is_active = false;
                Ok(())
            })
            .await
    }

    async fn delete(&self, id: &str) -> Result<bool> {
        self.identities.delete(system(), id).await
    }
}
