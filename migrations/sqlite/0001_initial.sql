-- The first three stores. Instants are INTEGER microseconds since the Unix epoch (UTC), written
-- from the application's clock. Generic tables: identity, indexed columns, metadata, JSON body.

CREATE TABLE integrations (
    tenant           TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    user_id          TEXT,
    integration_type TEXT,
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX integrations_by_user_id ON integrations (tenant, user_id, id);
CREATE INDEX integrations_by_integration_type ON integrations (tenant, integration_type, id);

CREATE TABLE user_id_mappings (
    tenant     TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    platform   TEXT,
    user_id    TEXT,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX user_id_mappings_by_platform ON user_id_mappings (tenant, platform, id);
CREATE INDEX user_id_mappings_by_user_id ON user_id_mappings (tenant, user_id, id);

CREATE TABLE gmail_tokens (
    tenant        TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    email_address TEXT,
    token_expiry  INTEGER,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX gmail_tokens_by_email_address ON gmail_tokens (tenant, email_address, id);
CREATE INDEX gmail_tokens_by_token_expiry ON gmail_tokens (tenant, token_expiry, id);

-- Webhook idempotency: one row per event; `expires_at` is the lease end while in flight and the
-- end of the retention window once done.
CREATE TABLE webhook_events (
    tenant       TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('in_flight', 'done')),
    token        TEXT,
    result       TEXT,
    completed_at INTEGER,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant, event_id)
) WITHOUT ROWID;
CREATE INDEX webhook_events_by_expires_at ON webhook_events (expires_at);
CREATE INDEX webhook_events_by_tenant_expires_at ON webhook_events (tenant, expires_at);
