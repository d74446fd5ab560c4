-- The inbox (issue 11): the unified inbox's mail accounts, their messages (one per account and
-- external id, ranked by priority then arrival) and the messages' triage; inbox activity; the
-- email store's user settings, VIP senders, shared inboxes (with a postings table of their
-- members), shared messages, routing rules and prioritisation decisions. Messages are
-- full-text searchable: an FTS5 index kept by triggers on SQLite, a generated tsvector with a GIN
-- index on PostgreSQL.

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

CREATE TABLE inbox_activities (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    inbox_id TEXT COLLATE "C",
    actor_id TEXT COLLATE "C",
    action TEXT COLLATE "C",
    target_id TEXT COLLATE "C",
    at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX inbox_activities_by_inbox_id ON inbox_activities (tenant, inbox_id, id);
CREATE INDEX inbox_activities_by_actor_id ON inbox_activities (tenant, actor_id, id);
CREATE INDEX inbox_activities_by_action ON inbox_activities (tenant, action, id);
CREATE INDEX inbox_activities_by_target_id ON inbox_activities (tenant, target_id, id);
CREATE INDEX inbox_activities_by_at ON inbox_activities (tenant, at, id);

CREATE TABLE email_user_configs (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE email_vip_senders (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX email_vip_senders_by_user_id ON email_vip_senders (tenant, user_id, id);

CREATE TABLE shared_inboxes (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE shared_inbox_members (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C",
    owner TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX shared_inbox_members_by_value ON shared_inbox_members (tenant, value, id);
CREATE INDEX shared_inbox_members_by_owner ON shared_inbox_members (tenant, owner, id);

CREATE TABLE shared_inbox_messages (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    inbox_id TEXT COLLATE "C",
    status TEXT COLLATE "C",
    assigned_to TEXT COLLATE "C",
    received_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    search_vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', coalesce(search, ''))) STORED,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX shared_inbox_messages_by_inbox_id ON shared_inbox_messages (tenant, inbox_id, id);
CREATE INDEX shared_inbox_messages_by_status ON shared_inbox_messages (tenant, status, id);
CREATE INDEX shared_inbox_messages_by_assigned_to ON shared_inbox_messages (tenant, assigned_to, id);
CREATE INDEX shared_inbox_messages_by_received_at ON shared_inbox_messages (tenant, received_at, id);
CREATE INDEX shared_inbox_messages_by_search ON shared_inbox_messages USING GIN (search_vector);

CREATE TABLE email_routing_rules (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    inbox_id TEXT COLLATE "C",
    enabled BOOLEAN,
    order_key BIGINT,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX email_routing_rules_by_inbox_id ON email_routing_rules (tenant, inbox_id, id);
CREATE INDEX email_routing_rules_by_enabled ON email_routing_rules (tenant, enabled, id);
CREATE INDEX email_routing_rules_by_order_key ON email_routing_rules (tenant, order_key, id);

CREATE TABLE email_prioritization_decisions (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    email_id TEXT COLLATE "C",
    decided_at TIMESTAMPTZ,
    feedback TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX email_prioritization_decisions_by_user_id ON email_prioritization_decisions (tenant, user_id, id);
CREATE INDEX email_prioritization_decisions_by_email_id ON email_prioritization_decisions (tenant, email_id, id);
CREATE INDEX email_prioritization_decisions_by_decided_at ON email_prioritization_decisions (tenant, decided_at, id);
CREATE INDEX email_prioritization_decisions_by_feedback ON email_prioritization_decisions (tenant, feedback, id);
