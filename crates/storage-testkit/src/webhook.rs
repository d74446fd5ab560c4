//! Conformance cases of `WebhookStore`.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{ClaimOutcome, Clock, Lease, StorageError, WebhookStore, Webhooks};

const LEASE: TimeDelta = TimeDelta::seconds(30);

async fn acquire(s: &Subject, t: &str, event: &str) -> Lease {
    match s.store::<Webhooks>().try_claim(&tenant(t), event, LEASE).await.expect("claim") {
        ClaimOutcome::Acquired(lease) => lease,
        other => panic!("expected to acquire {event}, got {other:?}"),
    }
}

pub async fn first_claim_acquires_and_a_duplicate_is_in_flight(s: &Subject) {
    let lease = acquire(s, "acme", "evt_1").await;
    assert_eq!(lease.expires_at, s.clock.now() + LEASE);
    match s.store::<Webhooks>().try_claim(&tenant("acme"), "evt_1", LEASE).await.expect("claim") {
        ClaimOutcome::InFlight { expires_at } => assert_eq!(expires_at, lease.expires_at),
        other => panic!("expected InFlight, got {other:?}"),
    }
    assert!(!s.store::<Webhooks>().is_delivered(&tenant("acme"), "evt_1").await.expect("is_delivered"), "in flight is not delivered");
    assert_eq!(s.store::<Webhooks>().size(&tenant("acme")).await.expect("size"), 1);
}

pub async fn completed_events_report_the_stored_result(s: &Subject) {
    let lease = acquire(s, "acme", "evt_1").await;
    s.clock.advance(TimeDelta::seconds(2));
    let delivery = s.store::<Webhooks>().complete(&tenant("acme"), &lease, "charged 42").await.expect("complete");
    assert_eq!(delivery.completed_at, s.clock.now());
    assert_eq!(delivery.expires_at, s.clock.now() + TimeDelta::hours(24));
    match s.store::<Webhooks>().try_claim(&tenant("acme"), "evt_1", LEASE).await.expect("claim") {
        ClaimOutcome::AlreadyDone(done) => assert_eq!(done, delivery),
        other => panic!("expected AlreadyDone, got {other:?}"),
    }
    assert!(s.store::<Webhooks>().is_delivered(&tenant("acme"), "evt_1").await.expect("is_delivered"));
    assert!(
        matches!(s.store::<Webhooks>().complete(&tenant("acme"), &lease, "again").await, Err(StorageError::Conflict { .. })),
        "a lease completes once"
    );
}

pub async fn release_makes_the_event_claimable_again(s: &Subject) {
    let lease = acquire(s, "acme", "evt_1").await;
    assert!(s.store::<Webhooks>().release(&tenant("acme"), &lease).await.expect("release"));
    assert!(!s.store::<Webhooks>().release(&tenant("acme"), &lease).await.expect("release twice"));
    let second = acquire(s, "acme", "evt_1").await;
    assert_ne!(second.token, lease.token);
    assert!(matches!(s.store::<Webhooks>().complete(&tenant("acme"), &lease, "late").await, Err(StorageError::Conflict { .. })));
    s.store::<Webhooks>().complete(&tenant("acme"), &second, "ok").await.expect("the new holder completes");
}

pub async fn a_lapsed_lease_is_taken_over_and_the_old_holder_fenced(s: &Subject) {
    let old = acquire(s, "acme", "evt_1").await;
    s.clock.advance(LEASE - TimeDelta::seconds(1));
    assert!(matches!(
        s.store::<Webhooks>().try_claim(&tenant("acme"), "evt_1", LEASE).await.expect("claim"),
        ClaimOutcome::InFlight { .. }
    ));
    s.clock.advance(TimeDelta::seconds(1));
    let new = acquire(s, "acme", "evt_1").await;
    assert!(matches!(s.store::<Webhooks>().complete(&tenant("acme"), &old, "stale").await, Err(StorageError::Conflict { .. })));
    assert!(!s.store::<Webhooks>().release(&tenant("acme"), &old).await.expect("stale release"));
    let done = s.store::<Webhooks>().complete(&tenant("acme"), &new, "fresh").await.expect("complete");
    assert_eq!(done.result, "fresh");
}

pub async fn deliveries_expire_after_the_ttl(s: &Subject) {
    let t = tenant("acme");
    let lease = acquire(s, "acme", "evt_1").await;
    s.store::<Webhooks>().complete(&t, &lease, "ok").await.expect("complete");
    acquire(s, "acme", "evt_2").await;
    s.clock.advance(TimeDelta::hours(24) - TimeDelta::seconds(1));
    assert!(s.store::<Webhooks>().is_delivered(&t, "evt_1").await.expect("is_delivered"));
    assert_eq!(s.store::<Webhooks>().size(&t).await.expect("size"), 1, "the lapsed claim no longer counts");
    s.clock.advance(TimeDelta::seconds(1));
    assert!(!s.store::<Webhooks>().is_delivered(&t, "evt_1").await.expect("is_delivered"), "forgotten after the TTL");
    assert_eq!(s.store::<Webhooks>().size(&t).await.expect("size"), 0);
    assert_eq!(s.store::<Webhooks>().cleanup_expired().await.expect("cleanup"), 2);
    assert_eq!(s.store::<Webhooks>().cleanup_expired().await.expect("cleanup"), 0);
    acquire(s, "acme", "evt_1").await;
}

