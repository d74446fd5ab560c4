//! Conformance cases of `JobQueueStore`: leases and fencing, retries and death, fairness between
//! tenants, dedupe, lists, retention, and the concurrency and crash properties of issue 13.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use storage_core::{Clock, Job, JobFilter, JobQueue, JobQueueStore, JobState, NewJob, PageRequest, StorageError};

const Q: &str = "default";
const LEASE: TimeDelta = TimeDelta::seconds(30);

fn queue(s: &Subject) -> JobQueue {
    s.store::<JobQueue>()
}

async fn enqueue(s: &Subject, t: &str, job: NewJob) -> Job {
    let enqueued = queue(s).enqueue(&tenant(t), job).await.expect("enqueue");
    assert!(enqueued.created);
    enqueued.job
}

fn job(n: u32) -> NewJob {
    NewJob::new(Q, "send_email", json!({ "n": n, "big": 9_007_199_254_740_993_u64 }))
}

fn lost<T: std::fmt::Debug>(result: storage_core::Result<T>) -> bool {
    matches!(result, Err(StorageError::LeaseLost { .. }))
}

pub async fn jobs_are_claimed_by_priority_then_in_order(s: &Subject) {
    let low = enqueue(s, "acme", job(1)).await;
    let high = enqueue(s, "acme", job(2).priority(5)).await;
    let next = enqueue(s, "acme", job(3)).await;
    assert_eq!(low.state, JobState::Available);
    assert_eq!((low.attempts, low.max_attempts), (0, 5));
    assert_eq!(low.payload, json!({ "n": 1, "big": 9_007_199_254_740_993_u64 }), "payloads keep big integers");
    let first = queue(s).claim(Q, "w1", LEASE).await.expect("claim").expect("a job");
    assert_eq!(first.id, high.id, "the highest priority first");
    assert_eq!(first.state, JobState::Running);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.worker.as_deref(), Some("w1"));
    assert_eq!(first.lease_expires_at, Some(s.clock.now() + LEASE));
    assert_eq!(first.started_at, Some(first.updated_at));
    assert!(first.lease_token.is_some());
    let rest = queue(s).claim_batch(Q, "w2", LEASE, 10).await.expect("batch");
    assert_eq!(rest.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), vec![low.id.clone(), next.id.clone()], "then in enqueue order");
    assert_eq!(rest[0].lease_token, rest[1].lease_token, "one claim, one token");
    assert!(queue(s).claim(Q, "w3", LEASE).await.expect("claim").is_none(), "nothing left");
    let stored = queue(s).get(&tenant("acme"), &first.id).await.expect("get").expect("stored");
    assert_eq!(stored, first, "a claimed job reads back as it was handed out");
    let done = queue(s).complete(&first, Some("sent")).await.expect("complete");
    assert_eq!((done.state, done.result.as_deref(), done.lease_token), (JobState::Completed, Some("sent"), None));
    assert_eq!(queue(s).get(&tenant("acme"), &first.id).await.expect("get"), Some(done));
    assert!(queue(s).get(&tenant("other"), &first.id).await.expect("get").is_none(), "another tenant does not see it");
}

pub async fn scheduled_jobs_wait_for_their_time(s: &Subject) {
    let later = enqueue(s, "acme", job(1).run_at(s.clock.now() + TimeDelta::minutes(5))).await;
    assert!(queue(s).claim(Q, "w", LEASE).await.expect("claim").is_none());
    s.clock.advance(TimeDelta::minutes(5));
    assert_eq!(queue(s).claim(Q, "w", LEASE).await.expect("claim").map(|j| j.id), Some(later.id));
}

