-- The audit log (issue 10): one hash chain per tenant, and each chain's head.

CREATE TABLE audit_log (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER,
    at INTEGER,
    actor_id TEXT,
    action TEXT,
    resource_type TEXT,
    resource_id TEXT,
    security INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX audit_log_by_seq ON audit_log (tenant, seq, id);
CREATE INDEX audit_log_by_at ON audit_log (tenant, at, id);
CREATE INDEX audit_log_by_actor_id ON audit_log (tenant, actor_id, id);
CREATE INDEX audit_log_by_action ON audit_log (tenant, action, id);
CREATE INDEX audit_log_by_resource_type ON audit_log (tenant, resource_type, id);
CREATE INDEX audit_log_by_resource_id ON audit_log (tenant, resource_id, id);
CREATE INDEX audit_log_by_security ON audit_log (tenant, security, id);

CREATE TABLE audit_heads (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX audit_heads_by_seq ON audit_heads (tenant, seq, id);

