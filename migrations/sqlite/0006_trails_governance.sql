-- Audit trails and their receipts (write-once, one per gauntlet run), and governance records:
-- approvals, verifications, decisions (issue 10).

CREATE TABLE audit_trails (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    gauntlet_id TEXT,
    verdict TEXT,
    risk_level TEXT,
    saved_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX audit_trails_by_gauntlet_id ON audit_trails (tenant, gauntlet_id);
CREATE INDEX audit_trails_by_verdict ON audit_trails (tenant, verdict, id);
CREATE INDEX audit_trails_by_risk_level ON audit_trails (tenant, risk_level, id);
CREATE INDEX audit_trails_by_saved_at ON audit_trails (tenant, saved_at, id);

CREATE TABLE trail_receipts (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    gauntlet_id TEXT,
    verdict TEXT,
    risk_level TEXT,
    saved_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX trail_receipts_by_gauntlet_id ON trail_receipts (tenant, gauntlet_id);
CREATE INDEX trail_receipts_by_verdict ON trail_receipts (tenant, verdict, id);
CREATE INDEX trail_receipts_by_risk_level ON trail_receipts (tenant, risk_level, id);
CREATE INDEX trail_receipts_by_saved_at ON trail_receipts (tenant, saved_at, id);

CREATE TABLE approvals (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT,
    risk_level TEXT,
    requested_at INTEGER,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX approvals_by_status ON approvals (tenant, status, id);
CREATE INDEX approvals_by_risk_level ON approvals (tenant, risk_level, id);
CREATE INDEX approvals_by_requested_at ON approvals (tenant, requested_at, id);
CREATE INDEX approvals_by_expires_at ON approvals (tenant, expires_at, id);

CREATE TABLE verifications (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    claim_type TEXT,
    at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX verifications_by_claim_type ON verifications (tenant, claim_type, id);
CREATE INDEX verifications_by_at ON verifications (tenant, at, id);

CREATE TABLE decisions (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    debate_id TEXT,
    consensus_reached INTEGER,
    at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX decisions_by_debate_id ON decisions (tenant, debate_id, id);
CREATE INDEX decisions_by_consensus_reached ON decisions (tenant, consensus_reached, id);
CREATE INDEX decisions_by_at ON decisions (tenant, at, id);

