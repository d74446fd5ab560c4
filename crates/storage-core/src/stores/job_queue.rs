//! A job queue with leases: named queues of tenant jobs that workers claim across tenants, each
//! claim fenced by a random lease token, retried with exponential backoff and jitter up to the
//! job's `max_attempts`, then dead (inspectable and re-runnable).
//!
//! The claim is native on every backend (`FOR UPDATE SKIP LOCKED` on PostgreSQL, one `UPDATE ..
//! RETURNING` in the writer's `BEGIN IMMEDIATE` transaction on SQLite, one Lua script on Redis,
//! one critical section in memory); every later step of a claimed job is a compare-and-set on
//! its state and lease token ([`JobRows::settle`]), so a worker whose lease lapsed and was taken
//! over changes nothing and gets [`StorageError::LeaseLost`].
//!
//! Fairness between tenants is start-time fair queueing: a new job is placed (its `fair_at`) at
//! the later of the queue's earliest waiting job and just after its own tenant's last waiting
//! job. Claims take the highest priority first, then the smallest `fair_at`, so a tenant that
//! enqueues a backlog of 10,000 jobs gets every other claim while another tenant has work, and
//! never delays another tenant's jobs behind its whole backlog — whatever the workers' speed.

use crate::clock::SharedClock;
use crate::engine::{Engine, Store};
use crate::limits::{add, check_instant};
use crate::page::{Cursor, Page, PageRequest};
use crate::{Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use uuid::Uuid;

/// The entity name in errors.
const ENTITY: &str = "job";
/// The longest queue name.
pub const MAX_QUEUE_NAME: usize = 64;
/// The largest payload (JSON text), in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// The largest result, in bytes.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;
/// Longer error messages are cut to this many bytes (a failing job must always be recordable).
pub const MAX_ERROR_BYTES: usize = 16 * 1024;
/// The most attempts a job may be given.
pub const MAX_ATTEMPTS: u16 = 1_000;
/// The most jobs one claim, sweep or batch completion handles.
pub const MAX_BATCH: u32 = 1_000;
/// The attempts a job gets when its enqueuer names none.
pub const DEFAULT_MAX_ATTEMPTS: u16 = 5;
/// The longest delay between attempts.
pub const MAX_BACKOFF: TimeDelta = TimeDelta::days(30);
/// How often a cancel reads again when the job changed under it.
const CANCEL_ATTEMPTS: usize = 32;
/// A job's place after its tenant's previous waiting job (see the module's fairness note).
pub const FAIR_STEP: TimeDelta = TimeDelta::microseconds(1);

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting to be claimed once `run_at` has come (new, retrying after a failure, or released).
    Available,
    /// Claimed by a worker whose lease runs until `lease_expires_at`.
    Running,
    /// Done; `result` holds what the worker recorded.
    Completed,
    /// Cancelled before it completed.
    Cancelled,
    /// Failed on its last attempt; kept for inspection and [`JobQueueStore::retry`].
    Dead,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 5] = [Self::Available, Self::Running, Self::Completed, Self::Cancelled, Self::Dead];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Dead => "dead",
        }
    }

    /// The state of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether the job is over (completed, cancelled or dead): it holds no dedupe key and may be
    /// pruned.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Dead)
    }
}

/// A job to enqueue. Built with [`NewJob::new`] and the setters.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    queue: String,
    kind: String,
    payload: serde_json::Value,
    priority: i16,
    run_at: Option<DateTime<Utc>>,
    max_attempts: u16,
    dedupe_key: Option<String>,
}

