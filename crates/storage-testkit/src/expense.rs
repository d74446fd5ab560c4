//! Conformance cases of `ExpenseStore`. Each defect of the original store has a case here: float
//! sums (PostgreSQL's `Decimal` → `float`, SQLite's `REAL`), amounts compared as text, a
//! duplicate query that always failed on PostgreSQL and a window relative to now, `approved_by`
//! kept twice and drifting, and no tenant.

use crate::invoice::usd;
use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use storage_core::{
    Clock, Currency, Expense, ExpenseFilter, ExpenseStatus, ExpenseStore, Expenses, LineItem, MAX_MINOR, Money, PageRequest, StorageError,
    TenantId,
};

fn currency(code: &str) -> Currency {
    Currency::from_code(code).expect("currency")
}

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, currency("EUR")).expect("amount")
}

fn ids(expenses: &[Expense]) -> Vec<&str> {
    expenses.iter().map(|e| e.id.as_str()).collect()
}

fn is_conflict<T: std::fmt::Debug>(result: &storage_core::Result<T>) -> bool {
    matches!(result, Err(StorageError::Conflict { .. }))
}

pub async fn sums_are_exact_per_currency_and_never_mixed(s: &Subject) {
    let store = s.store::<Expenses>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let start = s.clock.now();
    // Ten expenses of 0.10: exactly 1.00, the sum a float (or SQLite's REAL) misses.
    let dime = Money::parse("0.10", currency("USD")).expect("dime");
    for i in 0..10 {
        store.save(&Expense::new(acme.clone(), format!("dime-{i}"), "Coffee Cart", dime, "coffee", start)).await.expect("save");
    }
    let coffee = store.get_statistics(&acme, start, start).await.expect("stats");
    assert_eq!(coffee.total.get(currency("USD")), Money::parse("1.00", currency("USD")).expect("one"), "10 × 0.10 is exactly 1.00");
    assert_eq!(coffee.total.get(currency("USD")).to_decimal(), "1.00");

    let mut dinner = Expense::new(acme.clone(), "dinner", "Bistro", usd(8_000), "meals", start);
    (dinner.tax, dinner.tip) = (usd(640), usd(1_200));
    dinner.total = usd(1);
    let dinner = store.save(&dinner).await.expect("save");
    assert_eq!(dinner.total, usd(9_840), "the store computes total = amount + tax + tip; a caller's total is not trusted");
    store.save(&Expense::new(acme.clone(), "train", "DB Bahn", eur(4_990), "travel", start)).await.expect("save");
    store.save(&Expense::new(globex.clone(), "other", "Bistro", usd(100), "meals", start)).await.expect("another tenant");
    store.update_status(&acme, "dinner", ExpenseStatus::Approved, Some("cfo")).await.expect("approve");
    let stats = store.get_statistics(&acme, start, start).await.expect("stats");
    assert_eq!(stats.count, 12);
    assert_eq!(stats.total.iter().collect::<Vec<_>>(), [eur(4_990), usd(9_940)], "one total per currency, never added together");
    assert_eq!(stats.by_category["meals"].get(currency("USD")), usd(9_840));
    assert_eq!(stats.by_category["meals"].get(currency("EUR")), eur(0));
    assert_eq!(stats.by_category["travel"].iter().collect::<Vec<_>>(), [eur(4_990)]);
    assert_eq!(stats.by_status[&ExpenseStatus::Approved].iter().collect::<Vec<_>>(), [usd(9_840)]);
    assert_eq!(stats.by_status[&ExpenseStatus::Pending].iter().collect::<Vec<_>>(), [eur(4_990), usd(100)]);
    assert_eq!((stats.count_by_category["coffee"], stats.count_by_category["meals"], stats.count_by_category["travel"]), (10, 1, 1));
    assert_eq!((stats.count_by_status[&ExpenseStatus::Pending], stats.count_by_status[&ExpenseStatus::Approved]), (11, 1));
    let later = store.get_statistics(&acme, start + TimeDelta::days(1), start + TimeDelta::days(2)).await.expect("stats");
    assert_eq!((later.count, later.total.is_empty()), (0, true));

    // Amounts at the edge of what every backend holds exactly: each is accepted alone, their sum
    // is refused (never wrapped, never rounded), in a write and in a report alike.
    let mut overflow = Expense::new(acme.clone(), "big", "Bistro", usd(MAX_MINOR), "meals", start);
    overflow.tip = usd(1);
    assert_invalid(store.save(&overflow).await, "total");
    assert_eq!(store.get(&acme, "big").await.expect("get"), None, "nothing partial");
    let far = start - TimeDelta::days(365);
    for id in ["max-1", "max-2"] {
        store.save(&Expense::new(acme.clone(), id, "Bistro", usd(MAX_MINOR), "huge", far)).await.expect("the largest amount");
    }
    assert_eq!(store.get(&acme, "max-1").await.expect("get").expect("present").total.minor(), MAX_MINOR, "stored exactly");
    assert_invalid(store.get_statistics(&acme, far, far).await, "amount");
    assert!(Money::from_minor(i64::MAX, currency("USD")).is_err() && Money::from_minor(MAX_MINOR + 1, currency("USD")).is_err());
}

