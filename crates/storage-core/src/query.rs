//! What a list, count or sweep selects: a conjunction of predicates on declared indexes, an
//! order, a scope (one tenant or all of them), and the keyset position a page continues after.

use crate::document::{IndexKind, TableDef, Value};
use crate::limits::{check_instant, check_text};
use crate::{Result, StorageError, TenantId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most values an [`Op::In`] may list.
pub const MAX_IN_VALUES: usize = 1_000;

/// A condition on one index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// The value equals.
    Eq(Value),
    /// The value is one of these (1 to [`MAX_IN_VALUES`]).
    In(Vec<Value>),
    /// The index is not set.
    IsNull,
    /// The index is set.
    NotNull,
    /// The value is below.
    Lt(Value),
    /// The value is at or below.
    Le(Value),
    /// The value is above.
    Gt(Value),
    /// The value is at or above.
    Ge(Value),
    /// The value is within, both ends included.
    Between(Value, Value),
}

impl Op {
    /// Whether an index value passes: the reference semantics every backend implements. An
    /// unset index passes only [`Op::IsNull`].
    pub fn matches(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Self::IsNull, value) => value.is_none(),
            (Self::NotNull, value) => value.is_some(),
            (_, None) => false,
            (Self::Eq(x), Some(v)) => v == x,
            (Self::In(xs), Some(v)) => xs.contains(v),
            (Self::Lt(x), Some(v)) => v < x,
            (Self::Le(x), Some(v)) => v <= x,
            (Self::Gt(x), Some(v)) => v > x,
            (Self::Ge(x), Some(v)) => v >= x,
            (Self::Between(low, high), Some(v)) => low <= v && v <= high,
        }
    }
}

/// One condition of a [`Filter`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Predicate {
    /// A declared index.
    pub column: &'static str,
    /// The condition.
    pub op: Op,
}

/// Records passing every predicate (a conjunction); [`Filter::all`] passes every record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    predicates: Vec<Predicate>,
}

impl Filter {
    /// No condition.
    pub fn all() -> Self {
        Self::default()
    }

    fn and(mut self, column: &'static str, op: Op) -> Self {
        self.predicates.push(Predicate { column, op });
        self
    }

    /// And `column` equals `value`.
    pub fn eq(self, column: &'static str, value: impl Into<Value>) -> Self {
        self.and(column, Op::Eq(value.into()))
    }
    /// And `column` is one of `values`.
    pub fn one_of<V: Into<Value>>(self, column: &'static str, values: impl IntoIterator<Item = V>) -> Self {
        self.and(column, Op::In(values.into_iter().map(Into::into).collect()))
    }
    /// And `column` is not set.
    pub fn is_null(self, column: &'static str) -> Self {
        self.and(column, Op::IsNull)
    }
    /// And `column` is set.
    pub fn not_null(self, column: &'static str) -> Self {
        self.and(column, Op::NotNull)
    }
    /// And `column` is below `value`.
    pub fn lt(self, column: &'static str, value: impl Into<Value>) -> Self {
        self.and(column, Op::Lt(value.into()))
    }
    /// And `column` is at or below `value`.
    pub fn le(self, column: &'static str, value: impl Into<Value>) -> Self {
        self.and(column, Op::Le(value.into()))
    }
    /// And `column` is above `value`.
    pub fn gt(self, column: &'static str, value: impl Into<Value>) -> Self {
        self.and(column, Op::Gt(value.into()))
    }
    /// And `column` is at or above `value`.
    pub fn ge(self, column: &'static str, value: impl Into<Value>) -> Self {
        self.and(column, Op::Ge(value.into()))
    }
    /// And `column` is between `low` and `high`, both included.
    pub fn between(self, column: &'static str, low: impl Into<Value>, high: impl Into<Value>) -> Self {
        self.and(column, Op::Between(low.into(), high.into()))
    }

    /// And `column`, a text index, starts with `prefix` (`user.` finds `user.login` and
    /// `user.delete`): a range in byte order, so every backend answers it from its index.
    pub fn prefix(self, column: &'static str, prefix: &str) -> Self {
        let from = self.ge(column, prefix);
        match prefix_end(prefix) {
            Some(end) => from.lt(column, end),
            None => from,
        }
    }

    /// The predicates.
    pub fn predicates(&self) -> &[Predicate] {
        &self.predicates
    }

