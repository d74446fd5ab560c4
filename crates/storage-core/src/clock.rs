//! Injected time, so expiry is testable without sleeping.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// A source of the current instant. Every timestamp a store writes comes from its clock, never
/// from the database server (`NOW()`), so all backends agree and tests control time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant, UTC, truncated to microseconds.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared by a backend and its stores.
pub type SharedClock = Arc<dyn Clock>;

/// Truncates an instant to the microsecond precision every backend stores.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_micros(Utc::now())
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(truncate_micros(start))) }
    }

    /// A clock stopped at the current system time.
    pub fn at_system_time() -> Self {
        Self::new(Utc::now())
    }

    /// Moves the clock forward (or back, for a negative delta).
    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        let moved =
            now.checked_add_signed(by).unwrap_or(if by < TimeDelta::zero() { DateTime::<Utc>::MIN_UTC } else { DateTime::<Utc>::MAX_UTC });
        *now = truncate_micros(moved);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = truncate_micros(t);
    }

    /// This clock as a [`SharedClock`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An instant as microseconds since the Unix epoch (how SQLite and Redis store instants).
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The instant `micros` microseconds after the Unix epoch; `None` if out of range.
pub fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}
