//! Webhook idempotency on SQLite: a claim is one upsert that only takes an absent or expired row;
//! one statement when it wins, one more read to report what it lost to.

use crate::{BACKEND, SqliteBackend, instant};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use std::path::Path;
use storage_core::clock::to_micros;
use storage_core::stores::webhook::{EventState, WebhookEvents};
use storage_core::{ClaimOutcome, Delivery, Lease, Result, SharedClock, StorageError, TenantId, WebhookOptions};
use storage_schema::sqlx_error;
use uuid::Uuid;

const CLAIM: &str = "INSERT INTO webhook_events (tenant, event_id, state, token, expires_at) VALUES (?1, ?2, 'in_flight', ?3, ?4) \
     ON CONFLICT (tenant, event_id) DO UPDATE SET state = 'in_flight', token = excluded.token, result = NULL, completed_at = NULL, expires_at = excluded.expires_at \
     WHERE webhook_events.expires_at <= ?5 RETURNING token";
const STATE: &str =
    "SELECT state, token, result, completed_at, expires_at FROM webhook_events WHERE tenant = ?1 AND event_id = ?2 AND expires_at > ?3";
const FINISH: &str = "UPDATE webhook_events SET state = 'done', token = NULL, result = ?1, completed_at = ?2, expires_at = ?3 \
     WHERE tenant = ?4 AND event_id = ?5 AND state = 'in_flight' AND token = ?6";
const ABANDON: &str = "DELETE FROM webhook_events WHERE tenant = ?1 AND event_id = ?2 AND state = 'in_flight' AND token = ?3";
const RECORD: &str = "INSERT INTO webhook_events (tenant, event_id, state, result, completed_at, expires_at) VALUES (?1, ?2, 'done', ?3, ?4, ?5) \
     ON CONFLICT (tenant, event_id) DO UPDATE SET state = 'done', token = NULL, result = excluded.result, completed_at = excluded.completed_at, expires_at = excluded.expires_at";
const PURGE: &str = "DELETE FROM webhook_events WHERE expires_at <= ?1";
const COUNT: &str = "SELECT count(*) FROM webhook_events WHERE tenant = ?1 AND expires_at > ?2";

/// [`storage_core::WebhookStore`] on SQLite.
#[derive(Debug, Clone)]
pub struct SQLiteWebhookStore {
    backend: SqliteBackend,
}

impl SQLiteWebhookStore {
    /// Opens the store in the database at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(SqliteBackend::open(path).await?.webhook_store())
    }

    pub(crate) fn from_backend(backend: &SqliteBackend) -> Self {
        Self { backend: backend.clone() }
    }
}

fn event_state(event_id: &str, row: &SqliteRow) -> Result<EventState> {
    let get = |e: sqlx::Error| sqlx_error(BACKEND, e);
    let expires_at = instant(row.try_get(4).map_err(get)?)?;
    if row.try_get::<String, _>(0).map_err(get)? == "in_flight" {
        let token: String = row.try_get(1).map_err(get)?;
        let token = Uuid::parse_str(&token).map_err(|e| StorageError::corrupt(BACKEND, e))?;
        return Ok(EventState::InFlight { token, expires_at });
    }
    Ok(EventState::Done(Delivery {
        event_id: event_id.to_owned(),
        result: row.try_get::<Option<String>, _>(2).map_err(get)?.unwrap_or_default(),
        completed_at: instant(row.try_get::<Option<i64>, _>(3).map_err(get)?.unwrap_or_default())?,
        expires_at,
    }))
}

#[async_trait]
impl WebhookEvents for SQLiteWebhookStore {
    fn clock(&self) -> &SharedClock {
        self.backend.clock()
    }

    fn options(&self) -> &WebhookOptions {
        self.backend.webhook()
    }

    async fn claim(
        &self,
        tenant: &TenantId,
        event_id: &str,
        token: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimOutcome>> {
        // The upsert only takes an absent or expired row, atomically; when it loses, the read
        // reports what won.
        let won = sqlx::query(CLAIM)
            .bind(tenant.as_str())
            .bind(event_id)
            .bind(token.to_string())
            .bind(to_micros(lease_until))
            .bind(to_micros(now))
            .fetch_optional(self.backend.writer())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        if won.is_some() {
            return Ok(Some(ClaimOutcome::Acquired(Lease { event_id: event_id.to_owned(), token, expires_at: lease_until })));
        }
        Ok(self.state(tenant, event_id, now).await?.map(ClaimOutcome::from))
    }

    async fn finish(&self, tenant: &TenantId, event_id: &str, token: Uuid, delivery: &Delivery) -> Result<bool> {
        let done = sqlx::query(FINISH)
            .bind(&delivery.result)
            .bind(to_micros(delivery.completed_at))
            .bind(to_micros(delivery.expires_at))
            .bind(tenant.as_str())
            .bind(event_id)
            .bind(token.to_string())
            .execute(self.backend.writer())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn abandon(&self, tenant: &TenantId, event_id: &str, token: Uuid) -> Result<bool> {
        let done = sqlx::query(ABANDON)
            .bind(tenant.as_str())
            .bind(event_id)
            .bind(token.to_string())
            .execute(self.backend.writer())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn record(&self, tenant: &TenantId, delivery: &Delivery) -> Result<()> {
        sqlx::query(RECORD)
            .bind(tenant.as_str())
            .bind(&delivery.event_id)
            .bind(&delivery.result)
            .bind(to_micros(delivery.completed_at))
            .bind(to_micros(delivery.expires_at))
            .execute(self.backend.writer())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Ok(())
    }

    async fn state(&self, tenant: &TenantId, event_id: &str, now: DateTime<Utc>) -> Result<Option<EventState>> {
        let row = sqlx::query(STATE)
            .bind(tenant.as_str())
            .bind(event_id)
            .bind(to_micros(now))
            .fetch_optional(self.backend.reader())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        row.map(|row| event_state(event_id, &row)).transpose()
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(PURGE).bind(to_micros(now)).execute(self.backend.writer()).await.map_err(|e| sqlx_error(BACKEND, e))?;
        Ok(done.rows_affected())
    }

    async fn count(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(COUNT)
            .bind(tenant.as_str())
            .bind(to_micros(now))
            .fetch_one(self.backend.reader())
            .await
            .map_err(|e| sqlx_error(BACKEND, e))?;
        Ok(n as u64)
    }
}
