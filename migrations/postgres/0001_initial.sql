-- The first three stores. Instants are TIMESTAMPTZ written from the application's clock (never
-- NOW()). Generic tables: identity, indexed columns, metadata, JSONB body. Keys use the "C"
-- collation so lists page in byte order, exactly as on every other backend.

CREATE TABLE integrations (
    tenant           TEXT COLLATE "C" NOT NULL,
    id               TEXT COLLATE "C" NOT NULL,
    user_id          TEXT,
    integration_type TEXT,
    version          BIGINT      NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    body             JSONB       NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX integrations_by_user_id ON integrations (tenant, user_id, id);
CREATE INDEX integrations_by_integration_type ON integrations (tenant, integration_type, id);

CREATE TABLE user_id_mappings (
    tenant           TEXT COLLATE "C" NOT NULL,
    id               TEXT COLLATE "C" NOT NULL,
    platform   TEXT,
    user_id    TEXT,
    version    BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body       JSONB       NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX user_id_mappings_by_platform ON user_id_mappings (tenant, platform, id);
CREATE INDEX user_id_mappings_by_user_id ON user_id_mappings (tenant, user_id, id);

CREATE TABLE gmail_tokens (
    tenant           TEXT COLLATE "C" NOT NULL,
    id               TEXT COLLATE "C" NOT NULL,
    email_address TEXT,
    token_expiry  TIMESTAMPTZ,
    version       BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    body          JSONB       NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX gmail_tokens_by_email_address ON gmail_tokens (tenant, email_address, id);
CREATE INDEX gmail_tokens_by_token_expiry ON gmail_tokens (tenant, token_expiry, id);

CREATE TABLE webhook_events (
    tenant           TEXT COLLATE "C" NOT NULL,
    event_id         TEXT COLLATE "C" NOT NULL,
    state        TEXT        NOT NULL CHECK (state IN ('in_flight', 'done')),
    token        UUID,
    result       TEXT,
    completed_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, event_id)
);
CREATE INDEX webhook_events_by_expires_at ON webhook_events (expires_at);
CREATE INDEX webhook_events_by_tenant_expires_at ON webhook_events (tenant, expires_at);
