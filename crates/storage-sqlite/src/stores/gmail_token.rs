//! Gmail tokens on SQLite: the generic engine, one table.

use crate::SqliteBackend;
use std::path::Path;
use storage_core::stores::gmail_token::GmailTokenTables;
use storage_core::{GmailUserState, Result, TableHandle};

/// [`storage_core::GmailTokenStore`] on SQLite.
#[derive(Debug, Clone)]
pub struct SQLiteGmailTokenStore {
    tokens: TableHandle<GmailUserState>,
}

impl SQLiteGmailTokenStore {
    /// Opens the store in the database at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(SqliteBackend::open(path).await?.gmail_token_store())
    }

    pub(crate) fn from_backend(backend: &SqliteBackend) -> Self {
        Self { tokens: backend.table() }
    }
}

impl GmailTokenTables for SQLiteGmailTokenStore {
    fn tokens(&self) -> &TableHandle<GmailUserState> {
        &self.tokens
    }
}