pub async fn a_stale_worker_changes_nothing(s: &Subject) {
    const N: usize = 1_000;
    let store = queue(s);
    for n in 0..N as u32 {
        enqueue(s, "acme", job(n)).await;
    }
    let mut stale = Vec::new();
    for _ in 0..10 {
        stale.extend(store.claim_batch(Q, "paused", LEASE, 1_000).await.expect("claim"));
    }
    assert_eq!(stale.len(), N);
    s.clock.advance(LEASE);
    let mut swept = 0;
    loop {
        let batch = store.sweep(Q).await.expect("sweep");
        if batch.is_empty() {
            break;
        }
        swept += batch.len();
    }
    assert_eq!(swept, N);
    s.clock.advance(TimeDelta::seconds(2));
    let mut fresh = Vec::new();
    for _ in 0..10 {
        fresh.extend(store.claim_batch(Q, "fresh", LEASE, 1_000).await.expect("claim"));
    }
    assert_eq!(fresh.len(), N, "every swept job is claimable after its backoff");
    let outcomes = store.complete_batch(&stale).await.expect("stale completions");
    let refused = outcomes.iter().filter(|o| matches!(o, Err(StorageError::LeaseLost { .. }))).count();
    assert_eq!(refused, N, "every stale completion is refused");
    assert!(lost(store.complete(&stale[0], None).await));
    assert!(lost(store.fail(&stale[1], "boom").await));
    assert!(lost(store.heartbeat(&stale[2], LEASE).await));
    assert!(lost(store.release(&stale[3], None).await));
    let running = store.count(&JobFilter::queue(Q).state(JobState::Running)).await.expect("count");
    assert_eq!(running, N as u64, "the fresh claims are untouched");
    let every = JobFilter::queue(Q);
    let all = collect_all(500, |page| store.list(&every, page)).await;
    assert!(all.iter().all(|j| j.worker.as_deref() == Some("fresh") && j.attempts == 2), "each job is the fresh worker's, on attempt 2");
    let outcomes = store.complete_batch(&fresh).await.expect("fresh completions");
    assert!(outcomes.iter().all(|o| o.is_ok()));
    assert_eq!(store.count(&JobFilter::queue(Q).state(JobState::Completed)).await.expect("count"), N as u64);
}

pub async fn a_failing_job_retries_with_growing_delays_then_dies(s: &Subject) {
    let store = queue(s);
    let t = tenant("acme");
    let id = enqueue(s, "acme", job(1)).await.id;
    let mut delays = Vec::new();
    for attempt in 1..=5u16 {
        let claimed = store.claim(Q, "w", LEASE).await.expect("claim").expect("due");
        assert_eq!(claimed.attempts, attempt);
        let failed = store.fail(&claimed, &format!("boom {attempt}")).await.expect("fail");
        assert_eq!(failed.last_error.as_deref(), Some(format!("boom {attempt}").as_str()));
        if attempt < 5 {
            assert_eq!(failed.state, JobState::Available);
            let delay = failed.run_at - s.clock.now();
            assert!(store.claim(Q, "w", LEASE).await.expect("claim").is_none(), "not before its backoff");
            delays.push(delay);
            s.clock.advance(delay);
        } else {
            assert_eq!(failed.state, JobState::Dead);
            assert_eq!(failed.finished_at, Some(s.clock.now()));
        }
    }
    assert_eq!(delays.len(), 4);
    assert!(delays.windows(2).all(|w| w[0] <= w[1] && w[0] > TimeDelta::zero()), "delays grow: {delays:?}");
    assert!(delays[3] >= delays[0] * 4, "exponentially: {delays:?}");
    assert!(store.claim(Q, "w", LEASE).await.expect("claim").is_none(), "a dead job is not claimed");
    let dead = store.list(&JobFilter::queue(Q).state(JobState::Dead), PageRequest::first(10)).await.expect("list");
    assert_eq!(dead.items.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), vec![id.clone()]);
    assert_eq!(dead.items[0].attempts, 5);
    let again = store.retry(&t, &id).await.expect("retry");
    assert_eq!((again.state, again.attempts, again.finished_at), (JobState::Available, 0, None));
    assert!(matches!(store.retry(&t, &id).await, Err(StorageError::Conflict { .. })), "only dead or cancelled jobs are retried");
    assert_eq!(store.claim(Q, "w", LEASE).await.expect("claim").map(|j| (j.id, j.attempts)), Some((id, 1)));
}

