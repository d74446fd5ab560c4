//! Network faults against each store family (gate 12): a backend reached through a
//! [`FaultProxy`] works through a stream of operations while the proxy switches a fault on and
//! off; a second backend, connected directly, then checks what was stored.
//!
//! The families are the engine's three parts, which every store is built on: documents (the
//! tables of every record store: inserts and compare-and-set updates), webhook events (claim,
//! complete) and job rows (enqueue with a dedupe key, claim, complete).
//!
//! Every operation is retried while it fails with a retryable error, as an application with a
//! retry policy would. An operation whose attempt ended with an unknown outcome
//! ([`StorageError::outcome_unknown`]) is resolved by the store's own idempotency: the retry's
//! answer says whether the earlier attempt was applied (an insert answers `Conflict`, a
//! compare-and-set `VersionMismatch`, a webhook claim `InFlight` or `AlreadyDone`, an enqueue the
//! same job). The same answer *without* an unknown outcome before it would mean a write was
//! applied twice or by somebody else: the run fails.
//!
//! Checked at the end, on the direct connection: every acknowledged write is there with its
//! value (nothing lost), every record once (nothing doubled), and the stream recovered within
//! 5 s of each fault window ending.

use crate::proxy::{Fault, FaultProxy, Flapping};
use crate::tenant;
use chrono::TimeDelta;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};
use storage_core::stores::integration::IntegrationConfig;
use storage_core::{
    ClaimOutcome, Engine, Filter, JobFilter, JobQueue, JobQueueStore, JobState, NewJob, Result, Scope, StorageError, Store, WebhookStore,
    Webhooks,
};

/// What one family saw under one fault.
#[derive(Debug, Default, Clone)]
pub struct NetworkReport {
    /// Operations run (each to a definite answer).
    pub operations: u64,
    /// Attempts that failed with a retryable error.
    pub retried: u64,
    /// Attempts whose outcome was unknown (`Indeterminate`).
    pub unknown: u64,
    /// Operations whose retry found the earlier, unknown attempt had been applied.
    pub resolved_applied: u64,
    /// Acknowledged writes missing or different at the end. Must be 0.
    pub lost: u64,
    /// Writes applied twice, or answered "already done" with no attempt of ours unaccounted for.
    /// Must be 0.
    pub doubled: u64,
    /// The longest time from the end of a fault window to the next operation that succeeded.
    pub recovery: Duration,
    /// The slowest attempt.
    pub slowest: Duration,
}

impl NetworkReport {
    /// Whether `fault` visibly did something to the run: calls failed, or were as slow as it
    /// makes them. A run through a proxy that is not in the path would show neither.
    pub fn felt(&self, fault: Fault) -> bool {
        match fault {
            Fault::None => true,
            Fault::Latency(delay) => self.slowest >= delay,
            Fault::Bandwidth(_) => self.slowest >= Duration::from_millis(10),
            Fault::Blackhole => self.retried > 0 || self.slowest >= Duration::from_millis(500),
            Fault::Reset | Fault::Down => self.retried > 0,
        }
    }
}

/// A tenant of its own for each run, so runs never meet.
fn fresh_tenant() -> storage_core::TenantId {
    tenant(&format!("network-{}", uuid::Uuid::new_v4().simple()))
}

/// The fault windows of a run, if any: a success after a window ended measures recovery.
struct Schedule(Option<Flapping>);

impl Schedule {
    /// Whether the run goes on after `done` operations: until `operations` are done, the fault
    /// has come and gone [`WINDOWS`] times, and an operation succeeded after the last window.
    fn more(&self, done: u64, operations: u64) -> bool {
        done < operations || self.0.as_ref().is_some_and(|f| f.windows() < WINDOWS || f.ended_untaken())
    }

    /// After a success: how long since the last window ended, if this is the first success since.
    fn succeeded(&self, report: &mut NetworkReport) {
        if let Some(ended) = self.0.as_ref().and_then(Flapping::take_ended) {
            report.recovery = report.recovery.max(ended.elapsed());
        }
    }
}

