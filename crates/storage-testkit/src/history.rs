//! Histories (issue 18): concurrent clients run small programs against a real backend, every
//! operation's invocation and answer is recorded, and a linearizability checker decides whether
//! some order of the operations, each placed between its invocation and its answer, explains
//! every answer under a sequential model of the store.
//!
//! - [`Recorder`] logs `invoke` / `return` events on one shared sequence. An operation that failed
//!   with a retryable error ([`StorageError::is_retryable`]: unavailable, timed out, contended)
//!   may or may not have taken effect: it is *indeterminate* (Knossos's `:info`) and stays open
//!   until the end of the history. A definite error (a conflict, a version mismatch, a lost lease,
//!   not found) is an answer like any other.
//! - [`check`] is a Wing–Gong search with memoization (Lowe, "Testing for linearizability";
//!   porcupine): depth first over which operation takes effect next, remembering every (set of
//!   operations taken, model state) already explored. An indeterminate operation may take effect
//!   anywhere after its invocation, or never.
//! - Four models and their history generators: webhook claims ([`webhook_history`]), job-queue
//!   leases ([`job_queue_history`]), password-reset token consumption ([`token_history`]) and
//!   compare-and-set updates of one record ([`cas_history`]); [`check_histories`] runs many
//!   small ones on fresh keys, with an optional fault hook, and counts what it saw.
//!
//! `stateright`'s `LinearizabilityTester` was considered and not used: it explores interleavings
//! without memoization, allows one open operation per thread (an indeterminate operation would
//! need a fresh thread id), and brings an HTTP server (its explorer) and a dozen crates into the
//! testkit for a search of about a hundred lines.

use crate::tenant;
use chrono::TimeDelta;
use serde_json::json;
use std::collections::HashSet;
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use storage_core::{
    ClaimOutcome, Engine, IntegrationConfig, IntegrationStore, Integrations, Job, JobQueue, JobQueueStore, JobState, Lease, NewJob,
    PasswordResetStore, PasswordResets, ResetRequest, Result, StorageError, Store, WebhookStore, Webhooks,
};

// ---------------------------------------------------------------------------------------------
// Recording

/// The index of an operation in its [`History`].
pub type OpId = usize;

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<R> {
    /// It answered `R` (a definite error included) at this point of the sequence.
    Returned(u64, R),
    /// It failed in a way that leaves its effect unknown: it may take effect at any time after
    /// its invocation, or never.
    Indeterminate,
}

/// One recorded operation.
#[derive(Debug, Clone)]
pub struct Operation<O, R> {
    /// The client that ran it.
    pub client: usize,
    /// What it asked.
    pub op: O,
    /// Its invocation's place in the sequence.
    pub invoked: u64,
    /// How it ended.
    pub outcome: Outcome<R>,
}

impl<O, R> Operation<O, R> {
    /// Its answer's place in the sequence; `u64::MAX` while indeterminate (never constrains).
    fn returned(&self) -> u64 {
        match self.outcome {
            Outcome::Returned(at, _) => at,
            Outcome::Indeterminate => u64::MAX,
        }
    }
}

/// A finished history: every operation with its invocation and outcome.
#[derive(Debug, Clone)]
pub struct History<O, R> {
    /// The operations, in invocation order.
    pub ops: Vec<Operation<O, R>>,
}

impl<O: Debug, R: Debug> History<O, R> {
    /// How many operations ended indeterminate.
    pub fn indeterminate(&self) -> usize {
        self.ops.iter().filter(|o| matches!(o.outcome, Outcome::Indeterminate)).count()
    }

    /// How many operations overlap another one in time (ran concurrently with it).
    pub fn concurrent(&self) -> usize {
        let overlaps = |a: &Operation<O, R>, b: &Operation<O, R>| a.invoked < b.returned() && b.invoked < a.returned();
        (0..self.ops.len()).filter(|&i| (0..self.ops.len()).any(|j| j != i && overlaps(&self.ops[i], &self.ops[j]))).count()
    }
}