pub async fn a_lapsed_lease_is_swept_and_counts_as_an_attempt(s: &Subject) {
    let store = queue(s);
    enqueue(s, "acme", job(1).max_attempts(2)).await;
    let first = store.claim(Q, "w1", LEASE).await.expect("claim").expect("job");
    s.clock.advance(LEASE - TimeDelta::seconds(1));
    let beat = store.heartbeat(&first, LEASE).await.expect("heartbeat");
    assert_eq!(beat.lease_expires_at, Some(s.clock.now() + LEASE));
    s.clock.advance(TimeDelta::seconds(2));
    assert!(store.sweep(Q).await.expect("sweep").is_empty(), "a heartbeat keeps the lease");
    s.clock.advance(LEASE);
    let swept = store.sweep(Q).await.expect("sweep");
    assert_eq!(swept.len(), 1);
    assert_eq!((swept[0].state, swept[0].attempts), (JobState::Available, 1));
    assert!(swept[0].last_error.as_deref().is_some_and(|e| e.contains("w1")));
    assert!(lost(store.complete(&beat, None).await), "the swept worker is fenced off");
    s.clock.advance(TimeDelta::hours(2));
    let second = store.claim(Q, "w2", LEASE).await.expect("claim").expect("job");
    s.clock.advance(LEASE);
    let swept = store.sweep(Q).await.expect("sweep");
    assert_eq!(swept[0].state, JobState::Dead, "the last attempt lapsed too");
    assert!(lost(store.complete(&second, None).await));
}

pub async fn release_gives_a_job_back_without_counting_the_attempt(s: &Subject) {
    let store = queue(s);
    enqueue(s, "acme", job(1)).await;
    let claimed = store.claim(Q, "w", LEASE).await.expect("claim").expect("job");
    let later = s.clock.now() + TimeDelta::seconds(10);
    let released = store.release(&claimed, Some(later)).await.expect("release");
    assert_eq!((released.state, released.attempts, released.run_at, released.lease_token), (JobState::Available, 0, later, None));
    assert!(store.claim(Q, "w", LEASE).await.expect("claim").is_none());
    s.clock.advance(TimeDelta::seconds(10));
    assert_eq!(store.claim(Q, "w", LEASE).await.expect("claim").map(|j| j.attempts), Some(1));
}

pub async fn cancel_stops_waiting_and_running_jobs(s: &Subject) {
    let store = queue(s);
    let t = tenant("acme");
    let waiting = enqueue(s, "acme", job(1)).await;
    let running = enqueue(s, "acme", job(2)).await;
    let cancelled = store.cancel(&t, &waiting.id).await.expect("cancel");
    assert_eq!((cancelled.state, cancelled.finished_at), (JobState::Cancelled, Some(s.clock.now())));
    let claimed = store.claim(Q, "w", LEASE).await.expect("claim").expect("job");
    assert_eq!(claimed.id, running.id, "a cancelled job is not claimed");
    store.cancel(&t, &running.id).await.expect("cancel running");
    assert!(lost(store.complete(&claimed, None).await), "its worker loses the lease");
    for (state, n) in [(JobState::Cancelled, 2), (JobState::Running, 0), (JobState::Available, 0)] {
        assert_eq!(store.count(&JobFilter::queue(Q).state(state)).await.expect("count"), n, "{state:?}");
        let listed = store.list(&JobFilter::queue(Q).state(state).tenant(t.clone()), PageRequest::first(10)).await.expect("list");
        assert_eq!(listed.items.len() as u64, n, "{state:?}");
    }
    s.clock.advance(LEASE * 2);
    assert!(store.sweep(Q).await.expect("sweep").is_empty(), "a cancelled job has no lease to lapse");
    assert!(matches!(store.cancel(&t, &running.id).await, Err(StorageError::Conflict { .. })), "finished jobs are not cancelled");
    assert!(matches!(store.cancel(&tenant("other"), &waiting.id).await, Err(StorageError::NotFound { .. })));
    assert!(matches!(store.cancel(&t, &uuid::Uuid::new_v4().to_string()).await, Err(StorageError::NotFound { .. })));
    let again = store.retry(&t, &waiting.id).await.expect("a cancelled job can run again");
    assert_eq!(again.state, JobState::Available);
}

