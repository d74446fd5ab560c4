//! Sign-in providers linked to users (Google, GitHub, ...). A provider identity belongs to one
//! user for good: linking it to another is refused, never a silent move of the account.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Query, Scope};
use crate::stores::user::{normalize_email, system};
use crate::table::Table;
use crate::{Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// A provider identity linked to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthLink {
    /// The provider: `google`, `github`, ... (a-z, 0-9, `_`, `-`).
    pub provider: String,
    /// The user's id at the provider.
    pub provider_user_id: String,
    /// The user it signs in.
    pub user_id: String,
    /// The email the provider reported, lower-cased.
    pub email: Option<String>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When linked.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

/// Checks a provider name: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
pub(crate) fn validate_provider(provider: &str) -> Result<()> {
    let ok = !provider.is_empty()
        && provider.len() <= 64
        && provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StorageError::invalid("provider", format!("`{}` must be 1 to 64 of a-z, 0-9, `_`, `-`", provider.escape_debug())))
    }
}

impl OAuthLink {
    /// The record id: `<provider>:<provider_user_id>` (providers never contain `:`).
    pub fn link_id(provider: &str, provider_user_id: &str) -> String {
        format!("{provider}:{provider_user_id}")
    }

    fn user_provider(&self) -> String {
        format!("{}:{}", self.user_id, self.provider)
    }
}

impl Document for OAuthLink {
    const TABLE: TableDef = TableDef {
        name: "oauth_links",
        entity: "oauth link",
        id_field: "provider_user_id",
        indexes: &[IndexSpec::text("user_id"), IndexSpec::text("user_provider").unique()],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        Self::link_id(&self.provider, &self.provider_user_id)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.user_id)), Some(IndexValue::Text(self.user_provider()))]
    }
    fn validate(&self) -> Result<()> {
        validate_provider(&self.provider)?;
        validate_id("provider_user_id", &self.provider_user_id)?;
        validate_id("user_id", &self.user_id)?;
        if let Some(email) = &self.email {
            normalize_email("email", email)?;
        }
        validate_id("provider_user_id", &self.id())
    }
}

/// Provider identities linked to users.
#[async_trait]
pub trait OAuthLinkStore: Send + Sync + fmt::Debug {
    /// Links the provider identity to `user_id`. Linking it again to the same user changes
    /// nothing; to another user, or a second identity of one provider to a user, is a `Conflict`.
    async fn link_oauth_provider(&self, user_id: &str, provider: &str, provider_user_id: &str, email: Option<&str>) -> Result<OAuthLink>;
    /// Removes the user's link to `provider`; whether there was one.
    async fn unlink_oauth_provider(&self, user_id: &str, provider: &str) -> Result<bool>;
    /// The link of this provider identity: who it signs in.
    async fn get_user_by_oauth(&self, provider: &str, provider_user_id: &str) -> Result<Option<OAuthLink>>;
    /// Every provider linked to the user.
    async fn get_user_oauth_providers(&self, user_id: &str) -> Result<Vec<OAuthLink>>;
    /// Whether the user has linked `provider`.
    async fn has_provider(&self, user_id: &str, provider: &str) -> Result<bool>;
}

/// [`OAuthLinkStore`] on any backend.
pub struct OAuthLinks<B: ?Sized = dyn Engine> {
    links: Table<OAuthLink>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(OAuthLinks { links });

impl<B: ?Sized> OAuthLinks<B> {
    async fn of(&self, user_id: &str, provider: &str) -> Result<Option<OAuthLink>> {
        validate_id("user_id", user_id)?;
        validate_provider(provider)?;
        self.links.get_by_unique(system(), "user_provider", format!("{user_id}:{provider}")).await
    }
}

#[async_trait]
impl<B: ?Sized> OAuthLinkStore for OAuthLinks<B> {
    async fn link_oauth_provider(&self, user_id: &str, provider: &str, provider_user_id: &str, email: Option<&str>) -> Result<OAuthLink> {
        let link = OAuthLink {
            provider: provider.to_owned(),
            provider_user_id: provider_user_id.to_owned(),
            user_id: user_id.to_owned(),
            email: email.map(|e| normalize_email("email", e)).transpose()?,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        match self.links.insert(&link).await {
            Err(StorageError::Conflict { entity, id, reason }) => {
                // Already linked to this very user: nothing to do. Anything else stays refused.
                let existing = self.links.get(system(), &link.id()).await?;
                match existing {
                    Some(existing) if existing.user_id == user_id => Ok(existing),
                    Some(_) => Err(StorageError::conflict(entity, id, "this identity is linked to another user")),
                    None => Err(StorageError::Conflict { entity, id, reason }),
                }
            }
            other => other,
        }
    }

    async fn unlink_oauth_provider(&self, user_id: &str, provider: &str) -> Result<bool> {
        match self.of(user_id, provider).await? {
            Some(link) => self.links.delete(system(), &link.id()).await,
            None => Ok(false),
        }
    }

    async fn get_user_by_oauth(&self, provider: &str, provider_user_id: &str) -> Result<Option<OAuthLink>> {
        validate_provider(provider)?;
        validate_id("provider_user_id", provider_user_id)?;
        self.links.get(system(), &OAuthLink::link_id(provider, provider_user_id)).await
    }

    async fn get_user_oauth_providers(&self, user_id: &str) -> Result<Vec<OAuthLink>> {
        validate_id("user_id", user_id)?;
        self.links.list_all(Scope::Tenant(system()), Query::new(Filter::all().eq("user_id", user_id))).await
    }

    async fn has_provider(&self, user_id: &str, provider: &str) -> Result<bool> {
        Ok(self.of(user_id, provider).await?.is_some())
    }
}
