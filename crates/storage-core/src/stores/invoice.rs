//! Accounts payable: suppliers' invoices, their approval, scheduling and payment ledger.
//!
//! Amounts are exact [`Money`] in the invoice's currency. An invoice moves draft → pending
//! approval → approved (or rejected, back to draft), and from approved only its ledger moves it:
//! partially paid, paid. Payments are ledger entries keyed by the caller's idempotency key
//! ([`crate::ledger`]): a payment retried or raced is counted once, an overpayment or a payment
//! of an unapproved invoice is refused.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::ledger::{Balance, EntryKind, LedgerEntry, Ledgered, NewEntry, Posted, ledger_table};
use crate::money::Money;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// Where a payable invoice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Being entered.
    Draft,
    /// Waiting for an approver.
    PendingApproval,
    /// Approved for payment.
    Approved,
    /// Refused by an approver (back to draft to correct it).
    Rejected,
    /// Paid in part (set by its ledger).
    PartiallyPaid,
    /// Paid in full (set by its ledger).
    Paid,
    /// Cancelled.
    Void,
}

impl InvoiceStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::PartiallyPaid => "partially_paid",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }

    /// Whether [`InvoiceStore::update_status`] may move an invoice from this status to `next`
    /// (the ledger alone moves it to and between partially paid and paid).
    pub fn may_become(self, next: Self) -> bool {
        use InvoiceStatus::*;
        matches!(
            (self, next),
            (Draft, PendingApproval | Approved | Void)
                | (PendingApproval, Approved | Rejected | Void)
                | (Rejected, Draft | Void)
                | (Approved, Void)
        )
    }

    /// Whether the invoice awaits (more) payment.
    pub fn is_payable(self) -> bool {
        matches!(self, Self::Approved | Self::PartiallyPaid)
    }
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// What.
    pub description: String,
    /// How much.
    pub amount: Money,
}

/// The most lines an invoice may have.
pub const MAX_LINE_ITEMS: usize = 500;

/// Checks an invoice's lines against its currency: each in that currency, text without controls.
pub(crate) fn check_lines(lines: &[LineItem], currency: crate::Currency) -> Result<()> {
    if lines.len() > MAX_LINE_ITEMS {
        return Err(StorageError::invalid("line_items", format!("{} lines; at most {MAX_LINE_ITEMS}", lines.len())));
    }
    for line in lines {
        crate::limits::check_text("line_items", &line.description)?;
        if line.amount.currency() != currency {
            return Err(StorageError::invalid("line_items", format!("{} is not in the invoice's currency, {currency}", line.amount)));
        }
    }
    Ok(())
}

/// A supplier's invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// The organisation.
    pub tenant: TenantId,
    /// The invoice's id.
    pub id: String,
    /// The supplier.
    pub vendor_id: String,
    /// The supplier's name.
    pub vendor_name: String,
    /// The supplier's invoice number.
    pub invoice_number: String,
    /// The purchase order it bills.
    pub po_number: Option<String>,
    /// Before tax.
    pub subtotal: Money,
    /// Tax.
    pub tax: Money,
    /// Total, paid and due (set by the store: total = subtotal + tax).
    pub balance: Balance,
    /// Where it stands (set by the store).
    pub status: InvoiceStatus,
    /// Whether it needs an approver before payment.
    pub requires_approval: bool,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// Why it was rejected.
    pub rejection_reason: Option<String>,
    /// The invoice's date.
    pub invoice_date: DateTime<Utc>,
    /// When payment is due.
    pub due_date: Option<DateTime<Utc>>,
    /// When payment is scheduled.
    pub scheduled_payment_date: Option<DateTime<Utc>>,
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