impl NewJob {
    /// A job of `kind` on `queue` carrying `payload`: priority 0, due now, [`DEFAULT_MAX_ATTEMPTS`].
    pub fn new(queue: impl Into<String>, kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            queue: queue.into(),
            kind: kind.into(),
            payload,
            priority: 0,
            run_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dedupe_key: None,
        }
    }

    /// Higher runs first (within a queue, before fairness between tenants).
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Not claimed before `run_at`.
    pub fn run_at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }

    /// Attempts before the job is dead (1 to [`MAX_ATTEMPTS`]).
    pub fn max_attempts(mut self, max_attempts: u16) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// While a job of this tenant and queue with this key is waiting or running, enqueueing
    /// another returns it instead.
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its tenant.
    pub tenant: TenantId,
    /// Its id (a UUID, unique across tenants).
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// What kind of work it is (the worker's dispatch key).
    pub kind: String,
    /// Its arguments.
    pub payload: serde_json::Value,
    /// Higher runs first.
    pub priority: i16,
    /// Where it is.
    pub state: JobState,
    /// Claims so far (a released claim does not count).
    pub attempts: u16,
    /// Attempts before it is dead.
    pub max_attempts: u16,
    /// Not claimed before this.
    pub run_at: DateTime<Utc>,
    /// Its place among waiting jobs of the same priority (fairness between tenants).
    pub fair_at: DateTime<Utc>,
    /// Its dedupe key.
    pub dedupe_key: Option<String>,
    /// The running claim's fencing token.
    pub lease_token: Option<Uuid>,
    /// When the running claim lapses unless the worker heartbeats.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The worker of the running or last claim.
    pub worker: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
    /// What the worker recorded on completion.
    pub result: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the running or last claim started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed, was cancelled or died.
    pub finished_at: Option<DateTime<Utc>>,
}

/// What [`JobQueueStore::enqueue`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueued {
    /// The new job, or the waiting or running one holding the dedupe key.
    pub job: Job,
    /// Whether `job` is new.
    pub created: bool,
}

/// Which jobs a list or count reads: one queue, optionally one state and one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    /// The queue.
    pub queue: String,
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this tenant (every tenant's when `None`: a worker's or operator's view).
    pub tenant: Option<TenantId>,
}

impl JobFilter {
    /// Every job of `queue`.
    pub fn queue(queue: impl Into<String>) -> Self {
        Self { queue: queue.into(), state: None, tenant: None }
    }

    /// Only jobs in `state`.
    pub fn state(mut self, state: JobState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only jobs of `tenant`.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }
}

/// How failed attempts are spaced: the n-th failure waits `base · 2^(n−1)`, at most `max`, with
/// "equal jitter" (a random point in the upper half), so delays spread out and never shrink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: TimeDelta,
    max: TimeDelta,
}

impl Backoff {
    /// Delays from `base` doubling up to `max`; both positive, `base <= max <= 30 days`.
    pub fn new(base: TimeDelta, max: TimeDelta) -> Result<Self> {
        if base <= TimeDelta::zero() || max < base || max > MAX_BACKOFF {
            return Err(StorageError::invalid(
                "backoff",
                format!("base `{base}` must be positive and at most max `{max}`, at most 30 days"),
            ));
        }
        Ok(Self { base, max })
    }

    /// The delay after the `attempt`-th failed attempt (1-based), jittered.
    pub fn delay(&self, attempt: u16) -> TimeDelta {
        let doublings = u32::from(attempt.saturating_sub(1)).min(30);
        let full = self.base.checked_mul(1_i32 << doublings).map_or(self.max, |d| d.min(self.max));
        let micros = full.num_microseconds().unwrap_or(i64::MAX).max(0);
        let half = micros.checked_div(2).unwrap_or(0);
        TimeDelta::microseconds(half.saturating_add(fastrand::i64(0..=micros.saturating_sub(half))))
    }
}

impl Default for Backoff {
    /// One second, doubling to an hour.
    fn default() -> Self {
        Self { base: TimeDelta::seconds(1), max: TimeDelta::hours(1) }
    }
}

/// What a claim hands a backend: who claims, with which token, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The claiming worker.
    pub worker: String,
    /// The fencing token of this claim (one per call, on every job it claims).
    pub token: Uuid,
    /// The claim's instant.
    pub now: DateTime<Utc>,
    /// When the lease lapses.
    pub expires_at: DateTime<Utc>,
}

