//! The job queue on SQLite. Every write runs on the one writer inside its `BEGIN IMMEDIATE`
//! transaction, so a claim (`UPDATE .. WHERE id IN (SELECT .. LIMIT n) RETURNING`) and a fair
//! placement (two index probes, then the insert) see no interleaving writer.

use crate::connection::{Readers, Writer};
use crate::{BACKEND, instant};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ToSql};
use std::sync::Arc;
use storage_core::clock::to_micros;
use storage_core::stores::job_queue::{Enqueued, Grant, Job, JobFilter, JobRows, JobState, Settle, fair_place};
use storage_core::{Result, StorageError, TenantId};
use storage_schema::{sqlite_error, sqlite_unique_violation};
use uuid::Uuid;

/// The columns every read returns, in [`StoredJob::read`] order.
const COLUMNS: &str = "id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, dedupe_key, \
     lease_token, lease_expires_at, worker, last_error, result, created_at, updated_at, started_at, finished_at";
const HOLDER: &str = "SELECT id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, dedupe_key, \
     lease_token, lease_expires_at, worker, last_error, result, created_at, updated_at, started_at, finished_at \
     FROM jobs WHERE tenant = ?1 AND queue = ?2 AND dedupe_key = ?3 AND state IN ('available', 'running')";
/// The smallest fair place of a queue's waiting jobs.
pub const HEAD: &str = "SELECT min(fair_at) FROM jobs WHERE queue = ?1 AND state = 'available'";
/// The largest fair place of a tenant's waiting jobs in a queue.
pub const TAIL: &str = "SELECT max(fair_at) FROM jobs WHERE queue = ?1 AND tenant = ?2 AND state = 'available'";
/// Stores a new job (see `JobRows::insert`).
pub const INSERT: &str = "INSERT INTO jobs (id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, \
     dedupe_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'available', 0, ?7, ?8, ?9, ?10, ?11, ?11)";
/// Claims up to a limit of due jobs of a queue, returning them.
pub const CLAIM: &str = "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = ?1, lease_expires_at = ?2, worker = ?3, \
     started_at = ?4, updated_at = ?4 WHERE id IN (SELECT id FROM jobs WHERE queue = ?5 AND state = 'available' AND run_at <= ?4 \
     ORDER BY priority DESC, fair_at, id LIMIT ?6) \
     RETURNING id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, dedupe_key, \
     lease_token, lease_expires_at, worker, last_error, result, created_at, updated_at, started_at, finished_at";
/// Compare-and-sets jobs on their state and lease token.
pub const SETTLE: &str = "UPDATE jobs SET state = ?1, attempts = ?2, run_at = ?3, lease_token = ?4, lease_expires_at = ?5, last_error = ?6, \
     result = ?7, updated_at = ?8, finished_at = ?9 WHERE id = ?10 AND state = ?11 AND lease_token IS ?12 \
     AND (?13 IS NULL OR lease_expires_at <= ?13)";
const LAPSED: &str = "SELECT id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, dedupe_key, \
     lease_token, lease_expires_at, worker, last_error, result, created_at, updated_at, started_at, finished_at \
     FROM jobs WHERE queue = ?1 AND state = 'running' AND lease_expires_at <= ?2 ORDER BY lease_expires_at, id LIMIT ?3";
const PRUNE: &str = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE queue = ?1 AND finished_at < ?2 \
     AND state IN (SELECT value FROM json_each(?3)) LIMIT ?4)";

/// The job queue on SQLite.
#[derive(Debug)]
pub(crate) struct SqliteJobs {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
}

impl SqliteJobs {
    pub(crate) fn new(writer: Arc<Writer>, readers: Arc<Readers>) -> Self {
        Self { writer, readers }
    }
}

