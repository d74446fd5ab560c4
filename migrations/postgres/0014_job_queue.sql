-- The job queue (issue 13): native, like webhook_events. The partial indexes serve the claim
-- (priority, then fair place), the fair placement of a new job (the queue's head and the tenant's
-- tail), the sweep of lapsed leases, retention, lists and the dedupe key of unfinished jobs.
CREATE TABLE jobs (
    id               UUID        NOT NULL PRIMARY KEY,
    tenant           TEXT COLLATE "C" NOT NULL,
    queue            TEXT COLLATE "C" NOT NULL,
    kind             TEXT        NOT NULL,
    payload          TEXT        NOT NULL,
    priority         SMALLINT    NOT NULL,
    state            TEXT        NOT NULL CHECK (state IN ('available', 'running', 'completed', 'cancelled', 'dead')),
    attempts         INTEGER     NOT NULL,
    max_attempts     INTEGER     NOT NULL,
    run_at           TIMESTAMPTZ NOT NULL,
    fair_at          TIMESTAMPTZ NOT NULL,
    dedupe_key       TEXT COLLATE "C",
    lease_token      UUID,
    lease_expires_at TIMESTAMPTZ,
    worker           TEXT,
    last_error       TEXT,
    result           TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ
);
CREATE INDEX jobs_claim ON jobs (queue, priority DESC, fair_at, id) WHERE state = 'available';
CREATE INDEX jobs_head ON jobs (queue, fair_at) WHERE state = 'available';
CREATE INDEX jobs_tail ON jobs (queue, tenant, fair_at) WHERE state = 'available';
CREATE INDEX jobs_leases ON jobs (queue, lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (queue, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_by_state ON jobs (queue, state, id);
CREATE INDEX jobs_by_tenant ON jobs (tenant, queue, id);
CREATE UNIQUE INDEX jobs_dedupe ON jobs (tenant, queue, dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('available', 'running');
-- Each tenant's last fair place in a queue: the row a PostgreSQL enqueue locks, so concurrent
-- enqueues of one tenant are placed one after the other (SQLite has one writer; Redis runs one
-- script at a time).
CREATE TABLE job_lanes (
    queue  TEXT COLLATE "C" NOT NULL,
    tenant TEXT COLLATE "C" NOT NULL,
    last   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (queue, tenant)
);