impl<O: Debug, R: Debug> fmt::Display for History<O, R> {
    /// One line per operation: `[invoked..returned] client: op -> answer`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (id, o) in self.ops.iter().enumerate() {
            match &o.outcome {
                Outcome::Returned(at, ret) => writeln!(f, "  #{id:<3} [{:>3}..{at:>3}] c{}: {:?} -> {ret:?}", o.invoked, o.client, o.op)?,
                Outcome::Indeterminate => writeln!(f, "  #{id:<3} [{:>3}..  ?] c{}: {:?} -> indeterminate", o.invoked, o.client, o.op)?,
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Log<O, R> {
    next: u64,
    ops: Vec<(usize, O, u64, Option<Outcome<R>>)>,
}

/// Records invocations and answers of concurrent clients on one shared sequence. Shared by the
/// clients (`Arc`); an invocation is logged before the call starts and its answer after it ends,
/// so the sequence respects real time.
#[derive(Debug)]
pub struct Recorder<O, R> {
    log: Mutex<Log<O, R>>,
}

impl<O, R> Default for Recorder<O, R> {
    fn default() -> Self {
        Self { log: Mutex::new(Log { next: 0, ops: Vec::new() }) }
    }
}

impl<O: Clone + Debug, R: Clone + Debug> Recorder<O, R> {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs that `client` invokes `op`; the id to answer it with.
    pub fn invoke(&self, client: usize, op: O) -> OpId {
        let mut log = self.log.lock().expect("recorder");
        let at = log.next;
        log.next += 1;
        log.ops.push((client, op, at, None));
        log.ops.len() - 1
    }

    /// Logs the answer of `id` (a definite error included).
    pub fn ret(&self, id: OpId, ret: R) {
        let mut log = self.log.lock().expect("recorder");
        let at = log.next;
        log.next += 1;
        log.ops[id].3 = Some(Outcome::Returned(at, ret));
    }

    /// Logs the answer of `id` and what the operation turned out to be (a claim names the job it
    /// took), for models where the answer picks among several effects.
    pub fn ret_as(&self, id: OpId, op: O, ret: R) {
        self.log.lock().expect("recorder").ops[id].1 = op;
        self.ret(id, ret);
    }

    /// Logs that `id` failed with its effect unknown: it stays open to the end of the history.
    pub fn indeterminate(&self, id: OpId) {
        self.log.lock().expect("recorder").ops[id].3 = Some(Outcome::Indeterminate);
    }

    /// Ends `id` from a store's result: `Ok` and definite errors through `answer` (which returns
    /// `None` for an error the model has no answer for: it is recorded as `unexpected`), retryable
    /// errors as indeterminate.
    pub fn settle<T>(
        &self,
        id: OpId,
        result: Result<T>,
        answer: impl FnOnce(Result<T>) -> std::result::Result<R, StorageError>,
        unexpected: impl FnOnce(String) -> R,
    ) {
        match result {
            Err(e) if e.is_retryable() => self.indeterminate(id),
            other => match answer(other) {
                Ok(ret) => self.ret(id, ret),
                Err(e) => self.ret(id, unexpected(format!("{e:?}"))),
            },
        }
    }

    /// The history so far; operations still open are indeterminate.
    pub fn history(&self) -> History<O, R> {
        let log = self.log.lock().expect("recorder");
        let ops = log
            .ops
            .iter()
            .map(|(client, op, invoked, outcome)| Operation {
                client: *client,
                op: op.clone(),
                invoked: *invoked,
                outcome: outcome.clone().unwrap_or(Outcome::Indeterminate),
            })
            .collect();
        History { ops }
    }
}

// ---------------------------------------------------------------------------------------------
// Checking

/// A sequential specification.
pub trait Model {
    /// The object's state.
    type State: Clone + Eq + Hash + Debug;
    /// An operation.
    type Op: Clone + Debug;
    /// An answer.
    type Ret: Clone + Debug + PartialEq;
    /// The state before any operation.
    fn init(&self) -> Self::State;
    /// Every (next state, answer) `op` may give from `state`: one for a deterministic operation,
    /// several where the specification leaves a choice (which waiting job a claim takes).
    fn step(&self, state: &Self::State, op: &Self::Op) -> Vec<(Self::State, Self::Ret)>;
}

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [Operation<M::Op, M::Ret>],
    seen: HashSet<(Vec<u64>, M::State)>,
    order: Vec<OpId>,
}

impl<M: Model> Search<'_, M> {
    fn taken(done: &[u64], i: usize) -> bool {
        done[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether the operations not in `done` can be ordered from `state`; `left`: how many
    /// determinate ones remain (indeterminate ones may be left out).
    fn run(&mut self, done: &mut Vec<u64>, state: &M::State, left: usize) -> bool {
        if left == 0 {
            return true;
        }
        if !self.seen.insert((done.clone(), state.clone())) {
            return false;
        }
        // Whatever goes next must have been invoked before the first answer still to place.
        let horizon = (0..self.ops.len()).filter(|&i| !Self::taken(done, i)).map(|i| self.ops[i].returned()).min().unwrap_or(u64::MAX);
        for i in 0..self.ops.len() {
            let op = &self.ops[i];
            if Self::taken(done, i) || op.invoked >= horizon {
                continue;
            }
            for (next, ret) in self.model.step(state, &op.op) {
                let determinate = match &op.outcome {
                    Outcome::Returned(_, seen) if *seen == ret => true,
                    Outcome::Returned(..) => continue,
                    // Taking effect without changing anything is the same as never: skip it.
                    Outcome::Indeterminate if next == *state => continue,
                    Outcome::Indeterminate => false,
                };
                done[i / 64] |= 1 << (i % 64);
                self.order.push(i);
                if self.run(done, &next, left - usize::from(determinate)) {
                    return true;
                }
                done[i / 64] &= !(1 << (i % 64));
                self.order.pop();
            }
        }
        false
    }
}

/// An order in which the operations of `history` take effect that `model` explains (each
/// between its invocation and its answer; indeterminate ones anywhere after their invocation,
/// or left out), or `None` if there is none: the history is not linearizable.
pub fn check<M: Model>(model: &M, history: &History<M::Op, M::Ret>) -> Option<Vec<OpId>> {
    let ops = &history.ops;
    let left = ops.iter().filter(|o| matches!(o.outcome, Outcome::Returned(..))).count();
    let mut search = Search { model, ops, seen: HashSet::new(), order: Vec::new() };
    let mut done = vec![0u64; ops.len().div_ceil(64).max(1)];
    search.run(&mut done, &model.init(), left).then_some(search.order)
}

// ---------------------------------------------------------------------------------------------
// Models

/// Names one claim in a history: `(client, the client's claim number)`.
pub type Tag = (usize, usize);

/// Webhook claims on a few events: the first claim wins, later ones see the event in flight or
/// already processed; only the holder of the current claim completes or releases it.
#[derive(Debug, Clone)]
pub struct WebhookModel {
    /// How many events.
    pub events: usize,
}

/// An event's state in [`WebhookModel`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventSlot {
    /// Never claimed, or released.
    Free,
    /// Claimed by this claim.
    Held(Tag),
    /// Processed, with this result.
    Done(String),
}

/// An operation of [`WebhookModel`].
#[derive(Debug, Clone)]
pub enum WebhookOp {
    /// `try_claim` of an event, as claim `tag`.
    Claim {
        /// The event.
        event: usize,
        /// This claim.
        tag: Tag,
    },
    /// `complete` with the lease of claim `lease`.
    Complete {
        /// The event.
        event: usize,
        /// The claim whose lease is used.
        lease: Tag,
        /// The result stored.
        result: String,
    },
    /// `release` with the lease of claim `lease`.
    Release {
        /// The event.
        event: usize,
        /// The claim whose lease is used.
        lease: Tag,
    },
    /// `mark_delivered`: processed, whatever its state.
    Mark {
        /// The event.
        event: usize,
        /// The result stored.
        result: String,
    },
    /// `is_delivered`.
    IsDelivered {
        /// The event.
        event: usize,
    },
}

/// An answer of [`WebhookModel`].
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookRet {
    /// The claim acquired the event.
    Acquired,
    /// Another claim holds it.
    InFlight,
    /// It was processed with this result.
    AlreadyDone(String),
    /// `complete` stored the result.
    Completed,
    /// `complete` refused: the lease is not the current claim (`Conflict`).
    LeaseLost,
    /// `release` answered whether the lease still held the event.
    Released(bool),
    /// `mark_delivered` stored the result.
    Marked,
    /// `is_delivered` answered.
    Delivered(bool),
    /// An answer no model gives (an unexpected error).
    Unexpected(String),
}

impl Model for WebhookModel {
    type State = Vec<EventSlot>;
    type Op = WebhookOp;
    type Ret = WebhookRet;