/// Runs `attempt` until it answers anything but a retryable error (for at most 60 s); the answer
/// and whether an attempt before it had an unknown outcome.
async fn settle<T, F, Fut>(report: &mut NetworkReport, schedule: &Schedule, mut attempt: F) -> (Result<T>, bool)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut unknown = false;
    loop {
        let started = Instant::now();
        let answer = attempt().await;
        report.slowest = report.slowest.max(started.elapsed());
        match answer {
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                report.retried += 1;
                if e.outcome_unknown() {
                    report.unknown += 1;
                    unknown = true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            answer => {
                if answer.is_ok() {
                    schedule.succeeded(report);
                }
                return (answer, unknown);
            }
        }
    }
}

/// The fault windows for a run: long enough to catch several operations, short enough that a
/// stalled one (a blackhole) finishes soon after.
/// A blackhole lasts longer than the Redis response timeout the tests set (500 ms), so that
/// calls time out with an unknown outcome rather than only stall.
fn schedule(proxy: &FaultProxy, fault: Fault) -> Schedule {
    let on = if fault == Fault::Blackhole { Duration::from_millis(1_000) } else { Duration::from_millis(300) };
    Schedule(Some(proxy.flap(fault, on, Duration::from_millis(300))))
}

/// Fault windows every run goes through, however fast its operations.
const WINDOWS: u64 = 3;

/// Documents: `operations` inserts and compare-and-set updates of integration records.
pub async fn documents(proxy: &FaultProxy, through: &dyn Engine, direct: &dyn Engine, fault: Fault, operations: u64) -> NetworkReport {
    let (table, t) = (through.table::<IntegrationConfig>(), fresh_tenant());
    let mut report = NetworkReport::default();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let schedule = schedule(proxy, fault);
    let mut done = 0;
    while schedule.more(done, operations) {
        let i = done;
        done += 1;
        report.operations += 1;
        let key = format!("d-{:06}", i - i % 3);
        if i % 3 == 0 {
            let doc = IntegrationConfig::new(t.clone(), key.clone(), "slack").with_setting("v", i);
            match settle(&mut report, &schedule, || table.insert(&doc)).await {
                (Ok(_), _) => {}
                (Err(StorageError::Conflict { .. }), true) => report.resolved_applied += 1,
                (Err(StorageError::Conflict { .. }), false) => report.doubled += 1,
                (Err(e), _) => panic!("insert {key}: {e:?}"),
            }
            expected.insert(key, i);
            continue;
        }
        let (read, _) = settle(&mut report, &schedule, || table.get(&t, &key)).await;
        let mut doc = read.expect("read").unwrap_or_else(|| panic!("{key} was acknowledged and is gone"));
        doc.settings.insert("v".into(), i.into());
        match settle(&mut report, &schedule, || table.update(&doc)).await {
            (Ok(_), _) => {}
            (Err(StorageError::VersionMismatch { .. }), unknown) => {
                // Applied by the attempt whose answer was lost, or by nobody else: there is no
                // other writer.
                let (now, _) = settle(&mut report, &schedule, || table.get(&t, &key)).await;
                let now = now.expect("read").expect("present");
                match (now.settings.get("v") == Some(&i.into()) && now.version == doc.version + 1, unknown) {
                    (true, true) => report.resolved_applied += 1,
                    _ => report.doubled += 1,
                }
            }
            (Err(e), _) => panic!("update {key}: {e:?}"),
        }
        expected.insert(key, i);
    }
    drop(schedule);
    let table = direct.table::<IntegrationConfig>();
    for (key, v) in &expected {
        let doc = table.get(&t, key).await.expect("check").filter(|d| d.settings.get("v") == Some(&(*v).into()));
        report.lost += u64::from(doc.is_none());
    }
    let stored = table.count(Scope::Tenant(&t), Filter::all()).await.expect("count");
    report.doubled += stored.saturating_sub(expected.len() as u64);
    report
}