/// One compare-and-set of a job: the new values of its changing fields, written only while the
/// stored job is still in `expect_state` with `expect_token`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    /// The job with its new state, attempts, times, lease, error and result (its other fields
    /// are not written).
    pub job: Job,
    /// The state it must be in.
    pub expect_state: JobState,
    /// The lease token it must hold (`None`: none).
    pub expect_token: Option<Uuid>,
    /// For a sweep: its lease must have lapsed by then (a heartbeat after the sweep read the job
    /// keeps it its worker's).
    pub expect_lapsed_by: Option<DateTime<Utc>>,
}

/// A backend's native storage of jobs. Implementations trust their arguments and take time from
/// the caller; [`JobQueue`] validates, reads the clock and decides every transition.
#[async_trait]
pub trait JobRows: Send + Sync + fmt::Debug {
    /// Stores each of `jobs` (state available), in order and in one unit, unless a waiting or
    /// running job of its tenant and queue holds its dedupe key: then returns that one
    /// (`created: false`). The stored `fair_at` is the later of the
    /// queue's smallest waiting `fair_at` and its tenant's largest plus [`FAIR_STEP`] (the job's
    /// own `fair_at`, the enqueue instant, when the queue has no waiting job); the job returned
    /// carries it.
    async fn insert(&self, jobs: &[Job]) -> Result<Vec<Enqueued>>;
    /// Claims up to `limit` available jobs of `queue` due at `grant.now`, highest priority
    /// first, then smallest `fair_at`, then id: each becomes running with one more attempt, the
    /// grant's token, worker and expiry, `started_at` and `updated_at` at `grant.now`. Jobs being
    /// claimed concurrently are skipped, never waited for.
    async fn claim(&self, queue: &str, grant: &Grant, limit: u32) -> Result<Vec<Job>>;
    /// Applies each compare-and-set on its own; whether each applied.
    async fn settle(&self, changes: &[Settle]) -> Result<Vec<bool>>;
    /// The job, if it exists in `tenant`.
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Job>>;
    /// Up to `limit` jobs passing `filter`, by id, after `after`.
    async fn list(&self, filter: &JobFilter, after: Option<&str>, limit: u32) -> Result<Vec<Job>>;
    /// How many jobs pass `filter`.
    async fn count(&self, filter: &JobFilter) -> Result<u64>;
    /// Up to `limit` running jobs of `queue` whose lease lapsed at `now`, soonest lapsed first.
    async fn lapsed(&self, queue: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>>;
    /// Deletes up to `limit` jobs of `queue` in `states` (finished ones) that finished before
    /// `before`; how many.
    async fn prune(&self, queue: &str, states: &[JobState], before: DateTime<Utc>, limit: u32) -> Result<u64>;
}

/// The job queue (catalogue #39).
#[async_trait]
pub trait JobQueueStore: Send + Sync + fmt::Debug {
    /// Enqueues a job for `tenant`; with a dedupe key held by a waiting or running job, returns
    /// that job instead (`created: false`).
    async fn enqueue(&self, tenant: &TenantId, job: NewJob) -> Result<Enqueued>;
    /// Enqueues up to [`MAX_BATCH`] jobs for `tenant` in one unit (one commit; one round trip on
    /// SQLite and Redis), placed in order; each as [`Self::enqueue`] would (a dedupe key held
    /// returns the holder). Nothing is written when any job is refused as invalid.
    async fn enqueue_batch(&self, tenant: &TenantId, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>>;
    /// Claims the next due job of `queue` for `worker`, leased for `lease`; `None` when none is
    /// free: none is due, or every due job is being claimed by a concurrent call at that moment (a
    /// claim never waits for another's lock; on PostgreSQL it skips rows locked by claims not yet
    /// committed). A job is never held by two claims.
    async fn claim(&self, queue: &str, worker: &str, lease: TimeDelta) -> Result<Option<Job>>;
    /// Claims up to `limit` due jobs at once (all with one lease token).
    async fn claim_batch(&self, queue: &str, worker: &str, lease: TimeDelta, limit: u32) -> Result<Vec<Job>>;
    /// Extends the lease of a claimed job to `lease` from now; the job as it now is.
    /// [`StorageError::LeaseLost`] if the claim is no longer this worker's.
    async fn heartbeat(&self, job: &Job, lease: TimeDelta) -> Result<Job>;
    /// Marks a claimed job completed with an optional result. `LeaseLost` if it is no longer
    /// this worker's (it changes nothing then).
    async fn complete(&self, job: &Job, result: Option<&str>) -> Result<Job>;
    /// Completes several claimed jobs in one round trip; each outcome as [`Self::complete`]'s.
    async fn complete_batch(&self, jobs: &[Job]) -> Result<Vec<Result<Job>>>;
    /// Records a failed attempt: the job waits for its backoff and runs again, or, after its
    /// last attempt, is dead. `LeaseLost` if it is no longer this worker's.
    async fn fail(&self, job: &Job, error: &str) -> Result<Job>;
    /// Gives a claimed job back without counting the attempt (e.g. on shutdown), due at
    /// `run_at` (now when `None`). `LeaseLost` if it is no longer this worker's.
    async fn release(&self, job: &Job, run_at: Option<DateTime<Utc>>) -> Result<Job>;
    /// Cancels a waiting or running job (a running job's worker then gets `LeaseLost`).
    /// `NotFound`, or `Conflict` when it already finished.
    async fn cancel(&self, tenant: &TenantId, id: &str) -> Result<Job>;
    /// Runs a dead or cancelled job again from its first attempt. `NotFound`, or `Conflict`
    /// when it is not dead or cancelled.
    async fn retry(&self, tenant: &TenantId, id: &str) -> Result<Job>;
    /// The job, if it exists in `tenant`.
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Job>>;
    /// Jobs passing `filter`, by id (enqueue order), a page at a time.
    async fn list(&self, filter: &JobFilter, page: PageRequest) -> Result<Page<Job>>;
    /// How many jobs pass `filter`.
    async fn count(&self, filter: &JobFilter) -> Result<u64>;
    /// Takes back up to [`MAX_BATCH`] running jobs of `queue` whose lease lapsed (their worker
    /// died or stalled): each attempt counts as failed, so the job retries after its backoff or
    /// is dead. Returns them as they now are.
    async fn sweep(&self, queue: &str) -> Result<Vec<Job>>;
    /// Deletes up to [`MAX_BATCH`] finished jobs of `queue` in `states` that finished more than
    /// `older_than` ago; how many. `InvalidInput` for a state that is not finished.
    async fn prune(&self, queue: &str, states: &[JobState], older_than: TimeDelta) -> Result<u64>;
}

/// [`JobQueueStore`] on any backend: validation, time and every transition here, the rows native.
pub struct JobQueue<B: ?Sized = dyn Engine> {
    rows: Arc<dyn JobRows>,
    backend: crate::DatabaseBackend,
    clock: SharedClock,
    backoff: Backoff,
    _backend: PhantomData<fn(&B)>,
}

impl<B: ?Sized + 'static> Store for JobQueue<B> {
    fn on(engine: &dyn Engine) -> Self {
        Self {
            rows: engine.job_rows(),
            backend: engine.backend(),
            clock: engine.clock(),
            backoff: Backoff::default(),
            _backend: PhantomData,
        }
    }
}

impl<B: ?Sized> Clone for JobQueue<B> {
    fn clone(&self) -> Self {
        Self {
            rows: Arc::clone(&self.rows),
            backend: self.backend,
            clock: Arc::clone(&self.clock),
            backoff: self.backoff,
            _backend: PhantomData,
        }
    }
}

impl<B: ?Sized> fmt::Debug for JobQueue<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobQueue").field("rows", &self.rows).field("backoff", &self.backoff).finish_non_exhaustive()
    }
}