pub async fn duplicates_are_found_by_vendor_total_and_a_window_around_the_date(s: &Subject) {
    let store = s.store::<Expenses>();
    let acme = tenant("acme");
    let day = s.clock.now() - TimeDelta::days(100);
    for (id, vendor, total, offset_days) in [
        ("e-1", "ACME, Inc.", usd(4_250), 0),
        ("e-2", "acme   inc", usd(4_250), 2),
        ("e-3", "Acme Inc", usd(4_250), 5),
        ("e-4", "acme inc", usd(4_251), 1),
        ("e-5", "acme inc", eur(4_250), 1),
        ("e-6", "Other Co", usd(4_250), 0),
        ("e-7", "A.C.M.E. Inc", usd(4_250), 1),
    ] {
        store.save(&Expense::new(acme.clone(), id, vendor, total, "office", day + TimeDelta::days(offset_days))).await.expect("save");
    }
    let found = store.find_duplicates(&acme, "Acme Inc.", usd(4_250), day + TimeDelta::days(1), 3).await.expect("duplicates");
    assert_eq!(
        ids(&found),
        ["e-1", "e-7", "e-2"],
        "same vendor once normalised (punctuation removed), the exact total in the same currency, within the window around the \
         date, oldest first"
    );
    assert_eq!(store.find_duplicates(&acme, "acme inc", usd(4_250), day, 30).await.expect("wide").len(), 4);
    assert_eq!(store.find_duplicates(&acme, "acme inc", usd(4_250), day, 0).await.expect("same instant").len(), 1);
    // The original measured its window back from now, so a receipt checked late found nothing.
    assert!(store.find_duplicates(&acme, "acme inc", usd(4_250), s.clock.now(), 30).await.expect("now").is_empty());
    assert_invalid(store.find_duplicates(&acme, "acme inc", usd(4_250), day, 31).await, "tolerance_days");
    assert_invalid(store.find_duplicates(&acme, "acme inc", usd(4_250), day, -1).await, "tolerance_days");
    assert_invalid(store.find_duplicates(&acme, "?!", usd(4_250), day, 3).await, "vendor_name");
    assert_invalid(store.find_duplicates(&acme, "acme inc", usd(-4_250), day, 3).await, "total");
    store.update_status(&acme, "e-2", ExpenseStatus::Duplicate, None).await.expect("mark duplicate");
}

