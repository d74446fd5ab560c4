//! Integration configurations in Redis: the generic engine, two tables.

use crate::RedisBackend;
use storage_core::stores::integration::IntegrationTables;
use storage_core::{IntegrationConfig, Result, TableHandle, UserIdMapping};

/// [`storage_core::IntegrationStore`] on Redis.
#[derive(Debug, Clone)]
pub struct RedisIntegrationStore {
    configs: TableHandle<IntegrationConfig>,
    mappings: TableHandle<UserIdMapping>,
}

impl RedisIntegrationStore {
    /// Connects to the server at `url`.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(RedisBackend::builder(url).connect().await?.integration_store())
    }

    pub(crate) fn from_backend(backend: &RedisBackend) -> Self {
        Self { configs: backend.table(), mappings: backend.table() }
    }
}

impl IntegrationTables for RedisIntegrationStore {
    fn configs(&self) -> &TableHandle<IntegrationConfig> {
        &self.configs
    }
    fn mappings(&self) -> &TableHandle<UserIdMapping> {
        &self.mappings
    }
}
