//! Gmail tokens in memory: the generic engine, one table.

use crate::MemoryBackend;
use storage_core::stores::gmail_token::GmailTokenTables;
use storage_core::{GmailUserState, TableHandle};

/// [`storage_core::GmailTokenStore`] in memory.
#[derive(Debug, Clone)]
pub struct InMemoryGmailTokenStore {
    tokens: TableHandle<GmailUserState>,
}

impl Default for InMemoryGmailTokenStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryGmailTokenStore {
    /// An empty store of its own.
    pub fn new() -> Self {
        MemoryBackend::new().gmail_token_store()
    }

    pub(crate) fn from_backend(backend: &MemoryBackend) -> Self {
        Self { tokens: backend.table() }
    }
}

impl GmailTokenTables for InMemoryGmailTokenStore {
    fn tokens(&self) -> &TableHandle<GmailUserState> {
        &self.tokens
    }
}
