-- Invitations, OAuth links, external identities, onboarding flows, vertical configs and usage
-- events (issue 10). Invitations and usage events live in their organisation's tenant (invitation
-- token digests are unique across tenants); the others in the library's own tenant `_system`.
-- Text columns compare in byte order ("C"), as on every backend.

CREATE TABLE org_invitations (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    email TEXT COLLATE "C",
    token_digest TEXT COLLATE "C",
    status TEXT COLLATE "C",
    expires_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX org_invitations_by_email ON org_invitations (tenant, email, id);
CREATE UNIQUE INDEX org_invitations_by_token_digest ON org_invitations (token_digest);
CREATE INDEX org_invitations_by_status ON org_invitations (tenant, status, id);
CREATE INDEX org_invitations_by_expires_at ON org_invitations (tenant, expires_at, id);

CREATE TABLE oauth_links (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    user_provider TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX oauth_links_by_user_id ON oauth_links (tenant, user_id, id);
CREATE UNIQUE INDEX oauth_links_by_user_provider ON oauth_links (tenant, user_provider);

CREATE TABLE external_identities (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    identity_key TEXT COLLATE "C",
    user_id TEXT COLLATE "C",
    email TEXT COLLATE "C",
    provider TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX external_identities_by_identity_key ON external_identities (tenant, identity_key);
CREATE INDEX external_identities_by_user_id ON external_identities (tenant, user_id, id);
CREATE INDEX external_identities_by_email ON external_identities (tenant, email, id);
CREATE INDEX external_identities_by_provider ON external_identities (tenant, provider, id);

CREATE TABLE onboarding_flows (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    flow_key TEXT COLLATE "C",
    user_id TEXT COLLATE "C",
    started_at TIMESTAMPTZ,
    completed BOOLEAN,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX onboarding_flows_by_flow_key ON onboarding_flows (tenant, flow_key);
CREATE INDEX onboarding_flows_by_user_id ON onboarding_flows (tenant, user_id, id);
CREATE INDEX onboarding_flows_by_started_at ON onboarding_flows (tenant, started_at, id);
CREATE INDEX onboarding_flows_by_completed ON onboarding_flows (tenant, completed, id);

CREATE TABLE vertical_configs (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    updated_by TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX vertical_configs_by_updated_by ON vertical_configs (tenant, updated_by, id);

CREATE TABLE usage_events (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    event_type TEXT COLLATE "C",
    at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX usage_events_by_event_type ON usage_events (tenant, event_type, id);
CREATE INDEX usage_events_by_at ON usage_events (tenant, at, id);