    fn init(&self) -> Self::State {
        vec![EventSlot::Free; self.events]
    }

    fn step(&self, state: &Self::State, op: &WebhookOp) -> Vec<(Self::State, WebhookRet)> {
        let mut next = state.clone();
        let ret = match op {
            WebhookOp::Claim { event, tag } => match &state[*event] {
                EventSlot::Free => {
                    next[*event] = EventSlot::Held(*tag);
                    WebhookRet::Acquired
                }
                EventSlot::Held(_) => WebhookRet::InFlight,
                EventSlot::Done(result) => WebhookRet::AlreadyDone(result.clone()),
            },
            WebhookOp::Complete { event, lease, result } => {
                if state[*event] == EventSlot::Held(*lease) {
                    next[*event] = EventSlot::Done(result.clone());
                    WebhookRet::Completed
                } else {
                    WebhookRet::LeaseLost
                }
            }
            WebhookOp::Release { event, lease } => {
                let held = state[*event] == EventSlot::Held(*lease);
                if held {
                    next[*event] = EventSlot::Free;
                }
                WebhookRet::Released(held)
            }
            WebhookOp::Mark { event, result } => {
                next[*event] = EventSlot::Done(result.clone());
                WebhookRet::Marked
            }
            WebhookOp::IsDelivered { event } => WebhookRet::Delivered(matches!(state[*event], EventSlot::Done(_))),
        };
        vec![(next, ret)]
    }
}

/// Job-queue leases on a few jobs enqueued before the history (leases long enough never to
/// lapse): a claim takes some waiting job (any: the model does not check the order) or none if
/// none waits; only the current claim completes a job; a completed job is never claimed again.
#[derive(Debug, Clone)]
pub struct JobQueueModel {
    /// How many jobs.
    pub jobs: usize,
}

/// A job's state in [`JobQueueModel`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobSlot {
    /// Waiting to be claimed.
    Waiting,
    /// Held by this claim.
    Running(Tag),
    /// Completed.
    Done,
}

/// What a claim answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Took {
    /// This job.
    Job(usize),
    /// Nothing: no job waited.
    Nothing,
    /// Nothing, while another claim that took a job ran concurrently: a claim never waits for
    /// another's lock (PostgreSQL's `SKIP LOCKED`), so it may find every due job being claimed.
    Skipped,
    /// Unknown: the claim is indeterminate (it may have taken any waiting job, or none).
    Unknown,
}

/// An operation of [`JobQueueModel`].
#[derive(Debug, Clone)]
pub enum JobOp {
    /// `claim`, as claim `tag`; `took` is what it answered (filled in on return).
    Claim {
        /// This claim.
        tag: Tag,
        /// What it answered.
        took: Took,
    },
    /// `complete` of a job with the lease of claim `lease`.
    Complete {
        /// The job.
        job: usize,
        /// The claim whose lease is used.
        lease: Tag,
    },
    /// `get` of a job.
    Read {
        /// The job.
        job: usize,
    },
}

/// An answer of [`JobQueueModel`].
#[derive(Debug, Clone, PartialEq)]
pub enum JobRet {
    /// The claim answered (the job is in the operation).
    Claimed,
    /// The claim found nothing waiting.
    Empty,
    /// `complete` applied.
    Completed,
    /// `complete` refused with `LeaseLost`.
    LeaseLost,
    /// `get` answered this state.
    Read(JobSlot),
    /// An answer no model gives (an unexpected error, a job that is not in the history).
    Unexpected(String),
}

impl Model for JobQueueModel {
    type State = Vec<JobSlot>;
    type Op = JobOp;
    type Ret = JobRet;

    fn init(&self) -> Self::State {
        vec![JobSlot::Waiting; self.jobs]
    }

    fn step(&self, state: &Self::State, op: &JobOp) -> Vec<(Self::State, JobRet)> {
        match op {
            JobOp::Claim { tag, took } => {
                let waiting = (0..state.len()).filter(|&j| state[j] == JobSlot::Waiting);
                let take = |j: usize| {
                    let mut next = state.clone();
                    next[j] = JobSlot::Running(*tag);
                    (next, JobRet::Claimed)
                };
                match *took {
                    Took::Job(j) if state[j] == JobSlot::Waiting => vec![take(j)],
                    Took::Job(_) => vec![(state.clone(), JobRet::Unexpected("the job was not waiting".into()))],
                    // Answered nothing: right only if nothing waits.
                    Took::Nothing if waiting.clone().next().is_none() => vec![(state.clone(), JobRet::Empty)],
                    Took::Nothing => vec![(state.clone(), JobRet::Unexpected("a job was waiting".into()))],
                    Took::Skipped => vec![(state.clone(), JobRet::Empty)],
                    Took::Unknown => waiting.map(take).chain(std::iter::once((state.clone(), JobRet::Empty))).collect(),
                }
            }
            JobOp::Complete { job, lease } => {
                if state[*job] == JobSlot::Running(*lease) {
                    let mut next = state.clone();
                    next[*job] = JobSlot::Done;
                    vec![(next, JobRet::Completed)]
                } else {
                    vec![(state.clone(), JobRet::LeaseLost)]
                }
            }
            JobOp::Read { job } => vec![(state.clone(), JobRet::Read(state[*job].clone()))],
        }
    }
}

/// Password-reset tokens consumed concurrently: exactly one `consume_token` gets the email, later
/// ones `Conflict`; `validate_token` sees the email until then.
#[derive(Debug, Clone)]
pub struct TokenModel {
    /// The email of each token.
    pub emails: Vec<String>,
}

/// An operation of [`TokenModel`].
#[derive(Debug, Clone)]
pub enum TokenOp {
    /// `consume_token`.
    Consume(usize),
    /// `validate_token`.
    Validate(usize),
}