/// A job's columns as stored.
struct StoredJob {
    id: String,
    tenant: String,
    queue: String,
    kind: String,
    payload: String,
    priority: i16,
    state: String,
    attempts: i64,
    max_attempts: i64,
    run_at: i64,
    fair_at: i64,
    dedupe_key: Option<String>,
    lease_token: Option<String>,
    lease_expires_at: Option<i64>,
    worker: Option<String>,
    last_error: Option<String>,
    result: Option<String>,
    created_at: i64,
    updated_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl StoredJob {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            tenant: row.get(1)?,
            queue: row.get(2)?,
            kind: row.get(3)?,
            payload: row.get(4)?,
            priority: row.get(5)?,
            state: row.get(6)?,
            attempts: row.get(7)?,
            max_attempts: row.get(8)?,
            run_at: row.get(9)?,
            fair_at: row.get(10)?,
            dedupe_key: row.get(11)?,
            lease_token: row.get(12)?,
            lease_expires_at: row.get(13)?,
            worker: row.get(14)?,
            last_error: row.get(15)?,
            result: row.get(16)?,
            created_at: row.get(17)?,
            updated_at: row.get(18)?,
            started_at: row.get(19)?,
            finished_at: row.get(20)?,
        })
    }

    fn into_job(self) -> Result<Job> {
        let corrupt = |what: String| StorageError::corrupt(BACKEND, format!("job `{}`: {what}", self.id));
        let count = |n: i64| u16::try_from(n).map_err(|_| corrupt(format!("count {n}")));
        Ok(Job {
            tenant: TenantId::stored(self.tenant.clone()).map_err(|e| corrupt(e.to_string()))?,
            queue: self.queue.clone(),
            kind: self.kind.clone(),
            payload: serde_json::from_str(&self.payload).map_err(|e| corrupt(e.to_string()))?,
            priority: self.priority,
            state: JobState::parse(&self.state).ok_or_else(|| corrupt(format!("state {}", self.state)))?,
            attempts: count(self.attempts)?,
            max_attempts: count(self.max_attempts)?,
            run_at: instant(self.run_at)?,
            fair_at: instant(self.fair_at)?,
            dedupe_key: self.dedupe_key.clone(),
            lease_token: self.lease_token.as_deref().map(Uuid::parse_str).transpose().map_err(|e| corrupt(e.to_string()))?,
            lease_expires_at: self.lease_expires_at.map(instant).transpose()?,
            worker: self.worker.clone(),
            last_error: self.last_error.clone(),
            result: self.result.clone(),
            created_at: instant(self.created_at)?,
            updated_at: instant(self.updated_at)?,
            started_at: self.started_at.map(instant).transpose()?,
            finished_at: self.finished_at.map(instant).transpose()?,
            id: self.id,
        })
    }
}