crate::seed_constructors!(JobQueue);

/// A queue name: 1 to [`MAX_QUEUE_NAME`] ASCII letters, digits, `_`, `-` or `.`.
fn check_queue(queue: &str) -> Result<()> {
    if queue.is_empty() || queue.len() > MAX_QUEUE_NAME {
        return Err(StorageError::invalid("queue", format!("must be 1 to {MAX_QUEUE_NAME} bytes; it is {}", queue.len())));
    }
    if let Some(c) = queue.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(StorageError::invalid("queue", format!("contains {c:?}; use letters, digits, `_`, `-` and `.`")));
    }
    Ok(())
}

fn check_lease(lease: TimeDelta) -> Result<()> {
    if lease < TimeDelta::milliseconds(1) || lease > TimeDelta::days(1) {
        return Err(StorageError::invalid("lease", format!("`{lease}` must be between 1 ms and 1 day")));
    }
    Ok(())
}

fn check_limit(limit: u32) -> Result<()> {
    if limit == 0 || limit > MAX_BATCH {
        return Err(StorageError::invalid("limit", format!("`{limit}` must be between 1 and {MAX_BATCH}")));
    }
    Ok(())
}

/// The job id a caller names: a UUID (anything else cannot exist).
fn check_job_id(id: &str) -> Result<()> {
    match Uuid::parse_str(id) {
        Ok(uuid) if uuid.hyphenated().to_string() == id => Ok(()),
        _ => Err(StorageError::invalid("job id", format!("`{id}` is not a job id (a lowercase, hyphenated UUID)"))),
    }
}

