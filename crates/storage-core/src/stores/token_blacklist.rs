//! Revoked tokens (catalogue #41): a set of SHA-256 digests, each kept until the token it
//! revokes would have expired anyway. No backend ever drops a live revocation to make room, and
//! every lookup fails closed: an error is an error, never "not revoked".

use crate::document::{Document, TableDef};
use crate::engine::Engine;
use crate::limits::check_instant;
use crate::query::{Filter, Scope};
use crate::stores::user::system;
use crate::table::Table;
use crate::token::hash_token;
use crate::{Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// How often a revocation tries again when the one it extends expires under it.
const REVOKE_ATTEMPTS: usize = 4;
/// The largest token or JWT id accepted, in bytes (a JWT with large claims still fits).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// One revocation (in the system tenant: tokens are checked before a tenant is known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The SHA-256 digest of the token or JWT id.
    pub digest: String,
    /// When the revoked token expires: the revocation is kept until then.
    pub expires_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first revoked.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last extended.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for Revocation {
    const TABLE: TableDef = TableDef {
        name: "token_blacklist",
        entity: "revocation",
        id_field: "token",
        indexes: &[],
        expires: true,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        self.digest.clone()
    }
    crate::record_meta!();
    fn validate(&self) -> Result<()> {
        validate_id("token", &self.digest)
    }
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        Some(self.expires_at)
    }
}

/// Revoked tokens.
#[async_trait]
pub trait TokenBlacklistStore: Send + Sync + fmt::Debug {
    /// Revokes `token` (a bearer token, or a JWT's `jti`) until `expires_at`, its own expiry. A
    /// second revocation keeps the later expiry. `InvalidInput` for an empty or oversized token
    /// or an expiry already past.
    async fn revoke(&self, token: &str, expires_at: DateTime<Utc>) -> Result<()>;
    /// Whether `token` is revoked now. An unreachable backend is an error: callers must refuse
    /// the token then (fail closed).
    async fn is_revoked(&self, token: &str) -> Result<bool>;
    /// Removes revocations whose token has expired (and only those); how many.
    async fn cleanup_expired(&self) -> Result<u64>;
    /// Live revocations.
    async fn size(&self) -> Result<u64>;
}

/// [`TokenBlacklistStore`] on any backend.
pub struct TokenBlacklist<B: ?Sized = dyn Engine> {
    revocations: Table<Revocation>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(TokenBlacklist { revocations });

fn digest(token: &str) -> Result<String> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(StorageError::invalid("token", format!("must be 1 to {MAX_TOKEN_BYTES} bytes; it is {}", token.len())));
    }
    Ok(hash_token(token))
}

#[async_trait]
impl<B: ?Sized> TokenBlacklistStore for TokenBlacklist<B> {
    async fn revoke(&self, token: &str, expires_at: DateTime<Utc>) -> Result<()> {
        let digest = digest(token)?;
        let expires_at = check_instant("expires_at", crate::clock::truncate_micros(expires_at))?;
        if expires_at <= self.revocations.now() {
            return Err(StorageError::invalid("expires_at", "is past: an expired token needs no revocation"));
        }
        let revocation = Revocation {
            digest: digest.clone(),
            expires_at,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        for _ in 0..REVOKE_ATTEMPTS {
            match self.revocations.insert(&revocation).await {
                // Revoked before: keep whichever expiry is later (a patch, so a concurrent
                // revocation's later expiry is never replaced by an earlier one).
                Err(StorageError::Conflict { .. }) => {
                    let extended = self.revocations.patch(system(), &digest, |r| {
                        r.expires_at = r.expires_at.max(expires_at);
                        Ok(())
                    });
                    match extended.await {
                        // It expired in between: insert again.
                        Err(StorageError::NotFound { .. }) => continue,
                        other => return other.map(|_| ()),
                    }
                }
                other => return other.map(|_| ()),
            }
        }
        Err(StorageError::conflict(Revocation::TABLE.entity, "(token)", "still contended; try again"))
    }

    async fn is_revoked(&self, token: &str) -> Result<bool> {
        Ok(self.revocations.get(system(), &digest(token)?).await?.is_some())
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        self.revocations.purge_expired().await
    }

    async fn size(&self) -> Result<u64> {
        self.revocations.count(Scope::Tenant(system()), Filter::all()).await
    }
}
