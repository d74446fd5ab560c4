//! Secret values and the sealing contract that keeps them encrypted at rest.

use crate::Result;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A value that must not leak: `Debug` and `Serialize` print `[REDACTED]`.
///
/// Read it with [`Secret::expose`]; the name makes every read visible in review.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value itself.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for Secret<String> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        // Secrets are text as written: a number here (say, an unquoted key in a TOML file) would
        // already have lost its leading zeros, so it is refused rather than guessed back.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Secret<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string (quote a secret that looks like a number)")
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Secret(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Where a sealed value belongs. It is bound into the ciphertext as associated data, so a value
/// copied to another store, tenant, record or field does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext<'a> {
    /// The store, e.g. `integrations`.
    pub store: &'a str,
    /// The owning tenant.
    pub tenant: &'a str,
    /// The record's id within the tenant.
    pub record_id: &'a str,
    /// The field, e.g. `credentials.token`.
    pub field: &'a str,
}

/// Encrypts and decrypts secret fields before they reach a backend.
///
/// `storage-crypto`'s key ring implements it; backends only ever store what [`Sealer::seal`]
/// returns.
pub trait Sealer: Send + Sync + fmt::Debug {
    /// Encrypts `plaintext` for `context`.
    fn seal(&self, context: &SealContext<'_>, plaintext: &str) -> Result<String>;
    /// Decrypts a value sealed for `context`; any mismatch is a [`crate::StorageError::Crypto`].
    fn open(&self, context: &SealContext<'_>, sealed: &str) -> Result<Secret<String>>;
    /// The id of the key [`Sealer::seal`] uses now; `None` for a sealer without key ids, which
    /// key rotation refuses.
    fn sealing_key(&self) -> Option<String> {
        None
    }
    /// The id of the key that sealed `sealed`, read from its header without opening it; `None`
    /// for a sealer without key ids.
    fn key_of(&self, sealed: &str) -> Result<Option<String>> {
        let _ = sealed;
        Ok(None)
    }
}