/// Checks that `job` is a claimed job as a worker holds it: its lease token, queue and id.
fn check_claimed(job: &Job) -> Result<Uuid> {
    check_queue(&job.queue)?;
    check_job_id(&job.id)?;
    match (job.state, job.lease_token) {
        (JobState::Running, Some(token)) => Ok(token),
        _ => Err(StorageError::invalid("job", format!("`{}` is not a claimed job (state {}, no lease)", job.id, job.state.as_str()))),
    }
}

/// A message cut to [`MAX_ERROR_BYTES`] at a character boundary, NULs replaced.
fn error_text(error: &str) -> String {
    let end = (0..=error.len().min(MAX_ERROR_BYTES)).rev().find(|&i| error.is_char_boundary(i)).unwrap_or(0);
    error.get(..end).unwrap_or_default().replace('\0', " ")
}

fn lease_lost(job: &Job) -> StorageError {
    StorageError::LeaseLost { entity: ENTITY, id: job.id.clone() }
}

impl<B: ?Sized> JobQueue<B> {
    /// The same queue with another retry spacing.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        crate::clock::truncate_micros(self.clock.now())
    }

    /// A new job from what a caller enqueues, checked.
    fn new_job(tenant: &TenantId, job: NewJob, now: DateTime<Utc>) -> Result<Job> {
        check_queue(&job.queue)?;
        validate_id("kind", &job.kind)?;
        if let Some(key) = &job.dedupe_key {
            validate_id("dedupe_key", key)?;
        }
        if job.max_attempts == 0 || job.max_attempts > MAX_ATTEMPTS {
            return Err(StorageError::invalid("max_attempts", format!("`{}` must be between 1 and {MAX_ATTEMPTS}", job.max_attempts)));
        }
        let payload = serde_json::to_string(&job.payload).map_err(|e| StorageError::invalid("payload", e))?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(StorageError::invalid("payload", format!("is {} bytes; the limit is {MAX_PAYLOAD_BYTES}", payload.len())));
        }
        crate::limits::check_body(&payload).map_err(|_| StorageError::invalid("payload", "holds a NUL or is nested too deeply"))?;
        let run_at = match job.run_at {
            Some(at) => check_instant("run_at", crate::clock::truncate_micros(at))?,
            None => now,
        };
        Ok(Job {
            tenant: tenant.clone(),
            id: Uuid::now_v7().to_string(),
            queue: job.queue,
            kind: job.kind,
            payload: job.payload,
            priority: job.priority,
            state: JobState::Available,
            attempts: 0,
            max_attempts: job.max_attempts,
            run_at,
            fair_at: now,
            dedupe_key: job.dedupe_key,
            lease_token: None,
            lease_expires_at: None,
            worker: None,
            last_error: None,
            result: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
        })
    }

    /// Applies one compare-and-set on the job a worker holds; `LeaseLost` when it lost it.
    async fn settle_held(&self, held: &Job, token: Uuid, next: Job) -> Result<Job> {
        let applied = self
            .rows
            .settle(&[Settle { job: next.clone(), expect_state: JobState::Running, expect_token: Some(token), expect_lapsed_by: None }])
            .await?;
        if applied.first() == Some(&true) { Ok(next) } else { Err(lease_lost(held)) }
    }

    /// The job after a failed attempt at `now`: waiting for its backoff, or dead.
    fn failed(&self, job: &Job, error: String, now: DateTime<Utc>) -> Result<Job> {
        let mut next = Job { lease_token: None, lease_expires_at: None, last_error: Some(error), updated_at: now, ..job.clone() };
        if job.attempts >= job.max_attempts {
            next.state = JobState::Dead;
            next.finished_at = Some(now);
        } else {
            next.state = JobState::Available;
            next.run_at = add("run_at", now, self.backoff.delay(job.attempts))?;
        }
        Ok(next)
    }

    /// Reads a job of `tenant` for an operator's transition.
    async fn existing(&self, tenant: &TenantId, id: &str) -> Result<Job> {
        check_job_id(id)?;
        self.rows.get(tenant, id).await?.ok_or_else(|| StorageError::not_found(ENTITY, id))
    }
}

