//! Password reset tokens (catalogue #40): 256 random bits handed out once and stored only as a
//! SHA-256 digest, single-use in one atomic step, and rate-limited per email on the tokens
//! issued — a window counter of its own, not the rows that happen to survive.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::limits::add;
use crate::query::{Filter, Scope};
use crate::stores::user::{normalize_email, system};
use crate::table::Table;
use crate::token::{generate_token, hash_token};
use crate::{Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// What a reset token looks like: `rst_` and 43 random characters.
pub const RESET_TOKEN_PREFIX: &str = "rst_";
/// How long a token is valid.
pub const RESET_TOKEN_TTL: TimeDelta = TimeDelta::hours(1);
/// Tokens issued per email in one [`RATE_WINDOW`].
pub const RESETS_PER_WINDOW: i64 = 3;
/// The rate limit's window (fixed, aligned to the clock's hours).
pub const RATE_WINDOW: TimeDelta = TimeDelta::hours(1);

/// One reset token, by the digest of the token (in the system tenant: tokens are looked up
/// before anyone is signed in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetToken {
    /// The SHA-256 digest of the token.
    pub token_digest: String,
    /// The account's email, lower-cased.
    pub email: String,
    /// When it stops being usable (and is forgotten).
    pub expires_at: DateTime<Utc>,
    /// Times consumed: 0 or 1 (the counter that makes consumption single-use).
    #[serde(default)]
    pub uses: u64,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When issued.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for ResetToken {
    const TABLE: TableDef = TableDef {
        name: "password_reset_tokens",
        entity: "password reset token",
        id_field: "token",
        indexes: &[IndexSpec::text("email"), IndexSpec::counter("uses")],
        expires: true,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        self.token_digest.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.email)), Some(crate::table::int_value(self.uses))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("token", &self.token_digest)?;
        normalize_email("email", &self.email)?;
        Ok(())
    }
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        Some(self.expires_at)
    }
    fn set_counter(&mut self, _column: &str, value: i64) -> Result<()> {
        self.uses = u64::try_from(value).map_err(|_| StorageError::invalid("uses", "is negative"))?;
        Ok(())
    }
}

/// The tokens issued to one email in one window: counted up as tokens are issued, never down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetRequests {
    /// The digest of the email and the window's start (emails are personal data).
    pub key: String,
    /// Tokens issued in the window.
    #[serde(default)]
    pub issued: u64,
    /// The window's end.
    pub expires_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When the window's first token was issued.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last counted.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for ResetRequests {
    const TABLE: TableDef = TableDef {
        name: "password_reset_requests",
        entity: "password reset rate window",
        id_field: "key",
        indexes: &[IndexSpec::counter("issued")],
        expires: true,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        self.key.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(crate::table::int_value(self.issued))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("key", &self.key)
    }
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        Some(self.expires_at)
    }
    fn set_counter(&mut self, _column: &str, value: i64) -> Result<()> {
        self.issued = u64::try_from(value).map_err(|_| StorageError::invalid("issued", "is negative"))?;
        Ok(())
    }
}

/// What [`PasswordResetStore::create_token`] did.
#[derive(Debug, Clone)]
pub enum ResetRequest {
    /// A new token: send it to the account's email. Shown only here.
    Issued {
        /// The token.
        token: Secret<String>,
        /// When it stops working.
        expires_at: DateTime<Utc>,
    },
    /// Too many tokens for this email lately; nothing was issued.
    RateLimited {
        /// When the next token can be issued.
        retry_after: DateTime<Utc>,
    },
}

/// Password reset tokens.
#[async_trait]
pub trait PasswordResetStore: Send + Sync + fmt::Debug {
    /// Issues a token for `email`, valid for [`RESET_TOKEN_TTL`], unless [`RESETS_PER_WINDOW`]
    /// were issued to it in this [`RATE_WINDOW`]. `InvalidInput` for an address that is not one.
    async fn create_token(&self, email: &str) -> Result<ResetRequest>;
    /// The email a live, unused token belongs to, without using it.
    async fn validate_token(&self, token: &str) -> Result<Option<String>>;
    /// Uses the token, once: its email. Of any number of concurrent calls with one token exactly
    /// one succeeds; the others get `Conflict` (used). `NotFound` for an unknown or expired token.
    async fn consume_token(&self, token: &str) -> Result<String>;
    /// Forgets every token of `email` (after a password change); how many.
    async fn invalidate_tokens_for_email(&self, email: &str) -> Result<u64>;
    /// Tokens issued to `email` in the current window (whatever happened to them since).
    async fn count_recent_requests(&self, email: &str) -> Result<u64>;
    /// Removes expired tokens and windows; how many.
    async fn cleanup(&self) -> Result<u64>;
}

