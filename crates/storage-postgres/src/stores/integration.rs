//! Integration configurations on Postgres: the generic engine, two tables.

use crate::PostgresBackend;
use storage_core::stores::integration::IntegrationTables;
use storage_core::{IntegrationConfig, Result, TableHandle, UserIdMapping};

/// [`storage_core::IntegrationStore`] on Postgres.
#[derive(Debug, Clone)]
pub struct PostgresIntegrationStore {
    configs: TableHandle<IntegrationConfig>,
    mappings: TableHandle<UserIdMapping>,
}

impl PostgresIntegrationStore {
    /// Connects to the database at `url` (migrating it if needed).
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(PostgresBackend::builder(url).connect().await?.integration_store())
    }

    pub(crate) fn from_backend(backend: &PostgresBackend) -> Self {
        Self { configs: backend.table(), mappings: backend.table() }
    }
}

impl IntegrationTables for PostgresIntegrationStore {
    fn configs(&self) -> &TableHandle<IntegrationConfig> {
        &self.configs
    }
    fn mappings(&self) -> &TableHandle<UserIdMapping> {
        &self.mappings
    }
}
