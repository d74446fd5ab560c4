-- Business (issue 12): the marketplace's templates (global: the system tenant; searchable),
-- ratings and reviews.
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
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX marketplace_reviews_by_template_id ON marketplace_reviews (tenant, template_id, id);
CREATE INDEX marketplace_reviews_by_posted_at ON marketplace_reviews (tenant, posted_at, id);
