-- Audit trails and their receipts (write-once, one per gauntlet run), and governance records:
-- approvals, verifications, decisions (issue 10). Text columns compare in byte order ("C").

CREATE TABLE audit_trails (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    gauntlet_id TEXT COLLATE "C",
    verdict TEXT COLLATE "C",
    risk_level TEXT COLLATE "C",
    saved_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX audit_trails_by_gauntlet_id ON audit_trails (tenant, gauntlet_id);
CREATE INDEX audit_trails_by_verdict ON audit_trails (tenant, verdict, id);
CREATE INDEX audit_trails_by_risk_level ON audit_trails (tenant, risk_level, id);
CREATE INDEX audit_trails_by_saved_at ON audit_trails (tenant, saved_at, id);

CREATE TABLE trail_receipts (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    gauntlet_id TEXT COLLATE "C",
    verdict TEXT COLLATE "C",
    risk_level TEXT COLLATE "C",
    saved_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX trail_receipts_by_gauntlet_id ON trail_receipts (tenant, gauntlet_id);
CREATE INDEX trail_receipts_by_verdict ON trail_receipts (tenant, verdict, id);
CREATE INDEX trail_receipts_by_risk_level ON trail_receipts (tenant, risk_level, id);
CREATE INDEX trail_receipts_by_saved_at ON trail_receipts (tenant, saved_at, id);

CREATE TABLE approvals (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C",
    risk_level TEXT COLLATE "C",
    requested_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX approvals_by_status ON approvals (tenant, status, id);
CREATE INDEX approvals_by_risk_level ON approvals (tenant, risk_level, id);
CREATE INDEX approvals_by_requested_at ON approvals (tenant, requested_at, id);
CREATE INDEX approvals_by_expires_at ON approvals (tenant, expires_at, id);

CREATE TABLE verifications (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    claim_type TEXT COLLATE "C",
    at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX verifications_by_claim_type ON verifications (tenant, claim_type, id);
CREATE INDEX verifications_by_at ON verifications (tenant, at, id);

CREATE TABLE decisions (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    debate_id TEXT COLLATE "C",
    consensus_reached BOOLEAN,
    at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX decisions_by_debate_id ON decisions (tenant, debate_id, id);
CREATE INDEX decisions_by_consensus_reached ON decisions (tenant, consensus_reached, id);
CREATE INDEX decisions_by_at ON decisions (tenant, at, id);