/// An answer of [`TokenModel`].
#[derive(Debug, Clone, PartialEq)]
pub enum TokenRet {
    /// `consume_token` gave the email.
    Consumed(String),
    /// `consume_token` refused: already used (`Conflict`).
    Used,
    /// `validate_token` answered.
    Valid(Option<String>),
    /// An answer no model gives (`NotFound`, an unexpected error).
    Unexpected(String),
}

impl Model for TokenModel {
    type State = Vec<bool>;
    type Op = TokenOp;
    type Ret = TokenRet;

    fn init(&self) -> Vec<bool> {
        vec![false; self.emails.len()]
    }

    fn step(&self, used: &Vec<bool>, op: &TokenOp) -> Vec<(Vec<bool>, TokenRet)> {
        match op {
            TokenOp::Consume(k) if used[*k] => vec![(used.clone(), TokenRet::Used)],
            TokenOp::Consume(k) => {
                let mut next = used.clone();
                next[*k] = true;
                vec![(next, TokenRet::Consumed(self.emails[*k].clone()))]
            }
            TokenOp::Validate(k) => vec![(used.clone(), TokenRet::Valid((!used[*k]).then(|| self.emails[*k].clone())))],
        }
    }
}

/// Compare-and-set updates of one record: a register with a version. An update at the current
/// version succeeds and bumps it; a stale one gets `VersionMismatch`; reads see the current value.
#[derive(Debug, Clone)]
pub struct CasModel {
    /// `(value, version)` before the history.
    pub initial: (u64, u64),
}

/// An operation of [`CasModel`].
#[derive(Debug, Clone)]
pub enum CasOp {
    /// `get`.
    Read,
    /// `update` expecting `version`, writing `value`.
    Write {
        /// The version expected.
        version: u64,
        /// The value written.
        value: u64,
    },
}

/// An answer of [`CasModel`].
#[derive(Debug, Clone, PartialEq)]
pub enum CasRet {
    /// `get` read `(value, version)`.
    Read(u64, u64),
    /// `update` stored this version.
    Written(u64),
    /// `update` refused with `VersionMismatch`.
    Mismatch,
    /// An answer no model gives (an unexpected error, the record missing).
    Unexpected(String),
}

impl Model for CasModel {
    type State = (u64, u64);
    type Op = CasOp;
    type Ret = CasRet;

    fn init(&self) -> (u64, u64) {
        self.initial
    }

    fn step(&self, &(value, version): &(u64, u64), op: &CasOp) -> Vec<((u64, u64), CasRet)> {
        match *op {
            CasOp::Read => vec![((value, version), CasRet::Read(value, version))],
            CasOp::Write { version: expected, value: new } if expected == version => {
                vec![((new, version + 1), CasRet::Written(version + 1))]
            }
            CasOp::Write { .. } => vec![((value, version), CasRet::Mismatch)],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Size of one history.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Concurrent clients.
    pub clients: usize,
    /// Operations per client.
    pub ops: usize,
}

impl Shape {
    /// 3–5 clients of 3–6 operations each.
    pub fn random(rng: &mut fastrand::Rng) -> Self {
        Self { clients: rng.usize(3..=5), ops: rng.usize(3..=6) }
    }
}

const LONG: TimeDelta = TimeDelta::hours(1);
/// How long setup steps (outside the history) are retried through a fault: longer than a server
/// takes to restart.
const SETUP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs a setup step until it answers something other than a retryable error.
async fn setup<T, F, Fut>(mut step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = std::time::Instant::now() + SETUP_DEADLINE;
    loop {
        match step().await {
            Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            other => return other,
        }
    }
}

/// Runs `client(i, rng)` for each client at once (they start together at a barrier), calls
/// `during` once they are running, and waits for all.
async fn clients<F, Fut>(shape: Shape, seed: u64, during: impl FnOnce(), client: F)
where
    F: Fn(usize, fastrand::Rng) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(shape.clients));
    let tasks: Vec<_> = (0..shape.clients)
        .map(|c| {
            let (start, run) = (Arc::clone(&start), client(c, fastrand::Rng::with_seed(seed ^ ((c as u64 + 1) << 32))));
            tokio::spawn(async move {
                start.wait().await;
                run.await
            })
        })
        .collect();
    during();
    for task in tasks {
        task.await.expect("a client panicked");
    }
}

