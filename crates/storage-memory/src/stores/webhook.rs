//! Webhook idempotency in memory: one map behind a mutex; every operation is one critical section.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use storage_core::stores::webhook::{EventState, WebhookEvents};
use storage_core::{ClaimOutcome, Delivery, Lease, Result, TenantId};
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

#[async_trait]
impl WebhookEvents for Events {
    async fn claim(
        &self,
        tenant: &TenantId,
        event_id: &str,
        token: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimOutcome>> {
        let mut entries = self.lock();
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
        let mut entries = self.lock();
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
        let mut entries = self.lock();
        let key = (tenant.clone(), event_id.to_owned());
        match entries.get(&key) {
            Some(EventState::InFlight { token: held, .. }) if *held == token => Ok(entries.remove(&key).is_some()),
            _ => Ok(false),
        }
    }

    async fn record(&self, tenant: &TenantId, delivery: &Delivery) -> Result<()> {
        self.lock().insert((tenant.clone(), delivery.event_id.clone()), EventState::Done(delivery.clone()));
        Ok(())
    }

    async fn state(&self, tenant: &TenantId, event_id: &str, now: DateTime<Utc>) -> Result<Option<EventState>> {
        let entries = self.lock();
        Ok(entries.get(&(tenant.clone(), event_id.to_owned())).filter(|state| expires_at(state) > now).cloned())
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|_, state| expires_at(state) > now);
        Ok(before.saturating_sub(entries.len()) as u64)
    }

    async fn count(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<u64> {
        let entries = self.lock();
        Ok(entries.iter().filter(|((t, _), state)| t == tenant && expires_at(state) > now).count() as u64)
    }
}
