//! Accounts receivable: invoices to customers, their payment ledger, reminders, overdue and
//! aging reports, and the customer directory.
//!
//! Amounts are exact [`Money`]; reports over several currencies keep a total per currency
//! ([`Totals`]). Payments, refunds and write-offs are ledger entries keyed by the caller's
//! idempotency key ([`crate::ledger`]), so a payment retried or raced is counted once and a
//! write-off is never counted as money received.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::ledger::{Balance, EntryKind, LedgerEntry, Ledgered, NewEntry, Posted, ledger_table};
use crate::money::{Money, Totals};
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::invoice::{LineItem, check_lines};
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;

/// Where a receivable invoice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArStatus {
    /// Being prepared.
    Draft,
    /// Sent to the customer.
    Sent,
    /// Paid in part (set by its ledger).
    PartiallyPaid,
    /// Paid in full (set by its ledger).
    Paid,
    /// Handed to collections.
    Collections,
    /// Settled by writing off what was not paid (set by its ledger).
    WrittenOff,
    /// Cancelled.
    Void,
}

impl ArStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Sent => "sent",
            Self::PartiallyPaid => "partially_paid",
            Self::Paid => "paid",
            Self::Collections => "collections",
            Self::WrittenOff => "written_off",
            Self::Void => "void",
        }
    }

    /// Whether [`ArInvoiceStore::update_status`] may move an invoice from this status to
    /// `next` (the ledger alone moves it to partially paid, paid and written off).
    pub fn may_become(self, next: Self) -> bool {
        use ArStatus::*;
        matches!((self, next), (Draft, Sent | Void) | (Sent, Collections | Void) | (PartiallyPaid, Collections) | (Collections, Sent))
    }

    /// Whether the customer still owes on it.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Sent | Self::PartiallyPaid | Self::Collections)
    }

    const OPEN: [Self; 3] = [Self::Sent, Self::PartiallyPaid, Self::Collections];
}

/// A reminder sent about an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// Its level (1 first, then firmer).
    pub level: u8,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
}