    /// Whether a record with these index values (in `table`'s order) passes every predicate.
    pub fn matches(&self, table: &TableDef, values: &[Option<Value>]) -> bool {
        self.predicates.iter().all(|p| {
            let value = table.index(p.column).and_then(|(i, _)| values.get(i)).and_then(Option::as_ref);
            p.op.matches(value)
        })
    }

    /// Checks the filter against `table`: declared columns, values of the column's kind, text
    /// without control characters, instants in range (and truncated to microseconds, as stored).
    pub fn checked(mut self, table: &TableDef) -> Result<Self> {
        for predicate in &mut self.predicates {
            let (_, spec) = table.require_index(predicate.column)?;
            let column = predicate.column;
            let check = |value: &mut Value| check_value(table, column, spec.kind, value);
            match &mut predicate.op {
                Op::IsNull | Op::NotNull => {}
                Op::Eq(v) | Op::Lt(v) | Op::Le(v) | Op::Gt(v) | Op::Ge(v) => check(v)?,
                Op::Between(low, high) => {
                    check(low)?;
                    check(high)?;
                    if low > high {
                        return Err(StorageError::invalid(column, "the low end of a between is above its high end"));
                    }
                }
                Op::In(values) => {
                    if values.is_empty() || values.len() > MAX_IN_VALUES {
                        return Err(StorageError::invalid(
                            column,
                            format!("an `in` lists {} values; 1 to {MAX_IN_VALUES} are allowed", values.len()),
                        ));
                    }
                    for value in values.iter_mut() {
                        check(value)?;
                    }
                    values.sort();
                    values.dedup();
                }
            }
        }
        Ok(self)
    }
}

/// The smallest text above every text that starts with `prefix`: its last character that has a
/// successor, moved to that successor (control characters are skipped: no index value holds
/// one). `None` when every character is the last one Unicode has.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut code = u32::from(last);
        while let Some(next) = code.checked_add(1).filter(|n| *n <= u32::from(char::MAX)) {
            code = next;
            if let Some(c) = char::from_u32(code).filter(|c| !c.is_control()) {
                chars.push(c);
                return Some(chars.into_iter().collect());
            }
        }
    }
    None
}

/// Checks one value against its column's kind, and normalises it as the backends store it.
pub(crate) fn check_value(table: &TableDef, column: &str, kind: IndexKind, value: &mut Value) -> Result<()> {
    if value.kind() != kind {
        return Err(StorageError::invalid(
            column,
            format!("{} is a {kind:?} index of {}, compared with a {:?} value", column, table.name, value.kind()),
        ));
    }
    match value {
        Value::Text(text) => check_text(column, text),
        Value::Time(at) => {
            *at = check_instant(column, *at)?;
            Ok(())
        }
        Value::Int(n) => crate::limits::check_int(column, *n),
        Value::Bool(_) => Ok(()),
    }
}

/// Which way a list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Direction {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// The order of a list: by one declared index, ties broken by id, or by id alone. Ordering by an
/// index lists only the records where that index is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Order {
    /// The index; `None` orders by id.
    pub column: Option<&'static str>,
    /// The direction.
    pub direction: Direction,
}

impl Order {
    /// By id, ascending.
    pub fn by_id() -> Self {
        Self::default()
    }
    /// By `column` ascending, then id.
    pub fn asc(column: &'static str) -> Self {
        Self { column: Some(column), direction: Direction::Asc }
    }
    /// By `column` descending, then id descending.
    pub fn desc(column: &'static str) -> Self {
        Self { column: Some(column), direction: Direction::Desc }
    }
}

/// A filter and an order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Query {
    /// Which records.
    pub filter: Filter,
    /// In which order.
    pub order: Order,
}

impl Query {
    /// Records passing `filter`, by id.
    pub fn new(filter: Filter) -> Self {
        Self { filter, order: Order::by_id() }
    }

    /// The same records in `order`.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Checks the query against `table` (see [`Filter::checked`]); an ordered query gains the
    /// implied `column is set` predicate.
    pub fn checked(self, table: &TableDef) -> Result<Self> {
        let mut filter = self.filter.checked(table)?;
        if let Some(column) = self.order.column {
            table.require_index(column)?;
            filter = filter.not_null(column);
        }
        Ok(Self { filter, order: self.order })
    }
}

/// Whose records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// One tenant's.
    Tenant(&'a TenantId),
    /// Every tenant's: for maintenance sweeps and schedulers. Lists run by tenant first.
    AllTenants,
}

impl<'a> Scope<'a> {
    /// The tenant of a one-tenant scope.
    pub fn tenant(self) -> Option<&'a TenantId> {
        match self {
            Self::Tenant(tenant) => Some(tenant),
            Self::AllTenants => None,
        }
    }
}

