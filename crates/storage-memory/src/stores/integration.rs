//! Integration configurations in memory: the generic engine, two tables.

use crate::MemoryBackend;
use storage_core::stores::integration::IntegrationTables;
use storage_core::{IntegrationConfig, TableHandle, UserIdMapping};

/// [`storage_core::IntegrationStore`] in memory.
#[derive(Debug, Clone)]
pub struct InMemoryIntegrationStore {
    configs: TableHandle<IntegrationConfig>,
    mappings: TableHandle<UserIdMapping>,
}

impl Default for InMemoryIntegrationStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryIntegrationStore {
    /// An empty store of its own (the seed's `InMemoryIntegrationStore()`).
    pub fn new() -> Self {
        MemoryBackend::new().integration_store()
    }

    pub(crate) fn from_backend(backend: &MemoryBackend) -> Self {
        Self { configs: backend.table(), mappings: backend.table() }
    }
}

impl IntegrationTables for InMemoryIntegrationStore {
    fn configs(&self) -> &TableHandle<IntegrationConfig> {
        &self.configs
    }
    fn mappings(&self) -> &TableHandle<UserIdMapping> {
        &self.mappings
    }
}
