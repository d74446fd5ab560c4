-- Business (issue 12): the marketplace's templates (global: the system tenant; searchable; two
-- rating ranks so unrated templates come last both ways), ratings and reviews (a helpful
-- counter); provenance chains (one per debate), their hash-linked evidence records and citations.
CREATE TABLE marketplace_templates (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    name_key TEXT,
    category TEXT,
    author_id TEXT,
    rating INTEGER,
    downloads INTEGER,
    featured INTEGER,
    trending INTEGER,
    published_at INTEGER,
    changed_at INTEGER,
    rating_asc INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    seq INTEGER PRIMARY KEY,
    UNIQUE (tenant, id)
);
CREATE UNIQUE INDEX marketplace_templates_by_name_key ON marketplace_templates (tenant, name_key);
CREATE INDEX marketplace_templates_by_category ON marketplace_templates (tenant, category, id);
CREATE INDEX marketplace_templates_by_author_id ON marketplace_templates (tenant, author_id, id);
CREATE INDEX marketplace_templates_by_rating ON marketplace_templates (tenant, rating, id);
CREATE INDEX marketplace_templates_by_downloads ON marketplace_templates (tenant, downloads, id);
CREATE INDEX marketplace_templates_by_featured ON marketplace_templates (tenant, featured, id);
CREATE INDEX marketplace_templates_by_trending ON marketplace_templates (tenant, trending, id);
CREATE INDEX marketplace_templates_by_published_at ON marketplace_templates (tenant, published_at, id);
CREATE INDEX marketplace_templates_by_changed_at ON marketplace_templates (tenant, changed_at, id);
CREATE INDEX marketplace_templates_by_rating_asc ON marketplace_templates (tenant, rating_asc, id);
CREATE VIRTUAL TABLE marketplace_templates_fts USING fts5(search, content='marketplace_templates', content_rowid='seq', tokenize='unicode61');
CREATE TRIGGER marketplace_templates_fts_insert AFTER INSERT ON marketplace_templates BEGIN
    INSERT INTO marketplace_templates_fts (rowid, search) VALUES (new.seq, new.search);
END;
CREATE TRIGGER marketplace_templates_fts_delete AFTER DELETE ON marketplace_templates BEGIN
    INSERT INTO marketplace_templates_fts (marketplace_templates_fts, rowid, search) VALUES ('delete', old.seq, old.search);
END;
CREATE TRIGGER marketplace_templates_fts_update AFTER UPDATE OF search ON marketplace_templates BEGIN
    INSERT INTO marketplace_templates_fts (marketplace_templates_fts, rowid, search) VALUES ('delete', old.seq, old.search);
    INSERT INTO marketplace_templates_fts (rowid, search) VALUES (new.seq, new.search);
END;

CREATE TABLE marketplace_ratings (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    template_id TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX marketplace_ratings_by_template_id ON marketplace_ratings (tenant, template_id, id);

CREATE TABLE marketplace_reviews (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    template_id TEXT,
    posted_at INTEGER,
    helpful_count INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX marketplace_reviews_by_template_id ON marketplace_reviews (tenant, template_id, id);
CREATE INDEX marketplace_reviews_by_posted_at ON marketplace_reviews (tenant, posted_at, id);
CREATE INDEX marketplace_reviews_by_helpful_count ON marketplace_reviews (tenant, helpful_count, id);

CREATE TABLE provenance_chains (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    debate_id TEXT,
    saved_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX provenance_chains_by_debate_id ON provenance_chains (tenant, debate_id);
CREATE INDEX provenance_chains_by_saved_at ON provenance_chains (tenant, saved_at, id);

CREATE TABLE provenance_records (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    chain_id TEXT,
    position INTEGER,
    source_type TEXT,
    source_id TEXT,
    verified INTEGER,
    timestamp INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX provenance_records_by_chain_id ON provenance_records (tenant, chain_id, id);
CREATE INDEX provenance_records_by_position ON provenance_records (tenant, position, id);
CREATE INDEX provenance_records_by_source_type ON provenance_records (tenant, source_type, id);
CREATE INDEX provenance_records_by_source_id ON provenance_records (tenant, source_id, id);
CREATE INDEX provenance_records_by_verified ON provenance_records (tenant, verified, id);
CREATE INDEX provenance_records_by_timestamp ON provenance_records (tenant, timestamp, id);

CREATE TABLE provenance_citations (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    chain_id TEXT,
    claim_id TEXT,
    evidence_id TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX provenance_citations_by_chain_id ON provenance_citations (tenant, chain_id, id);
CREATE INDEX provenance_citations_by_claim_id ON provenance_citations (tenant, claim_id, id);
CREATE INDEX provenance_citations_by_evidence_id ON provenance_citations (tenant, evidence_id, id);
