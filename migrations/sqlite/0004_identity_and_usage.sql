-- Invitations, OAuth links, external identities, onboarding flows, vertical configs and usage
-- events (issue 10). Invitations and usage events live in their organisation's tenant (invitation
-- token digests are unique across tenants); the others in the library's own tenant `_system`.

CREATE TABLE org_invitations (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    email TEXT,
    token_digest TEXT,
    status TEXT,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX org_invitations_by_email ON org_invitations (tenant, email, id);
CREATE UNIQUE INDEX org_invitations_by_token_digest ON org_invitations (token_digest);
CREATE INDEX org_invitations_by_status ON org_invitations (tenant, status, id);
CREATE INDEX org_invitations_by_expires_at ON org_invitations (tenant, expires_at, id);

CREATE TABLE oauth_links (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT,
    user_provider TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX oauth_links_by_user_id ON oauth_links (tenant, user_id, id);
CREATE UNIQUE INDEX oauth_links_by_user_provider ON oauth_links (tenant, user_provider);

CREATE TABLE external_identities (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    identity_key TEXT,
    user_id TEXT,
    email TEXT,
    provider TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX external_identities_by_identity_key ON external_identities (tenant, identity_key);
CREATE INDEX external_identities_by_user_id ON external_identities (tenant, user_id, id);
CREATE INDEX external_identities_by_email ON external_identities (tenant, email, id);
CREATE INDEX external_identities_by_provider ON external_identities (tenant, provider, id);

CREATE TABLE onboarding_flows (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    flow_key TEXT,
    user_id TEXT,
    started_at INTEGER,
    completed INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX onboarding_flows_by_flow_key ON onboarding_flows (tenant, flow_key);
CREATE INDEX onboarding_flows_by_user_id ON onboarding_flows (tenant, user_id, id);
CREATE INDEX onboarding_flows_by_started_at ON onboarding_flows (tenant, started_at, id);
CREATE INDEX onboarding_flows_by_completed ON onboarding_flows (tenant, completed, id);

CREATE TABLE vertical_configs (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    updated_by TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX vertical_configs_by_updated_by ON vertical_configs (tenant, updated_by, id);

CREATE TABLE usage_events (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    event_type TEXT,
    at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX usage_events_by_event_type ON usage_events (tenant, event_type, id);
CREATE INDEX usage_events_by_at ON usage_events (tenant, at, id);

