-- Chat platforms, notifications and banking (issue 11): bot installations (Slack workspaces,
-- Teams tenants and Discord guilds in one table, found across tenants by platform and platform
-- id), debates started from Slack (one per thread), notification channels, recipients and
-- template overrides, and Plaid credentials.

CREATE TABLE bot_installations (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    install_key TEXT COLLATE "C",
    platform TEXT COLLATE "C",
    is_active BOOLEAN,
    installed_at TIMESTAMPTZ,
    refresh_due_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX bot_installations_by_install_key ON bot_installations (install_key);
CREATE INDEX bot_installations_by_platform ON bot_installations (tenant, platform, id);
CREATE INDEX bot_installations_by_is_active ON bot_installations (tenant, is_active, id);
CREATE INDEX bot_installations_by_installed_at ON bot_installations (tenant, installed_at, id);
CREATE INDEX bot_installations_by_refresh_due_at ON bot_installations (tenant, refresh_due_at, id);

CREATE TABLE plaid_credentials (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    linked_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX plaid_credentials_by_user_id ON plaid_credentials (tenant, user_id, id);
CREATE INDEX plaid_credentials_by_linked_at ON plaid_credentials (tenant, linked_at, id);

CREATE TABLE slack_debates (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    thread_key TEXT COLLATE "C",
    workspace_id TEXT COLLATE "C",
    user_id TEXT COLLATE "C",
    status TEXT COLLATE "C",
    started_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX slack_debates_by_thread_key ON slack_debates (tenant, thread_key);
CREATE INDEX slack_debates_by_workspace_id ON slack_debates (tenant, workspace_id, id);
CREATE INDEX slack_debates_by_user_id ON slack_debates (tenant, user_id, id);
CREATE INDEX slack_debates_by_status ON slack_debates (tenant, status, id);
CREATE INDEX slack_debates_by_started_at ON slack_debates (tenant, started_at, id);

CREATE TABLE notification_email_configs (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE notification_telegram_configs (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE notification_recipients (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE notification_template_overrides (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX notification_template_overrides_by_user_id ON notification_template_overrides (tenant, user_id, id);
