//! Gmail tokens in Redis: the generic engine, one table.

use crate::RedisBackend;
use storage_core::stores::gmail_token::GmailTokenTables;
use storage_core::{GmailUserState, Result, TableHandle};

/// [`storage_core::GmailTokenStore`] on Redis.
#[derive(Debug, Clone)]
pub struct RedisGmailTokenStore {
    tokens: TableHandle<GmailUserState>,
}

impl RedisGmailTokenStore {
    /// Connects to the server at `url`.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(RedisBackend::builder(url).connect().await?.gmail_token_store())
    }

    pub(crate) fn from_backend(backend: &RedisBackend) -> Self {
        Self { tokens: backend.table() }
    }
}

impl GmailTokenTables for RedisGmailTokenStore {
    fn tokens(&self) -> &TableHandle<GmailUserState> {
        &self.tokens
    }
}