#[async_trait]
impl<B: ?Sized> JobQueueStore for JobQueue<B> {
    async fn enqueue(&self, tenant: &TenantId, job: NewJob) -> Result<Enqueued> {
        let job = Self::new_job(tenant, job, self.now())?;
        let mut enqueued = self.rows.insert(std::slice::from_ref(&job)).await?;
        enqueued.pop().ok_or_else(|| StorageError::backend(self.backend, "an insert of one job reported none"))
    }

    async fn enqueue_batch(&self, tenant: &TenantId, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        check_limit(u32::try_from(jobs.len()).unwrap_or(u32::MAX))?;
        let now = self.now();
        let jobs = jobs.into_iter().map(|job| Self::new_job(tenant, job, now)).collect::<Result<Vec<_>>>()?;
        self.rows.insert(&jobs).await
    }

    async fn claim(&self, queue: &str, worker: &str, lease: TimeDelta) -> Result<Option<Job>> {
        Ok(self.claim_batch(queue, worker, lease, 1).await?.pop())
    }

    async fn claim_batch(&self, queue: &str, worker: &str, lease: TimeDelta, limit: u32) -> Result<Vec<Job>> {
        check_queue(queue)?;
        validate_id("worker", worker)?;
        check_lease(lease)?;
        check_limit(limit)?;
        let now = self.now();
        let grant = Grant { worker: worker.to_owned(), token: Uuid::new_v4(), now, expires_at: add("lease", now, lease)? };
        self.rows.claim(queue, &grant, limit).await
    }

    async fn heartbeat(&self, job: &Job, lease: TimeDelta) -> Result<Job> {
        let token = check_claimed(job)?;
        check_lease(lease)?;
        let now = self.now();
        let next = Job { lease_expires_at: Some(add("lease", now, lease)?), updated_at: now, ..job.clone() };
        self.settle_held(job, token, next).await
    }

    async fn complete(&self, job: &Job, result: Option<&str>) -> Result<Job> {
        let token = check_claimed(job)?;
        if let Some(result) = result
            && (result.len() > MAX_RESULT_BYTES || result.contains('\0'))
        {
            return Err(StorageError::invalid("result", format!("must be at most {MAX_RESULT_BYTES} bytes, without NUL")));
        }
        let now = self.now();
        self.settle_held(job, token, completed(job, result.map(str::to_owned), now)).await
    }

