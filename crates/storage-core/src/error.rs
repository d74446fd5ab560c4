//! The one error type of every store and backend.

use crate::DatabaseBackend;
use std::fmt;

/// A boxed error kept as the `source` of a [`StorageError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of every store operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// Variants are semantic, not per driver: a unique violation in PostgreSQL, a lost `SET NX` in
/// Redis and an occupied key in the memory backend are all [`StorageError::Conflict`]. The driver
/// error, where there is one, is kept as [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The record does not exist (in this tenant).
    #[error("{entity} `{id}` not found")]
    NotFound {
        /// The kind of record, e.g. `integration`.
        entity: &'static str,
        /// The record's id.
        id: String,
    },
    /// The record already exists, or a lease or claim is held by someone else.
    #[error("{entity} `{id}`: {reason}")]
    Conflict {
        /// The kind of record.
        entity: &'static str,
        /// The record's id.
        id: String,
        /// Why the write was refused.
        reason: String,
    },
    /// An optimistic update found another version than the one it was based on.
    #[error("{entity} `{id}` changed concurrently: expected version {expected}, found {actual}")]
    VersionMismatch {
        /// The kind of record.
        entity: &'static str,
        /// The record's id.
        id: String,
        /// The version the caller read.
        expected: u64,
        /// The version stored now.
        actual: u64,
    },
    /// A worker's claim on a job is no longer its own (the lease lapsed and was taken over, or
    /// the job was cancelled or released): the call changed nothing. Stop working on the job.
    #[error("{entity} `{id}`: the lease was lost; nothing was changed")]
    LeaseLost {
        /// The kind of record.
        entity: &'static str,
        /// The record's id.
        id: String,
    },
    /// The caller passed a value the store refuses; nothing was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The argument or field, e.g. `event_id` or `DATABASE_BACKEND`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend could not be reached or refused the connection. Retryable.
    #[error("{backend} unavailable: {source}")]
    Unavailable {
        /// The backend.
        backend: DatabaseBackend,
        /// The driver error.
        #[source]
        source: BoxError,
    },
    /// The connection broke while a request was on its way or its answer was (reset, closed, cut
    /// mid-reply), the answer did not come in time, or the server ended the session: the backend
    /// may or may not have applied it, and nothing on this side can tell. Retryable: every write of every store is safe to run again, and the retry itself
    /// says what happened (an insert already applied answers `Conflict`, a compare-and-set
    /// `VersionMismatch`, a webhook claim `InFlight`, an enqueue with a dedupe key the same
    /// job); or re-read to find out. A connection that could not be made at all is
    /// [`StorageError::Unavailable`]: nothing was sent.
    #[error("{backend}: the connection broke mid-request; it may or may not have been applied: {source}")]
    Indeterminate {
        /// The backend.
        backend: DatabaseBackend,
        /// The driver error.
        #[source]
        source: BoxError,
    },
    /// The backend answered, but the work collided with other work and was rolled back or not
    /// started: a deadlock, a serialization failure, a lock that was not free in time, SQLite's
    /// file lock held by another writer. Retryable; not an outage (a circuit breaker ignores it).
    #[error("{backend}: contended: {source}")]
    Contended {
        /// The backend.
        backend: DatabaseBackend,
        /// The driver error.
        #[source]
        source: BoxError,
    },
    /// The work did not start or was cancelled in time: no pooled connection came free, the
    /// server cancelled a statement past its timeout (rolled back), finding a Redis master took
    /// too long. Nothing was applied. Retryable. (A reply that never came is
    /// [`StorageError::Indeterminate`].)
    #[error("{backend} timed out: {source}")]
    Timeout {
        /// The backend.
        backend: DatabaseBackend,
        /// The driver error.
        #[source]
        source: BoxError,
    },
    /// A key is missing or malformed, or a sealed value does not open (tampered, truncated,
    /// moved to another record, or sealed with an unknown key).
    #[error("encryption: {message}")]
    Crypto {
        /// What failed, never including secret material.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The database schema is missing, newer than this build, or a migration was edited.
    #[error("schema: {message}")]
    Schema {
        /// What is wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The configuration is invalid or refused (e.g. no encryption key in production).
    #[error("configuration: {message}")]
    Config {
        /// What is wrong, naming the setting.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend does not offer this operation.
    #[error("{operation} is not supported by the {backend} backend")]
    NotSupported {
        /// The operation.
        operation: &'static str,
        /// The backend.
        backend: DatabaseBackend,
    },
    /// Any other backend failure (a bug, a corrupt row, an unexpected driver error).
    #[error("{backend}: {source}")]
    Backend {
        /// The backend.
        backend: DatabaseBackend,
        /// The driver error.
        #[source]
        source: BoxError,
    },
}

impl StorageError {
    /// Whether re-running the whole unit of work may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Indeterminate { .. } | Self::Timeout { .. } | Self::Contended { .. })
    }

    /// Whether a write that failed this way may nevertheless have been applied
    /// ([`StorageError::Indeterminate`]). Retry it (every store's writes are safe to retry, and
    /// the retry's answer says what happened) or re-read; never report it as not done.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Indeterminate { .. })
    }

    /// Whether the backend could not be reached or did not answer: what a circuit breaker counts.
    /// Contention and every refusal (a conflict, bad input) are answers.
    pub fn is_connection_failure(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Indeterminate { .. } | Self::Timeout { .. })
    }

    /// An [`StorageError::InvalidInput`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::InvalidInput { field: field.into(), reason: reason.to_string() }
    }

    /// A [`StorageError::NotFound`].
    pub fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { entity, id: id.into() }
    }

    /// A [`StorageError::Conflict`].
    pub fn conflict(entity: &'static str, id: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Conflict { entity, id: id.into(), reason: reason.into() }
    }

    /// A [`StorageError::Crypto`] without a source.
    pub fn crypto(message: impl Into<String>) -> Self {
        Self::Crypto { message: message.into(), source: None }
    }

    /// A [`StorageError::Config`] without a source.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config { message: message.into(), source: None }
    }

    /// A [`StorageError::Schema`] without a source.
    pub fn schema(message: impl Into<String>) -> Self {
        Self::Schema { message: message.into(), source: None }
    }

    /// A [`StorageError::Unavailable`]: the backend cannot be reached (or was closed).
    pub fn unavailable(backend: DatabaseBackend, source: impl Into<BoxError>) -> Self {
        Self::Unavailable { backend, source: source.into() }
    }

    /// A [`StorageError::Backend`] for an unexpected failure.
    pub fn backend(backend: DatabaseBackend, source: impl Into<BoxError>) -> Self {
        Self::Backend { backend, source: source.into() }
    }

    /// A [`StorageError::Backend`] for a stored record that no longer decodes.
    pub fn corrupt(backend: DatabaseBackend, what: impl fmt::Display) -> Self {
        Self::backend(backend, format!("stored record does not decode: {what}"))
    }
}
