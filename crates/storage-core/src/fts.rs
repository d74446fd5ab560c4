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

/// The most searchable text kept per record, in bytes (cut at a character boundary).
pub const MAX_SEARCH_TEXT_BYTES: usize = 64 * 1024;

/// A record's searchable text as stored: control characters (NUL included) become spaces, cut
/// to [`MAX_SEARCH_TEXT_BYTES`].
pub fn searchable(text: &str) -> String {
    let mut kept = String::with_capacity(text.len().min(MAX_SEARCH_TEXT_BYTES));
    for c in text.chars() {
        if kept.len().saturating_add(c.len_utf8()) > MAX_SEARCH_TEXT_BYTES {
            break;
        }
        kept.push(if c.is_control() { ' ' } else { c });
    }
    kept
}

/// The longest word the memory and Redis backends index, in bytes; longer ones are cut (at a
/// character boundary), in texts and queries alike.
pub const MAX_WORD_BYTES: usize = 64;

/// The words of a text as the memory and Redis backends index them: runs of letters and
/// digits, lower-cased (the tokenisation of SQLite's `unicode61` and PostgreSQL's `simple`
/// configuration, without their diacritic folding), each at most [`MAX_WORD_BYTES`].
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut word = String::with_capacity(w.len().min(MAX_WORD_BYTES));
            for c in w.chars().flat_map(char::to_lowercase) {
                if word.len().saturating_add(c.len_utf8()) > MAX_WORD_BYTES {
                    break;
                }
                word.push(c);
            }
            word
        })
        .collect()
}

/// A full-text search: what a user typed, as terms that each must appear as a phrase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Search {
    terms: String,
    phrases: Vec<Vec<String>>,
}

impl Search {
    /// The search for `query` (sanitised: see [`sanitize_fts_query`]); `None` when it has no
    /// term a backend could search for.
    pub fn new(query: &str) -> Option<Self> {
        // A term without a word (`-`, `***`) would match nothing, or everything, depending on
        // the backend: it is left out everywhere.
        let terms = sanitize_fts_query(query, MAX_QUERY_BYTES, MAX_TERMS);
        let terms: Vec<&str> = terms.split(' ').filter(|term| !words(term).is_empty()).collect();
        (!terms.is_empty()).then(|| Self { phrases: terms.iter().map(|term| words(term)).collect(), terms: terms.join(" ") })
    }

    /// The FTS5 `MATCH` expression.
    pub fn fts5(&self) -> String {
        build_fts_match_query(&self.terms, false).unwrap_or_default()
    }

    /// The `to_tsquery` text.
    pub fn tsquery(&self) -> String {
        build_tsquery(&self.terms, false).unwrap_or_default()
    }

    /// Each term's [`words`].
    pub fn phrases(&self) -> &[Vec<String>] {
        &self.phrases
    }

    /// How well a text's words match: `None` unless every phrase occurs; otherwise the number
    /// of occurrences of all phrases (the memory and Redis rank).
    pub fn score(&self, text_words: &[String]) -> Option<u64> {
        let mut score = 0_u64;
        for phrase in &self.phrases {
            let hits = text_words.windows(phrase.len()).filter(|window| *window == phrase.as_slice()).count();
            if hits == 0 {
                return None;
            }
            score = score.saturating_add(hits as u64);
        }
        Some(score)
    }
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
    fn phrases_match_words_in_order_and_count_occurrences() {
        let search = Search::new("O'Brien \"draft\" NEAR").expect("terms");
        assert_eq!(search.phrases(), [vec!["o", "brien"], vec!["draft"], vec!["near"]]);
        let text = words("Draft for O'Brien, near the draft");
        assert_eq!(search.score(&text), Some(4));
        assert_eq!(search.score(&words("Brien O draft near")), None, "a phrase is in order");
        assert!(Search::new(" *** \"\" ").is_none(), "nothing to search for");
        assert_eq!(searchable("a\u{0}b\nc"), "a b c");
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
