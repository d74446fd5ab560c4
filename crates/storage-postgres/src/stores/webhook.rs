//! Webhook idempotency on PostgreSQL: a claim is one upsert that only takes an absent or expired
//! row; one round trip when it wins, one more read (on the primary) to report what it lost to.

use crate::BACKEND;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use storage_core::stores::webhook::{EventState, WebhookEvents};
use storage_core::{ClaimOutcome, Delivery, Lease, Result, StorageError, TenantId};
use storage_router::ConnectionRouter;
use storage_schema::sqlx_error;
use uuid::Uuid;

const CLAIM: &str = "INSERT INTO webhook_events (tenant, event_id, state, token, expires_at) VALUES ($1, $2, 'in_flight', $3, $4) \
     ON CONFLICT (tenant, event_id) DO UPDATE SET state = 'in_flight', token = excluded.token, result = NULL, completed_at = NULL, expires_at = excluded.expires_at \
     WHERE webhook_events.expires_at <= $5 RETURNING token";
const STATE: &str =
    "SELECT state, token, result, completed_at, expires_at FROM webhook_events WHERE tenant = $1 AND event_id = $2 AND expires_at > $3";
const FINISH: &str = "UPDATE webhook_events SET state = 'done', token = NULL, result = $1, completed_at = $2, expires_at = $3 \
     WHERE tenant = $4 AND event_id = $5 AND state = 'in_flight' AND token = $6";
const ABANDON: &str = "DELETE FROM webhook_events WHERE tenant = $1 AND event_id = $2 AND state = 'in_flight' AND token = $3";
const RECORD: &str = "INSERT INTO webhook_events (tenant, event_id, state, result, completed_at, expires_at) VALUES ($1, $2, 'done', $3, $4, $5) \
     ON CONFLICT (tenant, event_id) DO UPDATE SET state = 'done', token = NULL, result = excluded.result, completed_at = excluded.completed_at, expires_at = excluded.expires_at";
const PURGE: &str = "DELETE FROM webhook_events WHERE expires_at <= $1";
const COUNT: &str = "SELECT count(*) FROM webhook_events WHERE tenant = $1 AND expires_at > $2";

/// Webhook events on PostgreSQL.
#[derive(Debug)]
pub(crate) struct PostgresWebhookEvents {
    router: ConnectionRouter,
}

impl PostgresWebhookEvents {
    pub(crate) fn new(router: ConnectionRouter) -> Self {
        Self { router }
    }
}

impl PostgresWebhookEvents {
    /// The event's live state, read through `pool` (the primary when the caller just wrote).
    async fn state_on(&self, pool: &sqlx::PgPool, tenant: &TenantId, event_id: &str, now: DateTime<Utc>) -> Result<Option<EventState>> {
        let row = sqlx::query(STATE).bind(tenant.as_str()).bind(event_id).bind(now).fetch_optional(pool).await.map_err(sqlx_error)?;
        row.map(|row| event_state(event_id, &row)).transpose()
    }
}

fn event_state(event_id: &str, row: &PgRow) -> Result<EventState> {
    let get = |e: sqlx::Error| sqlx_error(e);
    let expires_at: DateTime<Utc> = row.try_get(4).map_err(get)?;
    if row.try_get::<String, _>(0).map_err(get)? == "in_flight" {
        let token: Option<Uuid> = row.try_get(1).map_err(get)?;
        let token = token.ok_or_else(|| StorageError::corrupt(BACKEND, "an in-flight webhook event has no token"))?;
        return Ok(EventState::InFlight { token, expires_at });
    }
    Ok(EventState::Done(Delivery {
        event_id: event_id.to_owned(),
        result: row.try_get::<Option<String>, _>(2).map_err(get)?.unwrap_or_default(),
        completed_at: row.try_get::<Option<DateTime<Utc>>, _>(3).map_err(get)?.unwrap_or(expires_at),
        expires_at,
    }))
}

#[async_trait]
impl WebhookEvents for PostgresWebhookEvents {
    async fn claim(
        &self,
        tenant: &TenantId,
        event_id: &str,
        token: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimOutcome>> {
        let _writing = self.router.writing();
        // The upsert only takes an absent or expired row, atomically; when it loses, the read
        // reports what won.
        let won = sqlx::query(CLAIM)
            .bind(tenant.as_str())
            .bind(event_id)
            .bind(token)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(self.router.write_pool())
            .await
            .map_err(sqlx_error)?;
        if won.is_some() {
            return Ok(Some(ClaimOutcome::Acquired(Lease { event_id: event_id.to_owned(), token, expires_at: lease_until })));
        }
        Ok(self.state_on(self.router.write_pool(), tenant, event_id, now).await?.map(ClaimOutcome::from))
    }

    async fn finish(&self, tenant: &TenantId, event_id: &str, token: Uuid, delivery: &Delivery) -> Result<bool> {
        let _writing = self.router.writing();
        let done = sqlx::query(FINISH)
            .bind(&delivery.result)
            .bind(delivery.completed_at)
            .bind(delivery.expires_at)
            .bind(tenant.as_str())
            .bind(event_id)
            .bind(token)
            .execute(self.router.write_pool())
            .await
            .map_err(sqlx_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn abandon(&self, tenant: &TenantId, event_id: &str, token: Uuid) -> Result<bool> {
        let _writing = self.router.writing();
        let done = sqlx::query(ABANDON)
            .bind(tenant.as_str())
            .bind(event_id)
            .bind(token)
            .execute(self.router.write_pool())
            .await
            .map_err(sqlx_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record(&self, tenant: &TenantId, delivery: &Delivery) -> Result<()> {
        let _writing = self.router.writing();
        sqlx::query(RECORD)
            .bind(tenant.as_str())
            .bind(&delivery.event_id)
            .bind(&delivery.result)
            .bind(delivery.completed_at)
            .bind(delivery.expires_at)
            .execute(self.router.write_pool())
            .await
            .map_err(sqlx_error)?;
        Ok(())
    }

    async fn state(&self, tenant: &TenantId, event_id: &str, now: DateTime<Utc>) -> Result<Option<EventState>> {
        self.state_on(self.router.write_pool(), tenant, event_id, now).await
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<u64> {
        let _writing = self.router.writing();
        let done = sqlx::query(PURGE).bind(now).execute(self.router.write_pool()).await.map_err(sqlx_error)?;
        Ok(done.rows_affected())
    }

    async fn count(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<u64> {
        let n: i64 =
            sqlx::query_scalar(COUNT).bind(tenant.as_str()).bind(now).fetch_one(self.router.write_pool()).await.map_err(sqlx_error)?;
        u64::try_from(n).map_err(|e| StorageError::corrupt(BACKEND, e))
    }
}
