//! The connections: a few readers used in place, and one writer shared by group commit.
//!
//! SQLite is a C library: a statement costs microseconds, so handing each one to another thread
//! (a wake-up costs tens of microseconds on a small VM) would cost more than the statement.
//! Reads therefore run where the caller is, on a reader connection taken from a small pool.
//! Writes go through one connection, and the callers themselves commit for each other: the caller
//! that finds the writer free becomes the leader, takes every write queued so far into one
//! `BEGIN IMMEDIATE` transaction (each write in its own `SAVEPOINT`, so a failing write rolls back
//! alone), commits, and answers the others only after `COMMIT` has returned. While it works, later
//! callers queue; when it is done it wakes them and one of them leads the next batch. One fsync
//! then serves a whole batch, which is what makes `synchronous=FULL` affordable.

use rusqlite::Connection;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use storage_core::{Result, StorageError};
use storage_schema::sqlite_error;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{Notify, Semaphore};

use crate::BACKEND;

/// Runs `work` off the async worker when it may take long (a scan, an fsync): on a multi-thread
/// runtime the worker hands its other tasks to another thread for the duration; elsewhere (a
/// current-thread runtime, no runtime) it runs in place.
pub(crate) fn offload<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn closed() -> StorageError {
    StorageError::Unavailable { backend: BACKEND, source: "the SQLite database was closed".into() }
}

/// Reader connections, used in place by the task that takes one.
#[derive(Debug)]
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    size: usize,
    /// Callers waiting for a reader now.
    waiting: std::sync::atomic::AtomicUsize,
}

