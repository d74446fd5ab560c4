-- Users and organisations (issue 10). Both live in the library's own tenant `_system`: emails, API
-- key digests, slugs and Stripe ids are unique there and found before any tenant is known. Text
-- columns compare in byte order ("C"), as on every backend.

CREATE TABLE users (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    email TEXT COLLATE "C",
    api_key_digest TEXT COLLATE "C",
    org_id TEXT COLLATE "C",
    role TEXT COLLATE "C",
    is_active BOOLEAN,
    email_verified BOOLEAN,
    token_version BIGINT,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX users_by_email ON users (tenant, email);
CREATE UNIQUE INDEX users_by_api_key_digest ON users (tenant, api_key_digest);
CREATE INDEX users_by_org_id ON users (tenant, org_id, id);
CREATE INDEX users_by_role ON users (tenant, role, id);
CREATE INDEX users_by_is_active ON users (tenant, is_active, id);
CREATE INDEX users_by_email_verified ON users (tenant, email_verified, id);
CREATE INDEX users_by_token_version ON users (tenant, token_version, id);

CREATE TABLE organizations (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    slug TEXT COLLATE "C",
    tier TEXT COLLATE "C",
    stripe_customer_id TEXT COLLATE "C",
    stripe_subscription_id TEXT COLLATE "C",
    debates_used_this_month BIGINT,
    billing_cycle_start TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX organizations_by_slug ON organizations (tenant, slug);
CREATE INDEX organizations_by_tier ON organizations (tenant, tier, id);
CREATE UNIQUE INDEX organizations_by_stripe_customer_id ON organizations (tenant, stripe_customer_id);
CREATE UNIQUE INDEX organizations_by_stripe_subscription_id ON organizations (tenant, stripe_subscription_id);
CREATE INDEX organizations_by_debates_used_this_month ON organizations (tenant, debates_used_this_month, id);
CREATE INDEX organizations_by_billing_cycle_start ON organizations (tenant, billing_cycle_start, id);

