//! Plaid credentials: a user's linked bank items, each with its sealed access token. Saving an
//! item again replaces its token and institution and keeps when it was linked and last synced.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::joined_id as credential_id;
use crate::table::{Table, retry_contended};
use crate::{Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// One linked Plaid item of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaidCredential {
    /// The tenant.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The user who linked it.
    pub user_id: String,
    /// Plaid's item id.
    pub item_id: String,
    /// Plaid's access token; sealed. Empty in lists.
    #[serde(skip)]
    pub access_token: Secret<String>,
    /// Plaid's institution id.
    pub institution_id: String,
    /// The institution's name.
    pub institution_name: String,
    /// When the item was first linked.
    pub linked_at: DateTime<Utc>,
    /// The last completed sync.
    pub last_sync: Option<DateTime<Utc>>,
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

/// The id of a user's item, both ids checked.
fn checked_id(user_id: &str, item_id: &str) -> Result<String> {
    validate_id("user_id", user_id)?;
    validate_id("item_id", item_id)?;
    Ok(credential_id(user_id, item_id))
}

impl Document for PlaidCredential {
    const TABLE: TableDef = TableDef {
        name: "plaid_credentials",
        entity: "plaid credential",
        id_field: "credential_id",
        indexes: &[IndexSpec::text("user_id"), IndexSpec::time("linked_at")],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        credential_id(&self.user_id, &self.item_id)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![Some(Value::from(&self.user_id)), Some(Value::Time(self.linked_at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("user_id", &self.user_id)?;
        validate_id("item_id", &self.item_id)?;
        validate_id("institution_id", &self.institution_id)?;
        crate::limits::check_text("institution_name", &self.institution_name)?;
        if self.access_token.expose().is_empty() {
            return Err(StorageError::invalid("access_token", "must not be empty"));
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        [("access_token".to_owned(), self.access_token.clone())].into_iter().collect()
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.access_token = secrets.remove("access_token").unwrap_or_default();
        Ok(())
    }
}

/// Plaid credentials.
#[async_trait]
pub trait PlaidCredentialStore: Send + Sync + fmt::Debug {
    /// Links an item, or replaces its token and institution if it is linked already (keeping
    /// `linked_at` and `last_sync`).
    async fn save_credentials(
        &self,
        tenant: &TenantId,
        user_id: &str,
        item_id: &str,
        access_token: Secret<String>,
        institution_id: &str,
        institution_name: &str,
    ) -> Result<PlaidCredential>;
    /// The item, with its access token.
    async fn get_credentials(&self, tenant: &TenantId, user_id: &str, item_id: &str) -> Result<Option<PlaidCredential>>;
    /// Unlinks the item; whether it was linked.
    async fn delete_credentials(&self, tenant: &TenantId, user_id: &str, item_id: &str) -> Result<bool>;
    /// The user's items, newest first, without their access tokens.
    async fn list_credentials(&self, tenant: &TenantId, user_id: &str) -> Result<Vec<PlaidCredential>>;
    /// Records a completed sync of the item, now.
    async fn update_last_sync(&self, tenant: &TenantId, user_id: &str, item_id: &str) -> Result<PlaidCredential>;
}

/// [`PlaidCredentialStore`] on any backend.
pub struct PlaidCredentials<B: ?Sized = dyn Engine> {
    credentials: Table<PlaidCredential>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(PlaidCredentials { credentials });

#[async_trait]
impl<B: ?Sized> PlaidCredentialStore for PlaidCredentials<B> {
    async fn save_credentials(
        &self,
        tenant: &TenantId,
        user_id: &str,
        item_id: &str,
        access_token: Secret<String>,
        institution_id: &str,
        institution_name: &str,
    ) -> Result<PlaidCredential> {
        let now = self.credentials.now();
        let fresh = PlaidCredential {
            tenant: tenant.clone(),
            user_id: user_id.to_owned(),
            item_id: item_id.to_owned(),
            access_token,
            institution_id: institution_id.to_owned(),
            institution_name: institution_name.to_owned(),
            linked_at: now,
            last_sync: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        fresh.validate()?;
        retry_contended(|| async {
            match self.credentials.get(tenant, &fresh.id()).await? {
                Some(mut linked) => {
                    linked.access_token = fresh.access_token.clone();
                    linked.institution_id.clone_from(&fresh.institution_id);
                    linked.institution_name.clone_from(&fresh.institution_name);
                    self.credentials.update(&linked).await
                }
                // Linked meanwhile by another call: read it again and replace.
                None => self.credentials.insert(&fresh).await.map_err(|e| match e {
                    StorageError::Conflict { entity, id, .. } => StorageError::VersionMismatch { entity, id, expected: 0, actual: 1 },
                    other => other,
                }),
            }
        })
        .await
    }

    async fn get_credentials(&self, tenant: &TenantId, user_id: &str, item_id: &str) -> Result<Option<PlaidCredential>> {
        self.credentials.get(tenant, &checked_id(user_id, item_id)?).await
    }

    async fn delete_credentials(&self, tenant: &TenantId, user_id: &str, item_id: &str) -> Result<bool> {
        self.credentials.delete(tenant, &checked_id(user_id, item_id)?).await
    }

    async fn list_credentials(&self, tenant: &TenantId, user_id: &str) -> Result<Vec<PlaidCredential>> {
        validate_id("user_id", user_id)?;
        let query = Query::new(Filter::all().eq("user_id", user_id)).order(Order::desc("linked_at"));
        let mut items = self.credentials.list_all(Scope::Tenant(tenant), query).await?;
        for item in &mut items {
            item.access_token = Secret::default();
        }
        Ok(items)
    }

    async fn update_last_sync(&self, tenant: &TenantId, user_id: &str, item_id: &str) -> Result<PlaidCredential> {
        let now = self.credentials.now();
        self.credentials
            .patch(tenant, &checked_id(user_id, item_id)?, |credential| {
                credential.last_sync = Some(now);
                Ok(())
            })
            .await
    }
}