/// [`PasswordResetStore`] on any backend.
pub struct PasswordResets<B: ?Sized = dyn Engine> {
    tokens: Table<ResetToken>,
    requests: Table<ResetRequests>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(PasswordResets { tokens, requests });

/// A token's digest, after checking it is a plausible token (bounded, printable).
fn digest(token: &str) -> Result<String> {
    validate_id("token", token)?;
    Ok(hash_token(token))
}

impl<B: ?Sized> PasswordResets<B> {
    /// The current window of `email`: its record's key and end.
    fn window(&self, email: &str) -> Result<(String, DateTime<Utc>)> {
        let now = self.tokens.now();
        let start = now.duration_trunc(RATE_WINDOW).map_err(|e| StorageError::invalid("now", e))?;
        let end = add("window", start, RATE_WINDOW)?;
        Ok((hash_token(&format!("{email}\n{}", start.timestamp())), end))
    }

    /// Counts one token against `email`'s window, unless it is full.
    async fn count_one(&self, email: &str) -> Result<std::result::Result<(), DateTime<Utc>>> {
        let (key, end) = self.window(email)?;
        let system = system();
        for _ in 0..2 {
            match self.requests.increment(system, &key, "issued", 1, Some(RESETS_PER_WINDOW)).await {
                Ok(_) => return Ok(Ok(())),
                Err(StorageError::Conflict { .. }) => return Ok(Err(end)),
                Err(StorageError::NotFound { .. }) => {
                    let first = ResetRequests {
                        key: key.clone(),
                        issued: 1,
                        expires_at: end,
                        version: 0,
                        created_at: DateTime::<Utc>::UNIX_EPOCH,
                        updated_at: DateTime::<Utc>::UNIX_EPOCH,
                    };
                    match self.requests.insert(&first).await {
                        Ok(_) => return Ok(Ok(())),
                        // Another request opened the window first: count on it.
                        Err(StorageError::Conflict { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::conflict(ResetRequests::TABLE.entity, key, "the window was contended; try again"))
    }
}

#[async_trait]
impl<B: ?Sized> PasswordResetStore for PasswordResets<B> {
    async fn create_token(&self, email: &str) -> Result<ResetRequest> {
        let email = normalize_email("email", email)?;
        if let Err(retry_after) = self.count_one(&email).await? {
            return Ok(ResetRequest::RateLimited { retry_after });
        }
        let token = Secret::new(format!("{RESET_TOKEN_PREFIX}{}", generate_token()?));
        let expires_at = add("ttl", self.tokens.now(), RESET_TOKEN_TTL)?;
        let record = ResetToken {
            token_digest: hash_token(token.expose()),
            email,
            expires_at,
            uses: 0,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        self.tokens.insert(&record).await?;
        Ok(ResetRequest::Issued { token, expires_at })
    }

    async fn validate_token(&self, token: &str) -> Result<Option<String>> {
        let record = self.tokens.get(system(), &digest(token)?).await?;
        Ok(record.filter(|r| r.uses == 0).map(|r| r.email))
    }

    async fn consume_token(&self, token: &str) -> Result<String> {
        let id = digest(token)?;
        let system = system();
        // One conditional increment, no read first: the counter passes 0 → 1 once.
        match self.tokens.increment(system, &id, "uses", 1, Some(1)).await {
            Ok(_) => {}
            Err(StorageError::NotFound { .. }) => return Err(StorageError::not_found(ResetToken::TABLE.entity, "(token)")),
            Err(StorageError::Conflict { .. }) => {
                return Err(StorageError::conflict(ResetToken::TABLE.entity, "(token)", "the token was already used"));
            }
            Err(e) => return Err(e),
        }
        // The token is used and its email never changes; it may have expired in between.
        let record = self.tokens.get(system, &id).await?.ok_or_else(|| StorageError::not_found(ResetToken::TABLE.entity, "(token)"))?;
        Ok(record.email)
    }

    async fn invalidate_tokens_for_email(&self, email: &str) -> Result<u64> {
        let email = normalize_email("email", email)?;
        self.tokens.delete_where(Scope::Tenant(system()), Filter::all().eq("email", email)).await
    }

    async fn count_recent_requests(&self, email: &str) -> Result<u64> {
        let (key, _) = self.window(&normalize_email("email", email)?)?;
        Ok(self.requests.get(system(), &key).await?.map_or(0, |w| w.issued))
    }

    async fn cleanup(&self) -> Result<u64> {
        Ok(self.tokens.purge_expired().await?.saturating_add(self.requests.purge_expired().await?))
    }
}