pub async fn totals_match_as_integers_not_as_text(s: &Subject) {
    let store = s.store::<Expenses>();
    let acme = tenant("acme");
    let day = s.clock.now();
    let (dollars, yen) = (currency("USD"), currency("JPY"));
    store
        .save(&Expense::new(acme.clone(), "usd", "Deli", Money::parse("42.50", dollars).expect("42.50"), "meals", day))
        .await
        .expect("save");
    store.save(&Expense::new(acme.clone(), "jpy", "Deli", Money::parse("4250", yen).expect("4250"), "meals", day)).await.expect("save");
    store.save(&Expense::new(acme.clone(), "big", "Deli", Money::parse("425", dollars).expect("425"), "meals", day)).await.expect("save");
    // The original compared amounts as text: "42.5" and "42.50" were different totals.
    for text in ["42.5", "42.50", "0042.50"] {
        let found = store.find_duplicates(&acme, "deli", Money::parse(text, dollars).expect("amount"), day, 0).await.expect("dups");
        assert_eq!(ids(&found), ["usd"], "{text} USD is the same total as 42.50 USD, and not 4250 JPY nor 425.00 USD");
    }
    let found = store.find_duplicates(&acme, "DELI", Money::parse("4250", yen).expect("amount"), day, 0).await.expect("dups");
    assert_eq!(ids(&found), ["jpy"], "the same minor units in another currency are another total");
    let stored = store.get(&acme, "usd").await.expect("get").expect("present");
    assert_eq!((stored.total.minor(), stored.total.to_decimal(), stored.total.currency()), (4_250, "42.50".to_owned(), dollars));
    assert!(Money::parse("42.505", dollars).is_err(), "more decimals than the currency has is refused, never rounded");
}

/// One way to make a valid expense invalid.
type Spoil = Box<dyn Fn(&mut Expense)>;

pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = s.store::<Expenses>();
    let acme = tenant("acme");
    let day = s.clock.now();
    let base = || Expense::new(acme.clone(), "bad", "Bistro", usd(1_000), "meals", day);
    let cases: Vec<(&str, Spoil)> = vec![
        ("amount", Box::new(|e| e.amount = usd(-1))),
        ("tax", Box::new(|e| e.tax = usd(-1))),
        ("tip", Box::new(|e| e.tip = usd(-1))),
        ("tax", Box::new(|e| e.tax = eur(10))),
        ("tip", Box::new(|e| e.tip = eur(10))),
        ("total", Box::new(|e| (e.amount, e.tax) = (usd(MAX_MINOR), usd(MAX_MINOR)))),
        ("confidence_milli", Box::new(|e| e.confidence_milli = 1_001)),
        ("line_items", Box::new(|e| e.line_items = vec![LineItem { description: "wine".into(), amount: eur(500) }])),
        ("line_items", Box::new(|e| e.line_items = vec![LineItem { description: "wine\u{0}".into(), amount: usd(500) }])),
        ("vendor_name", Box::new(|e| e.vendor_name = String::new())),
        ("vendor_name", Box::new(|e| e.vendor_name = "...".into())),
        ("vendor_name", Box::new(|e| e.vendor_name = "Bistro\u{0}".into())),
        ("category", Box::new(|e| e.category = String::new())),
        ("employee_id", Box::new(|e| e.employee_id = Some("ada\nbob".into()))),
        ("project_id", Box::new(|e| e.project_id = Some("x".repeat(300)))),
        ("tags", Box::new(|e| e.tags = vec!["ok".into(), "not\u{7}ok".into()])),
        ("notes", Box::new(|e| e.notes = Some("bell\u{7}".into()))),
        ("description", Box::new(|e| e.description = Some("d".repeat(5_000)))),
        ("receipt_text", Box::new(|e| e.receipt_text = Some("r".repeat(70_000)))),
        ("expense_id", Box::new(|e| e.id = String::new())),
    ];
    for (field, spoil) in &cases {
        let mut expense = base();
        spoil(&mut expense);
        assert_invalid(store.save(&expense).await, field);
        assert_eq!(store.get(&acme, "bad").await.expect("get"), None, "{field}: nothing written");
    }
    // A money amount beyond ±(2^53 − 1) never even decodes: a stored or sent one is refused.
    let json = serde_json::to_string(&base()).expect("encode").replace("\"minor\":1000", &format!("\"minor\":{}", i64::MAX));
    assert!(serde_json::from_str::<Expense>(&json).is_err(), "an amount near the i64 limit is refused, never wrapped");

    // Free text keeps its lines; whatever status or sync state a caller sends, a new expense is
    // pending and unsynced.
    let mut good = base();
    good.receipt_text = Some("BISTRO\n1 x soup\t8.00\r\nTOTAL 10.00".into());
    (good.status, good.approved_by, good.synced) = (ExpenseStatus::Synced, Some("me".into()), true);
    let good = store.save(&good).await.expect("save");
    assert_eq!(
        (good.status, good.approved_by.as_deref(), good.synced, good.qbo_expense_id.as_deref()),
        (ExpenseStatus::Pending, None, false, None)
    );
    assert!(is_conflict(&store.save(&base()).await), "an existing id is a Conflict, never a replace");

    // A refused correction leaves the record as it was.
    let mut spoiled = good.clone();
    spoiled.tip = usd(-5);
    assert_invalid(store.update(&spoiled).await, "tip");
    assert_eq!(store.get(&acme, "bad").await.expect("get").expect("present"), good, "unchanged");

    assert_invalid(store.update_status(&acme, "bad", ExpenseStatus::Approved, None).await, "approved_by");
    assert_invalid(store.update_status(&acme, "bad", ExpenseStatus::Approved, Some("")).await, "approved_by");
    assert_invalid(store.mark_synced(&acme, "bad", "").await, "qbo_expense_id");
    assert_invalid(store.get_statistics(&acme, day, day - TimeDelta::days(1)).await, "from");
    assert_invalid(store.get_statistics(&acme, DateTime::<Utc>::MIN_UTC, day).await, "from");
    assert_invalid(store.list_by_employee(&acme, "", &PageRequest::first(10)).await, "employee_id");
    assert_invalid(store.list_by_category(&acme, "a\u{0}", &PageRequest::first(10)).await, "category");
    assert_eq!(store.get(&acme, "bad").await.expect("get").expect("present"), good, "still unchanged");
}

