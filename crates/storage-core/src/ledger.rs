//! Payment ledgers: a bill's payments, refunds and write-offs as child rows, each keyed by the
//! caller's idempotency key, and the bill's [`Balance`] recomputed in the same atomic unit.
//!
//! A payment is one unit of two writes: the entry is inserted (its id is the bill and the key, so
//! a second entry with the same key cannot exist) and the bill is updated at the version it was
//! read at (so two payments never both start from the same balance). A retried or raced payment
//! is therefore counted once, on every backend: the losing insert finds the key taken and
//! returns what the first one recorded; the losing update reads the bill again and re-applies.

use crate::document::{Document, IndexSpec, TableDef, Value};
use crate::engine::Applied;
use crate::money::Money;
use crate::query::{Filter, Order, Query, Scope};
use crate::stores::joined_id;
use crate::table::{Table, retry_contended};
use crate::{Result, StorageError, TenantId, validate_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// What a bill owes: its total, what was paid (net of refunds), what was written off, and what
/// is still due. Always `due = total − paid − written_off`, with none of them below zero, in one
/// currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// What the bill is for.
    pub total: Money,
    /// Paid, net of refunds.
    pub paid: Money,
    /// Given up on (receivables).
    pub written_off: Money,
    /// Still due.
    pub due: Money,
}

impl Balance {
    /// The balance of a new bill of `total` (not negative).
    pub fn new(total: Money) -> Result<Self> {
        if total.is_negative() {
            return Err(StorageError::invalid("total", format!("{total} is negative")));
        }
        let zero = Money::zero(total.currency());
        Ok(Self { total, paid: zero, written_off: zero, due: total })
    }

    /// Checks the invariant (a stored balance altered by hand is refused before it is built on).
    pub fn check(&self) -> Result<()> {
        let due = self.total.checked_sub(self.paid)?.checked_sub(self.written_off)?;
        if due != self.due || self.paid.is_negative() || self.written_off.is_negative() || self.due.is_negative() {
            return Err(StorageError::invalid("balance", format!("{self:?} does not add up")));
        }
        Ok(())
    }

    /// The same payments against a new total; refused if that total is below what was settled.
    pub fn with_total(&self, total: Money) -> Result<Self> {
        let due = total.checked_sub(self.paid)?.checked_sub(self.written_off)?;
        if due.is_negative() {
            return Err(StorageError::invalid(
                "total",
                format!("{total} is below the {} already settled", self.total.checked_sub(self.due)?),
            ));
        }
        Ok(Self { total, due, ..*self })
    }

    /// The balance after an entry, or why it cannot be posted (an overpayment, a refund of more
    /// than was paid).
    pub fn post(&self, kind: EntryKind, amount: Money) -> std::result::Result<Self, String> {
        let sum = |result: Result<Money>| result.map_err(|e| e.to_string());
        let mut next = *self;
        match kind {
            EntryKind::Payment => {
                next.paid = sum(self.paid.checked_add(amount))?;
                next.due = sum(self.due.checked_sub(amount))?;
            }
            EntryKind::Refund => {
                next.paid = sum(self.paid.checked_sub(amount))?;
                next.due = sum(self.due.checked_add(amount))?;
            }
            EntryKind::WriteOff => {
                next.written_off = sum(self.written_off.checked_add(amount))?;
                next.due = sum(self.due.checked_sub(amount))?;
            }
        }
        if next.due.is_negative() {
            return Err(format!("{amount} is more than the {} due", self.due));
        }
        if next.paid.is_negative() {
            return Err(format!("a refund of {amount} is more than the {} paid", self.paid));
        }
        Ok(next)
    }
}

/// What an entry does to a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Money received or sent against the bill.
    Payment,
    /// A payment given back.
    Refund,
    /// An amount given up on: it settles the bill without being paid.
    WriteOff,
}

/// An entry to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The caller's idempotency key: an entry posted again with the same key is counted once.
    pub key: String,
    /// What it does.
    pub kind: EntryKind,
    /// How much (positive, in the bill's currency).
    pub amount: Money,
    /// When the money moved.
    pub at: DateTime<Utc>,
    /// How (`ach`, `card`, `check`, ...).
    pub method: Option<String>,
    /// The bank's or processor's reference.
    pub reference: Option<String>,
}

impl NewEntry {
    /// A payment of `amount` at `at`, under `key`.
    pub fn payment(key: impl Into<String>, amount: Money, at: DateTime<Utc>) -> Self {
        Self { key: key.into(), kind: EntryKind::Payment, amount, at, method: None, reference: None }
    }

