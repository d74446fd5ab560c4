//! Gmail tokens on Postgres: the generic engine, one table.

use crate::PostgresBackend;
use storage_core::stores::gmail_token::GmailTokenTables;
use storage_core::{GmailUserState, Result, TableHandle};

/// [`storage_core::GmailTokenStore`] on Postgres.
#[derive(Debug, Clone)]
pub struct PostgresGmailTokenStore {
    tokens: TableHandle<GmailUserState>,
}

impl PostgresGmailTokenStore {
    /// Connects to the database at `url` (migrating it if needed).
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(PostgresBackend::builder(url).connect().await?.gmail_token_store())
    }

    pub(crate) fn from_backend(backend: &PostgresBackend) -> Self {
        Self { tokens: backend.table() }
    }
}

impl GmailTokenTables for PostgresGmailTokenStore {
    fn tokens(&self) -> &TableHandle<GmailUserState> {
        &self.tokens
    }
}
