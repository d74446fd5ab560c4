//! Webhook idempotency on SQLite: a claim is one upsert that only takes an absent or expired row,
//! and when it loses, the read of what won runs in the same write unit (so it sees a winner that
//! is in the same group commit).

use crate::connection::{Readers, Writer};
use crate::instant;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use std::sync::Arc;
use storage_core::clock::to_micros;
use storage_core::stores::webhook::{EventState, WebhookEvents};
use storage_core::{ClaimOutcome, Delivery, Lease, Result, StorageError, TenantId};
use storage_schema::sqlite_error;
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

/// Webhook events on SQLite.
#[derive(Debug)]
pub(crate) struct SqliteWebhookEvents {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
}

impl SqliteWebhookEvents {
    pub(crate) fn new(writer: Arc<Writer>, readers: Arc<Readers>) -> Self {
        Self { writer, readers }
    }
}

/// The columns of [`STATE`], as stored.
struct StoredEvent {
    state: String,
    token: Option<String>,
    result: Option<String>,
    completed_at: Option<i64>,
    expires_at: i64,
}

impl StoredEvent {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self { state: row.get(0)?, token: row.get(1)?, result: row.get(2)?, completed_at: row.get(3)?, expires_at: row.get(4)? })
    }

    fn into_state(self, event_id: &str) -> Result<EventState> {
        let expires_at = instant(self.expires_at)?;
        if self.state == "in_flight" {
            let token = self.token.ok_or_else(|| StorageError::corrupt(crate::BACKEND, "an in-flight webhook event has no token"))?;
            let token = Uuid::parse_str(&token).map_err(|e| StorageError::corrupt(crate::BACKEND, e))?;
            return Ok(EventState::InFlight { token, expires_at });
        }
        Ok(EventState::Done(Delivery {
            event_id: event_id.to_owned(),
            result: self.result.unwrap_or_default(),
            completed_at: self.completed_at.map(instant).transpose()?.unwrap_or(expires_at),
            expires_at,
        }))
    }
}

fn read_state(conn: &Connection, tenant: &str, event_id: &str, now: i64) -> Result<Option<StoredEvent>> {
    let mut statement = conn.prepare_cached(STATE).map_err(sqlite_error)?;
    statement.query_row((tenant, event_id, now), StoredEvent::read).optional().map_err(sqlite_error)
}

#[async_trait]
impl WebhookEvents for SqliteWebhookEvents {
    async fn claim(
        &self,
        tenant: &TenantId,
        event_id: &str,
        token: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimOutcome>> {
        let (tenant_id, event) = (tenant.as_str().to_owned(), event_id.to_owned());
        let (now_micros, until) = (to_micros(now), to_micros(lease_until));
        let lost_to = self
            .writer
            .write(move |conn| {
                let mut claim = conn.prepare_cached(CLAIM).map_err(sqlite_error)?;
                let won = claim
                    .query_row((&tenant_id, &event, token.to_string(), until, now_micros), |_| Ok(()))
                    .optional()
                    .map_err(sqlite_error)?;
                match won {
                    Some(()) => Ok(None),
                    None => read_state(conn, &tenant_id, &event, now_micros).map(Some),
                }
            })
            .await?;
        match lost_to {
            None => Ok(Some(ClaimOutcome::Acquired(Lease { event_id: event_id.to_owned(), token, expires_at: lease_until }))),
            Some(state) => Ok(state.map(|s| s.into_state(event_id)).transpose()?.map(ClaimOutcome::from)),
        }
    }

    async fn finish(&self, tenant: &TenantId, event_id: &str, token: Uuid, delivery: &Delivery) -> Result<bool> {
        let args = (
            delivery.result.clone(),
            to_micros(delivery.completed_at),
            to_micros(delivery.expires_at),
            tenant.as_str().to_owned(),
            event_id.to_owned(),
            token.to_string(),
        );
        let done =
            self.writer.write(move |conn| conn.prepare_cached(FINISH).and_then(|mut s| s.execute(args)).map_err(sqlite_error)).await?;
        Ok(done == 1)
    }

    async fn abandon(&self, tenant: &TenantId, event_id: &str, token: Uuid) -> Result<bool> {
        let args = (tenant.as_str().to_owned(), event_id.to_owned(), token.to_string());
        let done =
            self.writer.write(move |conn| conn.prepare_cached(ABANDON).and_then(|mut s| s.execute(args)).map_err(sqlite_error)).await?;
        Ok(done == 1)
    }

    async fn record(&self, tenant: &TenantId, delivery: &Delivery) -> Result<()> {
        let args = (
            tenant.as_str().to_owned(),
            delivery.event_id.clone(),
            delivery.result.clone(),
            to_micros(delivery.completed_at),
            to_micros(delivery.expires_at),
        );
        self.writer.write(move |conn| conn.prepare_cached(RECORD).and_then(|mut s| s.execute(args)).map_err(sqlite_error)).await?;
        Ok(())
    }

    async fn state(&self, tenant: &TenantId, event_id: &str, now: DateTime<Utc>) -> Result<Option<EventState>> {
        let stored = self.readers.read(|conn| read_state(conn, tenant.as_str(), event_id, to_micros(now))).await?;
        stored.map(|s| s.into_state(event_id)).transpose()
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<u64> {
        let now = to_micros(now);
        let removed =
            self.writer.write(move |conn| conn.prepare_cached(PURGE).and_then(|mut s| s.execute([now])).map_err(sqlite_error)).await?;
        Ok(removed as u64)
    }

    async fn count(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<u64> {
        let n: i64 = self
            .readers
            .read(|conn| {
                conn.prepare_cached(COUNT)
                    .and_then(|mut s| s.query_row((tenant.as_str(), to_micros(now)), |row| row.get(0)))
                    .map_err(sqlite_error)
            })
            .await?;
        u64::try_from(n).map_err(|_| StorageError::corrupt(crate::BACKEND, format!("count {n}")))
    }
}
