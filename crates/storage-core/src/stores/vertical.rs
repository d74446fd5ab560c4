//! Configuration of verticals (industry packs): one JSON document per vertical, platform-wide.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Query, Scope};
use crate::stores::user::system;
use crate::table::Table;
use crate::{Page, PageRequest, Result, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// A vertical's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerticalConfig {
    /// The vertical: `healthcare`, `legal`, ...
    pub vertical_id: String,
    /// The configuration, stored as given.
    pub config: Map<String, Value>,
    /// Who saved it last.
    pub updated_by: Option<String>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first saved.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last saved.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for VerticalConfig {
    const TABLE: TableDef = TableDef {
        name: "vertical_configs",
        entity: "vertical config",
        id_field: "vertical_id",
        indexes: &[IndexSpec::text("updated_by")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        self.vertical_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![self.updated_by.as_ref().map(IndexValue::from)]
    }
    fn validate(&self) -> Result<()> {
        validate_id("vertical_id", &self.vertical_id)?;
        if let Some(by) = &self.updated_by {
            validate_id("updated_by", by)?;
        }
        Ok(())
    }
}

/// Vertical configurations.
#[async_trait]
pub trait VerticalStore: Send + Sync + fmt::Debug {
    /// Saves (creates or replaces) a vertical's configuration.
    async fn save_config(&self, vertical_id: &str, config: Map<String, Value>, updated_by: Option<&str>) -> Result<VerticalConfig>;
    /// A vertical's configuration.
    async fn get_config(&self, vertical_id: &str) -> Result<Option<VerticalConfig>>;
    /// One page of every vertical's configuration, by id.
    async fn get_all_configs(&self, page: &PageRequest) -> Result<Page<VerticalConfig>>;
    /// Deletes a vertical's configuration; whether it existed.
    async fn delete_config(&self, vertical_id: &str) -> Result<bool>;
}

/// [`VerticalStore`] on any backend.
pub struct Verticals<B: ?Sized = dyn Engine> {
    configs: Table<VerticalConfig>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Verticals { configs });

#[async_trait]
impl<B: ?Sized> VerticalStore for Verticals<B> {
    async fn save_config(&self, vertical_id: &str, config: Map<String, Value>, updated_by: Option<&str>) -> Result<VerticalConfig> {
        let record = VerticalConfig {
            vertical_id: vertical_id.to_owned(),
            config,
            updated_by: updated_by.map(str::to_owned),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        self.configs.upsert(&record).await
    }

    async fn get_config(&self, vertical_id: &str) -> Result<Option<VerticalConfig>> {
        self.configs.get(system(), vertical_id).await
    }

    async fn get_all_configs(&self, page: &PageRequest) -> Result<Page<VerticalConfig>> {
        self.configs.list(Scope::Tenant(system()), Query::new(Filter::all()), page).await
    }

    async fn delete_config(&self, vertical_id: &str) -> Result<bool> {
        self.configs.delete(system(), vertical_id).await
    }
}
