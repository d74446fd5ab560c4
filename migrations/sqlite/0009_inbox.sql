-- The unified inbox (issue 11): mail accounts, their messages (one per account and external
-- id, ranked by priority then arrival, full-text searchable: an FTS5 index kept by triggers on
-- SQLite, a generated tsvector with a GIN index on PostgreSQL) and the messages' triage.

CREATE TABLE inbox_accounts (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE inbox_messages (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    account_id TEXT,
    priority_tier TEXT,
    is_read INTEGER,
    rank INTEGER,
    received_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    seq INTEGER PRIMARY KEY,
    UNIQUE (tenant, id)
);
CREATE INDEX inbox_messages_by_account_id ON inbox_messages (tenant, account_id, id);
CREATE INDEX inbox_messages_by_priority_tier ON inbox_messages (tenant, priority_tier, id);
CREATE INDEX inbox_messages_by_is_read ON inbox_messages (tenant, is_read, id);
CREATE INDEX inbox_messages_by_rank ON inbox_messages (tenant, rank, id);
CREATE INDEX inbox_messages_by_received_at ON inbox_messages (tenant, received_at, id);
CREATE VIRTUAL TABLE inbox_messages_fts USING fts5(search, content='inbox_messages', content_rowid='seq', tokenize='unicode61');
CREATE TRIGGER inbox_messages_fts_insert AFTER INSERT ON inbox_messages BEGIN
    INSERT INTO inbox_messages_fts (rowid, search) VALUES (new.seq, new.search);
END;
CREATE TRIGGER inbox_messages_fts_delete AFTER DELETE ON inbox_messages BEGIN
    INSERT INTO inbox_messages_fts (inbox_messages_fts, rowid, search) VALUES ('delete', old.seq, old.search);
END;
CREATE TRIGGER inbox_messages_fts_update AFTER UPDATE OF search ON inbox_messages BEGIN
    INSERT INTO inbox_messages_fts (inbox_messages_fts, rowid, search) VALUES ('delete', old.seq, old.search);
    INSERT INTO inbox_messages_fts (rowid, search) VALUES (new.seq, new.search);
END;

CREATE TABLE inbox_triage_results (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    account_id TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX inbox_triage_results_by_account_id ON inbox_triage_results (tenant, account_id, id);
