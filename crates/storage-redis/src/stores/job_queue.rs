//! The job queue on Redis: a hash per job and a few sorted sets per queue (see
//! [`crate::scripts::JOBS_PRELUDE`]); every write — enqueue with its fair placement and dedupe
//! key, claim, each compare-and-set — is one script, so it is atomic. All job keys share the
//! `{jobs}` hash tag: one Cluster slot holds the queues.

use crate::RedisConnection;
use crate::scripts::{CLAIM_JOBS, ENQUEUE_JOB, JOBS_PRELUDE, LAPSED_JOBS, LIST_JOBS, PRELUDE, PRUNE_JOBS, SETTLE_JOBS};
use crate::{BACKEND, Keys, redis_error};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::Script;
use std::collections::HashMap;
use std::sync::LazyLock;
use storage_core::clock::{from_micros, to_micros};
use storage_core::stores::job_queue::{Enqueued, Grant, Job, JobFilter, JobRows, JobState, Settle};
use storage_core::{Result, StorageError, TenantId};
use uuid::Uuid;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{JOBS_PRELUDE}{body}"))
}

static ENQUEUE: LazyLock<Script> = LazyLock::new(|| script(ENQUEUE_JOB));
static CLAIM: LazyLock<Script> = LazyLock::new(|| script(CLAIM_JOBS));
static SETTLE: LazyLock<Script> = LazyLock::new(|| script(SETTLE_JOBS));
pub(crate) static LIST: LazyLock<Script> = LazyLock::new(|| script(LIST_JOBS));
pub(crate) static LAPSED: LazyLock<Script> = LazyLock::new(|| script(LAPSED_JOBS));
static PRUNE: LazyLock<Script> = LazyLock::new(|| script(PRUNE_JOBS));

/// The job queue on Redis.
pub(crate) struct RedisJobs {
    conn: RedisConnection,
    prefix: String,
}

impl std::fmt::Debug for RedisJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisJobs").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisJobs {
    pub(crate) fn new(conn: RedisConnection, keys: &Keys) -> Self {
        Self { conn, prefix: format!("{}:{{jobs}}", keys.namespace()) }
    }

    fn invoke<'a>(&self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.key(&self.prefix);
        invocation
    }
}

/// An optional value as the scripts take it: empty for none, else `=` and the value.
fn opt(value: Option<String>) -> String {
    value.map_or_else(String::new, |v| format!("={v}"))
}

/// A job from its hash's fields (`HGETALL`).
fn job(flat: &[String]) -> Result<Job> {
    let fields: HashMap<&str, &str> =
        flat.chunks_exact(2).filter_map(|pair| Some((pair.first()?.as_str(), pair.get(1)?.as_str()))).collect();
    let corrupt = |what: String| StorageError::corrupt(BACKEND, format!("job {what}"));
    let text = |name: &str| fields.get(name).copied().ok_or_else(|| corrupt(format!("without field `{name}`")));
    let int = |name: &str| text(name)?.parse::<i64>().map_err(|_| corrupt(format!("field `{name}` is not an integer")));
    let at = |name: &str| int(name).and_then(|m| from_micros(m).ok_or_else(|| corrupt(format!("instant {m}"))));
    let opt_at = |name: &str| if fields.contains_key(name) { at(name).map(Some) } else { Ok(None) };
    let owned = |name: &str| fields.get(name).map(|v| (*v).to_owned());
    let count = |name: &str| int(name).and_then(|n| u16::try_from(n).map_err(|_| corrupt(format!("count {n}"))));
    Ok(Job {
        tenant: TenantId::stored(text("t")?).map_err(|e| corrupt(e.to_string()))?,
        id: String::new(),
        queue: text("q")?.to_owned(),
        kind: text("k")?.to_owned(),
        payload: serde_json::from_str(text("p")?).map_err(|e| corrupt(e.to_string()))?,
        priority: i16::try_from(int("pr")?).map_err(|_| corrupt("priority".into()))?,
        state: JobState::parse(text("s")?).ok_or_else(|| corrupt("state".into()))?,
        attempts: count("a")?,
        max_attempts: count("m")?,
        run_at: at("r")?,
        fair_at: at("f")?,
        dedupe_key: owned("d"),
        lease_token: fields.get("lt").map(|t| Uuid::parse_str(t)).transpose().map_err(|e| corrupt(e.to_string()))?,
        lease_expires_at: opt_at("le")?,
        worker: owned("w"),
        last_error: owned("er"),
        result: owned("rs"),
        created_at: at("c")?,
        updated_at: at("u")?,
        started_at: opt_at("st")?,
        finished_at: opt_at("fi")?,
    })
}

/// Jobs from the scripts' replies: each a hash's fields with the job's id last (`HGETALL` does
/// not return the key).
fn jobs_with_ids(replies: Vec<Vec<String>>) -> Result<Vec<Job>> {
    replies
        .into_iter()
        .map(|mut flat| {
            let id = flat.pop().ok_or_else(|| StorageError::corrupt(BACKEND, "a job reply without its id"))?;
            Ok(Job { id, ..job(&flat)? })
        })
        .collect()
}

