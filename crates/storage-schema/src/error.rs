//! How sqlx errors map onto [`StorageError`], shared by the SQLite and PostgreSQL backends.

use storage_core::StorageError;

/// PostgreSQL SQLSTATEs that mean "try again" (connection lost, server restarting, serialization
/// failure, deadlock) and the ones that mean "took too long".
const PG_UNAVAILABLE: [&str; 7] = ["57P01", "57P02", "57P03", "53300", "40001", "40P01", "55006"];
const PG_TIMEOUT: [&str; 2] = ["57014", "55P03"];
/// SQLite's BUSY (5) and LOCKED (6): `busy_timeout` ran out.
const SQLITE_TIMEOUT: [&str; 2] = ["5", "6"];

/// Maps a driver error to the semantic error, keeping it as the source.
pub fn sqlx_error(backend: &'static str, error: sqlx::Error) -> StorageError {
    match &error {
        sqlx::Error::PoolTimedOut => StorageError::Timeout { backend, source: Box::new(error) },
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => {
            StorageError::Unavailable { backend, source: Box::new(error) }
        }
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let primary = code.split(['.', ' ']).next().unwrap_or_default();
            if PG_TIMEOUT.contains(&primary) || (backend == "sqlite" && SQLITE_TIMEOUT.contains(&primary)) {
                StorageError::Timeout { backend, source: Box::new(error) }
            } else if PG_UNAVAILABLE.contains(&primary) || (backend == "postgresql" && primary.starts_with("08")) {
                StorageError::Unavailable { backend, source: Box::new(error) }
            } else {
                StorageError::Backend { backend, source: Box::new(error) }
            }
        }
        _ => StorageError::Backend { backend, source: Box::new(error) },
    }
}
