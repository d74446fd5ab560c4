//! Keyset pagination with opaque cursors.

use crate::{Result, StorageError};

/// The largest page any list returns; larger requests are capped.
pub const MAX_PAGE_SIZE: u32 = 1_000;
/// The page size when none is given.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Where the next page starts. Opaque: pass back what [`Page::next`] gave you.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// Rebuilds a cursor from its string form (as sent to and back from a client).
    pub fn from_string(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The string form, for handing to a client.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which page to read: at most `limit` records after `after`, in the list's stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { limit: DEFAULT_PAGE_SIZE, after: None }
    }
}

impl PageRequest {
    /// The first page of at most `limit` records (capped at [`MAX_PAGE_SIZE`]).
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// The page after `cursor`.
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Continues from `next`, or returns `None` when there is no next page.
    pub fn next(&self, next: Option<&Cursor>) -> Option<Self> {
        next.map(|c| Self { limit: self.limit, after: Some(c.clone()) })
    }

    /// The effective limit, validated and capped.
    pub fn limit(&self) -> Result<u32> {
        if self.limit == 0 {
            return Err(StorageError::invalid("limit", "must be at least 1"));
        }
        Ok(self.limit.min(MAX_PAGE_SIZE))
    }

    /// The cursor to continue after, if any.
    pub fn cursor(&self) -> Option<&Cursor> {
        self.after.as_ref()
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The records, in the list's stable order.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Maps the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next: self.next }
    }
}
