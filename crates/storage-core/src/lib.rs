//! Core types of `aragora-storage`.
//!
//! This crate is deliberately small: it holds the store traits and their models, the error type,
//! the configuration, the injected [`Clock`], [`Secret`], [`TenantId`], keyset pagination and the
//! [`Document`]/[`Table`] contract that every backend implements once for the common case
//! ("a typed record under a key, a tenant, a few secondary indexes, timestamps").
//!
//! Backends (`storage-memory`, `storage-sqlite`, `storage-postgres`, `storage-redis`) depend on
//! this crate only; applications normally use the `aragora-storage` umbrella.
#![forbid(unsafe_code)]

pub mod backend;
pub mod clock;
pub mod config;
pub mod document;
pub mod error;
pub mod page;
pub mod secret;
pub mod stores;
pub mod table;
pub mod tenant;

pub use backend::DatabaseBackend;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use config::{Environment, RedisMode, SqliteSynchronous, StorageConfig};
pub use document::{Document, Filter, IndexKind, IndexSpec, IndexValue, RecordMeta};
pub use error::{BoxError, Result, StorageError};
pub use page::{Cursor, MAX_PAGE_SIZE, Page, PageRequest};
pub use secret::{SealContext, Sealer, Secret};
pub use stores::gmail_token::{GmailTokenStore, GmailTokenTables, GmailUserState, TokenRefresh};
pub use stores::integration::{IntegrationConfig, IntegrationStatus, IntegrationStore, IntegrationTables, UserIdMapping};
pub use stores::webhook::{ClaimOutcome, Delivery, EventState, Lease, WebhookEvents, WebhookOptions, WebhookStore};
pub use table::{Table, TableHandle};
pub use tenant::{TenantId, validate_id};
