-- Outbound webhooks and channel subscriptions (issue 11): each with a companion table of
-- postings, one per (event type, record), the multi-valued index an event finds its
-- subscribers by; the webhook postings also carry an index by event first, for the
-- dispatcher's lookup across tenants.

CREATE TABLE webhook_configs (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    active BOOLEAN,
    registered_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX webhook_configs_by_user_id ON webhook_configs (tenant, user_id, id);
CREATE INDEX webhook_configs_by_active ON webhook_configs (tenant, active, id);
CREATE INDEX webhook_configs_by_registered_at ON webhook_configs (tenant, registered_at, id);

CREATE TABLE webhook_config_events (
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
CREATE INDEX webhook_config_events_by_value ON webhook_config_events (tenant, value, id);
CREATE INDEX webhook_config_events_by_owner ON webhook_config_events (tenant, owner, id);

CREATE TABLE channel_subscriptions (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    channel_type TEXT COLLATE "C",
    is_active BOOLEAN,
    subscribed_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX channel_subscriptions_by_channel_type ON channel_subscriptions (tenant, channel_type, id);
CREATE INDEX channel_subscriptions_by_is_active ON channel_subscriptions (tenant, is_active, id);
CREATE INDEX channel_subscriptions_by_subscribed_at ON channel_subscriptions (tenant, subscribed_at, id);

CREATE TABLE channel_subscription_events (
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
CREATE INDEX channel_subscription_events_by_value ON channel_subscription_events (tenant, value, id);
CREATE INDEX channel_subscription_events_by_owner ON channel_subscription_events (tenant, owner, id);
CREATE INDEX webhook_config_events_by_event ON webhook_config_events (value, tenant, id);