/// Webhook claims: 2 events under `key`, clients claiming, completing and releasing (sometimes
/// with a lease they no longer hold), marking and asking.
/// `during` is called once the clients run (the fault hook).
pub async fn webhook_history(
    engine: &Arc<dyn Engine>,
    key: &str,
    shape: Shape,
    seed: u64,
    during: impl FnOnce(),
) -> (WebhookModel, History<WebhookOp, WebhookRet>) {
    const EVENTS: usize = 2;
    let recorder = Arc::new(Recorder::new());
    let key = key.to_owned();
    clients(shape, seed, during, |c, mut rng| {
        let (store, recorder, key) = (<Webhooks>::on(engine.as_ref()), Arc::clone(&recorder), key.clone());
        async move {
            let t = tenant("histories");
            let mut leases: Vec<(usize, Lease, Tag)> = Vec::new();
            for n in 0..shape.ops {
                let event = rng.usize(..EVENTS);
                let id = format!("{key}-e{event}");
                let held: Vec<usize> = (0..leases.len()).filter(|&i| leases[i].0 == event).collect();
                let roll = rng.u8(..100);
                if let Some(&i) = held.last().filter(|_| roll < 70) {
                    // The newest lease on this event; a tenth of the time an older one.
                    let i = if rng.u8(..10) == 0 { held[rng.usize(..held.len())] } else { i };
                    let (_, lease, tag) = leases[i].clone();
                    if rng.bool() {
                        let result = format!("r{c}-{n}");
                        let op = recorder.invoke(c, WebhookOp::Complete { event, lease: tag, result: result.clone() });
                        let answer = store.complete(&t, &lease, &result).await;
                        recorder.settle(
                            op,
                            answer,
                            |r| match r {
                                Ok(_) => Ok(WebhookRet::Completed),
                                Err(StorageError::Conflict { .. }) => Ok(WebhookRet::LeaseLost),
                                Err(e) => Err(e),
                            },
                            WebhookRet::Unexpected,
                        );
                    } else {
                        let op = recorder.invoke(c, WebhookOp::Release { event, lease: tag });
                        let answer = store.release(&t, &lease).await;
                        recorder.settle(op, answer, |r| r.map(WebhookRet::Released), WebhookRet::Unexpected);
                    }
                } else if roll < 80 {
                    let tag = (c, n);
                    let op = recorder.invoke(c, WebhookOp::Claim { event, tag });
                    match store.try_claim(&t, &id, LONG).await {
                        Ok(ClaimOutcome::Acquired(lease)) => {
                            leases.push((event, lease, tag));
                            recorder.ret(op, WebhookRet::Acquired);
                        }
                        Ok(ClaimOutcome::InFlight { .. }) => recorder.ret(op, WebhookRet::InFlight),
                        Ok(ClaimOutcome::AlreadyDone(delivery)) => recorder.ret(op, WebhookRet::AlreadyDone(delivery.result)),
                        // "Still contended after 16 attempts": it took nothing, but the model
                        // has no such answer; an open operation that changes nothing is exact.
                        Err(StorageError::Conflict { .. }) => recorder.indeterminate(op),
                        Err(e) if e.is_retryable() => recorder.indeterminate(op),
                        Err(e) => recorder.ret(op, WebhookRet::Unexpected(format!("{e:?}"))),
                    }
                } else if roll < 90 {
                    let op = recorder.invoke(c, WebhookOp::IsDelivered { event });
                    let answer = store.is_delivered(&t, &id).await;
                    recorder.settle(op, answer, |r| r.map(WebhookRet::Delivered), WebhookRet::Unexpected);
                } else {
                    let result = format!("m{c}-{n}");
                    let op = recorder.invoke(c, WebhookOp::Mark { event, result: result.clone() });
                    let answer = store.mark_delivered(&t, &id, &result).await;
                    recorder.settle(op, answer, |r| r.map(|_| WebhookRet::Marked), WebhookRet::Unexpected);
                }
                tokio::task::yield_now().await;
            }
        }
    })
    .await;
    (WebhookModel { events: EVENTS }, recorder.history())
}

/// Job-queue leases: 1–3 jobs enqueued on a queue of their own, clients claiming, completing
/// (sometimes with a lease they no longer hold) and reading them.
/// `during` is called once the clients run (the fault hook).
pub async fn job_queue_history(
    engine: &Arc<dyn Engine>,
    key: &str,
    shape: Shape,
    seed: u64,
    during: impl FnOnce(),
) -> (JobQueueModel, History<JobOp, JobRet>) {
    let queue_name = key.to_owned();
    let t = tenant("histories");
    let count = fastrand::Rng::with_seed(seed).usize(1..=3);
    let queue = <JobQueue>::on(engine.as_ref());
    let mut ids = Vec::new();
    for j in 0..count {
        // The dedupe key makes a retried enqueue return the job the first attempt stored.
        let job = NewJob::new(&queue_name, "history", json!({ "j": j })).dedupe_key(format!("j{j}"));
        let enqueued = setup(|| queue.enqueue(&t, job.clone())).await.expect("enqueue");
        ids.push(enqueued.job.id);
    }
    let ids = Arc::new(ids);
    let recorder = Arc::new(Recorder::new());
    clients(shape, seed, during, |c, mut rng| {
        let (queue, recorder, ids, queue_name, t) =
            (<JobQueue>::on(engine.as_ref()), Arc::clone(&recorder), Arc::clone(&ids), queue_name.clone(), t.clone());
        async move {
            let index = |job: &Job| ids.iter().position(|id| *id == job.id);
            let mut held: Vec<(usize, Job, Tag)> = Vec::new();
            for n in 0..shape.ops {
                let roll = rng.u8(..100);
                if let Some(i) =
                    (!held.is_empty() && roll < 60).then(|| if rng.u8(..10) == 0 { rng.usize(..held.len()) } else { held.len() - 1 })
                {
                    let (job, claimed, tag) = held[i].clone();
                    let op = recorder.invoke(c, JobOp::Complete { job, lease: tag });
                    let answer = queue.complete(&claimed, None).await;
                    recorder.settle(
                        op,
                        answer,
                        |r| match r {
                            Ok(_) => Ok(JobRet::Completed),
                            Err(StorageError::LeaseLost { .. }) => Ok(JobRet::LeaseLost),
                            Err(e) => Err(e),
                        },
                        JobRet::Unexpected,
                    );
                } else if roll < 80 {
                    let tag = (c, n);
                    let op = recorder.invoke(c, JobOp::Claim { tag, took: Took::Unknown });
                    match queue.claim(&queue_name, &format!("w{}-{}", tag.0, tag.1), LONG).await {
                        Ok(Some(job)) => match index(&job) {
                            Some(j) => {
                                held.push((j, job, tag));
                                recorder.ret_as(op, JobOp::Claim { tag, took: Took::Job(j) }, JobRet::Claimed);
                            }
                            None => recorder.ret(op, JobRet::Unexpected(format!("claimed a job of no history: {}", job.id))),
                        },
                        Ok(None) => recorder.ret_as(op, JobOp::Claim { tag, took: Took::Nothing }, JobRet::Empty),
                        Err(e) if e.is_retryable() => recorder.indeterminate(op),
                        Err(e) => recorder.ret(op, JobRet::Unexpected(format!("{e:?}"))),
                    }
                } else {
                    let job = rng.usize(..ids.len());
                    let op = recorder.invoke(c, JobOp::Read { job });
                    let answer = queue.get(&t, &ids[job]).await;
                    recorder.settle(
                        op,
                        answer,
                        |r| {
                            Ok(match r? {
                                Some(job) => match (job.state, job.worker.as_deref().and_then(parse_worker)) {
                                    (JobState::Available, _) => JobRet::Read(JobSlot::Waiting),
                                    (JobState::Running, Some(tag)) => JobRet::Read(JobSlot::Running(tag)),
                                    (JobState::Completed, _) => JobRet::Read(JobSlot::Done),
                                    (state, worker) => JobRet::Unexpected(format!("state {state:?}, worker {worker:?}")),
                                },
                                None => JobRet::Unexpected("the job is gone".into()),
                            })
                        },
                        JobRet::Unexpected,
                    );
                }
                tokio::task::yield_now().await;
            }
        }
    })
    .await;
    (JobQueueModel { jobs: count }, skipped_claims(recorder.history()))
}

