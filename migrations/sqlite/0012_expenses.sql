-- Money (issue 12): expenses, with their total in minor units and its currency indexed, so that
-- duplicates are found by an indexed query.
CREATE TABLE expenses (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT,
    employee_id TEXT,
    category TEXT,
    vendor_key TEXT,
    currency TEXT,
    total INTEGER,
    expense_date INTEGER,
    synced INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX expenses_by_status ON expenses (tenant, status, id);
CREATE INDEX expenses_by_employee_id ON expenses (tenant, employee_id, id);
CREATE INDEX expenses_by_category ON expenses (tenant, category, id);
CREATE INDEX expenses_by_vendor_key ON expenses (tenant, vendor_key, id);
CREATE INDEX expenses_by_currency ON expenses (tenant, currency, id);
CREATE INDEX expenses_by_total ON expenses (tenant, total, id);
CREATE INDEX expenses_by_expense_date ON expenses (tenant, expense_date, id);
CREATE INDEX expenses_by_synced ON expenses (tenant, synced, id);