    async fn complete_batch(&self, jobs: &[Job]) -> Result<Vec<Result<Job>>> {
        check_limit(u32::try_from(jobs.len()).unwrap_or(u32::MAX).max(1))?;
        let mut seen = std::collections::HashSet::with_capacity(jobs.len());
        if let Some(twice) = jobs.iter().find(|job| !seen.insert(job.id.as_str())) {
            return Err(StorageError::invalid("jobs", format!("job `{}` is listed twice", twice.id)));
        }
        let now = self.now();
        let mut changes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let token = check_claimed(job)?;
            changes.push(Settle {
                job: completed(job, None, now),
                expect_state: JobState::Running,
                expect_token: Some(token),
                expect_lapsed_by: None,
            });
        }
        let applied = self.rows.settle(&changes).await?;
        Ok(changes
            .into_iter()
            .zip(jobs)
            .enumerate()
            .map(|(i, (change, held))| if applied.get(i) == Some(&true) { Ok(change.job) } else { Err(lease_lost(held)) })
            .collect())
    }

    async fn fail(&self, job: &Job, error: &str) -> Result<Job> {
        let token = check_claimed(job)?;
        let now = self.now();
        let next = self.failed(job, error_text(error), now)?;
        self.settle_held(job, token, next).await
    }

    async fn release(&self, job: &Job, run_at: Option<DateTime<Utc>>) -> Result<Job> {
        let token = check_claimed(job)?;
        let now = self.now();
        let run_at = match run_at {
            Some(at) => check_instant("run_at", crate::clock::truncate_micros(at))?,
            None => now,
        };
        let next = Job {
            state: JobState::Available,
            attempts: job.attempts.saturating_sub(1),
            run_at,
            lease_token: None,
            lease_expires_at: None,
            updated_at: now,
            ..job.clone()
        };
        self.settle_held(job, token, next).await
    }

    async fn cancel(&self, tenant: &TenantId, id: &str) -> Result<Job> {
        for _ in 0..CANCEL_ATTEMPTS {
            let job = self.existing(tenant, id).await?;
            if job.state.is_finished() {
                return Err(StorageError::conflict(ENTITY, id, format!("it is already {}", job.state.as_str())));
            }
            let now = self.now();
            let next = Job {
                state: JobState::Cancelled,
                lease_token: None,
                lease_expires_at: None,
                updated_at: now,
                finished_at: Some(now),
                ..job.clone()
            };
            let change = Settle { job: next.clone(), expect_state: job.state, expect_token: job.lease_token, expect_lapsed_by: None };
            // Lost to a claim, a completion or another cancel: read again and decide again.
            if self.rows.settle(&[change]).await?.first() == Some(&true) {
                return Ok(next);
            }
        }
        Err(StorageError::conflict(ENTITY, id, format!("still changing after {CANCEL_ATTEMPTS} attempts")))
    }

    async fn retry(&self, tenant: &TenantId, id: &str) -> Result<Job> {
        let job = self.existing(tenant, id).await?;
        if !matches!(job.state, JobState::Dead | JobState::Cancelled) {
            return Err(StorageError::conflict(ENTITY, id, format!("it is {}, not dead or cancelled", job.state.as_str())));
        }
        let now = self.now();
        let next = Job { state: JobState::Available, attempts: 0, run_at: now, updated_at: now, finished_at: None, ..job.clone() };
        let change = Settle { job: next.clone(), expect_state: job.state, expect_token: None, expect_lapsed_by: None };
        if self.rows.settle(&[change]).await?.first() == Some(&true) {
            Ok(next)
        } else {
            Err(StorageError::conflict(ENTITY, id, "it was retried or removed concurrently"))
        }
    }

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Job>> {
        check_job_id(id)?;
        self.rows.get(tenant, id).await
    }

    async fn list(&self, filter: &JobFilter, page: PageRequest) -> Result<Page<Job>> {
        check_queue(&filter.queue)?;
        let limit = page.limit()?;
        let after = page.cursor().map(Cursor::as_str);
        if let Some(after) = after {
            check_job_id(after).map_err(|_| StorageError::invalid("cursor", "is not a job list cursor"))?;
        }
        let mut jobs = self.rows.list(filter, after, limit.saturating_add(1)).await?;
        let next = if jobs.len() > limit as usize {
            jobs.truncate(limit as usize);
            jobs.last().map(|job| Cursor::from_string(job.id.clone()))
        } else {
            None
        };
        Ok(Page { items: jobs, next })
    }

    async fn count(&self, filter: &JobFilter) -> Result<u64> {
        check_queue(&filter.queue)?;
        self.rows.count(filter).await
    }

    async fn sweep(&self, queue: &str) -> Result<Vec<Job>> {
        check_queue(queue)?;
        let now = self.now();
        let lapsed = self.rows.lapsed(queue, now, MAX_BATCH).await?;
        let mut changes = Vec::with_capacity(lapsed.len());
        for job in &lapsed {
            let error = format!("the lease of worker {} lapsed", job.worker.as_deref().unwrap_or("?"));
            changes.push(Settle {
                job: self.failed(job, error, now)?,
                expect_state: JobState::Running,
                expect_token: job.lease_token,
                expect_lapsed_by: Some(now),
            });
        }
        let applied = self.rows.settle(&changes).await?;
        // A job whose worker completed, failed or heartbeat in between stays as its worker left it.
        Ok(changes.into_iter().zip(applied).filter(|(_, applied)| *applied).map(|(change, _)| change.job).collect())
    }

    async fn prune(&self, queue: &str, states: &[JobState], older_than: TimeDelta) -> Result<u64> {
        check_queue(queue)?;
        if let Some(state) = states.iter().find(|state| !state.is_finished()) {
            return Err(StorageError::invalid("states", format!("`{}` is not a finished state", state.as_str())));
        }
        if states.is_empty() || older_than < TimeDelta::zero() {
            return Err(StorageError::invalid("prune", "needs at least one finished state and an age of zero or more"));
        }
        let before = crate::limits::sub("older_than", self.now(), older_than)?;
        self.rows.prune(queue, states, before, MAX_BATCH).await
    }
}

