//! The job queue on PostgreSQL: a claim is one `UPDATE .. FROM (SELECT .. FOR UPDATE SKIP
//! LOCKED)`, so concurrent claimers skip each other's rows instead of waiting on them; a fair
//! placement is computed inside the insert; a batch of compare-and-sets is one `UPDATE .. FROM
//! UNNEST(..)`.

use crate::BACKEND;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Row};
use storage_core::stores::job_queue::{Enqueued, Grant, Job, JobFilter, JobRows, JobState, Settle};
use storage_core::{Result, StorageError, TenantId};
use storage_router::ConnectionRouter;
use storage_schema::{pg_unique_violation, sqlx_error};
use uuid::Uuid;

/// The columns every read returns, in [`job`] order.
const COLUMNS: &str = "id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, dedupe_key, \
     lease_token, lease_expires_at, worker, last_error, result, created_at, updated_at, started_at, finished_at";
/// The insert, placed fairly (`fair_place` of storage-core, in SQL): on an empty queue at the
/// enqueue instant; else at the queue's head, or just after the tenant's last placed job when that
/// is later. The tenant's lane row is the serialisation point: its upsert locks it and reads the
/// latest committed `last`, so concurrent enqueues of one tenant never share a place (the
/// statement's snapshot alone would not show a concurrent insert). Nothing is inserted when an
/// unfinished job holds the dedupe key.
pub const INSERT: &str = "WITH head AS (SELECT min(fair_at) AS at FROM jobs WHERE queue = $3 AND state = 'available'), \
     tail AS (SELECT max(fair_at) AS at FROM jobs WHERE queue = $3 AND tenant = $2 AND state = 'available'), \
     lane AS (INSERT INTO job_lanes (queue, tenant, last) \
     SELECT $3, $2, CASE WHEN head.at IS NULL THEN $10 WHEN tail.at IS NULL THEN head.at \
     ELSE GREATEST(head.at, tail.at + interval '1 microsecond') END FROM head, tail \
     ON CONFLICT (queue, tenant) DO UPDATE SET last = CASE \
     WHEN (SELECT at FROM tail) IS NULL THEN excluded.last \
     ELSE GREATEST(excluded.last, job_lanes.last + interval '1 microsecond') END \
     RETURNING last) \
     INSERT INTO jobs (id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, \
     dedupe_key, created_at, updated_at) \
     SELECT $1, $2, $3, $4, $5, $6, 'available', 0, $7, $8, lane.last, $9, $10, $10 FROM lane \
     ON CONFLICT (tenant, queue, dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING \
     RETURNING fair_at";
/// Locks (creating them if need be) the lanes of a batch, in the order given.
const LOCK_LANES: &str = "INSERT INTO job_lanes (queue, tenant, last) \
     SELECT q, t, '-infinity' FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS l(q, t, n) ORDER BY n \
     ON CONFLICT (queue, tenant) DO UPDATE SET last = job_lanes.last";
const HOLDER: &str = "SELECT id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, dedupe_key, \
     lease_token, lease_expires_at, worker, last_error, result, created_at, updated_at, started_at, finished_at \
     FROM jobs WHERE tenant = $1 AND queue = $2 AND dedupe_key = $3 AND state IN ('available', 'running')";
/// Claims up to a limit of due jobs of a queue, returning them.
pub const CLAIM: &str = "UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1, lease_token = $1, lease_expires_at = $2, \
     worker = $3, started_at = $4, updated_at = $4 \
     FROM (SELECT id FROM jobs WHERE queue = $5 AND state = 'available' AND run_at <= $4 \
     ORDER BY priority DESC, fair_at, id LIMIT $6 FOR UPDATE SKIP LOCKED) AS picked WHERE jobs.id = picked.id \
     RETURNING jobs.id, jobs.tenant, jobs.queue, jobs.kind, jobs.payload, jobs.priority, jobs.state, jobs.attempts, \
     jobs.max_attempts, jobs.run_at, jobs.fair_at, jobs.dedupe_key, jobs.lease_token, jobs.lease_expires_at, jobs.worker, \
     jobs.last_error, jobs.result, jobs.created_at, jobs.updated_at, jobs.started_at, jobs.finished_at";
