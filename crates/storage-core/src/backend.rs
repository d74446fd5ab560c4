//! The four backends and how they are named in configuration.

use crate::{Result, StorageError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where the stores keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DatabaseBackend {
    /// In process; gone when the process ends. For tests and development.
    Memory,
    /// An embedded SQLite file (the default).
    #[default]
    Sqlite,
    /// A PostgreSQL server, optionally with read replicas.
    Postgresql,
    /// A Redis server (standalone, Sentinel or Cluster).
    Redis,
}

impl DatabaseBackend {
    /// Every backend, in documentation order.
    pub const ALL: [DatabaseBackend; 4] = [Self::Memory, Self::Sqlite, Self::Postgresql, Self::Redis];

    /// The configuration name: `memory`, `sqlite`, `postgresql` or `redis`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgresql => "postgresql",
            Self::Redis => "redis",
        }
    }
}

impl fmt::Display for DatabaseBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatabaseBackend {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(Self::Memory),
            "sqlite" => Ok(Self::Sqlite),
            "postgresql" | "postgres" => Ok(Self::Postgresql),
            "redis" => Ok(Self::Redis),
            _ => Err(StorageError::invalid(
                "DATABASE_BACKEND",
                format!("`{s}` is not a backend; expected one of memory, sqlite, postgresql, redis"),
            )),
        }
    }
}

impl TryFrom<String> for DatabaseBackend {
    type Error = StorageError;
    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<DatabaseBackend> for String {
    fn from(value: DatabaseBackend) -> Self {
        value.name().to_owned()
    }
}
