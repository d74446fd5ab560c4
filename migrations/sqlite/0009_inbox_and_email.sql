-- The inbox (issue 11): the unified inbox's mail accounts, their messages (one per account and
-- external id, ranked by priority then arrival) and the messages' triage; inbox activity; the
-- email store's user settings, VIP senders, shared inboxes (with a postings table of their
-- members), shared messages, routing rules and prioritisation decisions. Messages are
-- full-text searchable: an FTS5 index kept by triggers on SQLite, a generated tsvector with a GIN
-- index on PostgreSQL.

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

CREATE TABLE inbox_activities (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    inbox_id TEXT,
    actor_id TEXT,
    action TEXT,
    target_id TEXT,
    at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX inbox_activities_by_inbox_id ON inbox_activities (tenant, inbox_id, id);
CREATE INDEX inbox_activities_by_actor_id ON inbox_activities (tenant, actor_id, id);
CREATE INDEX inbox_activities_by_action ON inbox_activities (tenant, action, id);
CREATE INDEX inbox_activities_by_target_id ON inbox_activities (tenant, target_id, id);
CREATE INDEX inbox_activities_by_at ON inbox_activities (tenant, at, id);

CREATE TABLE email_user_configs (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE email_vip_senders (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX email_vip_senders_by_user_id ON email_vip_senders (tenant, user_id, id);

CREATE TABLE shared_inboxes (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE shared_inbox_members (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    value TEXT,
    owner TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX shared_inbox_members_by_value ON shared_inbox_members (tenant, value, id);
CREATE INDEX shared_inbox_members_by_owner ON shared_inbox_members (tenant, owner, id);

CREATE TABLE shared_inbox_messages (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    inbox_id TEXT,
    status TEXT,
    assigned_to TEXT,
    received_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    seq INTEGER PRIMARY KEY,
    UNIQUE (tenant, id)
);
CREATE INDEX shared_inbox_messages_by_inbox_id ON shared_inbox_messages (tenant, inbox_id, id);
CREATE INDEX shared_inbox_messages_by_status ON shared_inbox_messages (tenant, status, id);
CREATE INDEX shared_inbox_messages_by_assigned_to ON shared_inbox_messages (tenant, assigned_to, id);
CREATE INDEX shared_inbox_messages_by_received_at ON shared_inbox_messages (tenant, received_at, id);
CREATE VIRTUAL TABLE shared_inbox_messages_fts USING fts5(search, content='shared_inbox_messages', content_rowid='seq', tokenize='unicode61');
CREATE TRIGGER shared_inbox_messages_fts_insert AFTER INSERT ON shared_inbox_messages BEGIN
    INSERT INTO shared_inbox_messages_fts (rowid, search) VALUES (new.seq, new.search);
END;
CREATE TRIGGER shared_inbox_messages_fts_delete AFTER DELETE ON shared_inbox_messages BEGIN
    INSERT INTO shared_inbox_messages_fts (shared_inbox_messages_fts, rowid, search) VALUES ('delete', old.seq, old.search);
END;
CREATE TRIGGER shared_inbox_messages_fts_update AFTER UPDATE OF search ON shared_inbox_messages BEGIN
    INSERT INTO shared_inbox_messages_fts (shared_inbox_messages_fts, rowid, search) VALUES ('delete', old.seq, old.search);
    INSERT INTO shared_inbox_messages_fts (rowid, search) VALUES (new.seq, new.search);
END;

CREATE TABLE email_routing_rules (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    inbox_id TEXT,
    enabled INTEGER,
    order_key INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX email_routing_rules_by_inbox_id ON email_routing_rules (tenant, inbox_id, id);
CREATE INDEX email_routing_rules_by_enabled ON email_routing_rules (tenant, enabled, id);
CREATE INDEX email_routing_rules_by_order_key ON email_routing_rules (tenant, order_key, id);

CREATE TABLE email_prioritization_decisions (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT,
    email_id TEXT,
    decided_at INTEGER,
    feedback TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX email_prioritization_decisions_by_user_id ON email_prioritization_decisions (tenant, user_id, id);
CREATE INDEX email_prioritization_decisions_by_email_id ON email_prioritization_decisions (tenant, email_id, id);
CREATE INDEX email_prioritization_decisions_by_decided_at ON email_prioritization_decisions (tenant, decided_at, id);
CREATE INDEX email_prioritization_decisions_by_feedback ON email_prioritization_decisions (tenant, feedback, id);
