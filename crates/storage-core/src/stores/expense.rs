//! Expenses: employees' spending, approved, checked for duplicates and synced to accounting.
//!
//! Every amount is exact [`Money`] in the expense's one currency; the total is amount + tax + tip,
//! computed by the store on every write (a caller's total is never trusted, and a stored one that
//! disagrees is refused). Statistics keep a total per currency. Duplicates are found by an
//! indexed query: the same normalised vendor, currency and total (an integer of minor units, never
//! text), within a window around a given date (never around now).

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::money::{Money, Totals};
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::gauntlet_run::check_tags;
use crate::stores::invoice::{LineItem, check_lines};
use crate::table::Table;
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// The widest duplicate window, either side of the date.
pub const MAX_DUPLICATE_WINDOW_DAYS: i64 = 30;

/// The most expenses one [`ExpenseStore::get_statistics`] call reads (100 pages of 1,000): a
/// longer period is refused before anything is read, so a report's cost stays bounded.
pub const MAX_STATISTICS_EXPENSES: u64 = 100_000;

/// The longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4 * 1024;
/// The longest notes, in bytes.
pub const MAX_NOTES_BYTES: usize = 16 * 1024;
/// The longest scanned receipt text, in bytes.
pub const MAX_RECEIPT_TEXT_BYTES: usize = 64 * 1024;

/// Where an expense stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpenseStatus {
    /// Submitted.
    Pending,
    /// Approved for reimbursement and sync.
    Approved,
    /// Refused.
    Rejected,
    /// Found to repeat another expense.
    Duplicate,
    /// Synced to accounting (set by [`ExpenseStore::mark_synced`]).
    Synced,
}

impl ExpenseStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Duplicate => "duplicate",
            Self::Synced => "synced",
        }
    }

    /// Whether [`ExpenseStore::update_status`] may move an expense from this status to `next`.
    /// Only a pending expense is decided, once; approved → synced is
    /// [`ExpenseStore::mark_synced`]'s alone, because it records where the expense went.
    pub fn may_become(self, next: Self) -> bool {
        self == Self::Pending && matches!(next, Self::Approved | Self::Rejected | Self::Duplicate)
    }

    /// Every status, in order.
    pub const ALL: [Self; 5] = [Self::Pending, Self::Approved, Self::Rejected, Self::Duplicate, Self::Synced];
}

/// An expense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expense {
    /// The organisation.
    pub tenant: TenantId,
    /// The expense's id.
    pub id: String,
    /// Who was paid.
    pub vendor_name: String,
    /// Before tax and tip.
    pub amount: Money,
    /// Tax.
    pub tax: Money,
    /// Tip.
    pub tip: Money,
    /// Amount + tax + tip (set by the store).
    pub total: Money,
    /// Its category.
    pub category: String,
    /// Where it stands (set by the store).
    pub status: ExpenseStatus,
    /// Who spent it.
    pub employee_id: Option<String>,
    /// Who approved it (set by the store).
    pub approved_by: Option<String>,
    /// When it was spent.
    pub expense_date: DateTime<Utc>,
    /// How it was paid.
    pub payment_method: Option<String>,
    /// What it was for.
    pub description: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// The receipt's text, as scanned.
    pub receipt_text: Option<String>,
    /// Its lines.
    pub line_items: Vec<LineItem>,
    /// To be paid back to the employee.
    pub reimbursable: bool,
    /// To be billed to a client.
    pub billable: bool,
    /// The project.
    pub project_id: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// Synced to accounting (set by the store).
    pub synced: bool,
    /// Its id in accounting (set by the store).
    pub qbo_expense_id: Option<String>,
    /// When synced (set by the store).
    pub synced_at: Option<DateTime<Utc>>,
    /// How sure the scan was, in thousandths (0 to 1000).
    pub confidence_milli: u16,
    /// Labels.
    pub tags: Vec<String>,
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