/// Marks the claims that answered nothing while a claim that took a job ran concurrently as
/// [`Took::Skipped`]: the trait allows them to find every due job being claimed.
fn skipped_claims(mut history: History<JobOp, JobRet>) -> History<JobOp, JobRet> {
    let taking: Vec<(u64, u64)> = history
        .ops
        .iter()
        .filter(|o| matches!(o.op, JobOp::Claim { took: Took::Job(_) | Took::Unknown, .. }))
        .map(|o| (o.invoked, o.returned()))
        .collect();
    for o in &mut history.ops {
        let (invoked, returned) = (o.invoked, o.returned());
        if let JobOp::Claim { took: took @ Took::Nothing, .. } = &mut o.op
            && taking.iter().any(|&(i, r)| i < returned && invoked < r)
        {
            *took = Took::Skipped;
        }
    }
    history
}

fn parse_worker(worker: &str) -> Option<Tag> {
    let (c, n) = worker.strip_prefix('w')?.split_once('-')?;
    Some((c.parse().ok()?, n.parse().ok()?))
}

/// Token consumption: 1–2 reset tokens issued for emails of their own, clients consuming and
/// validating them.
/// `during` is called once the clients run (the fault hook).
pub async fn token_history(
    engine: &Arc<dyn Engine>,
    key: &str,
    shape: Shape,
    seed: u64,
    during: impl FnOnce(),
) -> (TokenModel, History<TokenOp, TokenRet>) {
    let resets = <PasswordResets>::on(engine.as_ref());
    let count = fastrand::Rng::with_seed(seed).usize(1..=2);
    let (mut emails, mut tokens) = (Vec::new(), Vec::new());
    for k in 0..count {
        let email = format!("{key}-{k}@example.com").to_lowercase();
        // A retried request may issue a second token; the rate limit allows three.
        match setup(|| resets.create_token(&email)).await.expect("create token") {
            ResetRequest::Issued { token, .. } => tokens.push(token.expose().clone()),
            ResetRequest::RateLimited { retry_after } => panic!("{email} rate-limited until {retry_after}"),
        }
        emails.push(email);
    }
    let tokens = Arc::new(tokens);
    let recorder = Arc::new(Recorder::new());
    clients(shape, seed, during, |c, mut rng| {
        let (resets, recorder, tokens) = (<PasswordResets>::on(engine.as_ref()), Arc::clone(&recorder), Arc::clone(&tokens));
        async move {
            for _ in 0..shape.ops {
                let k = rng.usize(..tokens.len());
                if rng.u8(..100) < 65 {
                    let op = recorder.invoke(c, TokenOp::Consume(k));
                    let answer = resets.consume_token(&tokens[k]).await;
                    recorder.settle(
                        op,
                        answer,
                        |r| match r {
                            Ok(email) => Ok(TokenRet::Consumed(email)),
                            Err(StorageError::Conflict { .. }) => Ok(TokenRet::Used),
                            Err(e) => Err(e),
                        },
                        TokenRet::Unexpected,
                    );
                } else {
                    let op = recorder.invoke(c, TokenOp::Validate(k));
                    let answer = resets.validate_token(&tokens[k]).await;
                    recorder.settle(op, answer, |r| r.map(TokenRet::Valid), TokenRet::Unexpected);
                }
                tokio::task::yield_now().await;
            }
        }
    })
    .await;
    (TokenModel { emails }, recorder.history())
}

/// Compare-and-set: one integration configuration under `key`, clients reading it and updating
/// it at the version they last saw (sometimes an older one), each writing a value of its own.
/// `during` is called once the clients run (the fault hook).
pub async fn cas_history(
    engine: &Arc<dyn Engine>,
    key: &str,
    shape: Shape,
    seed: u64,
    during: impl FnOnce(),
) -> (CasModel, History<CasOp, CasRet>) {
    let store = <Integrations>::on(engine.as_ref());
    let t = tenant("histories");
    let config = IntegrationConfig::new(t.clone(), key, "slack");
    setup(|| store.set(&config)).await.expect("set");
    // Read back: a retried `set` may have bumped the version.
    let start = setup(|| store.get(&t, key)).await.expect("get").expect("the record");
    let initial = (start.messages_sent, start.version);
    let start = Arc::new(start);
    let recorder = Arc::new(Recorder::new());
    clients(shape, seed, during, |c, mut rng| {
        let (store, recorder, start, t, key) =
            (<Integrations>::on(engine.as_ref()), Arc::clone(&recorder), Arc::clone(&start), t.clone(), key.to_owned());
        async move {
            let mut seen = initial.1;
            for n in 0..shape.ops {
                if rng.u8(..100) < 40 {
                    let op = recorder.invoke(c, CasOp::Read);
                    match store.get(&t, &key).await {
                        Ok(Some(read)) => {
                            seen = read.version;
                            recorder.ret(op, CasRet::Read(read.messages_sent, read.version));
                        }
                        Ok(None) => recorder.ret(op, CasRet::Unexpected("the record is gone".into())),
                        Err(e) if e.is_retryable() => recorder.indeterminate(op),
                        Err(e) => recorder.ret(op, CasRet::Unexpected(format!("{e:?}"))),
                    }
                } else {
                    let version = if rng.u8(..5) == 0 { seen.saturating_sub(1).max(1) } else { seen };
                    let value = (c as u64 + 1) * 1_000 + n as u64;
                    let op = recorder.invoke(c, CasOp::Write { version, value });
                    let config = IntegrationConfig { messages_sent: value, version, ..(*start).clone() };
                    match store.update(&config).await {
                        Ok(stored) => {
                            seen = stored.version;
                            recorder.ret(op, CasRet::Written(stored.version));
                        }
                        Err(StorageError::VersionMismatch { .. }) => recorder.ret(op, CasRet::Mismatch),
                        Err(e) if e.is_retryable() => recorder.indeterminate(op),
                        Err(e) => recorder.ret(op, CasRet::Unexpected(format!("{e:?}"))),
                    }
                }
                tokio::task::yield_now().await;
            }
        }
    })
    .await;
    (CasModel { initial }, recorder.history())
}

