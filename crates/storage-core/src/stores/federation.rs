//! The federation registry (catalogue #45): the other regions a deployment syncs knowledge with,
//! per workspace, each with its sealed API key and its sync counters.
//!
//! A workspace is a tenant; regions shared by every workspace live in the system tenant (the
//! original's `_global`). Every call names the workspace it reads or changes (`None` is the
//! global registry, never "every workspace"): listing all workspaces' regions is its own admin
//! call, and it leaves the keys out. A sync report changes the counters, the times and the last
//! error in one write at the version read, so concurrent reports all count.

use crate::document::{Document, IndexSpec, Secrets, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Query, Scope};
use crate::stores::user::system;
use crate::stores::webhook_config::check_url;
use crate::table::Table;
use crate::{Page, PageRequest, Result, Secret, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// The longest sync error kept, in bytes (a longer one is cut at a character boundary).
pub const MAX_SYNC_ERROR_BYTES: usize = 4 * 1024;

/// Which way a region syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FederationMode {
    /// This deployment sends.
    Push,
    /// This deployment fetches.
    Pull,
    /// Both.
    Bidirectional,
    /// Registered, not syncing.
    None,
}

/// What a region syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncScope {
    /// Everything.
    Full,
    /// Metadata only.
    Metadata,
    /// Summaries only.
    Summary,
}

/// The direction of one sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncDirection {
    /// Sent to the region.
    Push,
    /// Fetched from the region.
    Pull,
}

