-- Decisions (issue 12): gauntlet runs, approval requests (ordered by priority while pending) and
-- decision results (expiring).
CREATE TABLE gauntlet_runs (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT,
    template_id TEXT,
    workspace_id TEXT,
    queued_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX gauntlet_runs_by_status ON gauntlet_runs (tenant, status, id);
CREATE INDEX gauntlet_runs_by_template_id ON gauntlet_runs (tenant, template_id, id);
CREATE INDEX gauntlet_runs_by_workspace_id ON gauntlet_runs (tenant, workspace_id, id);
CREATE INDEX gauntlet_runs_by_queued_at ON gauntlet_runs (tenant, queued_at, id);

CREATE TABLE approval_requests (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT,
    workflow_id TEXT,
    workspace_id TEXT,
    deadline INTEGER,
    requested_at INTEGER,
    pending_rank INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX approval_requests_by_status ON approval_requests (tenant, status, id);
CREATE INDEX approval_requests_by_workflow_id ON approval_requests (tenant, workflow_id, id);
CREATE INDEX approval_requests_by_workspace_id ON approval_requests (tenant, workspace_id, id);
CREATE INDEX approval_requests_by_deadline ON approval_requests (tenant, deadline, id);
CREATE INDEX approval_requests_by_requested_at ON approval_requests (tenant, requested_at, id);
CREATE INDEX approval_requests_by_pending_rank ON approval_requests (tenant, pending_rank, id);

CREATE TABLE decision_results (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT,
    saved_at INTEGER,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX decision_results_by_status ON decision_results (tenant, status, id);
CREATE INDEX decision_results_by_saved_at ON decision_results (tenant, saved_at, id);
CREATE INDEX decision_results_by_expires_at ON decision_results (expires_at);
