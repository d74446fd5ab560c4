//! Inbound webhook idempotency: remember processed event ids for a TTL, with an atomic claim so
//! two concurrent deliveries of one event never both run its side effects.

use crate::clock::SharedClock;
use crate::engine::{Engine, Store};
use crate::limits::add;
use crate::{Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use uuid::Uuid;

/// How often a claim tries again when the entry it lost to vanished before it could be read.
const CLAIM_ATTEMPTS: usize = 16;

/// The largest stored result, in bytes.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// How long deliveries are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookOptions {
    ttl: TimeDelta,
}

/// The longest webhook retention: a century is longer than any provider retries.
pub const MAX_TTL: TimeDelta = TimeDelta::days(36_525);

impl WebhookOptions {
    /// Deliveries are remembered for `ttl` after completion; it must be positive and at most
    /// [`MAX_TTL`].
    pub fn new(ttl: TimeDelta) -> Result<Self> {
        if ttl <= TimeDelta::zero() || ttl > MAX_TTL {
            return Err(StorageError::invalid("webhook ttl", format!("`{ttl}` must be positive and at most {} days", MAX_TTL.num_days())));
        }
        Ok(Self { ttl })
    }

    /// The time to live of a completed delivery.
    pub fn ttl(&self) -> TimeDelta {
        self.ttl
    }
}

impl Default for WebhookOptions {
    /// 24 hours.
    fn default() -> Self {
        Self { ttl: TimeDelta::hours(24) }
    }
}

/// Proof of a claim. Only its holder can [`WebhookStore::complete`] or
/// [`WebhookStore::release`] the event; once it expires, another delivery may take the event over
/// and this lease is fenced off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The claimed event.
    pub event_id: String,
    /// The fencing token of this claim.
    pub token: Uuid,
    /// When the claim lapses if not completed.
    pub expires_at: DateTime<Utc>,
}

/// A completed delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event.
    pub event_id: String,
    /// What the handler recorded (e.g. `success`).
    pub result: String,
    /// When it completed.
    pub completed_at: DateTime<Utc>,
    /// When it will be forgotten.
    pub expires_at: DateTime<Utc>,
}

/// What [`WebhookStore::try_claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller holds the event: process it, then complete or release.
    Acquired(Lease),
    /// Another delivery is processing it until `expires_at`; retry later.
    InFlight {
        /// When the other claim lapses.
        expires_at: DateTime<Utc>,
    },
    /// It was already processed; here is the stored result.
    AlreadyDone(Delivery),
}

/// The live state of one event, as a backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventState {
    /// Claimed and not yet completed.
    InFlight {
        /// The holder's token.
        token: Uuid,
        /// When the claim lapses.
        expires_at: DateTime<Utc>,
    },
    /// Completed.
    Done(Delivery),
}

impl From<EventState> for ClaimOutcome {
    /// What a claim that lost to this state reports.
    fn from(state: EventState) -> Self {
        match state {
            EventState::InFlight { expires_at, .. } => ClaimOutcome::InFlight { expires_at },
            EventState::Done(delivery) => ClaimOutcome::AlreadyDone(delivery),
        }
    }
}

/// Webhook idempotency, per tenant.
#[async_trait]
pub trait WebhookStore: Send + Sync + fmt::Debug {
    /// Atomically claims `event_id` for `lease`: exactly one of any number of concurrent callers
    /// gets [`ClaimOutcome::Acquired`]. A lapsed claim or an expired delivery can be claimed anew.
    async fn try_claim(&self, tenant: &TenantId, event_id: &str, lease: TimeDelta) -> Result<ClaimOutcome>;
    /// Marks the claimed event done with `result`. [`StorageError::Conflict`] if the lease was
    /// lost (taken over after it lapsed, or released).
    async fn complete(&self, tenant: &TenantId, lease: &Lease, result: &str) -> Result<Delivery>;
    /// Gives the claim up after a failure so the next delivery can process the event; whether the
    /// lease was still held.
    async fn release(&self, tenant: &TenantId, lease: &Lease) -> Result<bool>;
    /// Whether the event was processed and is still remembered.
    async fn is_delivered(&self, tenant: &TenantId, event_id: &str) -> Result<bool>;
    /// Records the event as processed, whatever its state (the seed's `mark_delivered`).
    async fn mark_delivered(&self, tenant: &TenantId, event_id: &str, result: &str) -> Result<Delivery>;
    /// Forgets expired deliveries and lapsed claims of every tenant; how many were removed.
    async fn cleanup_expired(&self) -> Result<u64>;
    /// Live (unexpired) entries of the tenant, claimed or done.
    async fn size(&self, tenant: &TenantId) -> Result<u64>;
}