/// Webhook events: `operations` events, each claimed and completed once.
pub async fn webhook_events(proxy: &FaultProxy, through: &dyn Engine, direct: &dyn Engine, fault: Fault, operations: u64) -> NetworkReport {
    let (webhooks, t) = (<Webhooks>::on(through), fresh_tenant());
    let mut report = NetworkReport::default();
    let schedule = schedule(proxy, fault);
    let lease = TimeDelta::milliseconds(500);
    let mut done = 0;
    while schedule.more(done, operations) {
        let i = done;
        done += 1;
        report.operations += 1;
        let event = format!("e-{i:06}");
        let mut completing_unknown = false;
        loop {
            let (claim, claim_unknown) = settle(&mut report, &schedule, || webhooks.try_claim(&t, &event, lease)).await;
            match claim.expect("claim") {
                ClaimOutcome::Acquired(held) => {
                    let (done, unknown) = settle(&mut report, &schedule, || webhooks.complete(&t, &held, &event)).await;
                    completing_unknown |= unknown;
                    match done {
                        Ok(_) => break,
                        // The lease lapsed while the network stalled, or our completion was
                        // applied and its answer lost: the next claim says which.
                        Err(StorageError::Conflict { .. }) => continue,
                        Err(e) => panic!("complete {event}: {e:?}"),
                    }
                }
                ClaimOutcome::InFlight { expires_at } if claim_unknown => {
                    // Our own claim, applied, its answer lost: it lapses.
                    let wait = (expires_at - chrono::Utc::now()).to_std().unwrap_or_default();
                    tokio::time::sleep(wait + Duration::from_millis(5)).await;
                }
                ClaimOutcome::InFlight { .. } => {
                    report.doubled += 1;
                    break;
                }
                ClaimOutcome::AlreadyDone(delivery) => {
                    if completing_unknown && delivery.result == event {
                        report.resolved_applied += 1;
                    } else {
                        report.doubled += 1;
                    }
                    break;
                }
            }
        }
    }
    drop(schedule);
    let webhooks = <Webhooks>::on(direct);
    let operations = report.operations;
    for i in 0..operations {
        report.lost += u64::from(!webhooks.is_delivered(&t, &format!("e-{i:06}")).await.expect("check"));
    }
    report.doubled += webhooks.size(&t).await.expect("size").saturating_sub(operations);
    report
}

