-- Decisions and money (issue 12): decision receipts (write-once, searchable, retained unless held;
-- their deletions are logged in the audit chain), payable and receivable invoices with their
-- payment ledgers (one row per idempotency key), and customers.
CREATE TABLE decision_receipts (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    gauntlet_id TEXT,
    debate_id TEXT,
    verdict TEXT,
    risk_level TEXT,
    issued_at INTEGER,
    confidence INTEGER,
    risk_score INTEGER,
    signed_at INTEGER,
    retain_until INTEGER,
    legal_hold INTEGER,
    matter_id TEXT,
    subject_id TEXT,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    search TEXT,
    seq INTEGER PRIMARY KEY,
    UNIQUE (tenant, id)
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
CREATE VIRTUAL TABLE decision_receipts_fts USING fts5(search, content='decision_receipts', content_rowid='seq', tokenize='unicode61');
CREATE TRIGGER decision_receipts_fts_insert AFTER INSERT ON decision_receipts BEGIN
    INSERT INTO decision_receipts_fts (rowid, search) VALUES (new.seq, new.search);
END;
CREATE TRIGGER decision_receipts_fts_delete AFTER DELETE ON decision_receipts BEGIN
    INSERT INTO decision_receipts_fts (decision_receipts_fts, rowid, search) VALUES ('delete', old.seq, old.search);
END;
CREATE TRIGGER decision_receipts_fts_update AFTER UPDATE OF search ON decision_receipts BEGIN
    INSERT INTO decision_receipts_fts (decision_receipts_fts, rowid, search) VALUES ('delete', old.seq, old.search);
    INSERT INTO decision_receipts_fts (rowid, search) VALUES (new.seq, new.search);
END;

CREATE TABLE ap_invoices (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT,
    vendor_id TEXT,
    invoice_number TEXT,
    po_number TEXT,
    currency TEXT,
    total INTEGER,
    invoice_date INTEGER,
    due_date INTEGER,
    scheduled_for INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
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
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    bill_id TEXT,
    at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX ap_payments_by_bill_id ON ap_payments (tenant, bill_id, id);
CREATE INDEX ap_payments_by_at ON ap_payments (tenant, at, id);

CREATE TABLE ar_invoices (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT,
    customer_id TEXT,
    issued_at INTEGER,
    due_date INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX ar_invoices_by_status ON ar_invoices (tenant, status, id);
CREATE INDEX ar_invoices_by_customer_id ON ar_invoices (tenant, customer_id, id);
CREATE INDEX ar_invoices_by_issued_at ON ar_invoices (tenant, issued_at, id);
CREATE INDEX ar_invoices_by_due_date ON ar_invoices (tenant, due_date, id);

CREATE TABLE ar_payments (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    bill_id TEXT,
    at INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX ar_payments_by_bill_id ON ar_payments (tenant, bill_id, id);
CREATE INDEX ar_payments_by_at ON ar_payments (tenant, at, id);

CREATE TABLE ar_customers (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

-- Trail receipts are decision receipts now (the audit trail store saves them in the receipt store).
DROP TABLE trail_receipts;
