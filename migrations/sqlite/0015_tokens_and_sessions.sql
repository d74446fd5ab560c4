-- Bearer tokens and sessions (issue 13): password reset tokens and their rate windows, revoked
-- tokens, debate and receipt share links (token digests in a cross-tenant directory, use
-- counters), admin impersonation sessions (their audit is the system tenant's audit chain).
CREATE TABLE password_reset_tokens (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    email TEXT,
    uses INTEGER,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX password_reset_tokens_by_email ON password_reset_tokens (tenant, email, id);
CREATE INDEX password_reset_tokens_by_uses ON password_reset_tokens (tenant, uses, id);
CREATE INDEX password_reset_tokens_by_expires_at ON password_reset_tokens (expires_at);

CREATE TABLE password_reset_requests (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    issued INTEGER,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX password_reset_requests_by_issued ON password_reset_requests (tenant, issued, id);
CREATE INDEX password_reset_requests_by_expires_at ON password_reset_requests (expires_at);

CREATE TABLE token_blacklist (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX token_blacklist_by_expires_at ON token_blacklist (expires_at);

CREATE TABLE debate_shares (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    token_digest TEXT,
    owner_id TEXT,
    visibility TEXT,
    link_expires_at INTEGER,
    view_count INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX debate_shares_by_token_digest ON debate_shares (token_digest);
CREATE INDEX debate_shares_by_owner_id ON debate_shares (tenant, owner_id, id);
CREATE INDEX debate_shares_by_visibility ON debate_shares (tenant, visibility, id);
CREATE INDEX debate_shares_by_link_expires_at ON debate_shares (tenant, link_expires_at, id);
CREATE INDEX debate_shares_by_view_count ON debate_shares (tenant, view_count, id);

CREATE TABLE receipt_shares (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    receipt_id TEXT,
    token_digest TEXT,
    access_count INTEGER,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX receipt_shares_by_receipt_id ON receipt_shares (tenant, receipt_id, id);
CREATE UNIQUE INDEX receipt_shares_by_token_digest ON receipt_shares (token_digest);
CREATE INDEX receipt_shares_by_access_count ON receipt_shares (tenant, access_count, id);
CREATE INDEX receipt_shares_by_expires_at ON receipt_shares (expires_at);

CREATE TABLE impersonation_sessions (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    admin_id TEXT,
    target_id TEXT,
    started_at INTEGER,
    session_expires_at INTEGER,
    ended_at INTEGER,
    actions_performed INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX impersonation_sessions_by_admin_id ON impersonation_sessions (tenant, admin_id, id);
CREATE INDEX impersonation_sessions_by_target_id ON impersonation_sessions (tenant, target_id, id);
CREATE INDEX impersonation_sessions_by_started_at ON impersonation_sessions (tenant, started_at, id);
CREATE INDEX impersonation_sessions_by_session_expires_at ON impersonation_sessions (tenant, session_expires_at, id);
CREATE INDEX impersonation_sessions_by_ended_at ON impersonation_sessions (tenant, ended_at, id);
CREATE INDEX impersonation_sessions_by_actions_performed ON impersonation_sessions (tenant, actions_performed, id);