/// A held job, completed at `now`.
fn completed(job: &Job, result: Option<String>, now: DateTime<Utc>) -> Job {
    Job {
        state: JobState::Completed,
        lease_token: None,
        lease_expires_at: None,
        result,
        updated_at: now,
        finished_at: Some(now),
        ..job.clone()
    }
}

/// Where a new job goes among the waiting jobs of its queue (see [`JobRows::insert`]): `head` is
/// the queue's smallest waiting `fair_at`, `own` its tenant's largest, `enqueued` the job's own.
pub fn fair_place(head: Option<DateTime<Utc>>, own: Option<DateTime<Utc>>, enqueued: DateTime<Utc>) -> DateTime<Utc> {
    match (head, own) {
        (None, _) => enqueued,
        (Some(head), None) => head,
        (Some(head), Some(own)) => head.max(own.checked_add_signed(FAIR_STEP).unwrap_or(own)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let backoff = Backoff::new(TimeDelta::seconds(1), TimeDelta::seconds(60)).expect("backoff");
        let mut last = TimeDelta::zero();
        for attempt in 1..=12 {
            let delay = backoff.delay(attempt);
            assert!(delay >= last || delay >= TimeDelta::seconds(30), "attempt {attempt}: {delay} after {last}");
            assert!(delay <= TimeDelta::seconds(60));
            last = delay;
        }
        assert!(backoff.delay(u16::MAX) <= TimeDelta::seconds(60));
    }

    #[test]
    fn fair_places_interleave_tenants() {
        let t = DateTime::from_timestamp(1_000, 0).expect("instant");
        assert_eq!(fair_place(None, None, t), t);
        assert_eq!(fair_place(Some(t), None, t + TimeDelta::hours(1)), t);
        assert_eq!(fair_place(Some(t), Some(t + TimeDelta::seconds(5)), t), t + TimeDelta::seconds(5) + FAIR_STEP);
    }
}
