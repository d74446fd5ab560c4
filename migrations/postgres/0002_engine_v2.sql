-- Engine v2: counters and the mapping email as indexed columns, and Gmail sync jobs. Every
-- indexed text column uses the "C" collation, so lists page in byte order as on every other
-- backend. Bodies become TEXT: they are the exact JSON the application encoded (JSONB refuses
-- the escaped NUL that JSON allows in strings). Every declared index of a document has an index
-- named <table>_by_<column> (the schema test checks).

ALTER TABLE integrations
    ALTER COLUMN user_id TYPE TEXT COLLATE "C",
    ALTER COLUMN integration_type TYPE TEXT COLLATE "C",
    ALTER COLUMN body TYPE TEXT USING body::text,
    ADD COLUMN messages_sent BIGINT,
    ADD COLUMN errors_24h BIGINT;
UPDATE integrations SET
    messages_sent = (body::jsonb -> 'r' ->> 'messages_sent')::bigint,
    errors_24h = (body::jsonb -> 'r' ->> 'errors_24h')::bigint;
CREATE INDEX integrations_by_messages_sent ON integrations (tenant, messages_sent, id);
CREATE INDEX integrations_by_errors_24h ON integrations (tenant, errors_24h, id);

ALTER TABLE user_id_mappings
    ALTER COLUMN platform TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id TYPE TEXT COLLATE "C",
    ALTER COLUMN body TYPE TEXT USING body::text,
    ADD COLUMN email TEXT COLLATE "C";
UPDATE user_id_mappings SET email = lower(body::jsonb -> 'r' ->> 'email');
CREATE INDEX user_id_mappings_by_email ON user_id_mappings (tenant, email, id);

ALTER TABLE gmail_tokens
    ALTER COLUMN email_address TYPE TEXT COLLATE "C",
    ALTER COLUMN body TYPE TEXT USING body::text;

CREATE TABLE gmail_sync_jobs (
    tenant          TEXT COLLATE "C" NOT NULL,
    id              TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C",
    messages_synced BIGINT,
    version         BIGINT      NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    body            TEXT        NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX gmail_sync_jobs_by_status ON gmail_sync_jobs (tenant, status, id);
CREATE INDEX gmail_sync_jobs_by_messages_synced ON gmail_sync_jobs (tenant, messages_synced, id);
