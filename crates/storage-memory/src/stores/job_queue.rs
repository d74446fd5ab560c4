//! The job queue in memory: one ordered map behind a mutex; every operation is one critical
//! section and scans (the reference semantics the SQL and Redis backends match).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use storage_core::stores::job_queue::{Enqueued, Grant, Job, JobFilter, JobRows, JobState, Settle, fair_place};
use storage_core::{Result, StorageError, TenantId};

/// The jobs of one memory backend, by id (ids are unique across tenants).
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    jobs: Mutex<BTreeMap<String, Job>>,
}

impl Jobs {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn passes(job: &Job, filter: &JobFilter) -> bool {
    job.queue == filter.queue
        && filter.state.is_none_or(|state| job.state == state)
        && filter.tenant.as_ref().is_none_or(|tenant| &job.tenant == tenant)
}

fn waiting<'a>(jobs: &'a BTreeMap<String, Job>, queue: &'a str) -> impl Iterator<Item = &'a Job> + 'a {
    jobs.values().filter(move |job| job.queue == queue && job.state == JobState::Available)
}

#[async_trait]
impl JobRows for Jobs {
    async fn insert(&self, jobs: &[Job]) -> Result<Vec<Enqueued>> {
        let mut stored = self.lock();
        Ok(jobs.iter().map(|job| insert(&mut stored, job)).collect())
    }

    async fn claim(&self, queue: &str, grant: &Grant, limit: u32) -> Result<Vec<Job>> {
        let mut jobs = self.lock();
        let mut due: Vec<&Job> = waiting(&jobs, queue).filter(|job| job.run_at <= grant.now).collect();
        due.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.fair_at.cmp(&b.fair_at)).then(a.id.cmp(&b.id)));
        let ids: Vec<String> = due.into_iter().take(limit as usize).map(|job| job.id.clone()).collect();
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(job) = jobs.get_mut(&id) {
                job.state = JobState::Running;
                job.attempts = job.attempts.saturating_add(1);
                job.lease_token = Some(grant.token);
                job.lease_expires_at = Some(grant.expires_at);
                job.worker = Some(grant.worker.clone());
                job.started_at = Some(grant.now);
                job.updated_at = grant.now;
                claimed.push(job.clone());
            }
        }
        Ok(claimed)
    }

    async fn settle(&self, changes: &[Settle]) -> Result<Vec<bool>> {
        let mut jobs = self.lock();
        changes
            .iter()
            .map(|change| {
                if let Some(holder) = dedupe_holder(&jobs, change) {
                    return Err(StorageError::conflict("job", &change.job.id, format!("its dedupe key is held by job {holder}")));
                }
                Ok(apply(&mut jobs, change))
            })
            .collect()
    }

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Job>> {
        Ok(self.lock().get(id).filter(|job| &job.tenant == tenant).cloned())
    }

    async fn list(&self, filter: &JobFilter, after: Option<&str>, limit: u32) -> Result<Vec<Job>> {
        let jobs = self.lock();
        let from = after.map_or(std::ops::Bound::Unbounded, |after| std::ops::Bound::Excluded(after.to_owned()));
        Ok(jobs
            .range((from, std::ops::Bound::Unbounded))
            .map(|(_, job)| job)
            .filter(|job| passes(job, filter))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn count(&self, filter: &JobFilter) -> Result<u64> {
        Ok(self.lock().values().filter(|job| passes(job, filter)).count() as u64)
    }

    async fn lapsed(&self, queue: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        let jobs = self.lock();
        let mut lapsed: Vec<&Job> = jobs
            .values()
            .filter(|job| job.queue == queue && job.state == JobState::Running && job.lease_expires_at.is_some_and(|at| at <= now))
            .collect();
        lapsed.sort_by(|a, b| a.lease_expires_at.cmp(&b.lease_expires_at).then(a.id.cmp(&b.id)));
        Ok(lapsed.into_iter().take(limit as usize).cloned().collect())
    }

    async fn prune(&self, queue: &str, states: &[JobState], before: DateTime<Utc>, limit: u32) -> Result<u64> {
        let mut jobs = self.lock();
        let doomed: Vec<String> = jobs
            .values()
            .filter(|job| job.queue == queue && states.contains(&job.state) && job.finished_at.is_some_and(|at| at < before))
            .take(limit as usize)
            .map(|job| job.id.clone())
            .collect();
        for id in &doomed {
            jobs.remove(id);
        }
        Ok(doomed.len() as u64)
    }
}

/// Applies one compare-and-set; whether it applied.
fn apply(jobs: &mut BTreeMap<String, Job>, change: &Settle) -> bool {
    match jobs.get_mut(&change.job.id) {
        Some(job)
            if job.state == change.expect_state
                && job.lease_token == change.expect_token
                && change.expect_lapsed_by.is_none_or(|by| job.lease_expires_at.is_some_and(|at| at <= by)) =>
        {
            let next = &change.job;
            job.state = next.state;
            job.attempts = next.attempts;
            job.run_at = next.run_at;
            job.lease_token = next.lease_token;
            job.lease_expires_at = next.lease_expires_at;
            job.last_error.clone_from(&next.last_error);
            job.result.clone_from(&next.result);
            job.updated_at = next.updated_at;
            job.finished_at = next.finished_at;
            true
        }
        _ => false,
    }
}

/// The unfinished job holding the dedupe key a finished job would take back by `change`.
fn dedupe_holder(jobs: &BTreeMap<String, Job>, change: &Settle) -> Option<String> {
    let job = jobs.get(&change.job.id)?;
    let key = job.dedupe_key.as_ref()?;
    if !(job.state.is_finished() && !change.job.state.is_finished() && job.state == change.expect_state) {
        return None;
    }
    jobs.values()
        .find(|held| {
            held.id != job.id
                && held.tenant == job.tenant
                && held.queue == job.queue
                && held.dedupe_key.as_ref() == Some(key)
                && !held.state.is_finished()
        })
        .map(|held| held.id.clone())
}

/// Stores one job in place (see [`JobRows::insert`]).
fn insert(jobs: &mut BTreeMap<String, Job>, job: &Job) -> Enqueued {
    if let Some(key) = &job.dedupe_key {
        let holder = jobs.values().find(|held| {
            held.tenant == job.tenant && held.queue == job.queue && held.dedupe_key.as_ref() == Some(key) && !held.state.is_finished()
        });
        if let Some(holder) = holder {
            return Enqueued { job: holder.clone(), created: false };
        }
    }
    let head = waiting(jobs, &job.queue).map(|j| j.fair_at).min();
    let own = waiting(jobs, &job.queue).filter(|j| j.tenant == job.tenant).map(|j| j.fair_at).max();
    let stored = Job { fair_at: fair_place(head, own, job.fair_at), ..job.clone() };
    jobs.insert(stored.id.clone(), stored.clone());
    Enqueued { job: stored, created: true }
}
