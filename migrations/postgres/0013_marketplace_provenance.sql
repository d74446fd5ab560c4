-- Business (issue 12): the marketplace's templates (global: the system tenant; searchable; two
-- rating ranks so unrated templates come last both ways), ratings and reviews (a helpful
-- counter); provenance chains (one per debate), their hash-linked evidence records and citations.
CREATE TABLE marketplace_templates (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    name_key TEXT COLLATE "C",
    category TEXT COLLATE "C",
    author_id TEXT COLLATE "C",
    rating BIGINT,
    downloads BIGINT,
    featured BOOLEAN,
    trending BOOLEAN,
    published_at TIMESTAMPTZ,
    changed_at TIMESTAMPTZ,
    rating_asc BIGINT,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    search_vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', coalesce(search, ''))) STORED,
    PRIMARY KEY (tenant, id)
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
CREATE INDEX marketplace_templates_by_search ON marketplace_templates USING GIN (search_vector);

CREATE TABLE marketplace_ratings (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    template_id TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX marketplace_ratings_by_template_id ON marketplace_ratings (tenant, template_id, id);

CREATE TABLE marketplace_reviews (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    template_id TEXT COLLATE "C",
    posted_at TIMESTAMPTZ,
    helpful_count BIGINT,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX marketplace_reviews_by_template_id ON marketplace_reviews (tenant, template_id, id);
CREATE INDEX marketplace_reviews_by_posted_at ON marketplace_reviews (tenant, posted_at, id);
CREATE INDEX marketplace_reviews_by_helpful_count ON marketplace_reviews (tenant, helpful_count, id);

CREATE TABLE provenance_chains (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    debate_id TEXT COLLATE "C",
    saved_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX provenance_chains_by_debate_id ON provenance_chains (tenant, debate_id);
CREATE INDEX provenance_chains_by_saved_at ON provenance_chains (tenant, saved_at, id);

CREATE TABLE provenance_records (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    chain_id TEXT COLLATE "C",
    position BIGINT,
    source_type TEXT COLLATE "C",
    source_id TEXT COLLATE "C",
    verified BOOLEAN,
    timestamp TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX provenance_records_by_chain_id ON provenance_records (tenant, chain_id, id);
CREATE INDEX provenance_records_by_position ON provenance_records (tenant, position, id);
CREATE INDEX provenance_records_by_source_type ON provenance_records (tenant, source_type, id);
CREATE INDEX provenance_records_by_source_id ON provenance_records (tenant, source_id, id);
CREATE INDEX provenance_records_by_verified ON provenance_records (tenant, verified, id);
CREATE INDEX provenance_records_by_timestamp ON provenance_records (tenant, timestamp, id);

CREATE TABLE provenance_citations (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    chain_id TEXT COLLATE "C",
    claim_id TEXT COLLATE "C",
    evidence_id TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX provenance_citations_by_chain_id ON provenance_citations (tenant, chain_id, id);
CREATE INDEX provenance_citations_by_claim_id ON provenance_citations (tenant, claim_id, id);
CREATE INDEX provenance_citations_by_evidence_id ON provenance_citations (tenant, evidence_id, id);