fn jobs(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<Vec<Job>> {
    let mut statement = conn.prepare_cached(sql).map_err(sqlite_error)?;
    let stored = statement.query_map(args, StoredJob::read).map_err(sqlite_error)?.collect::<rusqlite::Result<Vec<_>>>();
    stored.map_err(sqlite_error)?.into_iter().map(StoredJob::into_job).collect()
}

fn optional_instant(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<Option<DateTime<Utc>>> {
    let micros: Option<i64> = conn.prepare_cached(sql).and_then(|mut s| s.query_row(args, |row| row.get(0))).map_err(sqlite_error)?;
    micros.map(instant).transpose()
}

/// The `WHERE` of a list or count, and its arguments.
fn filtered(filter: &JobFilter) -> (String, Vec<String>) {
    let mut sql = String::from(" FROM jobs WHERE queue = ?1");
    let mut args = vec![filter.queue.clone()];
    if let Some(state) = filter.state {
        args.push(state.as_str().to_owned());
        sql.push_str(&format!(" AND state = ?{}", args.len()));
    }
    if let Some(tenant) = &filter.tenant {
        args.push(tenant.as_str().to_owned());
        sql.push_str(&format!(" AND tenant = ?{}", args.len()));
    }
    (sql, args)
}

fn insert(conn: &Connection, job: &Job) -> Result<Enqueued> {
    let (tenant, queue) = (job.tenant.as_str(), job.queue.as_str());
    if let Some(key) = &job.dedupe_key
        && let Some(holder) = jobs(conn, HOLDER, &[&tenant, &queue, key])?.pop()
    {
        return Ok(Enqueued { job: holder, created: false });
    }
    let head = optional_instant(conn, HEAD, &[&queue])?;
    let own = optional_instant(conn, TAIL, &[&queue, &tenant])?;
    let stored = Job { fair_at: fair_place(head, own, job.fair_at), ..job.clone() };
    let payload = serde_json::to_string(&stored.payload).map_err(|e| StorageError::invalid("payload", e))?;
    conn.prepare_cached(INSERT)
        .and_then(|mut s| {
            s.execute((
                &stored.id,
                tenant,
                queue,
                &stored.kind,
                payload,
                stored.priority,
                stored.max_attempts,
                to_micros(stored.run_at),
                to_micros(stored.fair_at),
                &stored.dedupe_key,
                to_micros(stored.created_at),
            ))
        })
        .map_err(sqlite_error)?;
    Ok(Enqueued { job: stored, created: true })
}

fn settle(conn: &Connection, change: &Settle) -> Result<bool> {
    let job = &change.job;
    let done = conn.prepare_cached(SETTLE).and_then(|mut s| {
        s.execute(rusqlite::params![
            job.state.as_str(),
            job.attempts,
            to_micros(job.run_at),
            job.lease_token.map(|t| t.to_string()),
            job.lease_expires_at.map(to_micros),
            job.last_error,
            job.result,
            to_micros(job.updated_at),
            job.finished_at.map(to_micros),
            job.id,
            change.expect_state.as_str(),
            change.expect_token.map(|t| t.to_string()),
            change.expect_lapsed_by.map(to_micros),
        ])
    });
    match done {
        Ok(n) => Ok(n == 1),
        Err(e) if sqlite_unique_violation(&e) => {
            Err(StorageError::conflict("job", &job.id, "its dedupe key is held by another waiting or running job"))
        }
        Err(e) => Err(sqlite_error(e)),
    }
}

#[async_trait]
impl JobRows for SqliteJobs {
    async fn insert(&self, jobs: &[Job]) -> Result<Vec<Enqueued>> {
        let jobs = jobs.to_vec();
        // One write: the batch commits together, its jobs placed in order.
        self.writer.write(move |conn| jobs.iter().map(|job| insert(conn, job)).collect()).await
    }

    async fn claim(&self, queue: &str, grant: &Grant, limit: u32) -> Result<Vec<Job>> {
        let (queue, grant) = (queue.to_owned(), grant.clone());
        let mut claimed = self
            .writer
            .write(move |conn| {
                let args: [&dyn ToSql; 6] =
                    [&grant.token.to_string(), &to_micros(grant.expires_at), &grant.worker, &to_micros(grant.now), &queue, &limit];
                jobs(conn, CLAIM, &args)
            })
            .await?;
        claimed.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.fair_at.cmp(&b.fair_at)).then(a.id.cmp(&b.id)));
        Ok(claimed)
    }

    async fn settle(&self, changes: &[Settle]) -> Result<Vec<bool>> {
        let changes = changes.to_vec();
        self.writer.write(move |conn| changes.iter().map(|change| settle(conn, change)).collect()).await
    }

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Job>> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1 AND tenant = ?2");
        Ok(self.readers.read(|conn| jobs(conn, &sql, &[&id, &tenant.as_str()])).await?.pop())
    }

    async fn list(&self, filter: &JobFilter, after: Option<&str>, limit: u32) -> Result<Vec<Job>> {
        let (mut sql, mut args) = filtered(filter);
        if let Some(after) = after {
            args.push(after.to_owned());
            sql.push_str(&format!(" AND id > ?{}", args.len()));
        }
        let sql = format!("SELECT {COLUMNS}{sql} ORDER BY id LIMIT {limit}");
        self.readers.read(|conn| jobs(conn, &sql, &args.iter().map(|a| a as &dyn ToSql).collect::<Vec<_>>())).await
    }

    async fn count(&self, filter: &JobFilter) -> Result<u64> {
        let (sql, args) = filtered(filter);
        let sql = format!("SELECT count(*){sql}");
        let n: i64 = self
            .readers
            .read(|conn| {
                let args: Vec<&dyn ToSql> = args.iter().map(|a| a as &dyn ToSql).collect();
                conn.prepare_cached(&sql).and_then(|mut s| s.query_row(args.as_slice(), |row| row.get(0))).map_err(sqlite_error)
            })
            .await?;
        u64::try_from(n).map_err(|_| StorageError::corrupt(BACKEND, format!("count {n}")))
    }

    async fn lapsed(&self, queue: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        self.readers.read(|conn| jobs(conn, LAPSED, &[&queue, &to_micros(now), &limit])).await
    }

    async fn prune(&self, queue: &str, states: &[JobState], before: DateTime<Utc>, limit: u32) -> Result<u64> {
        let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        let args =
            (queue.to_owned(), to_micros(before), serde_json::to_string(&states).map_err(|e| StorageError::backend(BACKEND, e))?, limit);
        let removed =
            self.writer.write(move |conn| conn.prepare_cached(PRUNE).and_then(|mut s| s.execute(args)).map_err(sqlite_error)).await?;
        Ok(removed as u64)
    }
}
