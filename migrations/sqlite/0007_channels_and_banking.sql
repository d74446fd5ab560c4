-- Chat platforms, notifications and banking (issue 11): bot installations (Slack workspaces,
-- Teams tenants and Discord guilds in one table, found across tenants by platform and platform
-- id), debates started from Slack (one per thread), notification channels, recipients and
-- template overrides, and Plaid credentials.

CREATE TABLE bot_installations (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    install_key TEXT,
    platform TEXT,
    is_active INTEGER,
    installed_at INTEGER,
    refresh_due_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX bot_installations_by_install_key ON bot_installations (install_key);
CREATE INDEX bot_installations_by_platform ON bot_installations (tenant, platform, id);
CREATE INDEX bot_installations_by_is_active ON bot_installations (tenant, is_active, id);
CREATE INDEX bot_installations_by_installed_at ON bot_installations (tenant, installed_at, id);
CREATE INDEX bot_installations_by_refresh_due_at ON bot_installations (tenant, refresh_due_at, id);

CREATE TABLE plaid_credentials (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT,
    linked_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX plaid_credentials_by_user_id ON plaid_credentials (tenant, user_id, id);
CREATE INDEX plaid_credentials_by_linked_at ON plaid_credentials (tenant, linked_at, id);

CREATE TABLE slack_debates (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    thread_key TEXT,
    workspace_id TEXT,
    user_id TEXT,
    status TEXT,
    started_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX slack_debates_by_thread_key ON slack_debates (tenant, thread_key);
CREATE INDEX slack_debates_by_workspace_id ON slack_debates (tenant, workspace_id, id);
CREATE INDEX slack_debates_by_user_id ON slack_debates (tenant, user_id, id);
CREATE INDEX slack_debates_by_status ON slack_debates (tenant, status, id);
CREATE INDEX slack_debates_by_started_at ON slack_debates (tenant, started_at, id);

CREATE TABLE notification_email_configs (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE notification_telegram_configs (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE notification_recipients (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE notification_template_overrides (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX notification_template_overrides_by_user_id ON notification_template_overrides (tenant, user_id, id);