impl Readers {
    pub(crate) fn new(connections: Vec<Connection>) -> Self {
        let permits = Semaphore::new(connections.len());
        let size = connections.len();
        Self { idle: Mutex::new(connections), permits, size, waiting: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// Readers open, lent out, and callers waiting for one.
    pub(crate) fn occupancy(&self) -> (usize, usize, usize) {
        let idle = lock(&self.idle).len();
        (self.size, self.size.saturating_sub(idle), self.waiting.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Runs `read` on a reader connection, in place; waits (without blocking) while all are busy.
    pub(crate) async fn read<R>(&self, read: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let waiting = Counted::enter(&self.waiting);
        let _permit = self.permits.acquire().await.map_err(|_| closed())?;
        drop(waiting);
        // A permit guarantees an idle connection; it is returned even if `read` panics.
        let conn = lock(&self.idle).pop().ok_or_else(closed)?;
        let returned = ReturnOnDrop { readers: self, conn: Some(conn) };
        read(returned.conn.as_ref().ok_or_else(closed)?)
    }

    /// As [`Readers::read`], for work that may take long (scans, large pages): off the worker.
    pub(crate) async fn scan<R>(&self, read: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        self.read(|conn| offload(|| read(conn))).await
    }

    pub(crate) fn close(&self) {
        self.permits.close();
        lock(&self.idle).clear();
    }
}

struct ReturnOnDrop<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl Drop for ReturnOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !self.readers.permits.is_closed()
        {
            lock(&self.readers.idle).push(conn);
        }
    }
}

/// A write waiting for the writer: `run` executes it inside the batch transaction and says whether
/// it succeeded (its savepoint is kept); `answer` delivers its result, or the error that kept the
/// batch from committing, once the batch's fate is known.
struct Queued {
    run: Box<dyn FnOnce(&Connection) -> bool + Send>,
    answer: Answer,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct WriterState {
    conn: Option<Connection>,
    queue: VecDeque<Queued>,
    closed: bool,
}

/// The one writer connection and the queue of writes waiting for it.
pub(crate) struct Writer {
    state: Mutex<WriterState>,
    /// Callers inside [`Writer::write`] now.
    writers: std::sync::atomic::AtomicUsize,
    /// `synchronous=FULL` or `EXTRA`: a commit waits for the disk, so batches run off the worker.
    durable: bool,
    checkpointer: Checkpointer,
}

impl Writer {
    /// Callers inside [`Writer::write`] now: one writing, the rest queued.
    pub(crate) fn callers(&self) -> usize {
        self.writers.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("durable", &self.durable).finish_non_exhaustive()
    }
}

/// Counts a caller in for as long as it is inside [`Writer::write`] (also when its future is
/// dropped halfway).
struct Counted<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Counted<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The outcome of one write: staged when it ran, delivered when its batch committed.
struct Slot<R> {
    staged: Mutex<Option<Result<R>>>,
    delivered: Mutex<Option<Result<R>>>,
}

/// Why a write that succeeded on its own did not commit.
#[derive(Clone, Copy)]
enum Failure<'a> {
    /// The batch could not begin or commit.
    Sqlite(&'a rusqlite::Error),
    /// SQLite rolled the transaction back after another write of the batch failed badly.
    RolledBack,
}

impl Failure<'_> {
    /// A copy of the failure for each write of the batch (the driver error is not `Clone`).
    fn to_error(self) -> StorageError {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
                sqlite_error(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            Self::Sqlite(other) => StorageError::backend(BACKEND, other.to_string()),
            Self::RolledBack => StorageError::Unavailable {
                backend: BACKEND,
                source: "SQLite rolled back the transaction after an error in another write of the same batch".into(),
            },
        }
    }
}

type Answer = Box<dyn FnOnce(Option<Failure<'_>>) + Send>;

impl Writer {
    /// The writer over `conn`, whose automatic checkpoints must be off: `checkpointer` does them.
    pub(crate) fn new(conn: Connection, durable: bool, checkpointer: Checkpointer) -> Self {
        Self {
            state: Mutex::new(WriterState { conn: Some(conn), ..WriterState::default() }),
            writers: std::sync::atomic::AtomicUsize::new(0),
            durable,
            checkpointer,
        }
    }

    /// Runs `write` as one atomic unit in the next group commit; returns its result once the
    /// transaction it was part of has committed (or the error that kept it from committing).
    pub(crate) async fn write<R: Send + 'static>(&self, write: impl FnOnce(&Connection) -> Result<R> + Send + 'static) -> Result<R> {
        let _counted = Counted::enter(&self.writers);
        let slot = Arc::new(Slot { staged: Mutex::new(None), delivered: Mutex::new(None) });
        let wake = Arc::new(Notify::new());
        let run = {
            let slot = Arc::clone(&slot);
            Box::new(move |conn: &Connection| {
                let outcome = write(conn);
                let ok = outcome.is_ok();
                *lock(&slot.staged) = Some(outcome);
                ok
            })
        };
        let answer = {
            let (slot, wake) = (Arc::clone(&slot), Arc::clone(&wake));
            Box::new(move |failure: Option<Failure<'_>>| {
                let outcome = match (lock(&slot.staged).take(), failure) {
                    (Some(Err(own)), _) => Err(own),
                    (_, Some(failure)) => Err(failure.to_error()),
                    (Some(Ok(value)), None) => Ok(value),
                    (None, None) => Err(StorageError::backend(BACKEND, "the write panicked")),
                };
                *lock(&slot.delivered) = Some(outcome);
                wake.notify_one();
            })
        };
        {
            let mut state = lock(&self.state);
            if state.closed {
                return Err(closed());
            }
            state.queue.push_back(Queued { run, answer, wake: Arc::clone(&wake) });
        }
        loop {
            if let Some(result) = lock(&slot.delivered).take() {
                return result;
            }
            let batch = {
                let mut state = lock(&self.state);
                match state.conn.take() {
                    Some(conn) => Some((conn, std::mem::take(&mut state.queue))),
                    None if state.closed => return Err(closed()),
                    None => None,
                }
            };
            match batch {
                Some((conn, jobs)) => {
                    let restart = self.checkpointer.wrote(jobs.len());
                    let conn = if self.durable { offload(|| run_batch(conn, jobs)) } else { run_batch(conn, jobs) };
                    if restart {
                        // The checkpointer thread copies pages while writes go on, so it can
                        // never catch up with the last ones, and a WAL is only rewound once
                        // every frame is back in the database: without this it grows forever.
                        // Here no write can be appended meanwhile; most pages are copied
                        // already, so this finishes the job, and the next write rewinds the WAL.
                        let finished = offload(|| finish_checkpoint(&conn));
                        self.checkpointer.restarted(finished);
                    }
                    {
                        let mut state = lock(&self.state);
                        state.conn = Some(conn);
                        // Whoever is queued now needs a leader: wake them all (at most one per
                        // concurrent writer); the first to get here leads, the others wait again.
                        for queued in &state.queue {
                            queued.wake.notify_one();
                        }
                    }
                    // When others are writing too, let the callers just answered or woken run
                    // before this one writes again, so their next writes join the next batch
                    // instead of trailing it one by one (and a busy writer cannot starve the
                    // others). A writer alone skips it: a yield costs a trip through the runtime.
                    if self.writers.load(std::sync::atomic::Ordering::Relaxed) > 1 {
                        tokio::task::yield_now().await;
                    }
                }
                None => wake.notified().await,
            }
        }
    }

    /// Takes the connection back once no batch runs, for closing; later writes fail.
    pub(crate) async fn close(&self) -> Option<Connection> {
        self.checkpointer.stop();
        for _ in 0..10_000 {
            {
                let mut state = lock(&self.state);
                state.closed = true;
                if let Some(conn) = state.conn.take() {
                    return Some(conn);
                }
            }
            // A leader holds the connection; it puts it back when its batch ends.
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        None
    }
}

/// Runs one batch on the writer: `BEGIN IMMEDIATE`, each write in its own savepoint, `COMMIT`,
/// then answers every caller. A write that fails (or panics) rolls back to its savepoint and fails
/// alone; a batch of one needs no savepoint.
fn run_batch(conn: Connection, jobs: VecDeque<Queued>) -> Connection {
    let single = jobs.len() == 1;
    let mut committed_with: Vec<Answer> = Vec::with_capacity(jobs.len());
    let mut open = false;
    for Queued { run, answer, .. } in jobs {
        if !open {
            if let Err(e) = execute(&conn, "BEGIN IMMEDIATE") {
                // The write lock could not be had (another process held it past busy_timeout).
                answer(Some(Failure::Sqlite(&e)));
                continue;
            }
            open = true;
        }
        if !single && let Err(e) = execute(&conn, "SAVEPOINT w") {
            answer(Some(Failure::Sqlite(&e)));
            continue;
        }
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&conn))).unwrap_or(false);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a full disk): the writes
            // before this one in the batch are gone too, and their callers must hear so.
            for earlier in committed_with.drain(..) {
                earlier(Some(Failure::RolledBack));
            }
            answer(ok.then_some(Failure::RolledBack));
            open = false;
            continue;
        }
        let kept = match (ok, single) {
            (true, true) => Ok(()),
            (true, false) => execute(&conn, "RELEASE w"),
            (false, true) => {
                let _ = execute(&conn, "ROLLBACK");
                open = false;
                answer(None);
                continue;
            }
            (false, false) => {
                let _ = execute(&conn, "ROLLBACK TO w").and_then(|()| execute(&conn, "RELEASE w"));
                answer(None);
                continue;
            }
        };
        match kept {
            Ok(()) => committed_with.push(answer),
            Err(e) => answer(Some(Failure::Sqlite(&e))),
        }
    }
    if open {
        let committed = execute(&conn, "COMMIT");
        if committed.is_err() && !conn.is_autocommit() {
            let _ = execute(&conn, "ROLLBACK");
        }
        let failure = committed.err();
        for answer in committed_with {
            answer(failure.as_ref().map(Failure::Sqlite));
        }
    }
    conn
}

