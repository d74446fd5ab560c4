-- Users and organisations (issue 10). Both live in the library's own tenant `_system`: emails, API
-- key digests, slugs and Stripe ids are unique there and found before any tenant is known.

CREATE TABLE users (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    email TEXT,
    api_key_digest TEXT,
    org_id TEXT,
    role TEXT,
    is_active INTEGER,
    email_verified INTEGER,
    token_version INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX users_by_email ON users (tenant, email);
CREATE UNIQUE INDEX users_by_api_key_digest ON users (tenant, api_key_digest);
CREATE INDEX users_by_org_id ON users (tenant, org_id, id);
CREATE INDEX users_by_role ON users (tenant, role, id);
CREATE INDEX users_by_is_active ON users (tenant, is_active, id);
CREATE INDEX users_by_email_verified ON users (tenant, email_verified, id);
CREATE INDEX users_by_token_version ON users (tenant, token_version, id);

CREATE TABLE organizations (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    slug TEXT,
    tier TEXT,
    stripe_customer_id TEXT,
    stripe_subscription_id TEXT,
    debates_used_this_month INTEGER,
    billing_cycle_start INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX organizations_by_slug ON organizations (tenant, slug);
CREATE INDEX organizations_by_tier ON organizations (tenant, tier, id);
CREATE UNIQUE INDEX organizations_by_stripe_customer_id ON organizations (tenant, stripe_customer_id);
CREATE UNIQUE INDEX organizations_by_stripe_subscription_id ON organizations (tenant, stripe_subscription_id);
CREATE INDEX organizations_by_debates_used_this_month ON organizations (tenant, debates_used_this_month, id);
CREATE INDEX organizations_by_billing_cycle_start ON organizations (tenant, billing_cycle_start, id);

