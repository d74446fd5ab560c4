//! The conformance suite on the memory backend (the reference model).

use std::sync::Arc;
use storage_core::ManualClock;
use storage_memory::MemoryBackend;
use storage_testkit::Subject;

async fn setup() -> Subject {
    let clock = ManualClock::at_system_time();
    let backend = MemoryBackend::with_clock(clock.shared());
    Subject {
        integrations: Arc::new(backend.integration_store()),
        webhooks: Arc::new(backend.webhook_store()),
        gmail_tokens: Arc::new(backend.gmail_token_store()),
        clock,
        guard: None,
    }
}

storage_testkit::conformance_tests!(crate::setup);
