//! Expenses: employees' spending, approved, checked for duplicates and synced to accounting.
//!
//! Every amount is exact [`Money`] in the expense's one currency; the total is amount + tax + tip,
//! computed by the store. Statistics keep a total per currency. Duplicates are found by an
//! indexed query: the same normalised vendor, currency and total, within a window around a date.

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
    pub fn may_become(self, next: Self) -> bool {
        self == Self::Pending && matches!(next, Self::Approved | Self::Rejected | Self::Duplicate)
    }
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

    /// Amount + tax + tip, checked: none negative, one currency.
    fn computed_total(&self) -> Result<Money> {
        for (field, part) in [("amount", self.amount), ("tax", self.tax), ("tip", self.tip)] {
            if part.is_negative() {
                return Err(StorageError::invalid(field, format!("{part} is negative")));
            }
        }
        self.amount.checked_add(self.tax)?.checked_add(self.tip)
    }
}

/// A vendor's name as duplicates are matched: lower case, letters and digits, single spaces
/// ("ACME, Inc." and "acme inc" are one vendor).
pub fn normalise_vendor(name: &str) -> String {
    let kept: String = name.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).flat_map(char::to_lowercase).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
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
        crate::limits::check_text("vendor_name", &self.vendor_name)?;
        if normalise_vendor(&self.vendor_name).is_empty() {
            return Err(StorageError::invalid("vendor_name", "names no vendor"));
        }
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
        for (field, value) in [("description", &self.description), ("notes", &self.notes), ("receipt_text", &self.receipt_text)] {
            if let Some(value) = value {
                crate::limits::check_text(field, value)?;
            }
        }
        if self.computed_total()? != self.total {
            return Err(StorageError::invalid("total", "is not amount + tax + tip"));
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

/// Expenses over a period, exactly, per currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpenseStats {
    /// How many expenses.
    pub count: u64,
    /// Their totals.
    pub total: Totals,
    /// Their totals by category.
    pub by_category: BTreeMap<String, Totals>,
    /// Their totals by status.
    pub by_status: BTreeMap<ExpenseStatus, Totals>,
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
    /// One page of the expenses passing `filter`, newest expense date first.
    async fn list(&self, tenant: &TenantId, filter: &ExpenseFilter, page: &PageRequest) -> Result<Page<Expense>>;
    /// One page of the approved expenses not yet synced, oldest first.
    async fn list_pending_sync(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Expense>>;
    /// Possible duplicates: the same normalised vendor, the same total in the same currency,
    /// dated within `tolerance_days` (at most [`MAX_DUPLICATE_WINDOW_DAYS`]) of `around`.
    async fn find_duplicates(
        &self,
        tenant: &TenantId,
        vendor_name: &str,
        total: Money,
        around: DateTime<Utc>,
        tolerance_days: i64,
    ) -> Result<Vec<Expense>>;
    /// Totals of the expenses dated from `from` to `to` (both included), per currency, by
    /// category and by status. Reads every such expense: an administrative call.
    async fn get_statistics(&self, tenant: &TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<ExpenseStats>;
    /// Moves an expense as [`ExpenseStatus::may_become`] allows (`Conflict` otherwise);
    /// approving records `approved_by`.
    async fn update_status(&self, tenant: &TenantId, expense_id: &str, status: ExpenseStatus, approved_by: Option<&str>)
    -> Result<Expense>;
    /// Marks an approved expense synced to accounting under `qbo_id` (`Conflict` otherwise).
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
        crate::limits::check_text("vendor_name", vendor_name)?;
        let window = TimeDelta::days(tolerance_days);
        let filter = Filter::all()
            .eq("vendor_key", normalise_vendor(vendor_name))
            .eq("currency", total.currency().code())
            .eq("total", total.minor())
            .between("expense_date", crate::limits::sub("around", around, window)?, crate::limits::add("around", around, window)?);
        self.expenses.list_all(Scope::Tenant(tenant), Query::new(filter).order(Order::asc("expense_date"))).await
    }

    async fn get_statistics(&self, tenant: &TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<ExpenseStats> {
        let mut stats = ExpenseStats::default();
        let dated = Query::new(Filter::all().between("expense_date", from, to));
        for expense in self.expenses.list_all(Scope::Tenant(tenant), dated).await? {
            stats.count = stats.count.saturating_add(1);
            stats.total.add(expense.total)?;
            stats.by_category.entry(expense.category.clone()).or_default().add(expense.total)?;
            stats.by_status.entry(expense.status).or_default().add(expense.total)?;
        }
        Ok(stats)
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