/// Compare-and-sets jobs on their state and lease token.
pub const SETTLE: &str = "UPDATE jobs SET state = c.state, attempts = c.attempts, run_at = c.run_at, lease_token = c.lease_token, \
     lease_expires_at = c.lease_expires_at, last_error = c.last_error, result = c.result, updated_at = c.updated_at, \
     finished_at = c.finished_at \
     FROM UNNEST($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::uuid[], $6::timestamptz[], $7::text[], $8::text[], \
     $9::timestamptz[], $10::timestamptz[], $11::text[], $12::uuid[], $13::timestamptz[]) \
     AS c(id, state, attempts, run_at, lease_token, lease_expires_at, last_error, result, updated_at, finished_at, expect_state, expect_token, \
     lapsed_by) \
     WHERE jobs.id = c.id AND jobs.state = c.expect_state AND jobs.lease_token IS NOT DISTINCT FROM c.expect_token \
     AND (c.lapsed_by IS NULL OR jobs.lease_expires_at <= c.lapsed_by) \
     RETURNING jobs.id";
const GET: &str = "SELECT id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, dedupe_key, \
     lease_token, lease_expires_at, worker, last_error, result, created_at, updated_at, started_at, finished_at \
     FROM jobs WHERE id = $1 AND tenant = $2";
const LAPSED: &str = "SELECT id, tenant, queue, kind, payload, priority, state, attempts, max_attempts, run_at, fair_at, dedupe_key, \
     lease_token, lease_expires_at, worker, last_error, result, created_at, updated_at, started_at, finished_at \
     FROM jobs WHERE queue = $1 AND state = 'running' AND lease_expires_at <= $2 ORDER BY lease_expires_at, id LIMIT $3";
const PRUNE: &str = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE queue = $1 AND finished_at < $2 AND state = ANY($3) LIMIT $4)";
/// How often an enqueue tries again when the job holding its dedupe key finished in between.
const INSERT_ATTEMPTS: usize = 16;

/// The job queue on PostgreSQL.
#[derive(Debug)]
pub(crate) struct PostgresJobs {
    router: ConnectionRouter,
}

impl PostgresJobs {
    pub(crate) fn new(router: ConnectionRouter) -> Self {
        Self { router }
    }
}

fn job(row: &PgRow) -> Result<Job> {
    let get = |e: sqlx::Error| sqlx_error(e);
    let id: Uuid = row.try_get(0).map_err(get)?;
    let corrupt = |what: String| StorageError::corrupt(BACKEND, format!("job `{id}`: {what}"));
    let count = |i: usize| -> Result<u16> {
        let n: i32 = row.try_get(i).map_err(get)?;
        u16::try_from(n).map_err(|_| corrupt(format!("count {n}")))
    };
    let state: String = row.try_get(6).map_err(get)?;
    let payload: String = row.try_get(4).map_err(get)?;
    Ok(Job {
        id: id.to_string(),
        tenant: TenantId::stored(row.try_get::<String, _>(1).map_err(get)?).map_err(|e| corrupt(e.to_string()))?,
        queue: row.try_get(2).map_err(get)?,
        kind: row.try_get(3).map_err(get)?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt(e.to_string()))?,
        priority: row.try_get(5).map_err(get)?,
        state: JobState::parse(&state).ok_or_else(|| corrupt(format!("state {state}")))?,
        attempts: count(7)?,
        max_attempts: count(8)?,
        run_at: row.try_get(9).map_err(get)?,
        fair_at: row.try_get(10).map_err(get)?,
        dedupe_key: row.try_get(11).map_err(get)?,
        lease_token: row.try_get(12).map_err(get)?,
        lease_expires_at: row.try_get(13).map_err(get)?,
        worker: row.try_get(14).map_err(get)?,
        last_error: row.try_get(15).map_err(get)?,
        result: row.try_get(16).map_err(get)?,
        created_at: row.try_get(17).map_err(get)?,
        updated_at: row.try_get(18).map_err(get)?,
        started_at: row.try_get(19).map_err(get)?,
        finished_at: row.try_get(20).map_err(get)?,
    })
}

/// A job id as stored: a UUID (the store checked it).
fn uuid(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| StorageError::invalid("job id", format!("`{id}` is not a UUID")))
}