pub async fn mark_delivered_and_is_delivered(s: &Subject) {
    let t = tenant("acme");
    assert!(!s.store::<Webhooks>().is_delivered(&t, "wh_1").await.expect("is_delivered"));
    s.store::<Webhooks>().mark_delivered(&t, "wh_1", "success").await.expect("mark");
    assert!(s.store::<Webhooks>().is_delivered(&t, "wh_1").await.expect("is_delivered"));
    let lease = acquire(s, "acme", "wh_2").await;
    s.store::<Webhooks>().mark_delivered(&t, "wh_2", "forced").await.expect("mark over a claim");
    assert!(matches!(s.store::<Webhooks>().complete(&t, &lease, "x").await, Err(StorageError::Conflict { .. })));
    match s.store::<Webhooks>().try_claim(&t, "wh_2", LEASE).await.expect("claim") {
        ClaimOutcome::AlreadyDone(d) => assert_eq!(d.result, "forced"),
        other => panic!("expected AlreadyDone, got {other:?}"),
    }
}

pub async fn concurrent_claims_have_exactly_one_winner(s: &Subject) {
    for round in 0..5 {
        let event = format!("evt_race_{round}");
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let store = Arc::new(s.store::<Webhooks>());
                let event = event.clone();
                tokio::spawn(async move { store.try_claim(&tenant("acme"), &event, LEASE).await })
            })
            .collect();
        let mut acquired = 0;
        for task in tasks {
            match task.await.expect("task").expect("claim") {
                ClaimOutcome::Acquired(_) => acquired += 1,
                ClaimOutcome::InFlight { .. } => {}
                ClaimOutcome::AlreadyDone(d) => panic!("nothing completed it: {d:?}"),
            }
        }
        assert_eq!(acquired, 1, "round {round}: exactly one of 64 claims acquires");
    }
}

pub async fn tenants_are_isolated(s: &Subject) {
    let a = acquire(s, "tenant-a", "evt_1").await;
    acquire(s, "tenant-b", "evt_1").await;
    s.store::<Webhooks>().complete(&tenant("tenant-a"), &a, "ok").await.expect("complete");
    assert!(!s.store::<Webhooks>().is_delivered(&tenant("tenant-b"), "evt_1").await.expect("is_delivered"));
    assert!(
        matches!(s.store::<Webhooks>().release(&tenant("tenant-b"), &a).await, Ok(false)),
        "a lease of one tenant means nothing in another"
    );
    assert_eq!(s.store::<Webhooks>().size(&tenant("tenant-a")).await.expect("size"), 1);
    assert_eq!(s.store::<Webhooks>().size(&tenant("tenant-c")).await.expect("size"), 0);
}

pub async fn bad_input_is_refused_and_nothing_is_written(s: &Subject) {
    let t = tenant("acme");
    assert_invalid(s.store::<Webhooks>().try_claim(&t, "", LEASE).await, "event_id");
    assert_invalid(s.store::<Webhooks>().try_claim(&t, "a\0b", LEASE).await, "event_id");
    assert_invalid(s.store::<Webhooks>().try_claim(&t, &"e".repeat(256), LEASE).await, "event_id");
    assert_invalid(s.store::<Webhooks>().try_claim(&t, "evt", TimeDelta::zero()).await, "lease");
    assert_invalid(s.store::<Webhooks>().try_claim(&t, "evt", TimeDelta::seconds(-5)).await, "lease");
    assert_invalid(s.store::<Webhooks>().mark_delivered(&t, "", "ok").await, "event_id");
    assert_invalid(s.store::<Webhooks>().mark_delivered(&t, "evt", &"r".repeat(70_000)).await, "result");
    assert_invalid(s.store::<Webhooks>().is_delivered(&t, "").await, "event_id");
    assert_eq!(s.store::<Webhooks>().size(&t).await.expect("size"), 0, "nothing was written");
}

pub async fn absurd_leases_and_results_are_invalid_input(s: &Subject) {
    let store = s.store::<Webhooks>();
    let t = tenant("acme");
    assert_invalid(store.try_claim(&t, "evt", TimeDelta::MAX).await, "lease");
    assert_invalid(store.try_claim(&t, "evt", TimeDelta::nanoseconds(999)).await, "lease");
    assert_invalid(store.mark_delivered(&t, "evt", "nul \u{0} inside").await, "result");
    let lease = acquire(s, "acme", "evt_µ").await;
    assert_eq!(store.complete(&t, &lease, "ünïcode ✓").await.expect("complete").result, "ünïcode ✓");
    assert_eq!(store.size(&t).await.expect("size"), 1);
}
