//! Webhook idempotency on Redis: one hash per event (`s` state, `t` lease token, `r` result,
//! `d` completed, `e` expires, as microseconds of the injected clock) and a per-tenant sorted set
//! of expiries. Every transition is one script over both keys. Expiry is decided by the clock;
//! the server-side TTL (remaining time plus an hour) only collects garbage.

use crate::RedisConnection;
use crate::{BACKEND, Keys, redis_error};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use redis::Script;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use storage_core::clock::{from_micros, to_micros};
use storage_core::stores::webhook::{EventState, WebhookEvents};
use storage_core::{ClaimOutcome, Delivery, Lease, Result, StorageError, TenantId};
use uuid::Uuid;

const STORE: &str = "webhook_events";
/// How long after its logical expiry an entry may linger on the server.
const GC_GRACE: TimeDelta = TimeDelta::hours(1);
/// Expired entries removed per sweep script.
const SWEEP_BATCH: isize = 100;

/// KEYS: event, expiries. ARGV: now, token, lease until, event id, gc ttl ms.
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(crate::scripts::CLAIM_EVENT));

/// KEYS: event, expiries. ARGV: token, result, completed, expires, event id, gc ttl ms.
static FINISH: LazyLock<Script> = LazyLock::new(|| Script::new(crate::scripts::FINISH_EVENT));

/// KEYS: event, expiries. ARGV: token, event id.
static ABANDON: LazyLock<Script> = LazyLock::new(|| Script::new(crate::scripts::ABANDON_EVENT));

/// KEYS: event, expiries. ARGV: result, completed, expires, event id, gc ttl ms.
static RECORD: LazyLock<Script> = LazyLock::new(|| Script::new(crate::scripts::RECORD_EVENT));

/// KEYS: expiries, events... ARGV: now, event ids (in KEYS order). Removes the entries still
/// expired (a re-claimed event has a new expiry and stays).
static SWEEP: LazyLock<Script> = LazyLock::new(|| Script::new(crate::scripts::SWEEP_EVENT));

/// Webhook events on Redis.
pub(crate) struct RedisWebhookEvents {
    conn: RedisConnection,
    registered: Arc<Mutex<HashSet<TenantId>>>,
    keys: Keys,
}

impl std::fmt::Debug for RedisWebhookEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWebhookEvents").field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl RedisWebhookEvents {
    pub(crate) fn new(conn: RedisConnection, keys: Keys) -> Self {
        Self { conn, registered: Arc::default(), keys }
    }

    fn event_key(&self, tenant: &TenantId, event_id: &str) -> String {
        self.keys.record(tenant, STORE, event_id)
    }

    fn expiries_key(&self, tenant: &TenantId) -> String {
        self.keys.expiries(tenant, STORE)
    }

    /// Remembers that `tenant` has events, for [`WebhookEvents::purge`]: once per tenant and
    /// process, so claims pay no extra round trip.
    async fn register(&self, tenant: &TenantId) -> Result<()> {
        if self.registered.lock().unwrap_or_else(PoisonError::into_inner).contains(tenant) {
            return Ok(());
        }
        redis::cmd("SADD")
            .arg(self.keys.tenants(STORE))
            .arg(tenant.as_str())
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        self.registered.lock().unwrap_or_else(PoisonError::into_inner).insert(tenant.clone());
        Ok(())
    }
}