/// The `WHERE` of a list or count, from constants only (every value is bound): `$1` is the
/// queue, then the state and tenant when given; and the next parameter's number.
fn filtered(filter: &JobFilter) -> (String, usize) {
    let mut clauses = vec!["queue = $1".to_owned()];
    if filter.state.is_some() {
        clauses.push(format!("state = ${}", clauses.len().saturating_add(1)));
    }
    if filter.tenant.is_some() {
        clauses.push(format!("tenant = ${}", clauses.len().saturating_add(1)));
    }
    let next = clauses.len().saturating_add(1);
    (format!(" FROM jobs WHERE {}", clauses.join(" AND ")), next)
}

fn bind_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    filter: &'q JobFilter,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut query = query.bind(filter.queue.as_str());
    if let Some(state) = filter.state {
        query = query.bind(state.as_str());
    }
    if let Some(tenant) = &filter.tenant {
        query = query.bind(tenant.as_str());
    }
    query
}

/// Stores one job on `conn` (see [`JobRows::insert`]).
async fn insert(conn: &mut PgConnection, new: &Job) -> Result<Enqueued> {
    for _ in 0..INSERT_ATTEMPTS {
        let payload = serde_json::to_string(&new.payload).map_err(|e| StorageError::invalid("payload", e))?;
        let placed: Option<DateTime<Utc>> = sqlx::query_scalar(INSERT)
            .bind(uuid(&new.id)?)
            .bind(new.tenant.as_str())
            .bind(&new.queue)
            .bind(&new.kind)
            .bind(payload)
            .bind(new.priority)
            .bind(i32::from(new.max_attempts))
            .bind(new.run_at)
            .bind(&new.dedupe_key)
            .bind(new.created_at)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sqlx_error)?;
        if let Some(fair_at) = placed {
            return Ok(Enqueued { job: Job { fair_at, ..new.clone() }, created: true });
        }
        let holder = sqlx::query(HOLDER)
            .bind(new.tenant.as_str())
            .bind(&new.queue)
            .bind(&new.dedupe_key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sqlx_error)?;
        if let Some(row) = holder {
            return Ok(Enqueued { job: job(&row)?, created: false });
        }
    }
    Err(StorageError::conflict("job", &new.id, format!("its dedupe key was still contended after {INSERT_ATTEMPTS} attempts")))
}

#[async_trait]
impl JobRows for PostgresJobs {
    async fn insert(&self, jobs: &[Job]) -> Result<Vec<Enqueued>> {
        let _writing = self.router.writing();
        let pool = self.router.write_pool();
        if let [one] = jobs {
            let mut conn = pool.acquire().await.map_err(sqlx_error)?;
            return Ok(vec![insert(&mut conn, one).await?]);
        }
        // A batch is one transaction: one commit for all, its jobs placed in order. A batch over
        // several queues first locks its lanes in one order, so two such batches cannot deadlock.
        let mut tx = pool.begin().await.map_err(sqlx_error)?;
        let mut lanes: Vec<(&str, &str)> = jobs.iter().map(|job| (job.queue.as_str(), job.tenant.as_str())).collect();
        lanes.sort_unstable();
        lanes.dedup();
        if lanes.len() > 1 {
            let (queues, tenants): (Vec<&str>, Vec<&str>) = lanes.into_iter().unzip();
            sqlx::query(LOCK_LANES).bind(queues).bind(tenants).execute(&mut *tx).await.map_err(sqlx_error)?;
        }
        let mut enqueued = Vec::with_capacity(jobs.len());
        for job in jobs {
            enqueued.push(insert(&mut tx, job).await?);
        }
        tx.commit().await.map_err(sqlx_error)?;
        Ok(enqueued)
    }

