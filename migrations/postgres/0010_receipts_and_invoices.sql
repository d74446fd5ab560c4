-- Decisions and money (issue 12): decision receipts (write-once, searchable, retained unless held;
-- their deletions are logged in the audit chain), payable and receivable invoices with their
-- payment ledgers (one row per idempotency key), and customers.
CREATE TABLE decision_receipts (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    gauntlet_id TEXT COLLATE "C",
    debate_id TEXT COLLATE "C",
    verdict TEXT COLLATE "C",
    risk_level TEXT COLLATE "C",
    issued_at TIMESTAMPTZ,
    confidence BIGINT,
    risk_score BIGINT,
    signed_at TIMESTAMPTZ,
    retain_until TIMESTAMPTZ,
    legal_hold BOOLEAN,
    matter_id TEXT COLLATE "C",
    subject_id TEXT COLLATE "C",
    expires_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    search_vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', coalesce(search, ''))) STORED,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX decision_receipts_by_gauntlet_id ON decision_receipts (tenant, gauntlet_id);
CREATE INDEX decision_receipts_by_debate_id ON decision_receipts (tenant, debate_id, id);
CREATE INDEX decision_receipts_by_verdict ON decision_receipts (tenant, verdict, id);
CREATE INDEX decision_receipts_by_risk_level ON decision_receipts (tenant, risk_level, id);
CREATE INDEX decision_receipts_by_issued_at ON decision_receipts (tenant, issued_at, id);
CREATE INDEX decision_receipts_by_confidence ON decision_receipts (tenant, confidence, id);
CREATE INDEX decision_receipts_by_risk_score ON decision_receipts (tenant, risk_score, id);
CREATE INDEX decision_receipts_by_signed_at ON decision_receipts (tenant, signed_at, id);
CREATE INDEX decision_receipts_by_retain_until ON decision_receipts (tenant, retain_until, id);
CREATE INDEX decision_receipts_by_legal_hold ON decision_receipts (tenant, legal_hold, id);
CREATE INDEX decision_receipts_by_matter_id ON decision_receipts (tenant, matter_id, id);
CREATE INDEX decision_receipts_by_subject_id ON decision_receipts (tenant, subject_id, id);
CREATE INDEX decision_receipts_by_expires_at ON decision_receipts (expires_at);
CREATE INDEX decision_receipts_by_search ON decision_receipts USING GIN (search_vector);

CREATE TABLE ap_invoices (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C",
    vendor_id TEXT COLLATE "C",
    invoice_number TEXT COLLATE "C",
    po_number TEXT COLLATE "C",
    currency TEXT COLLATE "C",
    total BIGINT,
    invoice_date TIMESTAMPTZ,
    due_date TIMESTAMPTZ,
    scheduled_for TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX ap_invoices_by_status ON ap_invoices (tenant, status, id);
CREATE INDEX ap_invoices_by_vendor_id ON ap_invoices (tenant, vendor_id, id);
CREATE INDEX ap_invoices_by_invoice_number ON ap_invoices (tenant, invoice_number, id);
CREATE INDEX ap_invoices_by_po_number ON ap_invoices (tenant, po_number, id);
CREATE INDEX ap_invoices_by_currency ON ap_invoices (tenant, currency, id);
CREATE INDEX ap_invoices_by_total ON ap_invoices (tenant, total, id);
CREATE INDEX ap_invoices_by_invoice_date ON ap_invoices (tenant, invoice_date, id);
CREATE INDEX ap_invoices_by_due_date ON ap_invoices (tenant, due_date, id);
CREATE INDEX ap_invoices_by_scheduled_for ON ap_invoices (tenant, scheduled_for, id);

CREATE TABLE ap_payments (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    bill_id TEXT COLLATE "C",
    at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX ap_payments_by_bill_id ON ap_payments (tenant, bill_id, id);
CREATE INDEX ap_payments_by_at ON ap_payments (tenant, at, id);

CREATE TABLE ar_invoices (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C",
    customer_id TEXT COLLATE "C",
    issued_at TIMESTAMPTZ,
    due_date TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX ar_invoices_by_status ON ar_invoices (tenant, status, id);
CREATE INDEX ar_invoices_by_customer_id ON ar_invoices (tenant, customer_id, id);
CREATE INDEX ar_invoices_by_issued_at ON ar_invoices (tenant, issued_at, id);
CREATE INDEX ar_invoices_by_due_date ON ar_invoices (tenant, due_date, id);

CREATE TABLE ar_payments (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    bill_id TEXT COLLATE "C",
    at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX ar_payments_by_bill_id ON ar_payments (tenant, bill_id, id);
CREATE INDEX ar_payments_by_at ON ar_payments (tenant, at, id);

CREATE TABLE ar_customers (
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);

-- Trail receipts are decision receipts now (the audit trail store saves them in the receipt store).
DROP TABLE trail_receipts;
