-- Findings, federation and debates (issue 14): finding workflows (state, assignee, due date,
-- parent), federated regions per workspace (sealed API keys), pipeline results (derived status,
-- integrity hash in the body), playground debate results and their cache index (both expiring,
-- an atomic hit counter), and the debate archive (permalink slugs unique across tenants,
-- full-text search, a view counter).
CREATE TABLE finding_workflows (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C",
    assigned_to TEXT COLLATE "C",
    due_date TIMESTAMPTZ,
    parent_finding_id TEXT COLLATE "C",
    opened_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX finding_workflows_by_state ON finding_workflows (tenant, state, id);
CREATE INDEX finding_workflows_by_assigned_to ON finding_workflows (tenant, assigned_to, id);
CREATE INDEX finding_workflows_by_due_date ON finding_workflows (tenant, due_date, id);
CREATE INDEX finding_workflows_by_parent_finding_id ON finding_workflows (tenant, parent_finding_id, id);
CREATE INDEX finding_workflows_by_opened_at ON finding_workflows (tenant, opened_at, id);

CREATE TABLE federated_regions (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    enabled BOOLEAN,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX federated_regions_by_enabled ON federated_regions (tenant, enabled, id);

CREATE TABLE pipeline_results (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C",
    started_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX pipeline_results_by_status ON pipeline_results (tenant, status, id);
CREATE INDEX pipeline_results_by_started_at ON pipeline_results (tenant, started_at, id);

CREATE TABLE playground_debates (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    saved_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX playground_debates_by_saved_at ON playground_debates (tenant, saved_at, id);
CREATE INDEX playground_debates_by_expires_at ON playground_debates (expires_at);

CREATE TABLE playground_cache (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    debate_id TEXT COLLATE "C",
    hit_count BIGINT,
    indexed_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX playground_cache_by_debate_id ON playground_cache (tenant, debate_id, id);
CREATE INDEX playground_cache_by_hit_count ON playground_cache (tenant, hit_count, id);
CREATE INDEX playground_cache_by_indexed_at ON playground_cache (tenant, indexed_at, id);
CREATE INDEX playground_cache_by_expires_at ON playground_cache (expires_at);

CREATE TABLE archived_debates (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    slug TEXT COLLATE "C",
    is_public BOOLEAN,
    archived_at TIMESTAMPTZ,
    view_count BIGINT,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    search_vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', coalesce(search, ''))) STORED,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX archived_debates_by_slug ON archived_debates (slug);
CREATE INDEX archived_debates_by_is_public ON archived_debates (tenant, is_public, id);
CREATE INDEX archived_debates_by_archived_at ON archived_debates (tenant, archived_at, id);
CREATE INDEX archived_debates_by_view_count ON archived_debates (tenant, view_count, id);
CREATE INDEX archived_debates_by_search ON archived_debates USING GIN (search_vector);