    async fn claim(&self, queue: &str, grant: &Grant, limit: u32) -> Result<Vec<Job>> {
        let _writing = self.router.writing();
        let rows = sqlx::query(CLAIM)
            .bind(grant.token)
            .bind(grant.expires_at)
            .bind(&grant.worker)
            .bind(grant.now)
            .bind(queue)
            .bind(i64::from(limit))
            .fetch_all(self.router.write_pool())
            .await
            .map_err(sqlx_error)?;
        let mut claimed = rows.iter().map(job).collect::<Result<Vec<_>>>()?;
        claimed.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.fair_at.cmp(&b.fair_at)).then(a.id.cmp(&b.id)));
        Ok(claimed)
    }

    async fn settle(&self, changes: &[Settle]) -> Result<Vec<bool>> {
        let _writing = self.router.writing();
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let ids = changes.iter().map(|c| uuid(&c.job.id)).collect::<Result<Vec<_>>>()?;
        let column = |f: &dyn Fn(&Settle) -> Option<DateTime<Utc>>| changes.iter().map(f).collect::<Vec<_>>();
        let applied: std::result::Result<Vec<Uuid>, sqlx::Error> = sqlx::query_scalar(SETTLE)
            .bind(&ids)
            .bind(changes.iter().map(|c| c.job.state.as_str()).collect::<Vec<_>>())
            .bind(changes.iter().map(|c| i32::from(c.job.attempts)).collect::<Vec<_>>())
            .bind(column(&|c| Some(c.job.run_at)))
            .bind(changes.iter().map(|c| c.job.lease_token).collect::<Vec<_>>())
            .bind(column(&|c| c.job.lease_expires_at))
            .bind(changes.iter().map(|c| c.job.last_error.clone()).collect::<Vec<_>>())
            .bind(changes.iter().map(|c| c.job.result.clone()).collect::<Vec<_>>())
            .bind(column(&|c| Some(c.job.updated_at)))
            .bind(column(&|c| c.job.finished_at))
            .bind(changes.iter().map(|c| c.expect_state.as_str()).collect::<Vec<_>>())
            .bind(changes.iter().map(|c| c.expect_token).collect::<Vec<_>>())
            .bind(column(&|c| c.expect_lapsed_by))
            .fetch_all(self.router.write_pool())
            .await;
        let applied = match applied {
            Ok(applied) => applied,
            Err(e) if pg_unique_violation(&e).is_some() => {
                let id = changes.first().map(|c| c.job.id.clone()).unwrap_or_default();
                return Err(StorageError::conflict("job", id, "its dedupe key is held by another waiting or running job"));
            }
            Err(e) => return Err(sqlx_error(e)),
        };
        Ok(ids.iter().map(|id| applied.contains(id)).collect())
    }

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Job>> {
        let row =
            sqlx::query(GET).bind(uuid(id)?).bind(tenant.as_str()).fetch_optional(self.router.write_pool()).await.map_err(sqlx_error)?;
        row.as_ref().map(job).transpose()
    }

    async fn list(&self, filter: &JobFilter, after: Option<&str>, limit: u32) -> Result<Vec<Job>> {
        let (mut sql, next) = filtered(filter);
        let after = after.map(uuid).transpose()?;
        if after.is_some() {
            sql.push_str(&format!(" AND id > ${next}"));
        }
        let sql = format!("SELECT {COLUMNS}{sql} ORDER BY id LIMIT {limit}");
        let mut query = bind_filter(sqlx::query(AssertSqlSafe(sql)), filter);
        if let Some(after) = after {
            query = query.bind(after);
        }
        let rows = query.fetch_all(self.router.write_pool()).await.map_err(sqlx_error)?;
        rows.iter().map(job).collect()
    }

    async fn count(&self, filter: &JobFilter) -> Result<u64> {
        let sql = format!("SELECT count(*){}", filtered(filter).0);
        let row = bind_filter(sqlx::query(AssertSqlSafe(sql)), filter).fetch_one(self.router.write_pool()).await.map_err(sqlx_error)?;
        let n: i64 = row.try_get(0).map_err(sqlx_error)?;
        u64::try_from(n).map_err(|e| StorageError::corrupt(BACKEND, e))
    }

    async fn lapsed(&self, queue: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        let rows = sqlx::query(LAPSED)
            .bind(queue)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(self.router.write_pool())
            .await
            .map_err(sqlx_error)?;
        rows.iter().map(job).collect()
    }

    async fn prune(&self, queue: &str, states: &[JobState], before: DateTime<Utc>, limit: u32) -> Result<u64> {
        let _writing = self.router.writing();
        let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        let done = sqlx::query(PRUNE)
            .bind(queue)
            .bind(before)
            .bind(&states)
            .bind(i64::from(limit))
            .execute(self.router.write_pool())
            .await
            .map_err(sqlx_error)?;
        Ok(done.rows_affected())
    }
}
