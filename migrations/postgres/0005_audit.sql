-- The audit log (issue 10): one hash chain per tenant, and each chain's head. Text columns compare
-- in byte order ("C"), as on every backend.

CREATE TABLE audit_log (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    seq BIGINT,
    at TIMESTAMPTZ,
    actor_id TEXT COLLATE "C",
    action TEXT COLLATE "C",
    resource_type TEXT COLLATE "C",
    resource_id TEXT COLLATE "C",
    security BOOLEAN,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX audit_log_by_seq ON audit_log (tenant, seq, id);
CREATE INDEX audit_log_by_at ON audit_log (tenant, at, id);
CREATE INDEX audit_log_by_actor_id ON audit_log (tenant, actor_id, id);
CREATE INDEX audit_log_by_action ON audit_log (tenant, action, id);
CREATE INDEX audit_log_by_resource_type ON audit_log (tenant, resource_type, id);
CREATE INDEX audit_log_by_resource_id ON audit_log (tenant, resource_id, id);
CREATE INDEX audit_log_by_security ON audit_log (tenant, security, id);

CREATE TABLE audit_heads (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    seq BIGINT,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX audit_heads_by_seq ON audit_heads (tenant, seq, id);