/// Job rows: `operations` jobs enqueued with a dedupe key, then claimed and completed.
pub async fn jobs(proxy: &FaultProxy, through: &dyn Engine, direct: &dyn Engine, fault: Fault, operations: u64) -> NetworkReport {
    let (queue, t) = (<JobQueue>::on(through), fresh_tenant());
    let name = format!("network-{}", uuid::Uuid::new_v4().simple());
    let lease = TimeDelta::milliseconds(500);
    let mut report = NetworkReport::default();
    let mut completed: BTreeMap<String, u32> = BTreeMap::new();
    let schedule = schedule(proxy, fault);
    let mut done = 0;
    while schedule.more(done, operations) {
        let i = done;
        done += 1;
        report.operations += 1;
        let job = NewJob::new(&name, "network", serde_json::json!({ "i": i })).dedupe_key(format!("j-{i}")).max_attempts(50);
        match settle(&mut report, &schedule, || queue.enqueue(&t, job.clone())).await {
            (Ok(enqueued), unknown) if !enqueued.created => {
                report.resolved_applied += u64::from(unknown);
                report.doubled += u64::from(!unknown);
            }
            (Ok(_), _) => {}
            (Err(e), _) => panic!("enqueue {i}: {e:?}"),
        }
        if let (Ok(Some(claimed)), _) = settle(&mut report, &schedule, || queue.claim(&name, "worker", lease)).await {
            complete(&queue, &claimed, &mut report, &schedule, &mut completed).await;
        }
    }
    drop(schedule);
    let operations = report.operations;
    // Drain what the stream left: claims whose answers were lost lapse and are swept back.
    let deadline = Instant::now() + Duration::from_secs(120);
    let idle = Schedule(None);
    while (completed.len() as u64) < operations && Instant::now() < deadline {
        queue.sweep(&name).await.expect("sweep");
        match queue.claim(&name, "worker", lease).await.expect("claim") {
            Some(claimed) => complete(&queue, &claimed, &mut report, &idle, &mut completed).await,
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let queue = <JobQueue>::on(direct);
    let done = queue.count(&JobFilter::queue(&name).state(JobState::Completed)).await.expect("count");
    let all = queue.count(&JobFilter::queue(&name)).await.expect("count");
    report.lost += operations.saturating_sub(done);
    report.doubled += all.saturating_sub(operations) + completed.values().map(|n| u64::from(n.saturating_sub(1))).sum::<u64>();
    report
}

async fn complete(
    queue: &JobQueue,
    claimed: &storage_core::Job,
    report: &mut NetworkReport,
    schedule: &Schedule,
    completed: &mut BTreeMap<String, u32>,
) {
    match settle(report, schedule, || queue.complete(claimed, None)).await {
        (Ok(_), _) => *completed.entry(claimed.id.clone()).or_default() += 1,
        (Err(StorageError::LeaseLost { .. }), unknown) => {
            // Completed by the attempt whose answer was lost, or the lease lapsed during a stall.
            let (now, _) = settle(report, schedule, || queue.get(&claimed.tenant, &claimed.id)).await;
            if now.expect("get").is_some_and(|job| job.state == JobState::Completed) {
                if unknown {
                    report.resolved_applied += 1;
                    *completed.entry(claimed.id.clone()).or_default() += 1;
                } else {
                    report.doubled += 1;
                }
            }
        }
        (Err(e), _) => panic!("complete {}: {e:?}", claimed.id),
    }
}

/// Every family under `fault`, `operations` each; a line per family for the log.
pub async fn every_family(
    proxy: &FaultProxy,
    through: &dyn Engine,
    direct: &dyn Engine,
    fault: Fault,
    operations: u64,
) -> Vec<(&'static str, NetworkReport)> {
    vec![
        ("documents", documents(proxy, through, direct, fault, operations).await),
        ("webhook events", webhook_events(proxy, through, direct, fault, operations).await),
        ("jobs", jobs(proxy, through, direct, fault, operations).await),
    ]
}

/// The faults each family runs under.
pub const FAULTS: [Fault; 5] =
    [Fault::Latency(Duration::from_millis(5)), Fault::Bandwidth(20_000), Fault::Reset, Fault::Blackhole, Fault::Down];

/// Operations per family and fault: 10,000 with `ARAGORA_FAULTS=full`, 200 otherwise.
pub fn operations() -> u64 {
    if std::env::var("ARAGORA_FAULTS").is_ok_and(|v| v == "full") { 10_000 } else { 200 }
}

/// Runs every family under every fault, prints a line each, and asserts nothing was lost or
/// doubled and every stream recovered within 5 s of its fault windows.
pub async fn assert_every_family_survives(backend: &str, proxy: &FaultProxy, through: &dyn Engine, direct: &dyn Engine) {
    let operations = operations();
    for fault in FAULTS {
        for (family, report) in every_family(proxy, through, direct, fault, operations).await {
            println!("{backend} {fault:?} {family}: {report:?}");
            assert_eq!((report.lost, report.doubled), (0, 0), "{backend} {fault:?} {family}: {report:?}");
            assert!(report.felt(fault), "{backend} {fault:?} {family}: the fault had no effect: {report:?}");
            assert!(report.recovery < Duration::from_secs(5), "{backend} {fault:?} {family}: recovered after {:?}", report.recovery);
        }
    }
}
