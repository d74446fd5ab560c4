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
/// (tenants are Redis Cluster hash tags). Ids starting with `_` are the library's own:
/// [`TenantId::system`] holds the records that belong to no organisation (users, organisations
/// themselves, login directories), and no caller can name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// The name of [`TenantId::system`].
const SYSTEM: &str = "_system";

impl TenantId {
    /// Validates and wraps a tenant id. A leading `_` is refused: those are reserved.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let tenant = Self::stored(id)?;
        if tenant.0.starts_with('_') {
            return Err(StorageError::invalid("tenant", format!("`{}` starts with `_`, which is reserved", tenant.0)));
        }
        Ok(tenant)
    }

    /// A tenant id as a backend read it back: the reserved ones included.
    pub fn stored(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        validate_id("tenant", &id)?;
        if id.contains(['{', '}']) {
            return Err(StorageError::invalid("tenant", format!("`{id}` must not contain `{{` or `}}`")));
        }
        Ok(Self(id))
    }

    /// The library's own tenant, for records that belong to no organisation: users,
    /// organisations, and what is looked up before anyone is signed in.
    pub fn system() -> Self {
        Self(SYSTEM.to_owned())
    }

    /// Whether this is [`TenantId::system`].
    pub fn is_system(&self) -> bool {
        self.0 == SYSTEM
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

/// Serde for a record's own tenant field when the record may live in [`TenantId::system`]:
/// `#[serde(with = "storage_core::tenant::stored")]`. (A `TenantId` deserialized from anywhere
/// else refuses the reserved ids.)
pub mod stored {
    use super::TenantId;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the id as a string.
    pub fn serialize<S: Serializer>(tenant: &TenantId, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(tenant.as_str())
    }

    /// Reads an id a backend stored, reserved ones included.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TenantId, D::Error> {
        TenantId::stored(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_tenant_is_reserved() {
        assert!(TenantId::new("_system").is_err());
        assert!(TenantId::new("_anything").is_err());
        assert!(serde_json::from_str::<TenantId>("\"_system\"").is_err(), "nor can it be deserialized");
        assert!(TenantId::system().is_system());
        assert_eq!(TenantId::stored("_system").expect("stored"), TenantId::system());
        assert!(!TenantId::new("acme").expect("tenant").is_system());
    }
}
