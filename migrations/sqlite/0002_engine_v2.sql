-- Engine v2: counters and the mapping email as indexed columns, and Gmail sync jobs. Every
-- declared index of a document has an index named <table>_by_<column> (the schema test checks).

ALTER TABLE integrations ADD COLUMN messages_sent INTEGER;
ALTER TABLE integrations ADD COLUMN errors_24h INTEGER;
UPDATE integrations SET messages_sent = json_extract(body, '$.r.messages_sent'), errors_24h = json_extract(body, '$.r.errors_24h');
CREATE INDEX integrations_by_messages_sent ON integrations (tenant, messages_sent, id);
CREATE INDEX integrations_by_errors_24h ON integrations (tenant, errors_24h, id);

ALTER TABLE user_id_mappings ADD COLUMN email TEXT;
UPDATE user_id_mappings SET email = lower(json_extract(body, '$.r.email'));
CREATE INDEX user_id_mappings_by_email ON user_id_mappings (tenant, email, id);

CREATE TABLE gmail_sync_jobs (
    tenant          TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    status          TEXT,
    messages_synced INTEGER,
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    body            TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX gmail_sync_jobs_by_status ON gmail_sync_jobs (tenant, status, id);
CREATE INDEX gmail_sync_jobs_by_messages_synced ON gmail_sync_jobs (tenant, messages_synced, id);