// ---------------------------------------------------------------------------------------------
// Driver

/// What [`check_histories`] saw.
#[derive(Debug, Clone, Default)]
pub struct HistoryReport {
    /// Histories run and checked.
    pub histories: usize,
    /// Operations in them.
    pub operations: usize,
    /// Operations that overlapped another in time.
    pub concurrent: usize,
    /// Operations that ended indeterminate.
    pub indeterminate: usize,
    /// Histories no order explains.
    pub violations: usize,
    /// The first of them, in full.
    pub first_violation: Option<String>,
}

impl fmt::Display for HistoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} histories, {} operations ({} concurrent), {} indeterminate, {} violations",
            self.histories, self.operations, self.concurrent, self.indeterminate, self.violations
        )
    }
}

impl HistoryReport {
    /// Adds `other`'s counts (its first violation if this has none).
    pub fn merge(&mut self, other: HistoryReport) {
        self.histories += other.histories;
        self.operations += other.operations;
        self.concurrent += other.concurrent;
        self.indeterminate += other.indeterminate;
        self.violations += other.violations;
        self.first_violation = self.first_violation.take().or(other.first_violation);
    }

    fn add<M: Model>(&mut self, what: &str, model: &M, history: &History<M::Op, M::Ret>) {
        self.histories += 1;
        self.operations += history.ops.len();
        self.concurrent += history.concurrent();
        self.indeterminate += history.indeterminate();
        if check(model, history).is_none() {
            self.violations += 1;
            if self.first_violation.is_none() {
                let text = format!("{what}: no linearization of\n{history}");
                eprintln!("VIOLATION {text}");
                self.first_violation = Some(text);
            }
        }
    }
}

/// [`check_histories`] through `proxy`, its connections reset for 50–200 ms eight times over
/// the run (while a history's clients run): the report, and how many resets.
pub async fn check_histories_across_resets(
    engine: Arc<dyn Engine>,
    proxy: Arc<crate::proxy::FaultProxy>,
    histories: usize,
    seed: u64,
) -> (HistoryReport, usize) {
    let every = (histories / 8).max(10);
    let mut resets = 0;
    let report = check_histories(engine, histories, seed, |i| {
        if i % every == every / 2 {
            resets += 1;
            let proxy = Arc::clone(&proxy);
            // 50–200 ms, from the history index (the run stays reproducible).
            let lasting = std::time::Duration::from_millis(50 + (i as u64).wrapping_mul(2_654_435_761) % 151);
            tokio::spawn(async move {
                proxy.set(crate::proxy::Fault::Reset);
                tokio::time::sleep(lasting).await;
                proxy.set(crate::proxy::Fault::None);
            });
        }
    })
    .await;
    (report, resets)
}

/// [`check_histories`] in batches of ten while `fault` runs on a blocking thread, for faults that
/// take seconds (a restart, a kill -9 and the start after it, a failover): it starts once a
/// quarter of `histories` ran, and batches go on until it has finished and `histories` ran.
pub async fn check_histories_across(
    engine: Arc<dyn Engine>,
    histories: usize,
    seed: u64,
    fault: impl FnOnce() + Send + 'static,
) -> HistoryReport {
    let mut report = HistoryReport::default();
    let (mut fault, mut running) = (Some(fault), None::<tokio::task::JoinHandle<()>>);
    // Each batch its own seed, from `seed`: batches (and runs with nearby seeds) never share keys.
    let mut seeds = fastrand::Rng::with_seed(seed);
    while report.histories < histories || running.as_ref().is_some_and(|r| !r.is_finished()) {
        if report.histories >= histories / 4
            && let Some(fault) = fault.take()
        {
            running = Some(tokio::task::spawn_blocking(fault));
        }
        report.merge(check_histories(Arc::clone(&engine), 10, seeds.u64(..), |_| {}).await);
    }
    if let Some(running) = running {
        running.await.expect("the fault");
    }
    report
}

/// The histories test of a server backend (gate 16): `engine` reaches its server through
/// `proxy`. Histories run while the proxy resets connections, then across `restart` and across
/// `crash` (each on a blocking thread while histories go on). Every history must be
/// linearizable, and the faults must have cut some operations off.
pub async fn assert_linearizable_across_faults(
    backend: &str,
    engine: Arc<dyn Engine>,
    proxy: Arc<crate::proxy::FaultProxy>,
    restart: impl FnOnce() + Send + 'static,
    crash: impl FnOnce() + Send + 'static,
    seed: u64,
) {
    let histories = histories_to_run();
    let check = |what: &str, report: &HistoryReport, histories: usize| {
        println!("{backend}, {what}: {report}");
        assert_eq!(report.violations, 0, "{backend}, {what}: {}", report.first_violation.as_deref().unwrap_or_default());
        assert!(report.histories >= histories, "{backend}, {what}: {report}");
    };
    // The proxy lives to the end: the later phases still go through it.
    let (resets, count) = check_histories_across_resets(Arc::clone(&engine), Arc::clone(&proxy), histories, seed).await;
    check(&format!("{count} connection resets"), &resets, histories);
    assert!(resets.indeterminate > 0, "{backend}: the resets must have cut some operations off");
    let restarted = check_histories_across(Arc::clone(&engine), histories / 2, seed ^ 1, restart).await;
    check("a restart", &restarted, histories / 2);
    let crashed = check_histories_across(engine, histories / 2, seed ^ 2, crash).await;
    check("a kill -9", &crashed, histories / 2);
    assert!(restarted.indeterminate + crashed.indeterminate > 0, "{backend}: the crashes must have cut some operations off");
    drop(proxy);
}

