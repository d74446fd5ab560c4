//! How driver errors map onto [`StorageError`], by the driver's error kind (SQLSTATE, SQLite result
//! code), never by message text.

use storage_core::{DatabaseBackend, StorageError};

/// PostgreSQL SQLSTATEs that mean the server cannot serve now (shutting down or starting, too
/// many connections), the ones where work collided with other work (serialization failure,
/// deadlock, a lock not available in time, an object in use), and the statement timeout.
#[cfg(feature = "postgres")]
const PG_UNAVAILABLE: [&str; 2] = ["57P03", "53300"];
/// The server ended the session (shutdown, crash) or lost track of a transaction's outcome
/// (08007): a request in flight may have been applied.
#[cfg(feature = "postgres")]
const PG_INDETERMINATE: [&str; 3] = ["57P01", "57P02", "08007"];
#[cfg(feature = "postgres")]
const PG_CONTENDED: [&str; 4] = ["40001", "40P01", "55P03", "55006"];
#[cfg(feature = "postgres")]
const PG_TIMEOUT: [&str; 1] = ["57014"];

/// Maps a sqlx (PostgreSQL) error to the semantic error, keeping it as the source.
#[cfg(feature = "postgres")]
pub fn sqlx_error(error: sqlx::Error) -> StorageError {
    let backend = DatabaseBackend::Postgresql;
    match &error {
        sqlx::Error::PoolTimedOut => StorageError::Timeout { backend, source: Box::new(error) },
        // The connection broke under a request (or its answer): it may have been applied. A
        // connection refused, or a pool with nothing to give, sent nothing.
        sqlx::Error::Io(io) if io_broke_mid_request(io.kind()) => StorageError::Indeterminate { backend, source: Box::new(error) },
        sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => StorageError::Indeterminate { backend, source: Box::new(error) },
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
            StorageError::Unavailable { backend, source: Box::new(error) }
        }
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if PG_TIMEOUT.contains(&code.as_ref()) {
                StorageError::Timeout { backend, source: Box::new(error) }
            } else if PG_INDETERMINATE.contains(&code.as_ref()) {
                StorageError::Indeterminate { backend, source: Box::new(error) }
            } else if PG_CONTENDED.contains(&code.as_ref()) {
                StorageError::Contended { backend, source: Box::new(error) }
            } else if PG_UNAVAILABLE.contains(&code.as_ref()) || code.starts_with("08") {
                StorageError::Unavailable { backend, source: Box::new(error) }
            } else {
                StorageError::Backend { backend, source: Box::new(error) }
            }
        }
        _ => StorageError::Backend { backend, source: Box::new(error) },
    }
}

/// Whether an I/O error means an open connection broke (so a request on it may have reached the
/// server), rather than that none could be made.
#[cfg(feature = "postgres")]
fn io_broke_mid_request(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind;
    matches!(
        kind,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof | ErrorKind::TimedOut
    )
}

/// Maps a rusqlite error to the semantic error, keeping it as the source: `SQLITE_BUSY` and
/// `SQLITE_LOCKED` (another connection held the lock past the busy timeout) are `Contended`; a
/// file that cannot be opened, read or written is `Unavailable`.
#[cfg(feature = "sqlite")]
pub fn sqlite_error(error: rusqlite::Error) -> StorageError {
    use rusqlite::ErrorCode;
    const BACKEND: DatabaseBackend = DatabaseBackend::Sqlite;
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StorageError::Contended { backend: BACKEND, source: Box::new(error) },
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::FileLockingProtocolFailed,
        ) => StorageError::Unavailable { backend: BACKEND, source: Box::new(error) },
        _ => StorageError::Backend { backend: BACKEND, source: Box::new(error) },
    }
}

/// The index a PostgreSQL unique violation names, if the error is one.
#[cfg(feature = "postgres")]
pub fn pg_unique_violation(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            Some(db.constraint().unwrap_or_default().to_owned())
        }
        _ => None,
    }
}

/// Whether a SQLite error is a unique (or primary key) violation.
#[cfg(feature = "sqlite")]
pub fn sqlite_unique_violation(error: &rusqlite::Error) -> bool {
    const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
    const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;
    matches!(error.sqlite_error(), Some(e) if e.extended_code == SQLITE_CONSTRAINT_UNIQUE || e.extended_code == SQLITE_CONSTRAINT_PRIMARYKEY)
}
