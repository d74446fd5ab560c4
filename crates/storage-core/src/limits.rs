//! The limits every backend shares, checked once at the boundary so that whatever a write accepts
//! reads back, on every backend: text without control characters in keys and indexes, instants
//! in the years 1 to 9999 at microsecond precision, integers that every backend holds exactly,
//! bodies of bounded size and nesting, durations that cannot overflow.

use crate::clock::truncate_micros;
use crate::{Result, StorageError};
use chrono::{DateTime, Datelike, TimeDelta, Utc};

/// The longest indexed text value, in bytes.
pub const MAX_INDEX_TEXT_BYTES: usize = 1_024;
/// The largest magnitude of an integer index or counter: 2^53 − 1, which Redis (Lua numbers and
/// sorted-set scores) and JSON consumers hold exactly.
pub const MAX_INT: i64 = (1 << 53) - 1;
/// The largest stored body (the record as JSON, with its sealed secrets), in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The deepest nesting of arrays and objects a record may have. JSON decoders refuse deeper
/// documents (serde_json at 128 levels), so a deeper record could be written but never read.
pub const MAX_NESTING: usize = 64;

/// Checks an indexed text value: at most [`MAX_INDEX_TEXT_BYTES`], no control characters (NUL
/// included, which PostgreSQL text cannot hold).
pub fn check_text(field: &str, text: &str) -> Result<()> {
    if text.len() > MAX_INDEX_TEXT_BYTES {
        return Err(StorageError::invalid(field, format!("is {} bytes long; the limit is {MAX_INDEX_TEXT_BYTES}", text.len())));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(StorageError::invalid(field, format!("contains the control character {c:?}")));
    }
    Ok(())
}

/// Checks free text that is stored, not indexed (a comment, a debate's task): at most `max_bytes`
/// and no NUL (which PostgreSQL text cannot hold); line breaks and tabs are fine.
pub fn check_prose(field: &str, text: &str, max_bytes: usize) -> Result<()> {
    if text.len() > max_bytes {
        return Err(StorageError::invalid(field, format!("is {} bytes long; the limit is {max_bytes}", text.len())));
    }
    if text.contains('\0') {
        return Err(StorageError::invalid(field, "contains a NUL character"));
    }
    Ok(())
}

/// An instant as every backend stores it: truncated to microseconds, within the years 1 to 9999
/// (PostgreSQL's range is narrower than chrono's, SQLite and Redis store microseconds).
pub fn check_instant(field: &str, at: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if !(1..=9999).contains(&at.year()) {
        return Err(StorageError::invalid(field, format!("{at} is outside the years 1 to 9999")));
    }
    Ok(truncate_micros(at))
}

/// Checks an integer index value or counter: within ±[`MAX_INT`].
pub fn check_int(field: &str, n: i64) -> Result<()> {
    if n.unsigned_abs() > MAX_INT.unsigned_abs() {
        return Err(StorageError::invalid(field, format!("{n} is outside ±{MAX_INT}")));
    }
    Ok(())
}

/// `at + by`, refused (instead of overflowing) when it leaves the stored range.
pub fn add(field: &str, at: DateTime<Utc>, by: TimeDelta) -> Result<DateTime<Utc>> {
    let sum = at.checked_add_signed(by).ok_or_else(|| StorageError::invalid(field, format!("{by} from {at} is out of range")))?;
    check_instant(field, sum)
}

/// `at - by`, refused (instead of overflowing) when it leaves the stored range.
pub fn sub(field: &str, at: DateTime<Utc>, by: TimeDelta) -> Result<DateTime<Utc>> {
    let difference = at.checked_sub_signed(by).ok_or_else(|| StorageError::invalid(field, format!("{by} before {at} is out of range")))?;
    check_instant(field, difference)
}

/// A whole number of seconds as a duration, refused when it does not fit.
pub fn seconds(field: &str, seconds: i64) -> Result<TimeDelta> {
    TimeDelta::try_seconds(seconds).ok_or_else(|| StorageError::invalid(field, format!("{seconds} seconds is out of range")))
}

/// Checks an encoded body: its size and how deeply its arrays and objects nest.
pub fn check_body(json: &str) -> Result<()> {
    if json.len() > MAX_BODY_BYTES {
        return Err(StorageError::invalid("record", format!("is {} bytes as stored; the limit is {MAX_BODY_BYTES}", json.len())));
    }
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in json.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth = depth.saturating_add(1);
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // The stored body wraps the record in one object of its own.
    if deepest > MAX_NESTING + 1 {
        return Err(StorageError::invalid(
            "record",
            format!("nests {} levels deep; the limit is {MAX_NESTING}", deepest.saturating_sub(1)),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_outside_strings() {
        let nested = |n: usize| format!("{{\"r\":{}1{}}}", "[".repeat(n), "]".repeat(n));
        assert!(check_body(&nested(MAX_NESTING - 1)).is_ok());
        assert!(check_body(&nested(MAX_NESTING + 5)).is_err());
        assert!(check_body(&format!("{{\"r\":\"{}\"}}", "[".repeat(500))).is_ok(), "brackets inside strings do not nest");
        assert!(check_body("{\"r\":\"a\\\"[[[[\"}").is_ok(), "escaped quotes stay inside the string");
    }

    #[test]
    fn instants_and_integers_outside_what_every_backend_stores_are_refused() {
        assert!(check_instant("t", DateTime::<Utc>::MAX_UTC).is_err());
        assert!(check_instant("t", DateTime::<Utc>::MIN_UTC).is_err());
        let at = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::nanoseconds(1_999);
        assert_eq!(check_instant("t", at).ok(), Some(DateTime::<Utc>::UNIX_EPOCH + TimeDelta::microseconds(1)));
        assert!(add("lease", Utc::now(), TimeDelta::MAX).is_err());
        assert!(seconds("ttl", i64::MAX).is_err());
        assert!(check_int("n", MAX_INT).is_ok() && check_int("n", -MAX_INT).is_ok());
        assert!(check_int("n", MAX_INT + 1).is_err() && check_int("n", i64::MIN).is_err());
    }
}
