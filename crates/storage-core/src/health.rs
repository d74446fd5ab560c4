//! What `Storage::health()` reports: whether the backend answers, how fast, and how busy its
//! connections are.

use crate::stores::integration::IntegrationConfig;
use crate::{DatabaseBackend, Document, SharedClock, Tables, TenantId};
use serde::Serialize;
use std::time::{Duration, Instant};

/// A backend's health at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Which backend.
    pub backend: DatabaseBackend,
    /// Whether a trivial read succeeded.
    pub reachable: bool,
    /// The round trip of that read (also when it failed); in JSON, `latency_ms`.
    #[serde(rename = "latency_ms", serialize_with = "millis")]
    pub latency: Duration,
    /// Why it failed, if it did (never a secret: driver errors name hosts, not passwords).
    pub error: Option<String>,
    /// The connections, where the backend pools them.
    pub pool: Option<PoolHealth>,
    /// Each PostgreSQL read replica, where reads are routed.
    pub replicas: Vec<ReplicaHealth>,
    /// The Redis node written to: `master`, or `cluster (ok)`.
    pub redis_role: Option<String>,
}

impl Health {
    /// A report of `backend` from one probe's outcome.
    pub fn probed(backend: DatabaseBackend, latency: Duration, outcome: crate::Result<()>) -> Self {
        Self {
            backend,
            reachable: outcome.is_ok(),
            latency,
            error: outcome.err().map(|e| e.to_string()),
            pool: None,
            replicas: Vec::new(),
            redis_role: None,
        }
    }
}

/// A connection pool's occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolHealth {
    /// Connections open now.
    pub size: u32,
    /// The most it opens.
    pub max: u32,
    /// Connections lent out now.
    pub in_use: u32,
    /// Callers waiting for a connection; `None` where the driver does not say.
    pub waiting: Option<u32>,
}

/// A read replica's last known state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaHealth {
    /// `replica-<i>`, in configuration order.
    pub name: String,
    /// Whether its last check succeeded (reads go to it).
    pub healthy: bool,
    /// How far behind the primary it was at its last check; in JSON, `lag_ms`.
    #[serde(rename = "lag_ms", serialize_with = "millis")]
    pub lag: Duration,
}

/// A duration as fractional milliseconds, for JSON readers.
fn millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64() * 1_000.0)
}

/// Times one trivial read of `tables`: a record that does not exist, by id.
pub async fn probe(backend: DatabaseBackend, tables: &dyn Tables, clock: &SharedClock) -> Health {
    let started = Instant::now();
    let now = crate::clock::truncate_micros(clock.now());
    let outcome = tables.get(&IntegrationConfig::TABLE, &TenantId::system(), &["health-probe".to_owned()], now).await.map(|_| ());
    Health::probed(backend, started.elapsed(), outcome)
}