/// Runs `histories` small histories on `engine`, the four models in turn, each on fresh keys
/// (so they are independent), and checks each. `fault(i)` is called once the clients of history
/// `i` are running (after its setup); a fault that should overlap them is spawned by it (it must
/// not block).
pub async fn check_histories(engine: Arc<dyn Engine>, histories: usize, seed: u64, mut fault: impl FnMut(usize)) -> HistoryReport {
    let mut rng = fastrand::Rng::with_seed(seed);
    let run = rng.u32(..);
    let mut report = HistoryReport::default();
    for i in 0..histories {
        let (shape, seed) = (Shape::random(&mut rng), rng.u64(..));
        let key = format!("h{run:08x}-{i}");
        match i % 4 {
            0 => {
                let (model, history) = webhook_history(&engine, &key, shape, seed, || fault(i)).await;
                report.add("webhook claims", &model, &history);
            }
            1 => {
                let (model, history) = job_queue_history(&engine, &key, shape, seed, || fault(i)).await;
                report.add("job-queue leases", &model, &history);
            }
            2 => {
                let (model, history) = token_history(&engine, &key, shape, seed, || fault(i)).await;
                report.add("token consumes", &model, &history);
            }
            _ => {
                let (model, history) = cas_history(&engine, &key, shape, seed, || fault(i)).await;
                report.add("compare-and-set", &model, &history);
            }
        }
    }
    report
}

/// Histories a backend test runs: 1,000 with `ARAGORA_FAULTS=full`, else 100.
pub fn histories_to_run() -> usize {
    if std::env::var("ARAGORA_FAULTS").is_ok_and(|v| v == "full") { 1_000 } else { 100 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register of one integer: reads and writes.
    struct Register;

    #[derive(Debug, Clone)]
    enum RegOp {
        Read,
        Write(u8),
    }

    impl Model for Register {
        type State = u8;
        type Op = RegOp;
        type Ret = Option<u8>;
        fn init(&self) -> u8 {
            0
        }
        fn step(&self, &state: &u8, op: &RegOp) -> Vec<(u8, Option<u8>)> {
            match *op {
                RegOp::Read => vec![(state, Some(state))],
                RegOp::Write(v) => vec![(v, None)],
            }
        }
    }

    #[test]
    fn overlapping_operations_that_some_order_explains_are_accepted() {
        let r = Recorder::new();
        let w = r.invoke(0, RegOp::Write(1));
        let a = r.invoke(1, RegOp::Read);
        r.ret(a, Some(1)); // saw the write before it answered: it took effect already
        let b = r.invoke(2, RegOp::Read);
        r.ret(w, None);
        r.ret(b, Some(1));
        let order = check(&Register, &r.history()).expect("linearizable");
        assert_eq!(order, vec![w, a, b]);
    }

    #[test]
    fn a_stale_read_after_a_write_answered_is_rejected() {
        let r = Recorder::new();
        let w = r.invoke(0, RegOp::Write(1));
        r.ret(w, None);
        let a = r.invoke(1, RegOp::Read);
        r.ret(a, Some(0));
        assert_eq!(check(&Register, &r.history()), None);
        // A read that sees the new value, then one that sees the old: rejected even overlapping the write.
        let r = Recorder::new();
        let w = r.invoke(0, RegOp::Write(1));
        let a = r.invoke(1, RegOp::Read);
        r.ret(a, Some(1));
        let b = r.invoke(1, RegOp::Read);
        r.ret(b, Some(0));
        r.ret(w, None);
        assert_eq!(check(&Register, &r.history()), None);
    }

    #[test]
    fn an_indeterminate_write_may_take_effect_or_not_but_not_both() {
        for seen in [0, 1] {
            let r = Recorder::new();
            let w = r.invoke(0, RegOp::Write(1));
            r.indeterminate(w);
            let a = r.invoke(1, RegOp::Read);
            r.ret(a, Some(seen));
            assert!(check(&Register, &r.history()).is_some(), "reading {seen} after an indeterminate write");
        }
        // Seen, then unseen: no order explains it.
        let r = Recorder::new();
        let w = r.invoke(0, RegOp::Write(1));
        r.indeterminate(w);
        let a = r.invoke(1, RegOp::Read);
        r.ret(a, Some(1));
        let b = r.invoke(1, RegOp::Read);
        r.ret(b, Some(0));
        assert_eq!(check(&Register, &r.history()), None);
        // Never taking effect before the invocation: a read before the write cannot see it.
        let r = Recorder::new();
        let a = r.invoke(1, RegOp::Read);
        r.ret(a, Some(1));
        let w = r.invoke(0, RegOp::Write(1));
        r.indeterminate(w);
        assert_eq!(check(&Register, &r.history()), None);
    }

    #[test]
    fn two_writes_at_one_version_both_succeeding_are_rejected() {
        let model = CasModel { initial: (0, 1) };
        let r = Recorder::new();
        let a = r.invoke(0, CasOp::Write { version: 1, value: 10 });
        let b = r.invoke(1, CasOp::Write { version: 1, value: 20 });
        r.ret(a, CasRet::Written(2));
        r.ret(b, CasRet::Written(2));
        assert_eq!(check(&model, &r.history()), None);
        let r = Recorder::new();
        let a = r.invoke(0, CasOp::Write { version: 1, value: 10 });
        let b = r.invoke(1, CasOp::Write { version: 1, value: 20 });
        r.ret(b, CasRet::Mismatch);
        r.ret(a, CasRet::Written(2));
        let c = r.invoke(1, CasOp::Read);
        r.ret(c, CasRet::Read(10, 2));
        assert_eq!(check(&model, &r.history()), Some(vec![a, b, c]));
    }

    #[test]
    fn a_job_held_by_an_indeterminate_claim_is_not_claimed_again() {
        let model = JobQueueModel { jobs: 1 };
        let r = Recorder::new();
        let a = r.invoke(0, JobOp::Claim { tag: (0, 0), took: Took::Unknown });
        r.indeterminate(a);
        let b = r.invoke(1, JobOp::Claim { tag: (1, 0), took: Took::Unknown });
        r.ret_as(b, JobOp::Claim { tag: (1, 0), took: Took::Nothing }, JobRet::Empty); // the open claim took the job
        assert!(check(&model, &r.history()).is_some());
        let r = Recorder::new();
        let a = r.invoke(0, JobOp::Claim { tag: (0, 0), took: Took::Job(0) });
        r.ret(a, JobRet::Claimed);
        let b = r.invoke(1, JobOp::Claim { tag: (1, 0), took: Took::Job(0) });
        r.ret(b, JobRet::Claimed);
        assert_eq!(check(&model, &r.history()), None, "one job, two holders");
    }
}