#[async_trait]
impl JobRows for RedisJobs {
    async fn insert(&self, jobs: &[Job]) -> Result<Vec<Enqueued>> {
        let mut invocation = self.invoke(&ENQUEUE);
        for new in jobs {
            let payload = serde_json::to_string(&new.payload).map_err(|e| StorageError::invalid("payload", e))?;
            invocation
                .arg(&new.id)
                .arg(new.tenant.as_str())
                .arg(&new.queue)
                .arg(&new.kind)
                .arg(payload)
                .arg(new.priority)
                .arg(new.max_attempts)
                .arg(to_micros(new.run_at))
                .arg(to_micros(new.fair_at))
                .arg(new.dedupe_key.as_deref().unwrap_or(""));
        }
        let replies: Vec<Vec<String>> = invocation.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        if replies.len() != jobs.len() {
            return Err(StorageError::backend(BACKEND, format!("{} jobs enqueued, {} replies", jobs.len(), replies.len())));
        }
        jobs.iter().zip(replies).map(|(new, reply)| enqueued(new, reply)).collect()
    }

    async fn claim(&self, queue: &str, grant: &Grant, limit: u32) -> Result<Vec<Job>> {
        let mut invocation = self.invoke(&CLAIM);
        invocation
            .arg(queue)
            .arg(to_micros(grant.now))
            .arg(limit)
            .arg(grant.token.to_string())
            .arg(to_micros(grant.expires_at))
            .arg(&grant.worker);
        let replies: Vec<Vec<String>> = invocation.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        jobs_with_ids(replies)
    }

    async fn settle(&self, changes: &[Settle]) -> Result<Vec<bool>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.invoke(&SETTLE);
        invocation.arg(to_micros(changes.iter().map(|c| c.job.updated_at).max().unwrap_or_default()));
        for change in changes {
            let job = &change.job;
            invocation
                .arg(&job.id)
                .arg(job.state.as_str())
                .arg(job.attempts)
                .arg(to_micros(job.run_at))
                .arg(opt(job.lease_token.map(|t| t.to_string())))
                .arg(opt(job.lease_expires_at.map(|t| to_micros(t).to_string())))
                .arg(opt(job.last_error.clone()))
                .arg(opt(job.result.clone()))
                .arg(to_micros(job.updated_at))
                .arg(opt(job.finished_at.map(|t| to_micros(t).to_string())))
                .arg(change.expect_state.as_str())
                .arg(opt(change.expect_token.map(|t| t.to_string())))
                .arg(opt(change.expect_lapsed_by.map(|t| to_micros(t).to_string())));
        }
        let applied: Vec<i64> = invocation.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        changes
            .iter()
            .zip(&applied)
            .map(|(change, applied)| match applied {
                -1 => Err(StorageError::conflict("job", &change.job.id, "its dedupe key is held by another waiting or running job")),
                n => Ok(*n == 1),
            })
            .collect()
    }

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Job>> {
        let flat: Vec<String> =
            redis::cmd("HGETALL").arg(format!("{}:j:{id}", self.prefix)).query_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        if flat.is_empty() {
            return Ok(None);
        }
        let found = Job { id: id.to_owned(), ..job(&flat)? };
        Ok((&found.tenant == tenant).then_some(found))
    }

    async fn list(&self, filter: &JobFilter, after: Option<&str>, limit: u32) -> Result<Vec<Job>> {
        let mut invocation = self.invoke(&LIST);
        invocation.arg(id_set(filter)).arg(after.unwrap_or("")).arg(limit);
        let replies: Vec<Vec<String>> = invocation.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        jobs_with_ids(replies)
    }

    async fn count(&self, filter: &JobFilter) -> Result<u64> {
        redis::cmd("ZCARD")
            .arg(format!("{}:q:{}", self.prefix, id_set(filter)))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)
    }

    async fn lapsed(&self, queue: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        let mut invocation = self.invoke(&LAPSED);
        invocation.arg(queue).arg(to_micros(now)).arg(limit);
        let replies: Vec<Vec<String>> = invocation.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        jobs_with_ids(replies)
    }

    async fn prune(&self, queue: &str, states: &[JobState], before: DateTime<Utc>, limit: u32) -> Result<u64> {
        let mut invocation = self.invoke(&PRUNE);
        invocation.arg(queue).arg(to_micros(before)).arg(limit);
        for state in states {
            invocation.arg(state.as_str());
        }
        invocation.invoke_async(&mut self.conn.clone()).await.map_err(redis_error)
    }
}

/// What one job's enqueue did, from its reply.
fn enqueued(new: &Job, reply: Vec<String>) -> Result<Enqueued> {
    match reply.split_first() {
        Some((status, [fair])) if status == "new" => {
            let fair_at = fair.parse::<i64>().ok().and_then(from_micros).ok_or_else(|| StorageError::corrupt(BACKEND, "fair place"))?;
            Ok(Enqueued { job: Job { fair_at, ..new.clone() }, created: true })
        }
        Some((status, fields)) if status == "existing" => {
            let mut fields = fields.to_vec();
            let id = fields.pop().ok_or_else(|| StorageError::corrupt(BACKEND, "a dedupe holder without its id"))?;
            Ok(Enqueued { job: Job { id, ..job(&fields)? }, created: false })
        }
        _ => Err(StorageError::backend(BACKEND, format!("unexpected enqueue reply {reply:?}"))),
    }
}

/// The id set of a queue a filter reads (its suffix after `<prefix>:q:`).
fn id_set(filter: &JobFilter) -> String {
    let queue = &filter.queue;
    match (filter.state, &filter.tenant) {
        (None, None) => format!("{queue}:all"),
        (None, Some(tenant)) => format!("{queue}:ta:{}", tenant.as_str()),
        (Some(state), None) => format!("{queue}:s:{}", state.as_str()),
        (Some(state), Some(tenant)) => format!("{queue}:s:{}:t:{}", state.as_str(), tenant.as_str()),
    }
}