/// A federated region of a workspace (or of every workspace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederatedRegion {
    /// The workspace, or [`TenantId::system`] for a region of every workspace.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The region.
    pub region_id: String,
    /// Where it is reached.
    pub endpoint_url: String,
    /// The key it is reached with; sealed. Empty in the all-workspace list.
    #[serde(skip)]
    pub api_key: Secret<String>,
    /// Which way it syncs.
    pub mode: FederationMode,
    /// What it syncs.
    pub sync_scope: SyncScope,
    /// Whether it syncs at all.
    pub enabled: bool,
    /// The last sync, either way (the store's clock).
    pub last_sync_at: Option<DateTime<Utc>>,
    /// The last push.
    pub last_push_at: Option<DateTime<Utc>>,
    /// The last pull.
    pub last_pull_at: Option<DateTime<Utc>>,
    /// What went wrong in the last sync, if it failed.
    pub last_sync_error: Option<String>,
    /// Pushes so far.
    pub total_pushes: u64,
    /// Pulls so far.
    pub total_pulls: u64,
    /// Nodes synced by the syncs that succeeded.
    pub total_nodes_synced: u64,
    /// Syncs that failed.
    pub total_sync_errors: u64,
    /// The application's own fields.
    pub metadata: Map<String, Value>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first registered; kept by every save.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl FederatedRegion {
    /// An enabled, bidirectional, full region of `workspace` (or of every workspace).
    pub fn new(
        workspace: Option<&TenantId>,
        region_id: impl Into<String>,
        endpoint_url: impl Into<String>,
        api_key: Secret<String>,
    ) -> Self {
        Self {
            tenant: workspace.cloned().unwrap_or_else(TenantId::system),
            region_id: region_id.into(),
            endpoint_url: endpoint_url.into(),
            api_key,
            mode: FederationMode::Bidirectional,
            sync_scope: SyncScope::Full,
            enabled: true,
            last_sync_at: None,
            last_push_at: None,
            last_pull_at: None,
            last_sync_error: None,
            total_pushes: 0,
            total_pulls: 0,
            total_nodes_synced: 0,
            total_sync_errors: 0,
            metadata: Map::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// The workspace, or `None` for a region of every workspace.
    pub fn workspace(&self) -> Option<&TenantId> {
        (!self.tenant.is_system()).then_some(&self.tenant)
    }
}

impl Document for FederatedRegion {
    const TABLE: TableDef = TableDef {
        name: "federated_regions",
        entity: "federated region",
        id_field: "region_id",
        indexes: &[IndexSpec::bool("enabled")],
        expires: false,
        sealed: true,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.region_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::Bool(self.enabled))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("region_id", &self.region_id)?;
        check_url("endpoint_url", &self.endpoint_url)?;
        if self.api_key.expose().is_empty() {
            return Err(StorageError::invalid("api_key", "must not be empty"));
        }
        for count in [self.total_pushes, self.total_pulls, self.total_nodes_synced, self.total_sync_errors] {
            crate::limits::check_int("counters", i64::try_from(count).unwrap_or(i64::MAX))?;
        }
        Ok(())
    }
    fn secrets(&self) -> Secrets {
        [("api_key".to_owned(), self.api_key.clone())].into_iter().collect()
    }
    fn set_secrets(&mut self, mut secrets: Secrets) -> Result<()> {
        self.api_key = secrets.remove("api_key").unwrap_or_default();
        Ok(())
    }
}

/// The registry of federated regions.
#[async_trait]
pub trait FederationRegistryStore: Send + Sync + fmt::Debug {
    /// Registers the region in its workspace, or replaces its endpoint, key, mode, scope,
    /// enablement and metadata — keeping its sync times, counters and `created_at`.
    async fn save(&self, region: &FederatedRegion) -> Result<FederatedRegion>;
    /// The region of `workspace` (`None`: of the global registry), with its key.
    async fn get(&self, region_id: &str, workspace: Option<&TenantId>) -> Result<Option<FederatedRegion>>;
    /// Unregisters the region of `workspace` (`None`: of the global registry); whether it was
    /// registered.
    async fn delete(&self, region_id: &str, workspace: Option<&TenantId>) -> Result<bool>;
    /// The regions of `workspace` (`None`: of the global registry), by id, with their keys.
    async fn list_all(&self, workspace: Option<&TenantId>) -> Result<Vec<FederatedRegion>>;
    /// The enabled regions of `workspace` (`None`: of the global registry), by id, with their
    /// keys.
    async fn list_enabled(&self, workspace: Option<&TenantId>) -> Result<Vec<FederatedRegion>>;
    /// Admin: one page of the regions of every workspace and the global ones, by workspace then
    /// id, without their keys.
    async fn list_every_workspace(&self, page: &PageRequest) -> Result<Page<FederatedRegion>>;
    /// Records one sync: the sync time and the direction's time and counter; on `error`, the
    /// error (cut to [`MAX_SYNC_ERROR_BYTES`]) and the error counter, else `nodes_synced` added
    /// and the last error cleared. One write at the version read: concurrent reports all count.
    async fn update_sync_status(
        &self,
        region_id: &str,
        direction: SyncDirection,
        nodes_synced: u64,
        error: Option<&str>,
        workspace: Option<&TenantId>,
    ) -> Result<FederatedRegion>;
}

/// [`FederationRegistryStore`] on any backend.
pub struct FederationRegistry<B: ?Sized = dyn Engine> {
    regions: Table<FederatedRegion>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(FederationRegistry { regions });

/// The tenant a workspace's regions live in.
fn tenant_of(workspace: Option<&TenantId>) -> &TenantId {
    workspace.unwrap_or_else(|| system())
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> String {
    let end = (0..=max.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text.get(..end).unwrap_or_default().to_owned()
}

#[async_trait]
impl<B: ?Sized> FederationRegistryStore for FederationRegistry<B> {
    async fn save(&self, region: &FederatedRegion) -> Result<FederatedRegion> {
        region.validate()?;
        let apply = |stored: &mut FederatedRegion| {
            stored.endpoint_url.clone_from(&region.endpoint_url);
            stored.api_key = region.api_key.clone();
            (stored.mode, stored.sync_scope, stored.enabled) = (region.mode, region.sync_scope, region.enabled);
            stored.metadata.clone_from(&region.metadata);
            Ok(())
        };
        for _ in 0..2 {
            match self.regions.patch(&region.tenant, &region.region_id, apply).await {
                Err(StorageError::NotFound { .. }) => {
                    let mut fresh = FederatedRegion::new(region.workspace(), region.region_id.clone(), "", Secret::default());
                    apply(&mut fresh)?;
                    match self.regions.insert(&fresh).await {
                        // Registered concurrently: replace that one's settings instead.
                        Err(StorageError::Conflict { .. }) => continue,
                        other => return other,
                    }
                }
                other => return other,
            }
        }
        Err(StorageError::conflict(FederatedRegion::TABLE.entity, region.region_id.clone(), "saved concurrently; try again"))
    }

    async fn get(&self, region_id: &str, workspace: Option<&TenantId>) -> Result<Option<FederatedRegion>> {
        self.regions.get(tenant_of(workspace), region_id).await
    }

    async fn delete(&self, region_id: &str, workspace: Option<&TenantId>) -> Result<bool> {
        self.regions.delete(tenant_of(workspace), region_id).await
    }

    async fn list_all(&self, workspace: Option<&TenantId>) -> Result<Vec<FederatedRegion>> {
        self.regions.list_all(Scope::Tenant(tenant_of(workspace)), Query::new(Filter::all())).await
    }

    async fn list_enabled(&self, workspace: Option<&TenantId>) -> Result<Vec<FederatedRegion>> {
        self.regions.list_all(Scope::Tenant(tenant_of(workspace)), Query::new(Filter::all().eq("enabled", true))).await
    }

    async fn list_every_workspace(&self, page: &PageRequest) -> Result<Page<FederatedRegion>> {
        let page = self.regions.list(Scope::AllTenants, Query::new(Filter::all()), page).await?;
        Ok(page.map(|mut region| {
            region.api_key = Secret::default();
            region
        }))
    }

    async fn update_sync_status(
        &self,
        region_id: &str,
        direction: SyncDirection,
        nodes_synced: u64,
        error: Option<&str>,
        workspace: Option<&TenantId>,
    ) -> Result<FederatedRegion> {
        crate::limits::check_int("nodes_synced", i64::try_from(nodes_synced).unwrap_or(i64::MAX))?;
        let error = error.map(|e| cut(e, MAX_SYNC_ERROR_BYTES));
        self.regions
            .patch(tenant_of(workspace), region_id, |region| {
                // Read on every attempt: a retry after a concurrent report is later than it.
                let now = self.regions.now();
                region.last_sync_at = Some(now);
                match direction {
                    SyncDirection::Push => (region.last_push_at, region.total_pushes) = (Some(now), region.total_pushes.saturating_add(1)),
                    SyncDirection::Pull => (region.last_pull_at, region.total_pulls) = (Some(now), region.total_pulls.saturating_add(1)),
                }
                match &error {
                    Some(error) => {
                        region.last_sync_error = Some(error.clone());
                        region.total_sync_errors = region.total_sync_errors.saturating_add(1);
                    }
                    None => {
                        region.last_sync_error = None;
                        region.total_nodes_synced = region.total_nodes_synced.saturating_add(nodes_synced);
                    }
                }
                Ok(())
            })
            .await
    }
}