pub async fn a_dedupe_key_holds_while_its_job_is_unfinished(s: &Subject) {
    let store = queue(s);
    let t = tenant("acme");
    let first = store.enqueue(&t, job(1).dedupe_key("invoice-7")).await.expect("enqueue");
    let second = store.enqueue(&t, job(2).dedupe_key("invoice-7")).await.expect("enqueue");
    assert!(first.created && !second.created);
    assert_eq!(second.job.id, first.job.id, "the waiting job is returned");
    assert!(store.enqueue(&tenant("other"), job(3).dedupe_key("invoice-7")).await.expect("enqueue").created, "keys are per tenant");
    assert!(
        store.enqueue(&t, NewJob::new("other", "k", json!(1)).dedupe_key("invoice-7")).await.expect("enqueue").created,
        "and per queue"
    );
    let claimed = store.claim_batch(Q, "w", LEASE, 10).await.expect("claim");
    let mine = claimed.iter().find(|j| j.id == first.job.id).expect("claimed");
    assert!(!store.enqueue(&t, job(4).dedupe_key("invoice-7")).await.expect("enqueue").created, "a running job holds its key");
    store.complete(mine, None).await.expect("complete");
    let third = store.enqueue(&t, job(5).dedupe_key("invoice-7")).await.expect("enqueue");
    assert!(third.created, "a finished job frees its key");
    // A cancelled job cannot come back while another holds its key.
    store.cancel(&t, &third.job.id).await.expect("cancel");
    let fourth = store.enqueue(&t, job(6).dedupe_key("invoice-7")).await.expect("enqueue");
    assert!(fourth.created);
    assert!(matches!(store.retry(&t, &third.job.id).await, Err(StorageError::Conflict { .. })));
    store.cancel(&t, &fourth.job.id).await.expect("cancel");
    store.retry(&t, &third.job.id).await.expect("free again");
    assert!(!store.enqueue(&t, job(7).dedupe_key("invoice-7")).await.expect("enqueue").created, "the retried job holds it");
}

pub async fn one_tenants_backlog_never_starves_another(s: &Subject) {
    let store = queue(s);
    for n in 0..200 {
        enqueue(s, "big", job(n)).await;
    }
    s.clock.advance(TimeDelta::seconds(1));
    for n in 0..3 {
        enqueue(s, "small", job(n)).await;
    }
    let mut order = Vec::new();
    for _ in 0..8 {
        let claimed = store.claim(Q, "w", LEASE).await.expect("claim").expect("job");
        order.push(claimed.tenant.as_str().to_owned());
        store.complete(&claimed, None).await.expect("complete");
    }
    let small = order.iter().filter(|t| *t == "small").count();
    assert_eq!(small, 3, "the small tenant's jobs run within the first claims, interleaved: {order:?}");
    assert_ne!(order.get(..2), Some(&["small".to_owned(), "small".to_owned()][..]), "and not ahead of the whole backlog either");
    // Priority still comes first.
    enqueue(s, "big", job(999).priority(9)).await;
    enqueue(s, "small", job(998)).await;
    assert_eq!(store.claim(Q, "w", LEASE).await.expect("claim").map(|j| j.priority), Some(9));
}

pub async fn concurrent_claimers_take_a_job_once(s: &Subject) {
    let store = Arc::new(queue(s));
    for round in 0..1_000 {
        let id = enqueue(s, "acme", job(round)).await.id;
        let tasks: Vec<_> = (0..32)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.claim(Q, &format!("w{w}"), LEASE).await })
            })
            .collect();
        let mut won = Vec::new();
        for task in tasks {
            if let Some(job) = task.await.expect("task").expect("claim") {
                won.push(job);
            }
        }
        assert_eq!(won.len(), 1, "round {round}: one of 32 claimers gets the job");
        assert_eq!(won[0].id, id);
        store.complete(&won[0], None).await.expect("complete");
    }
}

