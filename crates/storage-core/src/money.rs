//! Exact money: an integer count of a currency's minor units (cents, pence, fils), never a float.
//!
//! Amounts stay within ±[`MAX_MINOR`] (2^53 − 1), so every backend stores them exactly — as an
//! integer column, a JSON number, or a Redis index — and every sum is checked: an amount that
//! would leave the range is refused, never wrapped. Two currencies never meet in one sum: adding
//! them is an error, not a conversion; totals over several currencies are kept per currency
//! ([`Totals`]).

use crate::limits::MAX_INT;
use crate::{Result, StorageError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The largest amount, in minor units, in either direction.
pub const MAX_MINOR: i64 = MAX_INT;

/// An ISO 4217 currency that has minor units (not a metal or a fund code), by its code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    iso: iso_currency::Currency,
    exponent: u8,
}

impl Currency {
    /// The currency with this ISO 4217 code (`USD`, `EUR`, `JPY`); codes are upper case.
    pub fn from_code(code: &str) -> Result<Self> {
        let iso = iso_currency::Currency::from_code(code)
            .ok_or_else(|| StorageError::invalid("currency", format!("`{}` is not an ISO 4217 currency code", code.escape_debug())))?;
        let exponent = iso
            .exponent()
            .and_then(|e| u8::try_from(e).ok())
            .filter(|e| *e <= 4)
            .ok_or_else(|| StorageError::invalid("currency", format!("{code} has no minor unit to count in")))?;
        Ok(Self { iso, exponent })
    }

    /// The ISO 4217 code.
    pub fn code(self) -> &'static str {
        self.iso.code()
    }

    /// How many decimal places its minor unit is: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u8 {
        self.exponent
    }

    /// Minor units per major unit (100 for USD).
    fn scale(self) -> i64 {
        10i64.saturating_pow(u32::from(self.exponent))
    }
}

impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Currency {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.code().cmp(other.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl FromStr for Currency {
    type Err = StorageError;
    fn from_str(code: &str) -> Result<Self> {
        Self::from_code(code)
    }
}
impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}
impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// An exact amount of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// The stored form, checked on the way in.
#[derive(Deserialize)]
struct MoneyForm {
    minor: i64,
    currency: Currency,
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let form = MoneyForm::deserialize(deserializer)?;
        Self::from_minor(form.minor, form.currency).map_err(serde::de::Error::custom)
    }
}

fn out_of_range(field: &str) -> StorageError {
    StorageError::invalid(field, format!("the amount is outside ±{MAX_MINOR} minor units"))
}

impl Money {
    /// `minor` units of `currency` (cents of USD); refused beyond ±[`MAX_MINOR`].
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self> {
        if minor.unsigned_abs() > MAX_MINOR.unsigned_abs() {
            return Err(out_of_range("amount"));
        }
        Ok(Self { minor, currency })
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// Parses a decimal amount (`"12.34"`, `"-5"`, `"1000.5"`) exactly, in `currency`: more
    /// decimal places than the currency has is refused, never rounded.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self> {
        let bad = |why: &str| StorageError::invalid("amount", format!("`{}` {why}", amount.escape_debug()));
        let (negative, digits) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || (digits.contains('.') && fraction.is_empty()) {
            return Err(bad("is not a decimal amount"));
        }
        if fraction.len() > usize::from(currency.exponent) {
            return Err(bad(&format!("has more than the {} decimal places of {currency}", currency.exponent)));
        }
        let whole: i64 = whole.parse().map_err(|_| out_of_range("amount"))?;
        let padded = format!("{fraction:0<width$}", width = usize::from(currency.exponent));
        let fraction: i64 = if padded.is_empty() { 0 } else { padded.parse().map_err(|_| bad("is not a decimal amount"))? };
        let minor = whole.checked_mul(currency.scale()).and_then(|m| m.checked_add(fraction)).ok_or_else(|| out_of_range("amount"))?;
        Self::from_minor(if negative { minor.saturating_neg() } else { minor }, currency)
    }

    /// The amount in minor units.
    pub fn minor(self) -> i64 {
        self.minor
    }

    /// The currency.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Whether it is nothing.
    pub fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// Whether it is below nothing.
    pub fn is_negative(self) -> bool {
        self.minor < 0
    }

    /// Whether it is above nothing.
    pub fn is_positive(self) -> bool {
        self.minor > 0
    }