/// A backend's native storage of webhook events. Implementations trust their arguments and take
/// time from the caller; [`Webhooks`] validates input and reads the clock, for every backend.
#[async_trait]
pub trait WebhookEvents: Send + Sync + fmt::Debug {
    /// Claims the event for `token` if it is absent or its entry expired at `now` (one atomic
    /// step); otherwise reports the live state it lost to, or `None` if that state vanished
    /// before it could be read (released or expired in between), and the caller tries again.
    async fn claim(
        &self,
        tenant: &TenantId,
        event_id: &str,
        token: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimOutcome>>;
    /// Turns the claim held by `token` into a delivery; `false` if `token` no longer holds it.
    async fn finish(&self, tenant: &TenantId, event_id: &str, token: Uuid, delivery: &Delivery) -> Result<bool>;
    /// Removes the claim held by `token`; `false` if it no longer holds it.
    async fn abandon(&self, tenant: &TenantId, event_id: &str, token: Uuid) -> Result<bool>;
    /// Stores `delivery` whatever the event's state.
    async fn record(&self, tenant: &TenantId, delivery: &Delivery) -> Result<()>;
    /// The event's state if live at `now`.
    async fn state(&self, tenant: &TenantId, event_id: &str, now: DateTime<Utc>) -> Result<Option<EventState>>;
    /// Removes every entry expired at `now`, in every tenant.
    async fn purge(&self, now: DateTime<Utc>) -> Result<u64>;
    /// Counts the tenant's entries live at `now`.
    async fn count(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<u64>;
}

/// Checks a stored result: bounded, and no NUL (which PostgreSQL text cannot hold).
fn check_result(result: &str) -> Result<()> {
    if result.len() > MAX_RESULT_BYTES {
        return Err(StorageError::invalid("result", format!("is {} bytes; the limit is {MAX_RESULT_BYTES}", result.len())));
    }
    if result.contains('\0') {
        return Err(StorageError::invalid("result", "contains a NUL character"));
    }
    Ok(())
}

/// [`WebhookStore`] on any backend: validation and time here, the claim itself native.
pub struct Webhooks<B: ?Sized = dyn Engine> {
    events: Arc<dyn WebhookEvents>,
    clock: SharedClock,
    options: WebhookOptions,
    _backend: PhantomData<fn(&B)>,
}

impl<B: ?Sized + 'static> Store for Webhooks<B> {
    fn on(engine: &dyn Engine) -> Self {
        Self { events: engine.webhook_events(), clock: engine.clock(), options: engine.webhook_options(), _backend: PhantomData }
    }
}

impl<B: ?Sized> Clone for Webhooks<B> {
    fn clone(&self) -> Self {
        Self { events: Arc::clone(&self.events), clock: Arc::clone(&self.clock), options: self.options, _backend: PhantomData }
    }
}

impl<B: ?Sized> fmt::Debug for Webhooks<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks").field("events", &self.events).field("options", &self.options).finish_non_exhaustive()
    }
}

crate::seed_constructors!(Webhooks);

impl<B: ?Sized> Webhooks<B> {
    fn now(&self) -> DateTime<Utc> {
        crate::clock::truncate_micros(self.clock.now())
    }

    fn delivery(&self, event_id: &str, result: &str) -> Result<Delivery> {
        let now = self.now();
        Ok(Delivery {
            event_id: event_id.to_owned(),
            result: result.to_owned(),
            completed_at: now,
            expires_at: add("webhook ttl", now, self.options.ttl())?,
        })
    }
}

#[async_trait]
impl<B: ?Sized> WebhookStore for Webhooks<B> {
    async fn try_claim(&self, tenant: &TenantId, event_id: &str, lease: TimeDelta) -> Result<ClaimOutcome> {
        validate_id("event_id", event_id)?;
        let now = self.now();
        let lease_until = add("lease", now, lease)?;
        if lease_until <= now {
            return Err(StorageError::invalid("lease", format!("`{lease}` must be at least one microsecond")));
        }
        let token = Uuid::new_v4();
        for _ in 0..CLAIM_ATTEMPTS {
            if let Some(outcome) = self.events.claim(tenant, event_id, token, now, lease_until).await? {
                return Ok(outcome);
            }
        }
        Err(StorageError::conflict("webhook event", event_id, format!("still contended after {CLAIM_ATTEMPTS} attempts")))
    }

    async fn complete(&self, tenant: &TenantId, lease: &Lease, result: &str) -> Result<Delivery> {
        validate_id("event_id", &lease.event_id)?;
        check_result(result)?;
        let delivery = self.delivery(&lease.event_id, result)?;
        if self.events.finish(tenant, &lease.event_id, lease.token, &delivery).await? {
            Ok(delivery)
        } else {
            Err(StorageError::conflict("webhook event", &lease.event_id, "the lease was lost (released, or taken over after it lapsed)"))
        }
    }

    async fn release(&self, tenant: &TenantId, lease: &Lease) -> Result<bool> {
        validate_id("event_id", &lease.event_id)?;
        self.events.abandon(tenant, &lease.event_id, lease.token).await
    }

    async fn is_delivered(&self, tenant: &TenantId, event_id: &str) -> Result<bool> {
        validate_id("event_id", event_id)?;
        let state = self.events.state(tenant, event_id, self.now()).await?;
        Ok(matches!(state, Some(EventState::Done(_))))
    }

    async fn mark_delivered(&self, tenant: &TenantId, event_id: &str, result: &str) -> Result<Delivery> {
        validate_id("event_id", event_id)?;
        check_result(result)?;
        let delivery = self.delivery(event_id, result)?;
        self.events.record(tenant, &delivery).await?;
        Ok(delivery)
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        self.events.purge(self.now()).await
    }

    async fn size(&self, tenant: &TenantId) -> Result<u64> {
        self.events.count(tenant, self.now()).await
    }
}