impl Expense {
    /// A pending expense of `amount` (no tax or tip) at `vendor_name` on `expense_date`.
    pub fn new(
        tenant: TenantId,
        id: impl Into<String>,
        vendor_name: impl Into<String>,
        amount: Money,
        category: impl Into<String>,
        expense_date: DateTime<Utc>,
    ) -> Self {
        let zero = Money::zero(amount.currency());
        Self {
            tenant,
            id: id.into(),
            vendor_name: vendor_name.into(),
            amount,
            tax: zero,
            tip: zero,
            total: amount,
            category: category.into(),
            status: ExpenseStatus::Pending,
            employee_id: None,
            approved_by: None,
            expense_date,
            payment_method: None,
            description: None,
            notes: None,
            receipt_text: None,
            line_items: Vec::new(),
            reimbursable: false,
            billable: false,
            project_id: None,
            client_id: None,
            synced: false,
            qbo_expense_id: None,
            synced_at: None,
            confidence_milli: 0,
            tags: Vec::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// Amount + tax + tip, checked: none negative, all in the amount's currency, the sum within
    /// ±[`crate::MAX_MINOR`] (refused, never wrapped).
    fn computed_total(&self) -> Result<Money> {
        for (field, part) in [("amount", self.amount), ("tax", self.tax), ("tip", self.tip)] {
            if part.is_negative() {
                return Err(StorageError::invalid(field, format!("{part} is negative")));
            }
            if part.currency() != self.amount.currency() {
                return Err(StorageError::invalid(
                    field,
                    format!("{part} is not in the expense's currency, {}; amounts are never converted", self.amount.currency()),
                ));
            }
        }
        let out_of_range = |_| StorageError::invalid("total", format!("amount + tax + tip is beyond ±{} minor units", crate::MAX_MINOR));
        self.amount.checked_add(self.tax).and_then(|sum| sum.checked_add(self.tip)).map_err(out_of_range)
    }
}

/// A vendor's name as duplicates are matched: lower case, punctuation removed, whitespace
/// collapsed to single spaces ("ACME, Inc." and "acme inc" are one vendor, and so are "A.C.M.E."
/// and "acme"). Removed rather than turned into spaces, so that a name with its punctuation
/// dropped (as receipt scans often do) still matches.
pub fn normalise_vendor(name: &str) -> String {
    let kept: String = name.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).flat_map(char::to_lowercase).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks a vendor name and returns its key: text an index holds, naming a vendor once normalised.
fn vendor_key(vendor_name: &str) -> Result<String> {
    crate::limits::check_text("vendor_name", vendor_name)?;
    let key = normalise_vendor(vendor_name);
    if key.is_empty() {
        return Err(StorageError::invalid("vendor_name", "names no vendor (no letter or digit)"));
    }
    // Lower-casing can lengthen a name (`İ` is 2 bytes, `i̇` 3), so the key is checked too.
    crate::limits::check_text("vendor_name", &key)?;
    Ok(key)
}

/// Free text kept in the body, never indexed: lines and tabs are fine, other control characters
/// and more than `max` bytes are not.
fn check_prose(field: &str, text: Option<&String>, max: usize) -> Result<()> {
    let Some(text) = text else { return Ok(()) };
    if text.len() > max {
        return Err(StorageError::invalid(field, format!("is {} bytes long; the limit is {max}", text.len())));
    }
    if let Some(c) = text.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(StorageError::invalid(field, format!("contains the control character {c:?}")));
    }
    Ok(())
}

impl Document for Expense {
    const TABLE: TableDef = TableDef {
        name: "expenses",
        entity: "expense",
        id_field: "expense_id",
        indexes: &[
            IndexSpec::text("status"),
            IndexSpec::text("employee_id"),
            IndexSpec::text("category"),
            IndexSpec::text("vendor_key"),
            IndexSpec::text("currency"),
            IndexSpec::int("total"),
            IndexSpec::time("expense_date"),
            IndexSpec::bool("synced"),
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
            self.employee_id.as_ref().map(IndexValue::from),
            Some(IndexValue::from(&self.category)),
            Some(IndexValue::Text(normalise_vendor(&self.vendor_name))),
            Some(IndexValue::from(self.total.currency().code())),
            Some(IndexValue::Int(self.total.minor())),
            Some(IndexValue::Time(self.expense_date)),
            Some(IndexValue::Bool(self.synced)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("expense_id", &self.id)?;
        vendor_key(&self.vendor_name)?;
        validate_id("category", &self.category)?;
        for (field, value) in [
            ("employee_id", &self.employee_id),
            ("approved_by", &self.approved_by),
            ("payment_method", &self.payment_method),
            ("project_id", &self.project_id),
            ("client_id", &self.client_id),
            ("qbo_expense_id", &self.qbo_expense_id),
        ] {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        check_prose("description", self.description.as_ref(), MAX_DESCRIPTION_BYTES)?;
        check_prose("notes", self.notes.as_ref(), MAX_NOTES_BYTES)?;
        check_prose("receipt_text", self.receipt_text.as_ref(), MAX_RECEIPT_TEXT_BYTES)?;
        crate::limits::check_instant("expense_date", self.expense_date)?;
        if self.computed_total()? != self.total {
            return Err(StorageError::invalid("total", format!("{} is not amount + tax + tip", self.total)));
        }
        // Status, flag, accounting id and sync time are one fact written by `mark_synced` alone;
        // a record where they disagree is refused rather than stored half-synced.
        let synced = self.status == ExpenseStatus::Synced;
        if self.synced != synced || self.qbo_expense_id.is_some() != synced || self.synced_at.is_some() != synced {
            return Err(StorageError::invalid("synced", "is set exactly when the expense is synced, with its accounting id and time"));
        }
        if self.confidence_milli > 1_000 {
            return Err(StorageError::invalid("confidence_milli", format!("{} is above 1000", self.confidence_milli)));
        }
        check_lines(&self.line_items, self.total.currency())?;
        check_tags(&self.tags)
    }
}

/// Which expenses a list selects. Every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct ExpenseFilter {
    /// Of this status.
    pub status: Option<ExpenseStatus>,
    /// Of this employee.
    pub employee_id: Option<String>,
    /// Of this category.
    pub category: Option<String>,
}

/// Expenses over a period, exactly, per currency: amounts of two currencies are never added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpenseStats {
    /// How many expenses.
    pub count: u64,
    /// Their totals, per currency.
    pub total: Totals,
    /// Their totals by category, per currency.
    pub by_category: BTreeMap<String, Totals>,
    /// Their totals by status, per currency.
    pub by_status: BTreeMap<ExpenseStatus, Totals>,
    /// How many by category.
    pub count_by_category: BTreeMap<String, u64>,
    /// How many by status.
    pub count_by_status: BTreeMap<ExpenseStatus, u64>,
}

impl ExpenseStats {
    fn add(&mut self, expense: &Expense) -> Result<()> {
        let one = |n: &mut u64| *n = n.saturating_add(1);
        one(&mut self.count);
        one(self.count_by_category.entry(expense.category.clone()).or_default());
        one(self.count_by_status.entry(expense.status).or_default());
        self.total.add(expense.total)?;
        self.by_category.entry(expense.category.clone()).or_default().add(expense.total)?;
        self.by_status.entry(expense.status).or_default().add(expense.total)
    }
}

/// Expenses.
#[async_trait]
pub trait ExpenseStore: Send + Sync + fmt::Debug {
    /// Records an expense (pending, its total computed); `Conflict` if the id is taken.
    async fn save(&self, expense: &Expense) -> Result<Expense>;
    /// The expense.
    async fn get(&self, tenant: &TenantId, expense_id: &str) -> Result<Option<Expense>>;
    /// Corrects an expense at the version it was read at: everything but its status, approval
    /// and sync, which keep their stored values; the total is recomputed.
    async fn update(&self, expense: &Expense) -> Result<Expense>;
    /// Deletes an expense; whether it existed.
    async fn delete(&self, tenant: &TenantId, expense_id: &str) -> Result<bool>;
    /// One page of the expenses passing `filter`, newest expense date first (ties: larger id
    /// first), continued by keyset.
    async fn list(&self, tenant: &TenantId, filter: &ExpenseFilter, page: &PageRequest) -> Result<Page<Expense>>;
    /// One page of every expense, newest expense date first.
    async fn list_all(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Expense>> {
        self.list(tenant, &ExpenseFilter::default(), page).await
    }
    /// One page of the expenses of one status, newest expense date first.
    async fn list_by_status(&self, tenant: &TenantId, status: ExpenseStatus, page: &PageRequest) -> Result<Page<Expense>> {
        self.list(tenant, &ExpenseFilter { status: Some(status), ..ExpenseFilter::default() }, page).await
    }
    /// One page of one employee's expenses, newest expense date first.
    async fn list_by_employee(&self, tenant: &TenantId, employee_id: &str, page: &PageRequest) -> Result<Page<Expense>> {
        self.list(tenant, &ExpenseFilter { employee_id: Some(employee_id.to_owned()), ..ExpenseFilter::default() }, page).await
    }
    /// One page of one category's expenses, newest expense date first.
    async fn list_by_category(&self, tenant: &TenantId, category: &str, page: &PageRequest) -> Result<Page<Expense>> {
        self.list(tenant, &ExpenseFilter { category: Some(category.to_owned()), ..ExpenseFilter::default() }, page).await
    }
    /// One page of the approved expenses not yet synced, oldest first.
    async fn list_pending_sync(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Expense>>;
    /// Possible duplicates, oldest first: the same normalised vendor, exactly the same total in
    /// the same currency, dated within `tolerance_days` (0 to [`MAX_DUPLICATE_WINDOW_DAYS`])
    /// either side of `around` — the date of the expense checked, not the current time. One
    /// indexed query; such matches are few by nature.
    async fn find_duplicates(
        &self,
        tenant: &TenantId,
        vendor_name: &str,
        total: Money,
        around: DateTime<Utc>,
        tolerance_days: i64,
    ) -> Result<Vec<Expense>>;
    /// Counts and totals of the expenses dated from `from` to `to` (both included): per currency,
    /// by category and by status. Counts them first (one indexed count) and refuses a period of
    /// more than [`MAX_STATISTICS_EXPENSES`] (`InvalidInput` on `to`) before reading any; then
    /// reads them page by page, never all at once.
    async fn get_statistics(&self, tenant: &TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<ExpenseStats>;
    /// Moves an expense as [`ExpenseStatus::may_become`] allows (`Conflict` otherwise, and
    /// nothing changes), atomically: of concurrent decisions on a pending expense exactly one
    /// wins. Approving records `approved_by` (required).
    async fn update_status(&self, tenant: &TenantId, expense_id: &str, status: ExpenseStatus, approved_by: Option<&str>)
    -> Result<Expense>;
    /// Marks an approved expense synced to accounting under `qbo_id`, now (`Conflict` for any
    /// other status: an expense is synced once).
    async fn mark_synced(&self, tenant: &TenantId, expense_id: &str, qbo_id: &str) -> Result<Expense>;
}

/// [`ExpenseStore`] on any backend.
pub struct Expenses<B: ?Sized = dyn Engine> {
    expenses: Table<Expense>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Expenses { expenses });

#[async_trait]
impl<B: ?Sized> ExpenseStore for Expenses<B> {
    async fn save(&self, expense: &Expense) -> Result<Expense> {
        let mut expense = expense.clone();
        expense.total = expense.computed_total()?;
        (expense.status, expense.approved_by, expense.synced, expense.qbo_expense_id, expense.synced_at) =
            (ExpenseStatus::Pending, None, false, None, None);
        self.expenses.insert(&expense).await
    }

    async fn get(&self, tenant: &TenantId, expense_id: &str) -> Result<Option<Expense>> {
        self.expenses.get(tenant, expense_id).await
    }

    async fn update(&self, expense: &Expense) -> Result<Expense> {
        let Some(current) = self.expenses.get(&expense.tenant, &expense.id).await? else {
            return Err(StorageError::not_found(Expense::TABLE.entity, &expense.id));
        };
        let mut next = expense.clone();
        next.total = next.computed_total()?;
        (next.status, next.approved_by, next.synced, next.qbo_expense_id, next.synced_at) =
            (current.status, current.approved_by, current.synced, current.qbo_expense_id, current.synced_at);
        self.expenses.update(&next).await
    }

    async fn delete(&self, tenant: &TenantId, expense_id: &str) -> Result<bool> {
        self.expenses.delete(tenant, expense_id).await
    }

    async fn list(&self, tenant: &TenantId, filter: &ExpenseFilter, page: &PageRequest) -> Result<Page<Expense>> {
        let mut query = Filter::all();
        if let Some(status) = filter.status {
            query = query.eq("status", status.as_str());
        }
        for (column, value) in [("employee_id", &filter.employee_id), ("category", &filter.category)] {
            if let Some(value) = value {
                validate_id(column, value)?;
                query = query.eq(column, value.as_str());
            }
        }
        self.expenses.list(Scope::Tenant(tenant), Query::new(query).order(Order::desc("expense_date")), page).await
    }

    async fn list_pending_sync(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Expense>> {
        let filter = Filter::all().eq("status", ExpenseStatus::Approved.as_str()).eq("synced", false);
        self.expenses.list(Scope::Tenant(tenant), Query::new(filter).order(Order::asc("expense_date")), page).await
    }

    async fn find_duplicates(
        &self,
        tenant: &TenantId,
        vendor_name: &str,
        total: Money,
        around: DateTime<Utc>,
        tolerance_days: i64,
    ) -> Result<Vec<Expense>> {
        if !(0..=MAX_DUPLICATE_WINDOW_DAYS).contains(&tolerance_days) {
            return Err(StorageError::invalid("tolerance_days", format!("{tolerance_days} is outside 0 to {MAX_DUPLICATE_WINDOW_DAYS}")));
        }
        let key = vendor_key(vendor_name)?;
        if total.is_negative() {
            return Err(StorageError::invalid("total", format!("{total} is negative; no expense totals below zero")));
        }
        let window = TimeDelta::try_days(tolerance_days)
            .ok_or_else(|| StorageError::invalid("tolerance_days", format!("{tolerance_days} days is out of range")))?;
        let filter = Filter::all().eq("vendor_key", key).eq("currency", total.currency().code()).eq("total", total.minor()).between(
            "expense_date",
            crate::limits::sub("around", around, window)?,
            crate::limits::add("around", around, window)?,
        );
        self.expenses.list_all(Scope::Tenant(tenant), Query::new(filter).order(Order::asc("expense_date"))).await
    }

    async fn get_statistics(&self, tenant: &TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<ExpenseStats> {
        let (from, to) = (crate::limits::check_instant("from", from)?, crate::limits::check_instant("to", to)?);
        if from > to {
            return Err(StorageError::invalid("from", format!("{from} is after `to`, {to}")));
        }
        let dated = Filter::all().between("expense_date", from, to);
        let too_many =
            |n: u64| StorageError::invalid("to", format!("{n} expenses from {from} to {to}; at most {MAX_STATISTICS_EXPENSES} per call"));
        let count = self.expenses.count(Scope::Tenant(tenant), dated.clone()).await?;
        if count > MAX_STATISTICS_EXPENSES {
            return Err(too_many(count));
        }
        let mut stats = ExpenseStats::default();
        let mut request = PageRequest::first(crate::MAX_PAGE_SIZE);
        loop {
            let page = self.expenses.list(Scope::Tenant(tenant), Query::new(dated.clone()), &request).await?;
            for expense in &page.items {
                stats.add(expense)?;
            }
            // Expenses written after the count could lengthen the read: the bound holds anyway.
            if stats.count > MAX_STATISTICS_EXPENSES {
                return Err(too_many(stats.count));
            }
            match request.next(page.next.as_ref()) {
                Some(next) => request = next,
                None => return Ok(stats),
            }
        }
    }

    async fn update_status(
        &self,
        tenant: &TenantId,
        expense_id: &str,
        status: ExpenseStatus,
        approved_by: Option<&str>,
    ) -> Result<Expense> {
        if let Some(by) = approved_by {
            validate_id("approved_by", by)?;
        }
        if status == ExpenseStatus::Approved && approved_by.is_none() {
            return Err(StorageError::invalid("approved_by", "an approval names its approver"));
        }
        self.expenses
            .patch(tenant, expense_id, |expense| {
                if !expense.status.may_become(status) {
                    return Err(StorageError::conflict(
                        Expense::TABLE.entity,
                        expense_id,
                        format!("a {} expense cannot become {}", expense.status.as_str(), status.as_str()),
                    ));
                }
                expense.status = status;
                if status == ExpenseStatus::Approved {
                    expense.approved_by = approved_by.map(str::to_owned);
                }
                Ok(())
            })
            .await
    }

    async fn mark_synced(&self, tenant: &TenantId, expense_id: &str, qbo_id: &str) -> Result<Expense> {
        validate_id("qbo_expense_id", qbo_id)?;
        let now = self.expenses.now();
        self.expenses
            .patch(tenant, expense_id, |expense| {
                if expense.status != ExpenseStatus::Approved {
                    return Err(StorageError::conflict(
                        Expense::TABLE.entity,
                        expense_id,
                        format!("a {} expense is not synced", expense.status.as_str()),
                    ));
                }
                (expense.status, expense.synced, expense.qbo_expense_id, expense.synced_at) =
                    (ExpenseStatus::Synced, true, Some(qbo_id.to_owned()), Some(now));
                Ok(())
            })
            .await
    }
}
