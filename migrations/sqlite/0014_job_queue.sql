-- The job queue (issue 13): native, like webhook_events. Instants are microseconds since the
-- epoch. The partial indexes serve the claim (priority, then fair place), the fair placement of a
-- new job (the queue's head and the tenant's tail), the sweep of lapsed leases, retention, lists
-- and the dedupe key of unfinished jobs.
CREATE TABLE jobs (
    id               TEXT    NOT NULL PRIMARY KEY,
    tenant           TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('available', 'running', 'completed', 'cancelled', 'dead')),
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    fair_at          INTEGER NOT NULL,
    dedupe_key       TEXT,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    worker           TEXT,
    last_error       TEXT,
    result           TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
) WITHOUT ROWID;
CREATE INDEX jobs_claim ON jobs (queue, priority DESC, fair_at, id) WHERE state = 'available';
CREATE INDEX jobs_head ON jobs (queue, fair_at) WHERE state = 'available';
CREATE INDEX jobs_tail ON jobs (queue, tenant, fair_at) WHERE state = 'available';
CREATE INDEX jobs_leases ON jobs (queue, lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (queue, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_by_state ON jobs (queue, state, id);
CREATE INDEX jobs_by_tenant ON jobs (tenant, queue, id);
CREATE UNIQUE INDEX jobs_dedupe ON jobs (tenant, queue, dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('available', 'running');