impl<'a> From<&'a TenantId> for Scope<'a> {
    fn from(tenant: &'a TenantId) -> Self {
        Self::Tenant(tenant)
    }
}

/// Where a page stopped: the last record's tenant (for [`Scope::AllTenants`]), sort key (for an
/// ordered list) and id. The next page starts strictly after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The tenant, in a list across tenants.
    pub tenant: Option<TenantId>,
    /// The value of the order column.
    pub key: Option<Value>,
    /// The id.
    pub id: String,
}

/// The serialized form of a [`Position`], bound to the list's order so that a cursor of one list
/// is refused by another.
#[derive(Serialize, Deserialize)]
struct CursorForm {
    /// Order column ("" for id) and direction.
    o: String,
    d: Direction,
    t: Option<String>,
    k: Option<CursorKey>,
    i: String,
}

#[derive(Serialize, Deserialize)]
enum CursorKey {
    S(String),
    T(i64),
    N(i64),
    B(bool),
}

impl Position {
    /// The opaque cursor text of this position for `order`.
    pub(crate) fn encode(&self, order: &Order) -> String {
        let form = CursorForm {
            o: order.column.unwrap_or_default().to_owned(),
            d: order.direction,
            t: self.tenant.as_ref().map(|t| t.as_str().to_owned()),
            k: self.key.as_ref().map(|key| match key {
                Value::Text(s) => CursorKey::S(s.clone()),
                Value::Time(t) => CursorKey::T(t.timestamp_micros()),
                Value::Int(n) => CursorKey::N(*n),
                Value::Bool(b) => CursorKey::B(*b),
            }),
            i: self.id.clone(),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&form).unwrap_or_default())
    }

    /// Decodes a cursor this library issued for a list of `table` in `order` and `scope`.
    pub(crate) fn decode(text: &str, table: &TableDef, order: &Order, all_tenants: bool) -> Result<Self> {
        let refused =
            |why: &str| StorageError::invalid("cursor", format!("`{}` is not a cursor of this list ({why})", text.escape_debug()));
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| refused("not base64"))?;
        let form: CursorForm = serde_json::from_slice(&bytes).map_err(|_| refused("malformed"))?;
        if form.o != order.column.unwrap_or_default() || form.d != order.direction {
            return Err(refused("it belongs to a list in another order"));
        }
        let tenant = match (form.t, all_tenants) {
            (Some(t), true) => Some(TenantId::stored(t).map_err(|_| refused("bad tenant"))?),
            (None, false) => None,
            _ => return Err(refused("it belongs to a list of another scope")),
        };
        crate::validate_id(table.id_field, &form.i).map_err(|_| refused("bad id"))?;
        let key = match (order.column, form.k) {
            (None, None) => None,
            (Some(column), Some(key)) => {
                let (_, spec) = table.require_index(column)?;
                let mut value = match key {
                    CursorKey::S(s) => Value::Text(s),
                    CursorKey::T(micros) => {
                        Value::Time(DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(|| refused("bad instant"))?)
                    }
                    CursorKey::N(n) => Value::Int(n),
                    CursorKey::B(b) => Value::Bool(b),
                };
                check_value(table, column, spec.kind, &mut value).map_err(|_| refused("bad key"))?;
                Some(value)
            }
            _ => return Err(refused("it belongs to a list in another order")),
        };
        Ok(Self { tenant, key, id: form.i })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_holds_exactly_the_texts_that_start_with_it() {
        assert_eq!(prefix_end("user.").as_deref(), Some("user/"));
        assert_eq!(prefix_end("a~").as_deref(), Some("a\u{a0}"), "DEL and the C1 controls are skipped");
        assert_eq!(prefix_end("x\u{10ffff}").as_deref(), Some("y"));
        assert_eq!(prefix_end("\u{10ffff}"), None);
        assert_eq!(prefix_end("\u{d7ff}").as_deref(), Some("\u{e000}"), "surrogates are skipped");
        let filter = Filter::all().prefix("action", "user.");
        let passes = |text: &str| filter.predicates().iter().all(|p| p.op.matches(Some(&Value::Text(text.to_owned()))));
        for inside in ["user.", "user.login", "user.\u{10ffff}\u{10ffff}", "user.é"] {
            assert!(passes(inside), "{inside}");
        }
        for outside in ["user", "user/", "users", "usera", "org.user.login", "user-"] {
            assert!(!passes(outside), "{outside}");
        }
    }
}
