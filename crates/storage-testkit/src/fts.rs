//! Full-text queries as users type them, for the backends' own tests of the query builders
//! (`storage_core::fts`): quotes, operators, `NEAR`, stars, brackets, Unicode, empty and
//! 10 kB inputs; and phrases with punctuation that a search must find.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// What users type, including everything FTS syntax reserves.
fn query() -> impl Strategy<Value = String> {
    let syntax = prop_oneof![
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("*".to_owned()),
        Just("AND".to_owned()),
        Just("OR".to_owned()),
        Just("NOT".to_owned()),
        Just("NEAR".to_owned()),
        Just("NEAR/3".to_owned()),
        Just("NEAR(".to_owned()),
        Just("^".to_owned()),
        Just(":".to_owned()),
        Just("-".to_owned()),
        Just("+".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("\\".to_owned()),
        Just("&".to_owned()),
        Just("|".to_owned()),
        Just("!".to_owned()),
        Just("<->".to_owned()),
        Just(":*".to_owned()),
        Just(".".to_owned()),
        Just(",".to_owned()),
        Just("@".to_owned()),
        Just("/".to_owned()),
        "[a-z]{1,8}",
        "[\\p{L}\\p{N}]{1,6}",
        "\\PC{1,4}",
    ];
    let mixed = proptest::collection::vec((syntax, prop_oneof![Just(""), Just(" "), Just("  "), Just("\t")]), 0..12)
        .prop_map(|parts| parts.into_iter().map(|(a, b)| format!("{a}{b}")).collect::<String>());
    prop_oneof![
        6 => mixed,
        2 => any::<String>(),
        1 => Just(String::new()),
        1 => "[ \\t\\n]{0,4}",
        // About 10 kB, built by repetition (a 10,000-character regex is slow to generate).
        1 => "[a-z\"*() ]{16,20}".prop_map(|s| s.repeat(600)),
    ]
}

/// Runs `check` on `n` generated queries (a fixed seed: a failure reproduces).
pub fn for_each_query(n: u32, mut check: impl FnMut(&str)) {
    let mut runner = TestRunner::new_with_rng(
        Config { cases: n, failure_persistence: None, ..Config::default() },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = query();
    for _ in 0..n {
        let value = strategy.new_tree(&mut runner).expect("a query").current();
        check(&value);
    }
}

/// Known text `i` and a query a user would type to find it (its distinctive words, with
/// punctuation, quotes and operator words as they appear in ordinary text).
pub fn phrase(i: u32) -> (String, String) {
    let text = format!("Quarterly-report id{i}x for O'Brien: \"draft\" NEAR the end (v{i}.2) — café naïve {i}");
    let query = format!("quarterly-report ID{i}X O'Brien \"draft\" NEAR (v{i}.2) café");
    (text, query)
}
