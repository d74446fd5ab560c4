//! Tenant ids and the shared id validation.

use crate::{Result, StorageError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest id, in bytes, any store accepts.
pub const MAX_ID_BYTES: usize = 255;

/// Checks an id-like argument: non-empty, at most 255 bytes, no NUL or other control character.
pub fn validate_id(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(StorageError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(StorageError::invalid(field, format!("is {} bytes long; the limit is {MAX_ID_BYTES}", value.len())));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(StorageError::invalid(field, format!("contains the control character {:?}", c)));
    }
    Ok(())
}

/// The tenant (organisation) that owns a record. Every read and write names one.
///
/// Valid by construction: non-empty, at most 255 bytes, no control characters and no `{` or `}`
/// (tenants are Redis Cluster hash tags).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Validates and wraps a tenant id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        validate_id("tenant", &id)?;
        if id.contains(['{', '}']) {
            return Err(StorageError::invalid("tenant", format!("`{id}` must not contain `{{` or `}}`")));
        }
        Ok(Self(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    /// The tenant `default`, the original's un-scoped owner.
    fn default() -> Self {
        Self("default".to_owned())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = StorageError;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl TryFrom<&str> for TenantId {
    type Error = StorageError;
    fn try_from(value: &str) -> Result<Self> {
        Self::new(value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}