/// Eight workers drain 10,000 jobs while every 97th job is abandoned mid-run (its worker drops
/// it; the lease lapses and a sweeper hands it out again): every job completes exactly once.
pub async fn workers_abandoned_mid_job_lose_nothing_and_run_nothing_twice(s: &Subject) {
    const JOBS: u32 = 10_000;
    let store = Arc::new(queue(s));
    let producers: Vec<_> = (0..8)
        .map(|p| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in (p..JOBS).step_by(8) {
                    store.enqueue(&tenant("acme"), NewJob::new(Q, "effect", json!(n)).max_attempts(100)).await.expect("enqueue");
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.expect("producer");
    }
    let effects: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let claims: Arc<Mutex<Vec<Job>>> = Arc::default();
    let abandoned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (store, effects, abandoned, claims) =
                (Arc::clone(&store), Arc::clone(&effects), Arc::clone(&abandoned), Arc::clone(&claims));
            tokio::spawn(async move {
                let mut idle = 0;
                let mut seen = 0u32;
                while idle < 50 {
                    let batch = store.claim_batch(Q, &format!("w{w}"), LEASE, 8).await.expect("claim");
                    if batch.is_empty() {
                        idle += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        continue;
                    }
                    idle = 0;
                    claims.lock().unwrap().extend(batch.iter().cloned());
                    for job in batch {
                        seen += 1;
                        if seen.is_multiple_of(97) {
                            abandoned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            continue;
                        }
                        match store.complete(&job, None).await {
                            Ok(_) => *effects.lock().unwrap().entry(job.id.clone()).or_default() += 1,
                            Err(StorageError::LeaseLost { .. }) => {}
                            Err(e) => panic!("complete: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let sweeper = {
        let (store, clock) = (Arc::clone(&store), s.clock.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                clock.advance(TimeDelta::seconds(40));
                store.sweep(Q).await.expect("sweep");
            }
        })
    };
    for worker in workers {
        worker.await.expect("worker");
    }
    sweeper.abort();
    // Whatever the last abandonments left: sweep and finish it here.
    loop {
        s.clock.advance(TimeDelta::hours(2));
        store.sweep(Q).await.expect("sweep");
        let batch = store.claim_batch(Q, "last", LEASE, 1_000).await.expect("claim");
        if batch.is_empty() && store.count(&JobFilter::queue(Q).state(JobState::Running)).await.expect("count") == 0 {
            break;
        }
        for job in batch {
            store.complete(&job, None).await.expect("complete");
            *effects.lock().unwrap().entry(job.id.clone()).or_default() += 1;
        }
    }
    let effects = effects.lock().unwrap().clone();
    // No job was handed out while an earlier claim of it was still live.
    let mut by_job: HashMap<String, Vec<Job>> = HashMap::new();
    for claim in claims.lock().unwrap().iter() {
        by_job.entry(claim.id.clone()).or_default().push(claim.clone());
    }
    for (id, mut claims) in by_job {
        claims.sort_by_key(|c| c.attempts);
        for pair in claims.windows(2) {
            assert!(pair[1].started_at >= pair[0].lease_expires_at, "job {id} was claimed again while its lease was live: {pair:?}");
            assert_ne!(pair[1].lease_token, pair[0].lease_token);
        }
    }
    assert!(abandoned.load(std::sync::atomic::Ordering::Relaxed) > 0, "some jobs were abandoned");
    assert_eq!(effects.len(), JOBS as usize, "no job lost");
    assert!(effects.values().all(|n| *n == 1), "no job completed twice");
    assert_eq!(store.count(&JobFilter::queue(Q).state(JobState::Completed)).await.expect("count"), u64::from(JOBS));
}

pub async fn lists_counts_and_retention(s: &Subject) {
    let store = queue(s);
    let (a, b) = (tenant("a"), tenant("b"));
    let mut ids = Vec::new();
    for n in 0..7 {
        let t = if n % 2 == 0 { "a" } else { "b" };
        ids.push(enqueue(s, t, job(n)).await.id);
    }
    let claimed = store.claim_batch(Q, "w", LEASE, 3).await.expect("claim");
    store.complete(&claimed[0], None).await.expect("complete");
    let every = JobFilter::queue(Q);
    let all = collect_all(2, |page| store.list(&every, page)).await;
    assert_eq!(all.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), ids, "by id, which is enqueue order");
    let only_a = JobFilter::queue(Q).tenant(a.clone());
    let of_a = collect_all(2, |page| store.list(&only_a, page)).await;
    assert_eq!(of_a.len(), 4);
    assert!(of_a.iter().all(|j| j.tenant == a));
    let count = |filter: JobFilter| {
        let store = store.clone();
        async move { store.count(&filter).await.expect("count") }
    };
    assert_eq!(count(JobFilter::queue(Q)).await, 7);
    assert_eq!(count(JobFilter::queue(Q).state(JobState::Available)).await, 4);
    assert_eq!(count(JobFilter::queue(Q).state(JobState::Running)).await, 2);
    assert_eq!(count(JobFilter::queue(Q).state(JobState::Completed)).await, 1);
    assert_eq!(count(JobFilter::queue(Q).state(JobState::Available).tenant(b.clone())).await, 2);
    assert_eq!(count(JobFilter::queue("elsewhere")).await, 0);
    let cancelled = store.cancel(&b, &ids[5]).await.expect("cancel");
    s.clock.advance(TimeDelta::days(8));
    store.complete(&claimed[1], None).await.expect("complete");
    assert_eq!(store.prune(Q, &[JobState::Completed], TimeDelta::days(7)).await.expect("prune"), 1, "only the old completion");
    assert!(store.get(&claimed[0].tenant, &claimed[0].id).await.expect("get").is_none());
    assert!(store.get(&claimed[1].tenant, &claimed[1].id).await.expect("get").is_some());
    assert_eq!(store.prune(Q, &[JobState::Dead], TimeDelta::days(7)).await.expect("prune"), 0, "only the states asked for");
    assert_eq!(store.prune(Q, &[JobState::Cancelled, JobState::Dead], TimeDelta::days(7)).await.expect("prune"), 1);
    assert!(store.get(&b, &cancelled.id).await.expect("get").is_none());
    assert_eq!(count(JobFilter::queue(Q)).await, 5);
    assert_invalid(store.prune(Q, &[JobState::Running], TimeDelta::days(1)).await, "states");
}

pub async fn bad_input_is_refused_and_nothing_is_written(s: &Subject) {
    let store = queue(s);
    let t = tenant("acme");
    assert_invalid(store.enqueue(&t, NewJob::new("", "k", json!(1))).await, "queue");
    assert_invalid(store.enqueue(&t, NewJob::new("a:b", "k", json!(1))).await, "queue");
    assert_invalid(store.enqueue(&t, NewJob::new("q".repeat(65), "k", json!(1))).await, "queue");
    assert_invalid(store.enqueue(&t, NewJob::new(Q, "", json!(1))).await, "kind");
    assert_invalid(store.enqueue(&t, NewJob::new(Q, "k\u{7}", json!(1))).await, "kind");
    assert_invalid(store.enqueue(&t, job(1).max_attempts(0)).await, "max_attempts");
    assert_invalid(store.enqueue(&t, job(1).max_attempts(1_001)).await, "max_attempts");
    assert_invalid(store.enqueue(&t, job(1).dedupe_key("")).await, "dedupe_key");
    assert_invalid(store.enqueue(&t, NewJob::new(Q, "k", json!("x".repeat(1024 * 1024)))).await, "payload");
    assert_eq!(store.count(&JobFilter::queue(Q)).await.expect("count"), 0, "nothing was written");
    let odd = enqueue(s, "acme", NewJob::new(Q, "k", json!({ "nul": "a\u{0}b", "deep": [[[1.5e300]]] }))).await;
    assert_eq!(store.get(&t, &odd.id).await.expect("get").map(|j| j.payload), Some(odd.payload.clone()), "any JSON payload round-trips");
    assert_invalid(store.claim(Q, "", LEASE).await, "worker");
    assert_invalid(store.claim(Q, "w", TimeDelta::zero()).await, "lease");
    assert_invalid(store.claim(Q, "w", TimeDelta::days(2)).await, "lease");
    assert_invalid(store.claim_batch(Q, "w", LEASE, 0).await, "limit");
    assert_invalid(store.claim_batch(Q, "w", LEASE, 1_001).await, "limit");
    assert_invalid(store.get(&t, "not-a-job").await, "job id");
    let upper = uuid::Uuid::now_v7().to_string().to_uppercase();
    assert_invalid(store.get(&t, &upper).await, "job id");
    assert_invalid(store.list(&JobFilter::queue(Q), PageRequest::first(5).after(storage_core::Cursor::from_string("x"))).await, "cursor");
    let waiting = store.list(&JobFilter::queue(Q), PageRequest::first(5)).await.expect("list").items.remove(0);
    assert_invalid(store.complete(&waiting, None).await, "job");
    let claimed = store.claim(Q, "w", LEASE).await.expect("claim").expect("job");
    assert_invalid(store.complete(&claimed, Some("a\0b")).await, "result");
    assert_invalid(store.complete_batch(&[claimed.clone(), claimed.clone()]).await, "jobs");
    let long = store.fail(&claimed, &"é".repeat(20_000)).await.expect("a long error is cut, never refused");
    assert!(long.last_error.is_some_and(|e| e.len() <= storage_core::stores::job_queue::MAX_ERROR_BYTES));
}

/// A sweep that read a lapsed job before its worker's late heartbeat leaves the job to the
/// worker (the compare-and-set checks that the lease is still lapsed).
pub async fn a_heartbeat_that_beats_the_sweep_keeps_the_job(s: &Subject) {
    let store = queue(s);
    enqueue(s, "acme", job(1)).await;
    let claimed = store.claim(Q, "w", LEASE).await.expect("claim").expect("job");
    s.clock.advance(LEASE);
    let rows = s.engine.job_rows();
    let lapsed = rows.lapsed(Q, s.clock.now(), 10).await.expect("lapsed");
    assert_eq!(lapsed.len(), 1, "the sweep's read");
    let beat = store.heartbeat(&claimed, LEASE).await.expect("a late heartbeat before the sweep's write still holds");
    let mut swept = lapsed[0].clone();
    swept.state = JobState::Available;
    swept.lease_token = None;
    let change = storage_core::stores::job_queue::Settle {
        job: swept,
        expect_state: JobState::Running,
        expect_token: claimed.lease_token,
        expect_lapsed_by: Some(s.clock.now()),
    };
    assert_eq!(rows.settle(&[change]).await.expect("settle"), vec![false], "the sweep's write does not apply");
    store.complete(&beat, None).await.expect("the worker still holds the job");
}

/// A claim chooses by priority among every due job, however many came due at once.
pub async fn a_claim_sees_every_due_job(s: &Subject) {
    let store = queue(s);
    let at = s.clock.now() + TimeDelta::minutes(1);
    for n in 0..1_100 {
        enqueue(s, "acme", job(n).run_at(at)).await;
    }
    let urgent = enqueue(s, "acme", job(9_999).run_at(at).priority(9)).await;
    s.clock.advance(TimeDelta::minutes(1));
    assert_eq!(store.claim(Q, "w", LEASE).await.expect("claim").map(|j| j.id), Some(urgent.id));
}

/// Concurrent enqueues of one tenant are placed one after another, never side by side (which
/// would give a tenant with many producers more than its share).
pub async fn concurrent_enqueues_of_a_tenant_take_distinct_places(s: &Subject) {
    let store = Arc::new(queue(s));
    enqueue(s, "other", job(0)).await;
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.enqueue(&tenant("busy"), job(n)).await.expect("enqueue").job.fair_at })
        })
        .collect();
    let mut places = Vec::new();
    for task in tasks {
        places.push(task.await.expect("task"));
    }
    places.sort();
    places.dedup();
    assert_eq!(places.len(), 16, "16 distinct places");
}

