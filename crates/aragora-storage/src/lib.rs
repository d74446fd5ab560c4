//! # aragora-storage
//!
//! Typed, multi-tenant stores on four interchangeable backends — in-memory, SQLite (the embedded
//! default), PostgreSQL and Redis — with field-level encryption of secrets and versioned
//! migrations.
//!
//! ```no_run
//! use aragora_storage::{IntegrationConfig, Storage, TenantId};
//! # async fn demo() -> aragora_storage::Result<()> {
//! let storage = Storage::from_env().await?; // SQLite at ./aragora.db unless configured otherwise
//! let tenant = TenantId::new("acme")?;
//! let config = IntegrationConfig::new(tenant.clone(), "workspace-123", "slack")
//!     .with_credential("token", "xoxb-...") // sealed with AES-256-GCM before it is stored
//!     .with_setting("channel", "#general");
//! storage.integration_store().set(&config).await?;
//! let stored = storage.integration_store().get(&tenant, "workspace-123").await?;
//! # Ok(()) }
//! ```
//!
//! Cargo features: `memory`, `sqlite`, `crypto` (default), `postgres`, `redis`.
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accessors;
mod storage;

pub use accessors::*;
pub use storage::Storage;

/// The store traits, models and engine contract, for backend authors.
pub use storage_core as core;
/// Every store trait and model, and the types they use.
pub use storage_core::*;

#[cfg(feature = "crypto")]
pub use storage_crypto::{EncryptedField, EncryptionKey, KeyRing, generate_token, get_encryption_key, hash_token};
#[cfg(feature = "memory")]
pub use storage_memory::{InMemoryGmailTokenStore, InMemoryIntegrationStore, InMemoryWebhookStore, MemoryBackend};
#[cfg(feature = "postgres")]
pub use storage_postgres::{PostgresBackend, PostgresGmailTokenStore, PostgresIntegrationStore, PostgresWebhookStore};
#[cfg(feature = "redis")]
pub use storage_redis::{RedisBackend, RedisGmailTokenStore, RedisIntegrationStore, RedisWebhookStore};
#[cfg(feature = "router")]
pub use storage_router::{
    ConnectionRouter, Consistency, ReplicaConfig, ReplicaStatus, RouterConfig, RouterMetrics, RoutingSettings, close_connection_router,
    get_connection_router, initialize_connection_router, is_router_initialized, with_consistency, with_session,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use storage_schema::{SchemaStatus, check_schema_version, run_migrations, upgrade_schema};
#[cfg(feature = "sqlite")]
pub use storage_sqlite::{SQLiteGmailTokenStore, SQLiteIntegrationStore, SQLiteWebhookStore, SqliteBackend};

/// Whether this build includes the PostgreSQL backend (the `postgres` feature).
pub const POSTGRESQL_AVAILABLE: bool = cfg!(feature = "postgres");
/// Whether this build includes the Redis backend (the `redis` feature).
pub const REDIS_AVAILABLE: bool = cfg!(feature = "redis");

/// The backend the environment selects (`DATABASE_BACKEND`, `ARAGORA_DATABASE_BACKEND`).
pub fn get_database_backend() -> Result<DatabaseBackend> {
    Ok(StorageConfig::from_env()?.backend)
}
