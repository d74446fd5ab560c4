-- The unified inbox (issue 11): mail accounts, their messages (one per account and external
-- id, ranked by priority then arrival, full-text searchable: an FTS5 index kept by triggers on
-- SQLite, a generated tsvector with a GIN index on PostgreSQL) and the messages' triage.

CREATE TABLE inbox_accounts (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE inbox_messages (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    account_id TEXT COLLATE "C",
    priority_tier TEXT COLLATE "C",
    is_read BOOLEAN,
    rank BIGINT,
    received_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    search_vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', coalesce(search, ''))) STORED,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX inbox_messages_by_account_id ON inbox_messages (tenant, account_id, id);
CREATE INDEX inbox_messages_by_priority_tier ON inbox_messages (tenant, priority_tier, id);
CREATE INDEX inbox_messages_by_is_read ON inbox_messages (tenant, is_read, id);
CREATE INDEX inbox_messages_by_rank ON inbox_messages (tenant, rank, id);
CREATE INDEX inbox_messages_by_received_at ON inbox_messages (tenant, received_at, id);
CREATE INDEX inbox_messages_by_search ON inbox_messages USING GIN (search_vector);

CREATE TABLE inbox_triage_results (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    account_id TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX inbox_triage_results_by_account_id ON inbox_triage_results (tenant, account_id, id);