pub async fn tenants_never_see_each_others_expenses(s: &Subject) {
    let store = s.store::<Expenses>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let day = s.clock.now();
    let mut mine = Expense::new(acme.clone(), "shared-id", "Taxi Co", usd(2_500), "travel", day);
    mine.employee_id = Some("ada".into());
    store.save(&mine).await.expect("save");
    store.save(&Expense::new(acme.clone(), "acme-only", "Taxi Co", usd(2_500), "travel", day)).await.expect("save");
    let mut theirs = Expense::new(globex.clone(), "shared-id", "Taxi Co", usd(2_500), "travel", day);
    theirs.employee_id = Some("ada".into());
    store.save(&theirs).await.expect("the same id in another tenant is another expense");

    assert_eq!(ids(&store.find_duplicates(&globex, "taxi co", usd(2_500), day, 1).await.expect("dups")), ["shared-id"]);
    assert_eq!(store.find_duplicates(&acme, "taxi co", usd(2_500), day, 1).await.expect("dups").len(), 2);
    assert_eq!(ids(&store.list_by_employee(&globex, "ada", &PageRequest::first(10)).await.expect("list").items), ["shared-id"]);
    assert_eq!(store.list_all(&globex, &PageRequest::first(10)).await.expect("list").items.len(), 1);
    assert_eq!(store.get_statistics(&globex, day, day).await.expect("stats").count, 1);

    assert_eq!(store.get(&globex, "acme-only").await.expect("get"), None);
    assert!(matches!(
        store.update_status(&globex, "acme-only", ExpenseStatus::Approved, Some("x")).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(store.mark_synced(&globex, "acme-only", "qbo-1").await, Err(StorageError::NotFound { .. })));
    assert!(!store.delete(&globex, "acme-only").await.expect("delete"));
    store.update_status(&globex, "shared-id", ExpenseStatus::Rejected, None).await.expect("reject theirs");
    assert_eq!(store.get(&acme, "shared-id").await.expect("get").expect("present").status, ExpenseStatus::Pending, "mine untouched");
    let mut correction = store.get(&globex, "shared-id").await.expect("get").expect("present");
    correction.tenant = acme.clone();
    correction.notes = Some("moved?".into());
    assert!(store.update(&correction).await.is_err(), "a correction is at the version read, in the record's own tenant");
    assert_eq!(store.get(&acme, "shared-id").await.expect("get").expect("present").notes, None);
    assert!(store.delete(&globex, "shared-id").await.expect("delete"));
    assert!(store.get(&acme, "shared-id").await.expect("get").is_some(), "deleting theirs leaves mine");
}

/// An expense of `tenant` brought to `status` through the store's own moves.
async fn expense_in(store: &Expenses, tenant: &TenantId, id: &str, status: ExpenseStatus, day: DateTime<Utc>) -> Expense {
    store.save(&Expense::new(tenant.clone(), id, "Hotel", usd(15_000), "lodging", day)).await.expect("save");
    let decision = if status == ExpenseStatus::Synced { ExpenseStatus::Approved } else { status };
    if decision != ExpenseStatus::Pending {
        store.update_status(tenant, id, decision, Some("cfo")).await.expect("decide");
    }
    if status == ExpenseStatus::Synced {
        store.mark_synced(tenant, id, "qbo-1").await.expect("sync");
    }
    store.get(tenant, id).await.expect("get").expect("present")
}

pub async fn every_move_the_status_machine_forbids_is_a_conflict_and_changes_nothing(s: &Subject) {
    use ExpenseStatus::{Approved, Duplicate, Pending, Rejected, Synced};
    let store = s.store::<Expenses>();
    let acme = tenant("acme");
    let day = s.clock.now();
    let allowed = [(Pending, Approved), (Pending, Rejected), (Pending, Duplicate)];
    for from in ExpenseStatus::ALL {
        for to in ExpenseStatus::ALL {
            let id = format!("{}-to-{}", from.as_str(), to.as_str());
            let before = expense_in(&store, &acme, &id, from, day).await;
            assert_eq!(from.may_become(to), allowed.contains(&(from, to)), "{id}");
            let result = store.update_status(&acme, &id, to, Some("cfo")).await;
            if allowed.contains(&(from, to)) {
                let after = result.expect(&id);
                assert_eq!(after.status, to, "{id}");
                assert_eq!(after.approved_by.as_deref(), (to == Approved).then_some("cfo"), "{id}: approved_by only on approval");
            } else {
                assert!(is_conflict(&result), "{id}: {result:?}");
                assert_eq!(store.get(&acme, &id).await.expect("get").expect("present"), before, "{id}: nothing changed");
            }
        }
        let id = format!("{}-synced", from.as_str());
        let before = expense_in(&store, &acme, &id, from, day).await;
        let result = store.mark_synced(&acme, &id, "qbo-2").await;
        if from == Approved {
            let after = result.expect(&id);
            assert_eq!(
                (after.status, after.synced, after.qbo_expense_id.as_deref(), after.approved_by.as_deref()),
                (Synced, true, Some("qbo-2"), Some("cfo"))
            );
        } else {
            assert!(is_conflict(&result), "{id}: only an approved expense is synced, once: {result:?}");
            assert_eq!(store.get(&acme, &id).await.expect("get").expect("present"), before, "{id}: nothing changed");
        }
    }
    assert!(matches!(store.update_status(&acme, "missing", Approved, Some("cfo")).await, Err(StorageError::NotFound { .. })));
}

pub async fn expenses_move_as_their_status_allows_and_sync_once(s: &Subject) {
    let store = Arc::new(s.store::<Expenses>());
    let acme = tenant("acme");
    for i in 0..4 {
        let mut e = Expense::new(acme.clone(), format!("e-{i}"), "Taxi", usd(1_000 + i), "travel", s.clock.now());
        e.employee_id = Some(if i < 2 { "ada".into() } else { "bob".into() });
        store.save(&e).await.expect("save");
        s.clock.advance(TimeDelta::hours(1));
    }
    // 16 concurrent decisions on one expense, half approving, half rejecting: one wins.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, acme) = (Arc::clone(&store), acme.clone());
            let status = if i % 2 == 0 { ExpenseStatus::Approved } else { ExpenseStatus::Rejected };
            tokio::spawn(async move { store.update_status(&acme, "e-0", status, Some("cfo")).await.map(|e| (status, e)) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("join") {
            Ok(won) => winners.push(won),
            Err(StorageError::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(winners.len(), 1, "one decision");
    let decided = store.get(&acme, "e-0").await.expect("get").expect("present");
    assert_eq!(decided.status, winners[0].0, "the stored decision is the winner's");
    assert_eq!(decided.version, 2, "one write");

    let approved = store.update_status(&acme, "e-1", ExpenseStatus::Approved, Some("cfo")).await.expect("approve");
    assert_eq!(approved.approved_by.as_deref(), Some("cfo"));
    store.update_status(&acme, "e-2", ExpenseStatus::Approved, Some("cfo")).await.expect("approve");
    let pending_sync = store.list_pending_sync(&acme, &PageRequest::first(10)).await.expect("pending sync");
    assert!(pending_sync.items.iter().all(|e| e.status == ExpenseStatus::Approved && !e.synced));
    assert_eq!(
        pending_sync.items.iter().filter(|e| e.id != "e-0").map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e-1", "e-2"],
        "oldest first"
    );
    let synced = store.mark_synced(&acme, "e-1", "qbo-77").await.expect("sync");
    assert_eq!(
        (synced.status, synced.synced, synced.synced_at, synced.qbo_expense_id.as_deref()),
        (ExpenseStatus::Synced, true, Some(s.clock.now()), Some("qbo-77"))
    );
    assert!(is_conflict(&store.mark_synced(&acme, "e-1", "qbo-78").await), "synced once");
    assert!(is_conflict(&store.mark_synced(&acme, "e-3", "qbo-79").await), "only an approved expense");
    assert!(is_conflict(&store.update_status(&acme, "e-1", ExpenseStatus::Pending, None).await));
    assert!(!store.list_pending_sync(&acme, &PageRequest::first(10)).await.expect("list").items.iter().any(|e| e.id == "e-1"));

    // A correction keeps the approval and the sync (the original's column and body drifted apart).
    let mut corrected = store.get(&acme, "e-1").await.expect("get").expect("present");
    corrected.notes = Some("split with team".into());
    (corrected.approved_by, corrected.synced, corrected.status) = (None, false, ExpenseStatus::Rejected);
    let corrected = store.update(&corrected).await.expect("correct");
    assert_eq!((corrected.approved_by.as_deref(), corrected.synced, corrected.status), (Some("cfo"), true, ExpenseStatus::Synced));
    let reread = store.get(&acme, "e-1").await.expect("get").expect("present");
    assert_eq!((reread.approved_by.as_deref(), reread.notes.as_deref()), (Some("cfo"), Some("split with team")));
    assert_eq!(ids(&store.list_by_status(&acme, ExpenseStatus::Synced, &PageRequest::first(10)).await.expect("list").items), ["e-1"]);

    let of_bob = store
        .list(&acme, &ExpenseFilter { employee_id: Some("bob".into()), ..ExpenseFilter::default() }, &PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(ids(&of_bob.items), ["e-3", "e-2"], "newest first");
    assert!(store.delete(&acme, "e-3").await.expect("delete"));
    assert!(!store.delete(&acme, "e-3").await.expect("delete again"));
}

pub async fn corrections_apply_at_the_version_read(s: &Subject) {
    let store = s.store::<Expenses>();
    let acme = tenant("acme");
    let day = s.clock.now() - TimeDelta::days(3);
    let first = store.save(&Expense::new(acme.clone(), "e-1", "Old Vendor", usd(1_000), "meals", day)).await.expect("save");
    let mut fix = first.clone();
    (fix.vendor_name, fix.amount, fix.tax) = ("New Vendor Ltd.".into(), usd(2_000), usd(160));
    let fixed = store.update(&fix).await.expect("correct");
    assert_eq!((fixed.total, fixed.version), (usd(2_160), 2), "the total is recomputed from its parts");
    assert!(store.find_duplicates(&acme, "old vendor", usd(1_000), day, 0).await.expect("old").is_empty(), "re-indexed");
    assert_eq!(ids(&store.find_duplicates(&acme, "new vendor ltd", usd(2_160), day, 0).await.expect("new")), ["e-1"]);

    let mut stale = first.clone();
    stale.notes = Some("written over a newer version".into());
    assert!(matches!(store.update(&stale).await, Err(StorageError::VersionMismatch { .. })), "no lost update");
    store.update_status(&acme, "e-1", ExpenseStatus::Approved, Some("cfo")).await.expect("approve");
    let mut behind = fixed.clone();
    behind.description = Some("read before the approval".into());
    assert!(matches!(store.update(&behind).await, Err(StorageError::VersionMismatch { .. })), "an approval in between wins");
    let now = store.get(&acme, "e-1").await.expect("get").expect("present");
    assert_eq!((now.status, now.description, now.total), (ExpenseStatus::Approved, None, usd(2_160)));
    let missing = Expense::new(acme.clone(), "nope", "Vendor", usd(1), "meals", day);
    assert!(matches!(store.update(&missing).await, Err(StorageError::NotFound { .. })));
}

pub async fn lists_page_newest_first_by_status_employee_and_category(s: &Subject) {
    let store = s.store::<Expenses>();
    let acme = tenant("acme");
    let day = s.clock.now() - TimeDelta::days(10);
    // Two share a date, so ties are ordered by id (descending, as the dates are).
    let plan = [
        ("a", 0, "ada", "meals"),
        ("b", 3, "bob", "travel"),
        ("c", 3, "ada", "travel"),
        ("d", 1, "bob", "meals"),
        ("e", 7, "ada", "meals"),
    ];
    for (id, offset, employee, category) in plan {
        let mut e = Expense::new(acme.clone(), id, "Vendor", usd(100), category, day + TimeDelta::days(offset));
        e.employee_id = Some(employee.into());
        store.save(&e).await.expect("save");
    }
    store.update_status(&acme, "d", ExpenseStatus::Approved, Some("cfo")).await.expect("approve");
    store.update_status(&acme, "a", ExpenseStatus::Approved, Some("cfo")).await.expect("approve");
    store.update_status(&acme, "c", ExpenseStatus::Rejected, None).await.expect("reject");

    let all = collect_all(2, |page| {
        let store = store.clone();
        let acme = acme.clone();
        async move { store.list_all(&acme, &page).await }
    })
    .await;
    assert_eq!(ids(&all), ["e", "c", "b", "d", "a"], "newest expense date first, pages of 2");
    let by = |f: ExpenseFilter| {
        let (store, acme) = (store.clone(), acme.clone());
        async move {
            collect_all(1, |page| {
                let (store, acme, f) = (store.clone(), acme.clone(), f.clone());
                async move { store.list(&acme, &f, &page).await }
            })
            .await
        }
    };
    let ada = by(ExpenseFilter { employee_id: Some("ada".into()), ..ExpenseFilter::default() }).await;
    assert_eq!(ids(&ada), ["e", "c", "a"]);
    let travel = store.list_by_category(&acme, "travel", &PageRequest::first(10)).await.expect("list");
    assert_eq!(ids(&travel.items), ["c", "b"]);
    let approved = store.list_by_status(&acme, ExpenseStatus::Approved, &PageRequest::first(10)).await.expect("list");
    assert_eq!(ids(&approved.items), ["d", "a"]);
    let ada_meals =
        by(ExpenseFilter { employee_id: Some("ada".into()), category: Some("meals".into()), status: Some(ExpenseStatus::Pending) }).await;
    assert_eq!(ids(&ada_meals), ["e"]);
    let to_sync = collect_all(1, |page| {
        let (store, acme) = (store.clone(), acme.clone());
        async move { store.list_pending_sync(&acme, &page).await }
    })
    .await;
    assert_eq!(ids(&to_sync), ["a", "d"], "oldest first");
}

/// A small deterministic generator (SplitMix64): the seed in a failure message reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Usually cents, sometimes large: sums a float would round.
    fn minor(&mut self) -> i64 {
        let bound = if self.below(4) == 0 { 1_000_000_000_000 } else { 100_000 };
        i64::try_from(self.below(bound)).expect("small")
    }
}

pub async fn random_expenses_sum_exactly_per_currency(s: &Subject) {
    let store = s.store::<Expenses>();
    let acme = tenant("acme");
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7);
    let mut rng = Rng(seed);
    let codes = ["USD", "EUR", "JPY", "KWD"];
    let (categories, day) = (["meals", "travel", "office"], s.clock.now());
    let mut total: BTreeMap<&str, i128> = BTreeMap::new();
    let mut by_category: BTreeMap<(&str, &str), i128> = BTreeMap::new();
    let mut by_status: BTreeMap<(ExpenseStatus, &str), i128> = BTreeMap::new();
    for i in 0..40 {
        let (code, category) = (codes[rng.below(4) as usize], categories[rng.below(3) as usize]);
        let money = |minor: i64| Money::from_minor(minor, currency(code)).expect("amount");
        let mut e = Expense::new(acme.clone(), format!("r-{i}"), format!("Vendor {}", rng.below(3)), money(rng.minor()), category, day);
        (e.tax, e.tip) = (money(rng.minor()), money(rng.minor()));
        let sum = i128::from(e.amount.minor()) + i128::from(e.tax.minor()) + i128::from(e.tip.minor());
        let saved = store.save(&e).await.expect("save");
        assert_eq!(i128::from(saved.total.minor()), sum, "seed {seed}: {e:?}");
        let status = [ExpenseStatus::Pending, ExpenseStatus::Approved, ExpenseStatus::Rejected][rng.below(3) as usize];
        if status != ExpenseStatus::Pending {
            store.update_status(&acme, &e.id, status, Some("cfo")).await.expect("decide");
        }
        *total.entry(code).or_default() += sum;
        *by_category.entry((category, code)).or_default() += sum;
        *by_status.entry((status, code)).or_default() += sum;
        let dups = store.find_duplicates(&acme, &e.vendor_name.to_uppercase(), saved.total, day, 0).await.expect("dups");
        assert!(dups.iter().any(|d| d.id == e.id), "seed {seed}: an expense is found by its own vendor and total");
    }
    let stats = store.get_statistics(&acme, day, day).await.expect("stats");
    assert_eq!(stats.count, 40, "seed {seed}");
    let as_map =
        |totals: &storage_core::Totals| totals.iter().map(|m| (m.currency().code(), i128::from(m.minor()))).collect::<BTreeMap<_, _>>();
    assert_eq!(as_map(&stats.total), total, "seed {seed}: totals per currency, exact");
    for ((category, code), sum) in &by_category {
        assert_eq!(i128::from(stats.by_category[*category].get(currency(code)).minor()), *sum, "seed {seed}: {category} {code}");
    }
    for ((status, code), sum) in &by_status {
        assert_eq!(i128::from(stats.by_status[status].get(currency(code)).minor()), *sum, "seed {seed}: {status:?} {code}");
    }
    assert_eq!(stats.count_by_status.values().sum::<u64>(), 40);
}