/// A batch is enqueued in order, in one unit: places follow one another, a dedupe key repeated
/// in the batch returns its first job, and one invalid job refuses the whole batch.
pub async fn a_batch_is_enqueued_in_order_and_whole(s: &Subject) {
    let store = queue(s);
    let t = tenant("acme");
    let batch = vec![job(1), job(2).dedupe_key("k"), job(3), job(4).dedupe_key("k")];
    let enqueued = store.enqueue_batch(&t, batch).await.expect("batch");
    assert_eq!(enqueued.iter().map(|e| e.created).collect::<Vec<_>>(), vec![true, true, true, false]);
    assert_eq!(enqueued[3].job.id, enqueued[1].job.id, "the repeated key returns the job holding it");
    assert!(enqueued.windows(2).take(2).all(|w| w[0].job.fair_at < w[1].job.fair_at), "placed one after another");
    let order: Vec<String> = store.claim_batch(Q, "w", LEASE, 10).await.expect("claim").into_iter().map(|j| j.id).collect();
    assert_eq!(order, enqueued.iter().take(3).map(|e| e.job.id.clone()).collect::<Vec<_>>());
    assert_invalid(store.enqueue_batch(&t, vec![job(5), job(6).max_attempts(0)]).await, "max_attempts");
    assert!(store.enqueue_batch(&t, Vec::new()).await.expect("an empty batch").is_empty());
    assert_invalid(store.enqueue_batch(&t, (0..1_001).map(job).collect()).await, "limit");
    assert_eq!(store.count(&JobFilter::queue(Q)).await.expect("count"), 3, "nothing of a refused batch was written");
    // Batches over two queues, in both orders, concurrently: none deadlocks or fails.
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for round in 0..20 {
                    let (a, b) = (NewJob::new("qa", "k", json!(round)), NewJob::new("qb", "k", json!(round)));
                    let batch = if (w + round) % 2 == 0 { vec![a, b] } else { vec![b, a] };
                    store.enqueue_batch(&tenant("acme"), batch).await.expect("a two-queue batch");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(store.count(&JobFilter::queue("qa")).await.expect("count"), 160);
}