/// A checkpoint on the writer connection, between batches: it can copy every frame, so the next
/// write rewinds the WAL. Whether it did: it cannot while the checkpointer thread holds the
/// checkpoint lock or a reader still needs old frames, and then the writer tries again after its
/// next batch.
fn finish_checkpoint(conn: &Connection) -> bool {
    // One row: whether it was blocked, the frames in the WAL, the frames copied back.
    match conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)))
    {
        Ok((busy, frames, copied)) => busy == 0 && frames == copied,
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint on the writer failed; it is retried");
            false
        }
    }
}

fn execute(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Checkpoints the WAL on a thread of its own, so that no write pays for copying pages into the
/// database file and syncing it (SQLite's automatic checkpoint runs inside the `COMMIT` that
/// crosses its threshold: a few milliseconds every few hundred writes). A `PASSIVE` checkpoint
/// never blocks the writer or the readers.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    poke: std::sync::mpsc::SyncSender<bool>,
    writes: std::sync::atomic::AtomicUsize,
    /// The writer's last checkpoint did not finish: it tries again after every batch until one does.
    restart_owed: std::sync::atomic::AtomicBool,
}

/// Writes between two checkpoints (each touches a few pages; SQLite's own default is 1,000 pages).
const CHECKPOINT_EVERY: usize = 256;
/// Writes between two checkpoints on the writer itself, which let the WAL rewind (see
/// [`Writer::write`]).
const RESTART_EVERY: usize = 1_024;
/// A checkpoint runs at least this often while the database is open.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Checkpointer {
    /// Starts the checkpointer on its own connection.
    pub(crate) fn start(conn: Connection) -> Result<Self> {
        let (poke, poked) = std::sync::mpsc::sync_channel::<bool>(1);
        std::thread::Builder::new()
            .name("aragora-sqlite-checkpoint".into())
            .spawn(move || {
                loop {
                    match poked.recv_timeout(CHECKPOINT_INTERVAL) {
                        Ok(true) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                                tracing::warn!(error = %e, "WAL checkpoint failed; it is retried");
                            }
                        }
                        // Stopped, or the backend is gone.
                        Ok(false) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(|e| StorageError::backend(BACKEND, e))?;
        Ok(Self { poke, writes: std::sync::atomic::AtomicUsize::new(0), restart_owed: std::sync::atomic::AtomicBool::new(false) })
    }

    /// Counts `n` writes about to commit; every [`CHECKPOINT_EVERY`] of them, wakes the thread.
    /// Whether the writer should finish a checkpoint itself after them (every [`RESTART_EVERY`],
    /// and after every batch while the last one did not finish).
    fn wrote(&self, n: usize) -> bool {
        let before = self.writes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        let after = before.wrapping_add(n);
        if before.checked_div(CHECKPOINT_EVERY) != after.checked_div(CHECKPOINT_EVERY) {
            let _ = self.poke.try_send(true);
        }
        before.checked_div(RESTART_EVERY) != after.checked_div(RESTART_EVERY)
            || self.restart_owed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records whether the writer's checkpoint finished (see [`finish_checkpoint`]).
    fn restarted(&self, finished: bool) {
        self.restart_owed.store(!finished, std::sync::atomic::Ordering::Relaxed);
    }

    fn stop(&self) {
        let _ = self.poke.try_send(false);
    }
}