fn gc_ttl_ms(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> i64 {
    expires_at.signed_duration_since(now).checked_add(&GC_GRACE).map_or(i64::MAX, |ttl| ttl.num_milliseconds()).max(1)
}

fn instant(text: &str) -> Result<DateTime<Utc>> {
    text.parse::<i64>().ok().and_then(from_micros).ok_or_else(|| StorageError::corrupt(BACKEND, format!("instant `{text}`")))
}

/// An event's fields `s, t, r, d, e` as stored.
fn event_state(event_id: &str, fields: &[String]) -> Result<EventState> {
    let [state, token, result, completed, expires] = fields else {
        return Err(StorageError::corrupt(BACKEND, format!("webhook event `{event_id}` has fields {fields:?}")));
    };
    let expires_at = instant(expires)?;
    if state == "in_flight" {
        let token = Uuid::parse_str(token).map_err(|e| StorageError::corrupt(BACKEND, e))?;
        return Ok(EventState::InFlight { token, expires_at });
    }
    Ok(EventState::Done(Delivery { event_id: event_id.to_owned(), result: result.clone(), completed_at: instant(completed)?, expires_at }))
}

#[async_trait]
impl WebhookEvents for RedisWebhookEvents {
    async fn claim(
        &self,
        tenant: &TenantId,
        event_id: &str,
        token: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimOutcome>> {
        let mut claim = CLAIM.prepare_invoke();
        claim.key(self.event_key(tenant, event_id)).key(self.expiries_key(tenant));
        claim.arg(to_micros(now)).arg(token.to_string()).arg(to_micros(lease_until)).arg(event_id).arg(gc_ttl_ms(now, lease_until));
        self.register(tenant).await?;
        let reply: Vec<String> = claim.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        match reply.split_first() {
            Some((status, _)) if status == "acquired" => {
                Ok(Some(ClaimOutcome::Acquired(Lease { event_id: event_id.to_owned(), token, expires_at: lease_until })))
            }
            Some((status, fields)) if status == "live" => Ok(Some(event_state(event_id, fields)?.into())),
            _ => Err(StorageError::backend(BACKEND, format!("unexpected claim reply {reply:?}"))),
        }
    }

    async fn finish(&self, tenant: &TenantId, event_id: &str, token: Uuid, delivery: &Delivery) -> Result<bool> {
        let done: i64 = FINISH
            .key(self.event_key(tenant, event_id))
            .key(self.expiries_key(tenant))
            .arg(token.to_string())
            .arg(&delivery.result)
            .arg(to_micros(delivery.completed_at))
            .arg(to_micros(delivery.expires_at))
            .arg(event_id)
            .arg(gc_ttl_ms(delivery.completed_at, delivery.expires_at))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(done == 1)
    }

    async fn abandon(&self, tenant: &TenantId, event_id: &str, token: Uuid) -> Result<bool> {
        let done: i64 = ABANDON
            .key(self.event_key(tenant, event_id))
            .key(self.expiries_key(tenant))
            .arg(token.to_string())
            .arg(event_id)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(done == 1)
    }

    async fn record(&self, tenant: &TenantId, delivery: &Delivery) -> Result<()> {
        let mut record = RECORD.prepare_invoke();
        record.key(self.event_key(tenant, &delivery.event_id)).key(self.expiries_key(tenant));
        record.arg(&delivery.result).arg(to_micros(delivery.completed_at)).arg(to_micros(delivery.expires_at));
        record.arg(&delivery.event_id).arg(gc_ttl_ms(delivery.completed_at, delivery.expires_at));
        self.register(tenant).await?;
        let _: i64 = record.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        Ok(())
    }

    async fn state(&self, tenant: &TenantId, event_id: &str, now: DateTime<Utc>) -> Result<Option<EventState>> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.event_key(tenant, event_id))
            .arg(&["s", "t", "r", "d", "e"][..])
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        let Some(Some(expires)) = fields.get(4) else {
            return Ok(None);
        };
        if instant(expires)? <= now {
            return Ok(None);
        }
        let fields: Vec<String> = fields.into_iter().map(Option::unwrap_or_default).collect();
        event_state(event_id, &fields).map(Some)
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.conn.clone();
        let tenants: Vec<String> =
            redis::cmd("SMEMBERS").arg(self.keys.tenants(STORE)).query_async(&mut conn).await.map_err(redis_error)?;
        let mut removed = 0u64;
        for tenant in tenants {
            let tenant = TenantId::stored(tenant).map_err(|e| StorageError::corrupt(BACKEND, e))?;
            let expiries = self.expiries_key(&tenant);
            loop {
                let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                    .arg(&expiries)
                    .arg("-inf")
                    .arg(to_micros(now))
                    .arg("LIMIT")
                    .arg(0)
                    .arg(SWEEP_BATCH)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_error)?;
                if ids.is_empty() {
                    break;
                }
                let mut sweep = SWEEP.prepare_invoke();
                sweep.key(&expiries).arg(to_micros(now));
                for id in &ids {
                    sweep.key(self.event_key(&tenant, id)).arg(id);
                }
                let n: u64 = sweep.invoke_async(&mut conn).await.map_err(redis_error)?;
                removed = removed.saturating_add(n);
            }
        }
        Ok(removed)
    }

    async fn count(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<u64> {
        let live: u64 = redis::cmd("ZCOUNT")
            .arg(self.expiries_key(tenant))
            .arg(format!("({}", to_micros(now)))
            .arg("+inf")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(live)
    }
}