impl Invoice {
    /// A draft invoice of `subtotal` plus `tax`.
    pub fn new(
        tenant: TenantId,
        id: impl Into<String>,
        vendor_id: impl Into<String>,
        invoice_number: impl Into<String>,
        subtotal: Money,
        tax: Money,
        invoice_date: DateTime<Utc>,
    ) -> Self {
        let zero = Money::zero(subtotal.currency());
        Self {
            tenant,
            id: id.into(),
            vendor_id: vendor_id.into(),
            vendor_name: String::new(),
            invoice_number: invoice_number.into(),
            po_number: None,
            subtotal,
            tax,
            balance: Balance { total: zero, paid: zero, written_off: zero, due: zero },
            status: InvoiceStatus::Draft,
            requires_approval: true,
            approved_by: None,
            rejection_reason: None,
            invoice_date,
            due_date: None,
            scheduled_payment_date: None,
            line_items: Vec::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// Subtotal plus tax, checked: not negative, one currency.
    fn total(&self) -> Result<Money> {
        if self.subtotal.is_negative() || self.tax.is_negative() {
            return Err(StorageError::invalid("subtotal", "amounts of an invoice are not negative"));
        }
        self.subtotal.checked_add(self.tax)
    }
}

impl Document for Invoice {
    const TABLE: TableDef = TableDef {
        name: "ap_invoices",
        entity: "invoice",
        id_field: "invoice_id",
        indexes: &[
            IndexSpec::text("status"),
            IndexSpec::text("vendor_id"),
            IndexSpec::text("invoice_number"),
            IndexSpec::text("po_number"),
            IndexSpec::text("currency"),
            IndexSpec::int("total"),
            IndexSpec::time("invoice_date"),
            IndexSpec::time("due_date"),
            IndexSpec::time("scheduled_for"),
        ],
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
            Some(IndexValue::from(&self.vendor_id)),
            Some(IndexValue::from(&self.invoice_number)),
            self.po_number.as_ref().map(IndexValue::from),
            Some(IndexValue::from(self.balance.total.currency().code())),
            Some(IndexValue::Int(self.balance.total.minor())),
            Some(IndexValue::Time(self.invoice_date)),
            self.due_date.map(IndexValue::Time),
            self.scheduled_payment_date.map(IndexValue::Time),
        ]
    }
    fn validate(&self) -> Result<()> {
        for (field, value) in [("vendor_id", &self.vendor_id), ("invoice_number", &self.invoice_number)] {
            validate_id(field, value)?;
        }
        crate::limits::check_text("vendor_name", &self.vendor_name)?;
        for (field, value) in [("po_number", &self.po_number), ("approved_by", &self.approved_by)] {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        if let Some(reason) = &self.rejection_reason {
            crate::limits::check_text("rejection_reason", reason)?;
        }
        if self.total()? != self.balance.total {
            return Err(StorageError::invalid("total", "is not subtotal plus tax"));
        }
        self.balance.check()?;
        check_lines(&self.line_items, self.balance.total.currency())
    }
}

impl Ledgered for Invoice {
    const ENTRIES: TableDef = ledger_table("ap_payments", "invoice payment");

    fn balance(&self) -> &Balance {
        &self.balance
    }
    fn settle(&mut self, balance: Balance) {
        self.balance = balance;
        self.status = if balance.due.is_zero() {
            InvoiceStatus::Paid
        } else if balance.paid.is_zero() {
            InvoiceStatus::Approved
        } else {
            InvoiceStatus::PartiallyPaid
        };
    }
    fn check_postable(&self, kind: EntryKind) -> std::result::Result<(), String> {
        let fits = match kind {
            EntryKind::Payment => self.status.is_payable(),
            EntryKind::Refund => matches!(self.status, InvoiceStatus::PartiallyPaid | InvoiceStatus::Paid),
            EntryKind::WriteOff => return Err("payables are paid, not written off".to_owned()),
        };
        if fits { Ok(()) } else { Err(format!("a {} invoice takes no {kind:?}", self.status.as_str())) }
    }
}

/// Payable invoices.
#[async_trait]
pub trait InvoiceStore: Send + Sync + fmt::Debug {
    /// Records a new invoice as a draft (its total and balance computed); `Conflict` if the id
    /// is taken.
    async fn save(&self, invoice: &Invoice) -> Result<Invoice>;
    /// The invoice.
    async fn get(&self, tenant: &TenantId, invoice_id: &str) -> Result<Option<Invoice>>;
    /// Corrects an invoice not yet approved (draft, pending approval, rejected), at the version
    /// it was read at; its total is recomputed, status and ledger untouched.
    async fn update(&self, invoice: &Invoice) -> Result<Invoice>;
    /// Deletes a draft, rejected or void invoice that never took a payment; `Conflict`
    /// otherwise: an invoice with a ledger is kept. Whether it existed.
    async fn delete(&self, tenant: &TenantId, invoice_id: &str) -> Result<bool>;
    /// One page of invoices (of a status, of a vendor, or all), newest invoice date first.
    async fn list(
        &self,
        tenant: &TenantId,
        status: Option<InvoiceStatus>,
        vendor_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Invoice>>;
    /// One page of the invoices awaiting approval, oldest first.
    async fn list_pending_approval(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Invoice>>;
    /// One page of the payable invoices scheduled between `from` and `to` (both included),
    /// soonest first.
    async fn list_scheduled_payments(
        &self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Invoice>>;
    /// One page of the payable invoices due before now, longest overdue first.
    async fn list_overdue(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Invoice>>;
    /// Possible duplicates: the vendor's invoices with the same number, or with exactly the same
    /// total in the same currency.
    async fn find_duplicates(&self, tenant: &TenantId, vendor_id: &str, invoice_number: &str, total: Money) -> Result<Vec<Invoice>>;
    /// The invoices billing a purchase order.
    async fn get_by_po(&self, tenant: &TenantId, po_number: &str) -> Result<Vec<Invoice>>;
    /// Moves an invoice as [`InvoiceStatus::may_become`] allows (`Conflict` otherwise): approving
    /// needs `by`, rejecting needs `reason`.
    async fn update_status(
        &self,
        tenant: &TenantId,
        invoice_id: &str,
        status: InvoiceStatus,
        by: Option<&str>,
        reason: Option<&str>,
    ) -> Result<Invoice>;
    /// Schedules the payment of a payable invoice.
    async fn schedule_payment(&self, tenant: &TenantId, invoice_id: &str, on: DateTime<Utc>) -> Result<Invoice>;
    /// Posts a payment or refund (see [`crate::ledger`]): counted once per key.
    async fn record_payment(&self, tenant: &TenantId, invoice_id: &str, entry: &NewEntry) -> Result<Posted<Invoice>>;
    /// The invoice's payments and refunds, oldest first.
    async fn payments(&self, tenant: &TenantId, invoice_id: &str) -> Result<Vec<LedgerEntry<Invoice>>>;
}

/// [`InvoiceStore`] on any backend.
pub struct Invoices<B: ?Sized = dyn Engine> {
    invoices: Table<Invoice>,
    payments: Table<LedgerEntry<Invoice>>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Invoices { invoices, payments });

/// The statuses in which an invoice awaits payment.
const PAYABLE: [InvoiceStatus; 2] = [InvoiceStatus::Approved, InvoiceStatus::PartiallyPaid];

fn statuses(list: &[InvoiceStatus]) -> Vec<&'static str> {
    list.iter().map(|s| s.as_str()).collect()
}

#[async_trait]
impl<B: ?Sized> InvoiceStore for Invoices<B> {
    async fn save(&self, invoice: &Invoice) -> Result<Invoice> {
        let mut invoice = invoice.clone();
        invoice.balance = Balance::new(invoice.total()?)?;
        (invoice.status, invoice.approved_by, invoice.rejection_reason) = (InvoiceStatus::Draft, None, None);
        self.invoices.insert(&invoice).await
    }

    async fn get(&self, tenant: &TenantId, invoice_id: &str) -> Result<Option<Invoice>> {
        self.invoices.get(tenant, invoice_id).await
    }

    async fn update(&self, invoice: &Invoice) -> Result<Invoice> {
        let Some(current) = self.invoices.get(&invoice.tenant, &invoice.id).await? else {
            return Err(StorageError::not_found(Invoice::TABLE.entity, &invoice.id));
        };
        if !matches!(current.status, InvoiceStatus::Draft | InvoiceStatus::PendingApproval | InvoiceStatus::Rejected) {
            return Err(StorageError::conflict(
                Invoice::TABLE.entity,
                &invoice.id,
                format!("a {} invoice is not corrected", current.status.as_str()),
            ));
        }
        let mut next = invoice.clone();
        (next.status, next.approved_by, next.rejection_reason) = (current.status, current.approved_by, current.rejection_reason);
        next.balance = current.balance.with_total(next.total()?)?;
        self.invoices.update(&next).await
    }

    async fn delete(&self, tenant: &TenantId, invoice_id: &str) -> Result<bool> {
        self.payments
            .delete_unposted(&self.invoices, tenant, invoice_id, |i| {
                matches!(i.status, InvoiceStatus::Draft | InvoiceStatus::Rejected | InvoiceStatus::Void)
            })
            .await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        status: Option<InvoiceStatus>,
        vendor_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Invoice>> {
        let mut filter = Filter::all();
        if let Some(status) = status {
            filter = filter.eq("status", status.as_str());
        }
        if let Some(vendor) = vendor_id {
            validate_id("vendor_id", vendor)?;
            filter = filter.eq("vendor_id", vendor);
        }
        self.invoices.list(Scope::Tenant(tenant), Query::new(filter).order(Order::desc("invoice_date")), page).await
    }

    async fn list_pending_approval(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Invoice>> {
        let query = Query::new(Filter::all().eq("status", InvoiceStatus::PendingApproval.as_str())).order(Order::asc("invoice_date"));
        self.invoices.list(Scope::Tenant(tenant), query, page).await
    }

    async fn list_scheduled_payments(
        &self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Invoice>> {
        let filter = Filter::all().one_of("status", statuses(&PAYABLE)).between("scheduled_for", from, to);
        self.invoices.list(Scope::Tenant(tenant), Query::new(filter).order(Order::asc("scheduled_for")), page).await
    }

    async fn list_overdue(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Invoice>> {
        let filter = Filter::all().one_of("status", statuses(&PAYABLE)).lt("due_date", self.invoices.now());
        self.invoices.list(Scope::Tenant(tenant), Query::new(filter).order(Order::asc("due_date")), page).await
    }

    async fn find_duplicates(&self, tenant: &TenantId, vendor_id: &str, invoice_number: &str, total: Money) -> Result<Vec<Invoice>> {
        validate_id("vendor_id", vendor_id)?;
        validate_id("invoice_number", invoice_number)?;
        let vendor = || Filter::all().eq("vendor_id", vendor_id);
        let by_number = vendor().eq("invoice_number", invoice_number);
        let by_total = vendor().eq("currency", total.currency().code()).eq("total", total.minor());
        let mut found: BTreeMap<String, Invoice> = BTreeMap::new();
        for filter in [by_number, by_total] {
            for invoice in self.invoices.list_all(Scope::Tenant(tenant), Query::new(filter)).await? {
                found.insert(invoice.id.clone(), invoice);
            }
        }
        Ok(found.into_values().collect())
    }

    async fn get_by_po(&self, tenant: &TenantId, po_number: &str) -> Result<Vec<Invoice>> {
        validate_id("po_number", po_number)?;
        self.invoices.list_all(Scope::Tenant(tenant), Query::new(Filter::all().eq("po_number", po_number))).await
    }

    async fn update_status(
        &self,
        tenant: &TenantId,
        invoice_id: &str,
        status: InvoiceStatus,
        by: Option<&str>,
        reason: Option<&str>,
    ) -> Result<Invoice> {
        if let Some(by) = by {
            validate_id("approved_by", by)?;
        }
        if let Some(reason) = reason {
            crate::limits::check_text("reason", reason)?;
        }
        match status {
            InvoiceStatus::Approved if by.is_none() => return Err(StorageError::invalid("approved_by", "an approval names its approver")),
            InvoiceStatus::Rejected if reason.is_none() => return Err(StorageError::invalid("reason", "a rejection says why")),
            _ => {}
        }
        self.invoices
            .patch(tenant, invoice_id, |invoice| {
                let allowed = invoice.status.may_become(status)
                    && !(invoice.status == InvoiceStatus::Draft && status == InvoiceStatus::Approved && invoice.requires_approval)
                    && (status != InvoiceStatus::Void || invoice.balance.paid.is_zero());
                if !allowed {
                    return Err(StorageError::conflict(
                        Invoice::TABLE.entity,
                        invoice_id,
                        format!("a {} invoice cannot become {}", invoice.status.as_str(), status.as_str()),
                    ));
                }
                invoice.status = status;
                match status {
                    InvoiceStatus::Approved => (invoice.approved_by, invoice.rejection_reason) = (by.map(str::to_owned), None),
                    InvoiceStatus::Rejected => invoice.rejection_reason = reason.map(str::to_owned),
                    _ => {}
                }
                Ok(())
            })
            .await
    }

    async fn schedule_payment(&self, tenant: &TenantId, invoice_id: &str, on: DateTime<Utc>) -> Result<Invoice> {
        let on = crate::limits::check_instant("on", on)?;
        self.invoices
            .patch(tenant, invoice_id, |invoice| {
                if !invoice.status.is_payable() {
                    return Err(StorageError::conflict(
                        Invoice::TABLE.entity,
                        invoice_id,
                        format!("a {} invoice is not paid", invoice.status.as_str()),
                    ));
                }
                invoice.scheduled_payment_date = Some(on);
                Ok(())
            })
            .await
    }

    async fn record_payment(&self, tenant: &TenantId, invoice_id: &str, entry: &NewEntry) -> Result<Posted<Invoice>> {
        self.payments.post(&self.invoices, tenant, invoice_id, entry).await
    }

    async fn payments(&self, tenant: &TenantId, invoice_id: &str) -> Result<Vec<LedgerEntry<Invoice>>> {
        self.payments.entries(tenant, invoice_id).await
    }
}