    fn same_currency(self, other: Self, field: &str) -> Result<()> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(StorageError::invalid(
                field,
                format!("{} and {} are different currencies; amounts are never converted", self.currency, other.currency),
            ))
        }
    }

    /// The sum; an error for two currencies or a sum out of range.
    pub fn checked_add(self, other: Self) -> Result<Self> {
        self.same_currency(other, "amount")?;
        let minor = self.minor.checked_add(other.minor).ok_or_else(|| out_of_range("amount"))?;
        Self::from_minor(minor, self.currency)
    }

    /// The difference; an error for two currencies or a difference out of range.
    pub fn checked_sub(self, other: Self) -> Result<Self> {
        self.same_currency(other, "amount")?;
        let minor = self.minor.checked_sub(other.minor).ok_or_else(|| out_of_range("amount"))?;
        Self::from_minor(minor, self.currency)
    }

    /// The amount as a decimal text (`"12.34"`), exactly.
    pub fn to_decimal(self) -> String {
        let exponent = usize::from(self.currency.exponent);
        let digits = self.minor.unsigned_abs().to_string();
        let padded = format!("{digits:0>width$}", width = exponent.saturating_add(1));
        let split = padded.len().saturating_sub(exponent);
        let (whole, fraction) = padded.split_at(split);
        let sign = if self.minor < 0 { "-" } else { "" };
        if fraction.is_empty() { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") }
    }
}

impl std::ops::Neg for Money {
    type Output = Self;
    /// The same amount with the opposite sign (always within range: the range is symmetric).
    fn neg(self) -> Self {
        Self { minor: self.minor.saturating_neg(), currency: self.currency }
    }
}

impl PartialOrd for Money {
    /// Amounts of one currency compare; amounts of two do not.
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        (self.currency == other.currency).then(|| self.minor.cmp(&other.minor))
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

/// Sums kept per currency: what a report over mixed currencies adds up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals(BTreeMap<Currency, Money>);

impl Totals {
    /// No amounts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `amount` to its currency's total; an error if that total would leave the range.
    pub fn add(&mut self, amount: Money) -> Result<()> {
        let total = self.0.get(&amount.currency).copied().unwrap_or_else(|| Money::zero(amount.currency));
        self.0.insert(amount.currency, total.checked_add(amount)?);
        Ok(())
    }

    /// The total of `currency` (zero if none was added).
    pub fn get(&self, currency: Currency) -> Money {
        self.0.get(&currency).copied().unwrap_or_else(|| Money::zero(currency))
    }

    /// Every currency's total, by currency code.
    pub fn iter(&self) -> impl Iterator<Item = Money> + '_ {
        self.0.values().copied()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    #[test]
    fn currencies_know_their_minor_units() {
        assert_eq!(usd().exponent(), 2);
        assert_eq!(Currency::from_code("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::from_code("KWD").unwrap().exponent(), 3);
        assert!(Currency::from_code("usd").is_err() && Currency::from_code("XAU").is_err() && Currency::from_code("ABC").is_err());
    }

    #[test]
    fn amounts_parse_and_print_exactly() {
        let jpy = Currency::from_code("JPY").unwrap();
        for (text, minor) in [("12.34", 1234), ("-0.05", -5), ("7", 700), ("0.1", 10), ("90071992547409.91", 9_007_199_254_740_991)] {
            let money = Money::parse(text, usd()).unwrap();
            assert_eq!(money.minor(), minor, "{text}");
        }
        assert_eq!(Money::parse("12.3", usd()).unwrap().to_decimal(), "12.30");
        assert_eq!(Money::from_minor(-5, usd()).unwrap().to_decimal(), "-0.05");
        assert_eq!(Money::parse("500", jpy).unwrap().to_decimal(), "500");
        for bad in ["1.234", "", "-", "1.", ".5", "1e3", "1,00", " 1", "90071992547409.92", "99999999999999999999"] {
            assert!(Money::parse(bad, usd()).is_err(), "{bad}");
        }
        assert!(Money::parse("1.5", jpy).is_err());
    }

    #[test]
    fn sums_never_mix_currencies_or_wrap() {
        let eur = Currency::from_code("EUR").unwrap();
        let a = Money::from_minor(MAX_MINOR, usd()).unwrap();
        assert!(a.checked_add(Money::from_minor(1, usd()).unwrap()).is_err());
        assert!(Money::from_minor(MAX_MINOR + 1, usd()).is_err() && Money::from_minor(i64::MIN, usd()).is_err());
        assert!(Money::zero(usd()).checked_add(Money::zero(eur)).is_err());
        assert_eq!(Money::zero(usd()).partial_cmp(&Money::zero(eur)), None);
        let mut totals = Totals::new();
        totals.add(Money::from_minor(150, usd()).unwrap()).unwrap();
        totals.add(Money::from_minor(-50, usd()).unwrap()).unwrap();
        totals.add(Money::from_minor(7, eur).unwrap()).unwrap();
        assert_eq!(totals.get(usd()).minor(), 100);
        assert_eq!(totals.iter().map(|m| m.to_string()).collect::<Vec<_>>(), ["0.07 EUR", "1.00 USD"]);
        let json = serde_json::to_string(&Money::from_minor(1234, usd()).unwrap()).unwrap();
        assert_eq!(json, r#"{"minor":1234,"currency":"USD"}"#);
        assert!(serde_json::from_str::<Money>(r#"{"minor":9007199254740992,"currency":"USD"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"minor":1.5,"currency":"USD"}"#).is_err());
    }
}
