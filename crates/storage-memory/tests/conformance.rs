//! The conformance suite on the memory backend (the reference model).

use std::sync::Arc;
use storage_core::ManualClock;
use storage_memory::MemoryBackend;
use storage_testkit::Subject;

async fn setup() -> Subject {
    let clock = ManualClock::at_system_time();
    Subject { engine: Arc::new(MemoryBackend::with_clock(clock.shared())), clock, guard: None }
}

storage_testkit::conformance_tests!(crate::setup);
