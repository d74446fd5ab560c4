-- Findings, federation and debates (issue 14): finding workflows (state, assignee, due date,
-- parent), federated regions per workspace (sealed API keys), pipeline results (derived status,
-- integrity hash in the body), playground debate results and their cache index (both expiring,
-- an atomic hit counter), and the debate archive (permalink slugs unique across tenants,
-- full-text search, a view counter).
CREATE TABLE finding_workflows (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT,
    assigned_to TEXT,
    due_date INTEGER,
    parent_finding_id TEXT,
    opened_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX finding_workflows_by_state ON finding_workflows (tenant, state, id);
CREATE INDEX finding_workflows_by_assigned_to ON finding_workflows (tenant, assigned_to, id);
CREATE INDEX finding_workflows_by_due_date ON finding_workflows (tenant, due_date, id);
CREATE INDEX finding_workflows_by_parent_finding_id ON finding_workflows (tenant, parent_finding_id, id);
CREATE INDEX finding_workflows_by_opened_at ON finding_workflows (tenant, opened_at, id);

CREATE TABLE federated_regions (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    enabled INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX federated_regions_by_enabled ON federated_regions (tenant, enabled, id);

CREATE TABLE pipeline_results (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT,
    started_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX pipeline_results_by_status ON pipeline_results (tenant, status, id);
CREATE INDEX pipeline_results_by_started_at ON pipeline_results (tenant, started_at, id);

CREATE TABLE playground_debates (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    saved_at INTEGER,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX playground_debates_by_saved_at ON playground_debates (tenant, saved_at, id);
CREATE INDEX playground_debates_by_expires_at ON playground_debates (expires_at);

CREATE TABLE playground_cache (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    debate_id TEXT,
    hit_count INTEGER,
    indexed_at INTEGER,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX playground_cache_by_debate_id ON playground_cache (tenant, debate_id, id);
CREATE INDEX playground_cache_by_hit_count ON playground_cache (tenant, hit_count, id);
CREATE INDEX playground_cache_by_indexed_at ON playground_cache (tenant, indexed_at, id);
CREATE INDEX playground_cache_by_expires_at ON playground_cache (expires_at);

CREATE TABLE archived_debates (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    slug TEXT,
    is_public INTEGER,
    archived_at INTEGER,
    view_count INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    seq INTEGER PRIMARY KEY,
    UNIQUE (tenant, id)
);
CREATE UNIQUE INDEX archived_debates_by_slug ON archived_debates (slug);
CREATE INDEX archived_debates_by_is_public ON archived_debates (tenant, is_public, id);
CREATE INDEX archived_debates_by_archived_at ON archived_debates (tenant, archived_at, id);
CREATE INDEX archived_debates_by_view_count ON archived_debates (tenant, view_count, id);
CREATE VIRTUAL TABLE archived_debates_fts USING fts5(search, content='archived_debates', content_rowid='seq', tokenize='unicode61');
CREATE TRIGGER archived_debates_fts_insert AFTER INSERT ON archived_debates BEGIN
    INSERT INTO archived_debates_fts (rowid, search) VALUES (new.seq, new.search);
END;
CREATE TRIGGER archived_debates_fts_delete AFTER DELETE ON archived_debates BEGIN
    INSERT INTO archived_debates_fts (archived_debates_fts, rowid, search) VALUES ('delete', old.seq, old.search);
END;
CREATE TRIGGER archived_debates_fts_update AFTER UPDATE OF search ON archived_debates BEGIN
    INSERT INTO archived_debates_fts (archived_debates_fts, rowid, search) VALUES ('delete', old.seq, old.search);
    INSERT INTO archived_debates_fts (rowid, search) VALUES (new.seq, new.search);
END;