/// An invoice to a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArInvoice {
    /// The organisation.
    pub tenant: TenantId,
    /// The invoice's id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// The customer's name as invoiced.
    pub customer_name: String,
    /// The invoice number.
    pub invoice_number: String,
    /// Total, paid, written off and due (set by the store from `total`).
    pub balance: Balance,
    /// Where it stands (set by the store).
    pub status: ArStatus,
    /// The invoice's date.
    pub issued_at: DateTime<Utc>,
    /// When payment is due.
    pub due_date: Option<DateTime<Utc>>,
    /// When it was sent (set by the store).
    pub sent_at: Option<DateTime<Utc>>,
    /// Reminders sent, oldest first (set by the store).
    pub reminders: Vec<Reminder>,
    /// Its lines.
    pub line_items: Vec<LineItem>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When recorded.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl ArInvoice {
    /// A draft invoice of `total` to `customer_id`.
    pub fn new(tenant: TenantId, id: impl Into<String>, customer_id: impl Into<String>, total: Money, issued_at: DateTime<Utc>) -> Self {
        let zero = Money::zero(total.currency());
        Self {
            tenant,
            id: id.into(),
            customer_id: customer_id.into(),
            customer_name: String::new(),
            invoice_number: String::new(),
            balance: Balance { total, paid: zero, written_off: zero, due: total },
            status: ArStatus::Draft,
            issued_at,
            due_date: None,
            sent_at: None,
            reminders: Vec::new(),
            line_items: Vec::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

impl Document for ArInvoice {
    const TABLE: TableDef = TableDef {
        name: "ar_invoices",
        entity: "receivable invoice",
        id_field: "invoice_id",
        indexes: &[IndexSpec::text("status"), IndexSpec::text("customer_id"), IndexSpec::time("issued_at"), IndexSpec::time("due_date")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(self.status.as_str())),
            Some(IndexValue::from(&self.customer_id)),
            Some(IndexValue::Time(self.issued_at)),
            self.due_date.map(IndexValue::Time),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("customer_id", &self.customer_id)?;
        crate::limits::check_text("customer_name", &self.customer_name)?;
        crate::limits::check_text("invoice_number", &self.invoice_number)?;
        self.balance.check()?;
        check_lines(&self.line_items, self.balance.total.currency())
    }
}

impl Ledgered for ArInvoice {
    const ENTRIES: TableDef = ledger_table("ar_payments", "receivable payment");

    fn balance(&self) -> &Balance {
        &self.balance
    }
    fn settle(&mut self, balance: Balance) {
        self.balance = balance;
        self.status = match (balance.due.is_zero(), balance.written_off.is_zero(), balance.paid.is_zero()) {
            (true, true, _) => ArStatus::Paid,
            (true, false, _) => ArStatus::WrittenOff,
            // Collections keep the account there until it is settled.
            (false, _, _) if self.status == ArStatus::Collections => ArStatus::Collections,
            (false, true, true) => ArStatus::Sent,
            (false, _, _) => ArStatus::PartiallyPaid,
        };
    }
    fn check_postable(&self, kind: EntryKind) -> std::result::Result<(), String> {
        let fits = match kind {
            EntryKind::Payment | EntryKind::WriteOff => self.status.is_open(),
            EntryKind::Refund => self.status.is_open() || self.status == ArStatus::Paid,
        };
        if fits { Ok(()) } else { Err(format!("a {} invoice takes no {kind:?}", self.status.as_str())) }
    }
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// The organisation.
    pub tenant: TenantId,
    /// The customer's id.
    pub customer_id: String,
    /// Name.
    pub name: String,
    /// Billing address.
    pub email: Option<String>,
    /// Days to pay (30 for "Net 30").
    pub payment_terms_days: u16,
    /// Anything else.
    pub data: Value,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When recorded.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Customer {
    /// A customer on Net 30 terms.
    pub fn new(tenant: TenantId, customer_id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            tenant,
            customer_id: customer_id.into(),
            name: name.into(),
            email: None,
            payment_terms_days: 30,
            data: Value::Null,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

impl Document for Customer {
    const TABLE: TableDef = TableDef {
        name: "ar_customers",
        entity: "customer",
        id_field: "customer_id",
        indexes: &[],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.customer_id.clone()
    }
    crate::record_meta!();
    fn validate(&self) -> Result<()> {
        crate::limits::check_text("name", &self.name)?;
        if let Some(email) = &self.email {
            crate::limits::check_text("email", email)?;
        }
        Ok(())
    }
}

/// How overdue the open receivables are: totals per currency and counts, by whole days past due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgingReport {
    /// Not yet due, or without a due date.
    pub current: AgingBucket,
    /// 1 to 30 days past due.
    pub days_1_30: AgingBucket,
    /// 31 to 60 days.
    pub days_31_60: AgingBucket,
    /// 61 to 90 days.
    pub days_61_90: AgingBucket,
    /// More than 90 days.
    pub over_90: AgingBucket,
}

/// One bucket of an [`AgingReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgingBucket {
    /// How many invoices.
    pub count: u64,
    /// What they still owe, per currency.
    pub due: Totals,
}

impl AgingReport {
    fn bucket(&mut self, days_past_due: i64) -> &mut AgingBucket {
        match days_past_due {
            i64::MIN..=0 => &mut self.current,
            1..=30 => &mut self.days_1_30,
            31..=60 => &mut self.days_31_60,
            61..=90 => &mut self.days_61_90,
            _ => &mut self.over_90,
        }
    }
}

/// Receivable invoices and customers.
#[async_trait]
pub trait ArInvoiceStore: Send + Sync + fmt::Debug {
    /// Records a new invoice as a draft; `Conflict` if the id is taken.
    async fn save_invoice(&self, invoice: &ArInvoice) -> Result<ArInvoice>;
    /// The invoice.
    async fn get_invoice(&self, tenant: &TenantId, invoice_id: &str) -> Result<Option<ArInvoice>>;
    /// Deletes a draft, or a void invoice with no ledger entry; `Conflict` otherwise. Whether it
    /// existed.
    async fn delete_invoice(&self, tenant: &TenantId, invoice_id: &str) -> Result<bool>;
    /// One page of invoices (of a status, of a customer, or all), newest first.
    async fn list_invoices(
        &self,
        tenant: &TenantId,
        status: Option<ArStatus>,
        customer_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ArInvoice>>;
    /// One page of the open invoices past their due date, longest overdue first.
    async fn list_overdue(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ArInvoice>>;
    /// The open invoices by how long they are overdue.
    async fn get_aging_buckets(&self, tenant: &TenantId) -> Result<AgingReport>;
    /// What a customer owes on open invoices, per currency.
    async fn get_customer_balance(&self, tenant: &TenantId, customer_id: &str) -> Result<Totals>;
    /// Moves an invoice as [`ArStatus::may_become`] allows (`Conflict` otherwise); sending
    /// stamps `sent_at`, voiding needs an empty ledger.
    async fn update_status(&self, tenant: &TenantId, invoice_id: &str, status: ArStatus) -> Result<ArInvoice>;
    /// Posts a payment, refund or write-off (see [`crate::ledger`]): counted once per key.
    async fn record_payment(&self, tenant: &TenantId, invoice_id: &str, entry: &NewEntry) -> Result<Posted<ArInvoice>>;
    /// The invoice's ledger entries, oldest first.
    async fn payments(&self, tenant: &TenantId, invoice_id: &str) -> Result<Vec<LedgerEntry<ArInvoice>>>;
    /// Records a reminder of `level` sent now, for an open invoice (`Conflict` otherwise, or if
    /// a reminder of this level or a firmer one was sent).
    async fn record_reminder_sent(&self, tenant: &TenantId, invoice_id: &str, level: u8) -> Result<ArInvoice>;
    /// Creates or replaces a customer.
    async fn save_customer(&self, customer: &Customer) -> Result<Customer>;
    /// The customer.
    async fn get_customer(&self, tenant: &TenantId, customer_id: &str) -> Result<Option<Customer>>;
    /// One page of customers, by id.
    async fn list_customers(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Customer>>;
}

/// [`ArInvoiceStore`] on any backend.
pub struct ArInvoices<B: ?Sized = dyn Engine> {
    invoices: Table<ArInvoice>,
    payments: Table<LedgerEntry<ArInvoice>>,
    customers: Table<Customer>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(ArInvoices { invoices, payments, customers });

fn open_filter() -> Filter {
    Filter::all().one_of("status", ArStatus::OPEN.iter().map(|s| s.as_str()))
}

#[async_trait]
impl<B: ?Sized> ArInvoiceStore for ArInvoices<B> {
    async fn save_invoice(&self, invoice: &ArInvoice) -> Result<ArInvoice> {
        let mut invoice = invoice.clone();
        invoice.balance = Balance::new(invoice.balance.total)?;
        (invoice.status, invoice.sent_at, invoice.reminders) = (ArStatus::Draft, None, Vec::new());
        self.invoices.insert(&invoice).await
    }

    async fn get_invoice(&self, tenant: &TenantId, invoice_id: &str) -> Result<Option<ArInvoice>> {
        self.invoices.get(tenant, invoice_id).await
    }

    async fn delete_invoice(&self, tenant: &TenantId, invoice_id: &str) -> Result<bool> {
        self.payments.delete_unposted(&self.invoices, tenant, invoice_id, |i| matches!(i.status, ArStatus::Draft | ArStatus::Void)).await
    }

    async fn list_invoices(
        &self,
        tenant: &TenantId,
        status: Option<ArStatus>,
        customer_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ArInvoice>> {
        let mut filter = Filter::all();
        if let Some(status) = status {
            filter = filter.eq("status", status.as_str());
        }
        if let Some(customer) = customer_id {
            validate_id("customer_id", customer)?;
            filter = filter.eq("customer_id", customer);
        }
        self.invoices.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("issued_at")), page).await
    }

    async fn list_overdue(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ArInvoice>> {
        let filter = open_filter().lt("due_date", self.invoices.now());
        self.invoices.list(Scope::Tenant(tenant), Query::new(filter).order(Order::asc("due_date")), page).await
    }

    async fn get_aging_buckets(&self, tenant: &TenantId) -> Result<AgingReport> {
        let now = self.invoices.now();
        let mut report = AgingReport::default();
        for invoice in self.invoices.list_all(Scope::Tenant(tenant), Query::new(open_filter())).await? {
            let days = invoice.due_date.map_or(0, |due| now.signed_duration_since(due).num_days());
            let bucket = report.bucket(days);
            bucket.count = bucket.count.saturating_add(1);
            bucket.due.add(invoice.balance.due)?;
        }
        Ok(report)
    }

    async fn get_customer_balance(&self, tenant: &TenantId, customer_id: &str) -> Result<Totals> {
        validate_id("customer_id", customer_id)?;
        let mut totals = Totals::new();
        for invoice in self.invoices.list_all(Scope::Tenant(tenant), Query::new(open_filter().eq("customer_id", customer_id))).await? {
            totals.add(invoice.balance.due)?;
        }
        Ok(totals)
    }

    async fn update_status(&self, tenant: &TenantId, invoice_id: &str, status: ArStatus) -> Result<ArInvoice> {
        let now = self.invoices.now();
        self.invoices
            .patch(tenant, invoice_id, |invoice| {
                let settled = !invoice.balance.paid.is_zero() || !invoice.balance.written_off.is_zero();
                if !invoice.status.may_become(status) || (status == ArStatus::Void && settled) {
                    return Err(StorageError::conflict(
                        ArInvoice::TABLE.entity,
                        invoice_id,
                        format!("a {} invoice cannot become {}", invoice.status.as_str(), status.as_str()),
                    ));
                }
                if status == ArStatus::Sent && invoice.sent_at.is_none() {
                    invoice.sent_at = Some(now);
                }
                // Back from collections, an invoice already paid in part says so.
                invoice.status = if status == ArStatus::Sent && !invoice.balance.paid.is_zero() { ArStatus::PartiallyPaid } else { status };
                Ok(())
            })
            .await
    }

    async fn record_payment(&self, tenant: &TenantId, invoice_id: &str, entry: &NewEntry) -> Result<Posted<ArInvoice>> {
        self.payments.post(&self.invoices, tenant, invoice_id, entry).await
    }

    async fn payments(&self, tenant: &TenantId, invoice_id: &str) -> Result<Vec<LedgerEntry<ArInvoice>>> {
        self.payments.entries(tenant, invoice_id).await
    }

    async fn record_reminder_sent(&self, tenant: &TenantId, invoice_id: &str, level: u8) -> Result<ArInvoice> {
        if level == 0 {
            return Err(StorageError::invalid("level", "reminder levels start at 1"));
        }
        let sent_at = self.invoices.now();
        self.invoices
            .patch(tenant, invoice_id, |invoice| {
                let last = invoice.reminders.last().map_or(0, |r| r.level);
                if !invoice.status.is_open() || level <= last {
                    return Err(StorageError::conflict(
                        ArInvoice::TABLE.entity,
                        invoice_id,
                        format!("a {} invoice at reminder level {last} takes no level {level} reminder", invoice.status.as_str()),
                    ));
                }
                invoice.reminders.push(Reminder { level, sent_at });
                Ok(())
            })
            .await
    }

    async fn save_customer(&self, customer: &Customer) -> Result<Customer> {
        self.customers.upsert(customer).await
    }

    async fn get_customer(&self, tenant: &TenantId, customer_id: &str) -> Result<Option<Customer>> {
        self.customers.get(tenant, customer_id).await
    }

    async fn list_customers(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Customer>> {
        self.customers.list(Scope::Tenant(tenant), Query::new(Filter::all()), page).await
    }
}
