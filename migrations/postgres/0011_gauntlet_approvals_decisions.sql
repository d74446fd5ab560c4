-- Decisions (issue 12): gauntlet runs, approval requests (ordered by priority while pending) and
-- decision results (expiring).
CREATE TABLE gauntlet_runs (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C",
    template_id TEXT COLLATE "C",
    workspace_id TEXT COLLATE "C",
    queued_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX gauntlet_runs_by_status ON gauntlet_runs (tenant, status, id);
CREATE INDEX gauntlet_runs_by_template_id ON gauntlet_runs (tenant, template_id, id);
CREATE INDEX gauntlet_runs_by_workspace_id ON gauntlet_runs (tenant, workspace_id, id);
CREATE INDEX gauntlet_runs_by_queued_at ON gauntlet_runs (tenant, queued_at, id);

CREATE TABLE approval_requests (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C",
    workflow_id TEXT COLLATE "C",
    workspace_id TEXT COLLATE "C",
    deadline TIMESTAMPTZ,
    requested_at TIMESTAMPTZ,
    pending_rank BIGINT,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX approval_requests_by_status ON approval_requests (tenant, status, id);
CREATE INDEX approval_requests_by_workflow_id ON approval_requests (tenant, workflow_id, id);
CREATE INDEX approval_requests_by_workspace_id ON approval_requests (tenant, workspace_id, id);
CREATE INDEX approval_requests_by_deadline ON approval_requests (tenant, deadline, id);
CREATE INDEX approval_requests_by_requested_at ON approval_requests (tenant, requested_at, id);
CREATE INDEX approval_requests_by_pending_rank ON approval_requests (tenant, pending_rank, id);

CREATE TABLE decision_results (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C",
    saved_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX decision_results_by_status ON decision_results (tenant, status, id);
CREATE INDEX decision_results_by_saved_at ON decision_results (tenant, saved_at, id);
CREATE INDEX decision_results_by_expires_at ON decision_results (expires_at);
