//! Integration configurations on SQLite: the generic engine, two tables.

use crate::SqliteBackend;
use std::path::Path;
use storage_core::stores::integration::IntegrationTables;
use storage_core::{IntegrationConfig, Result, TableHandle, UserIdMapping};

/// [`storage_core::IntegrationStore`] on SQLite.
#[derive(Debug, Clone)]
pub struct SQLiteIntegrationStore {
    configs: TableHandle<IntegrationConfig>,
    mappings: TableHandle<UserIdMapping>,
}

impl SQLiteIntegrationStore {
    /// Opens the store in the database at `path` (the seed's `SQLiteIntegrationStore(path)`).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(SqliteBackend::open(path).await?.integration_store())
    }

    pub(crate) fn from_backend(backend: &SqliteBackend) -> Self {
        Self { configs: backend.table(), mappings: backend.table() }
    }
}

impl IntegrationTables for SQLiteIntegrationStore {
    fn configs(&self) -> &TableHandle<IntegrationConfig> {
        &self.configs
    }
    fn mappings(&self) -> &TableHandle<UserIdMapping> {
        &self.mappings
    }
}