    fn validate(&self) -> Result<()> {
        validate_id("key", &self.key)?;
        if !self.amount.is_positive() {
            return Err(StorageError::invalid("amount", format!("{} must be above zero", self.amount)));
        }
        crate::limits::check_instant("at", self.at)?;
        for (field, value) in [("method", &self.method), ("reference", &self.reference)] {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        Ok(())
    }
}

/// A bill kept by a ledger.
pub trait Ledgered: Document {
    /// The table of its entries, from [`ledger_table`].
    const ENTRIES: TableDef;
    /// Its balance.
    fn balance(&self) -> &Balance;
    /// Sets its balance after an entry, and whatever follows from it (the status).
    fn settle(&mut self, balance: Balance);
    /// Whether an entry of `kind` may be posted to it now: `Err` with the reason if not (a draft
    /// or void bill takes no payment).
    fn check_postable(&self, kind: EntryKind) -> std::result::Result<(), String>;
}

const ENTRY_INDEXES: &[IndexSpec] = &[IndexSpec::text("bill_id"), IndexSpec::time("at")];

/// The declaration of the entries table `name` (columns `bill_id` and `at`).
pub const fn ledger_table(name: &'static str, entity: &'static str) -> TableDef {
    TableDef { name, entity, id_field: "entry_id", indexes: ENTRY_INDEXES, expires: false, sealed: false, search: false }
}

/// One posted entry of a bill of `D`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct LedgerEntry<D> {
    /// The bill's tenant.
    #[serde(with = "crate::tenant::stored")]
    pub tenant: TenantId,
    /// The bill.
    pub bill_id: String,
    /// The idempotency key.
    pub key: String,
    /// What it did.
    pub kind: EntryKind,
    /// How much.
    pub amount: Money,
    /// When the money moved.
    pub at: DateTime<Utc>,
    /// How.
    pub method: Option<String>,
    /// The bank's or processor's reference.
    pub reference: Option<String>,
    /// Version (always 1: entries are never changed).
    #[serde(default)]
    pub version: u64,
    /// When it was posted.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When it was posted.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    _of: PhantomData<fn() -> D>,
}

