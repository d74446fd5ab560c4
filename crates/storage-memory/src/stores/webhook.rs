//! Webhook idempotency in memory: one map behind a mutex; every operation is one critical section.

use crate::MemoryBackend;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use storage_core::stores::webhook::{EventState, WebhookEvents};
use storage_core::{ClaimOutcome, Delivery, Lease, Result, SharedClock, TenantId, WebhookOptions};
use uuid::Uuid;

/// The events of one memory backend.
#[derive(Debug, Default)]
pub(crate) struct Events {
    entries: Mutex<HashMap<(TenantId, String), EventState>>,
}

impl Events {
    fn lock(&self) -> MutexGuard<'_, HashMap<(TenantId, String), EventState>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn expires_at(state: &EventState) -> DateTime<Utc> {
    match state {
        EventState::InFlight { expires_at, .. } => *expires_at,
        EventState::Done(delivery) => delivery.expires_at,
    }
}

/// [`storage_core::WebhookStore`] in memory.
#[derive(Debug, Clone)]
pub struct InMemoryWebhookStore {
    events: Arc<Events>,
    clock: SharedClock,
    options: WebhookOptions,
}

impl Default for InMemoryWebhookStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryWebhookStore {
    /// An empty store of its own.
    pub fn new() -> Self {
        MemoryBackend::new().webhook_store()
    }

    pub(crate) fn from_backend(backend: &MemoryBackend) -> Self {
        Self { events: Arc::clone(&backend.webhook_events), clock: Arc::clone(&backend.clock), options: backend.webhook }
    }
}

#[async_trait]
impl WebhookEvents for InMemoryWebhookStore {
    fn clock(&self) -> &SharedClock {
        &self.clock
    }

    fn options(&self) -> &WebhookOptions {
        &self.options
    }

    async fn claim(
        &self,
        tenant: &TenantId,
        event_id: &str,
        token: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimOutcome>> {
        let mut entries = self.events.lock();
        let key = (tenant.clone(), event_id.to_owned());
        match entries.get(&key) {
            Some(state) if expires_at(state) > now => Ok(Some(state.clone().into())),
            _ => {
                entries.insert(key, EventState::InFlight { token, expires_at: lease_until });
                Ok(Some(ClaimOutcome::Acquired(Lease { event_id: event_id.to_owned(), token, expires_at: lease_until })))
            }
        }
    }

    async fn finish(&self, tenant: &TenantId, event_id: &str, token: Uuid, delivery: &Delivery) -> Result<bool> {
        let mut entries = self.events.lock();
        let key = (tenant.clone(), event_id.to_owned());
        match entries.get(&key) {
            Some(EventState::InFlight { token: held, .. }) if *held == token => {
                entries.insert(key, EventState::Done(delivery.clone()));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn abandon(&self, tenant: &TenantId, event_id: &str, token: Uuid) -> Result<bool> {
        let mut entries = self.events.lock();
        let key = (tenant.clone(), event_id.to_owned());
        match entries.get(&key) {
            Some(EventState::InFlight { token: held, .. }) if *held == token => Ok(entries.remove(&key).is_some()),
            _ => Ok(false),
        }
    }

    async fn record(&self, tenant: &TenantId, delivery: &Delivery) -> Result<()> {
        self.events.lock().insert((tenant.clone(), delivery.event_id.clone()), EventState::Done(delivery.clone()));
        Ok(())
    }

    async fn state(&self, tenant: &TenantId, event_id: &str, now: DateTime<Utc>) -> Result<Option<EventState>> {
        let entries = self.events.lock();
        Ok(entries.get(&(tenant.clone(), event_id.to_owned())).filter(|state| expires_at(state) > now).cloned())
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut entries = self.events.lock();
        let before = entries.len();
        entries.retain(|_, state| expires_at(state) > now);
        Ok((before - entries.len()) as u64)
    }

    async fn count(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<u64> {
        let entries = self.events.lock();
        Ok(entries.iter().filter(|((t, _), state)| t == tenant && expires_at(state) > now).count() as u64)
    }
}
