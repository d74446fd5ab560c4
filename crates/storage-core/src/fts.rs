//! Full-text queries from what a user typed, for SQLite FTS5 and PostgreSQL `tsquery`, with one
//! rule: every term becomes a quoted phrase. Operators (`AND`, `OR`, `NOT`, `NEAR`, `-`, `^`,
//! `:`), quotes, brackets and stars in the input are text to search for, never syntax, so no
//! input is a syntax error (the original deleted some of these characters and passed the rest
//! through, and ordinary punctuation still broke its queries).

/// The longest query kept, in bytes (cut at a character boundary).
pub const MAX_QUERY_BYTES: usize = 500;
/// The most terms kept.
pub const MAX_TERMS: usize = 20;

/// The terms of a query: control characters dropped, cut to `max_bytes` (at a character
/// boundary), split on whitespace, at most `max_terms`; joined by single spaces.
pub fn sanitize_fts_query(query: &str, max_bytes: usize, max_terms: usize) -> String {
    let mut kept = String::with_capacity(query.len().min(max_bytes));
    for c in query.chars().filter(|c| !c.is_control() || c.is_whitespace()) {
        if kept.len().saturating_add(c.len_utf8()) > max_bytes {
            break;
        }
        kept.push(c);
    }
    kept.split_whitespace().take(max_terms).collect::<Vec<_>>().join(" ")
}

/// `text` as an FTS5 string: in double quotes, each double quote doubled.
pub fn escape_fts_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The FTS5 `MATCH` expression for a query: every term a quoted phrase (with `prefix`, a prefix
/// phrase: `"term"*`), all required. `None` when the query has no term.
pub fn build_fts_match_query(query: &str, prefix: bool) -> Option<String> {
    let terms = sanitize_fts_query(query, MAX_QUERY_BYTES, MAX_TERMS);
    let star = if prefix { "*" } else { "" };
    let phrases: Vec<String> = terms.split(' ').filter(|t| !t.is_empty()).map(|t| format!("{}{star}", escape_fts_string(t))).collect();
    (!phrases.is_empty()).then(|| phrases.join(" "))
}

/// The PostgreSQL `to_tsquery` text for a query: every term a quoted value (its quotes doubled,
/// backslashes escaped; with `prefix`, matching prefixes: `'term':*`), all required (`&`).
/// `None` when the query has no term.
pub fn build_tsquery(query: &str, prefix: bool) -> Option<String> {
    let terms = sanitize_fts_query(query, MAX_QUERY_BYTES, MAX_TERMS);
    let star = if prefix { ":*" } else { "" };
    let values: Vec<String> =
        terms.split(' ').filter(|t| !t.is_empty()).map(|t| format!("'{}'{star}", t.replace('\\', "\\\\").replace('\'', "''"))).collect();
    (!values.is_empty()).then(|| values.join(" & "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_punctuation_become_quoted_text() {
        assert_eq!(build_fts_match_query("budget NEAR \"q3\" -draft", false).as_deref(), Some(r#""budget" "NEAR" """q3""" "-draft""#));
        assert_eq!(build_fts_match_query("inv*", true).as_deref(), Some(r#""inv*"*"#));
        assert_eq!(build_tsquery("it's a\\b", true).as_deref(), Some(r"'it''s':* & 'a\\b':*"));
        assert_eq!(build_fts_match_query(" \t\n ", false), None);
        assert_eq!(build_tsquery("", false), None);
    }

    #[test]
    fn long_queries_are_cut_at_a_character_boundary_and_a_term_limit() {
        let long = "é".repeat(400);
        let kept = sanitize_fts_query(&long, MAX_QUERY_BYTES, MAX_TERMS);
        assert_eq!(kept.len(), 500);
        let many = (0..50).map(|i| format!("t{i}")).collect::<Vec<_>>().join(" ");
        assert_eq!(sanitize_fts_query(&many, MAX_QUERY_BYTES, MAX_TERMS).split(' ').count(), 20);
        assert_eq!(sanitize_fts_query("a\u{0}b\u{7}c d", 100, 5), "abc d");
    }
}