impl<D> Clone for LedgerEntry<D> {
    fn clone(&self) -> Self {
        Self {
            tenant: self.tenant.clone(),
            bill_id: self.bill_id.clone(),
            key: self.key.clone(),
            kind: self.kind,
            amount: self.amount,
            at: self.at,
            method: self.method.clone(),
            reference: self.reference.clone(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            _of: PhantomData,
        }
    }
}

impl<D> PartialEq for LedgerEntry<D> {
    fn eq(&self, other: &Self) -> bool {
        (&self.tenant, &self.bill_id, &self.key, self.kind, self.amount, self.at, &self.method, &self.reference)
            == (&other.tenant, &other.bill_id, &other.key, other.kind, other.amount, other.at, &other.method, &other.reference)
    }
}

impl<D> fmt::Debug for LedgerEntry<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerEntry")
            .field("bill_id", &self.bill_id)
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("amount", &self.amount)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl<D: Ledgered> Document for LedgerEntry<D> {
    const TABLE: TableDef = D::ENTRIES;

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        joined_id(&self.bill_id, &self.key)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![Some(Value::from(&self.bill_id)), Some(Value::Time(self.at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id(D::TABLE.id_field, &self.bill_id)?;
        validate_id("key", &self.key)
    }
}

/// What [`Table::post`] did.
#[derive(Debug, Clone)]
pub struct Posted<D> {
    /// The bill after the entry.
    pub bill: D,
    /// The entry.
    pub entry: LedgerEntry<D>,
    /// False when the key had already been posted: nothing changed this time.
    pub applied: bool,
}

impl<D: Ledgered> Table<LedgerEntry<D>> {
    /// Posts `entry` to bill `bill_id` of `bills` and settles its balance, in one unit: counted
    /// once per key however often it is retried or raced. An entry the bill cannot take now (a
    /// draft, an overpayment, a refund of more than was paid) is `Conflict`; a key already used
    /// for a different entry is `Conflict`.
    pub async fn post(&self, bills: &Table<D>, tenant: &TenantId, bill_id: &str, entry: &NewEntry) -> Result<Posted<D>> {
        validate_id(D::TABLE.id_field, bill_id)?;
        entry.validate()?;
        let refused = |why: String| StorageError::conflict(D::TABLE.entity, bill_id, why);
        retry_contended(|| async {
            let Some(bill) = bills.get(tenant, bill_id).await? else {
                return Err(StorageError::not_found(D::TABLE.entity, bill_id));
            };
            bill.balance().check()?;
            if entry.amount.currency() != bill.balance().total.currency() {
                return Err(StorageError::invalid(
                    "amount",
                    format!(
                        "{} is not in the bill's currency, {}; amounts are never converted",
                        entry.amount,
                        bill.balance().total.currency()
                    ),
                ));
            }
            let record = LedgerEntry {
                tenant: tenant.clone(),
                bill_id: bill_id.to_owned(),
                key: entry.key.clone(),
                kind: entry.kind,
                amount: entry.amount,
                at: crate::clock::truncate_micros(entry.at),
                method: entry.method.clone(),
                reference: entry.reference.clone(),
                version: 0,
                created_at: DateTime::<Utc>::UNIX_EPOCH,
                updated_at: DateTime::<Utc>::UNIX_EPOCH,
                _of: PhantomData,
            };
            let checked = bill.check_postable(entry.kind).and_then(|()| bill.balance().post(entry.kind, entry.amount));
            let balance = match checked {
                Ok(balance) => balance,
                // A key seen before answers with what it did, even if the bill could not take it now.
                Err(why) => {
                    return match self.replay(tenant, &record, bill_id).await? {
                        Some(entry) => Ok(Posted { bill, entry, applied: false }),
                        None => Err(refused(why)),
                    };
                }
            };
            let mut next = bill.clone();
            next.settle(balance);
            let mut unit = bills.unit(tenant);
            unit.insert(self, &record)?;
            unit.update(bills, &next)?;
            match unit.commit().await {
                Ok(applied) => {
                    let mut entry = record;
                    if let Some(Applied::Written(meta)) = applied.first() {
                        entry.set_meta(*meta);
                    }
                    if let Some(Applied::Written(meta)) = applied.get(1) {
                        next.set_meta(*meta);
                    }
                    Ok(Posted { bill: next, entry, applied: true })
                }
                Err(StorageError::Conflict { entity, .. }) if entity == D::ENTRIES.entity => {
                    // Posted by someone else meanwhile: the bill changed too, so read both again.
                    match self.replay(tenant, &record, bill_id).await? {
                        Some(entry) => Ok(Posted { bill: bills.get(tenant, bill_id).await?.unwrap_or(bill), entry, applied: false }),
                        None => Err(StorageError::VersionMismatch { entity, id: record.id(), expected: 0, actual: 1 }),
                    }
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The entry already posted under `record`'s key, if it is the same entry; `Conflict` if the
    /// key was used for another.
    async fn replay(&self, tenant: &TenantId, record: &LedgerEntry<D>, bill_id: &str) -> Result<Option<LedgerEntry<D>>> {
        match self.get(tenant, &record.id()).await? {
            Some(existing) if existing == *record => Ok(Some(existing)),
            Some(_) => {
                Err(StorageError::conflict(D::TABLE.entity, bill_id, format!("the key `{}` was used for another entry", record.key)))
            }
            None => Ok(None),
        }
    }

    /// Deletes bill `bill_id` of `bills` if `deletable` says its status allows and nothing was
    /// ever posted to it (`Conflict` otherwise: a bill with a ledger is kept, and voided);
    /// whether it existed. Statuses that allow deletion take no entry, so none can be posted
    /// between the check and the delete.
    pub async fn delete_unposted(
        &self,
        bills: &Table<D>,
        tenant: &TenantId,
        bill_id: &str,
        deletable: impl Fn(&D) -> bool,
    ) -> Result<bool> {
        let Some(bill) = bills.get(tenant, bill_id).await? else { return Ok(false) };
        let posted = self.count(Scope::Tenant(tenant), Filter::all().eq("bill_id", bill_id)).await? > 0;
        if posted || !deletable(&bill) {
            return Err(StorageError::conflict(
                D::TABLE.entity,
                bill_id,
                "is kept: only a bill that never took an entry in a deletable status goes",
            ));
        }
        bills.delete(tenant, bill_id).await
    }

    /// Every entry of bill `bill_id`, oldest first.
    pub async fn entries(&self, tenant: &TenantId, bill_id: &str) -> Result<Vec<LedgerEntry<D>>> {
        validate_id(D::TABLE.id_field, bill_id)?;
        self.list_all(Scope::Tenant(tenant), Query::new(Filter::all().eq("bill_id", bill_id)).order(Order::asc("at"))).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn a_balance_never_goes_below_zero_or_mixes_currencies() {
        let usd = Currency::from_code("USD").unwrap();
        let m = |minor| Money::from_minor(minor, usd).unwrap();
        let balance = Balance::new(m(10_000)).unwrap();
        let paid = balance.post(EntryKind::Payment, m(2_500)).unwrap();
        assert_eq!((paid.paid, paid.due), (m(2_500), m(7_500)));
        assert!(paid.post(EntryKind::Payment, m(7_501)).is_err(), "an overpayment");
        assert!(paid.post(EntryKind::Refund, m(2_501)).is_err(), "a refund of more than was paid");
        let written = paid.post(EntryKind::WriteOff, m(7_500)).unwrap();
        assert_eq!((written.due, written.written_off), (m(0), m(7_500)));
        written.check().unwrap();
        assert!(paid.with_total(m(2_000)).is_err() && paid.with_total(m(2_500)).is_ok());
        let eur = Money::from_minor(1, Currency::from_code("EUR").unwrap()).unwrap();
        assert!(balance.post(EntryKind::Payment, eur).is_err());
        assert!(Balance::new(m(-1)).is_err());
        assert!(Balance { due: m(1), ..balance }.check().is_err());
    }
}
