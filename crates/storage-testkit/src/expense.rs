//! Conformance cases of `ExpenseStore`.

use crate::invoice::usd;
use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{
    Clock, Currency, Expense, ExpenseFilter, ExpenseStatus, ExpenseStore, Expenses, MAX_MINOR, Money, PageRequest, StorageError,
};

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("EUR").expect("eur")).expect("amount")
}

pub async fn sums_are_exact_per_currency_and_never_mixed(s: &Subject) {
    let store = s.store::<Expenses>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let start = s.clock.now();
    // Ten expenses of 0.10: exactly 1.00, the sum a float would miss.
    for i in 0..10 {
        store.save(&Expense::new(acme.clone(), format!("dime-{i}"), "Coffee Cart", usd(10), "meals", start)).await.expect("save");
    }
    let mut dinner = Expense::new(acme.clone(), "dinner", "Bistro", usd(8_000), "meals", start);
    (dinner.tax, dinner.tip) = (usd(640), usd(1_200));
    let dinner = store.save(&dinner).await.expect("save");
    assert_eq!(dinner.total, usd(9_840), "total = amount + tax + tip, exactly");
    store.save(&Expense::new(acme.clone(), "train", "DB Bahn", eur(4_990), "travel", start)).await.expect("save");
    store.save(&Expense::new(globex.clone(), "other", "Bistro", usd(100), "meals", start)).await.expect("another tenant");
    store.update_status(&acme, "dinner", ExpenseStatus::Approved, Some("cfo")).await.expect("approve");
    let stats = store.get_statistics(&acme, start, start).await.expect("stats");
    assert_eq!(stats.count, 12);
    assert_eq!(stats.total.iter().collect::<Vec<_>>(), [eur(4_990), usd(9_940)], "one total per currency, never added together");
    assert_eq!(stats.by_category["meals"].get(usd(0).currency()), usd(9_940));
    assert_eq!(stats.by_category["travel"].get(eur(0).currency()), eur(4_990));
    assert_eq!(stats.by_status[&ExpenseStatus::Approved].get(usd(0).currency()), usd(9_840));
    assert_eq!(store.get_statistics(&acme, start + TimeDelta::days(1), start + TimeDelta::days(2)).await.expect("stats").count, 0);

    let mut mixed = Expense::new(acme.clone(), "mixed", "Bistro", usd(100), "meals", start);
    mixed.tip = eur(10);
    assert_invalid(store.save(&mixed).await, "amount");
    let mut negative = Expense::new(acme.clone(), "neg", "Bistro", usd(100), "meals", start);
    negative.tax = usd(-1);
    assert_invalid(store.save(&negative).await, "tax");
    let mut overflow = Expense::new(acme.clone(), "big", "Bistro", usd(MAX_MINOR), "meals", start);
    overflow.tip = usd(1);
    assert_invalid(store.save(&overflow).await, "amount");
    assert_invalid(store.save(&Expense::new(acme.clone(), "x", "!!!", usd(1), "meals", start)).await, "vendor_name");
    for id in ["mixed", "neg", "big", "x"] {
        assert_eq!(store.get(&acme, id).await.expect("get"), None, "{id}: nothing partial");
    }
    assert_eq!(store.get(&globex, "dinner").await.expect("get"), None, "tenants are apart");
}

pub async fn duplicates_are_found_by_vendor_total_and_a_window_around_the_date(s: &Subject) {
    let store = s.store::<Expenses>();
    let acme = tenant("acme");
    let day = s.clock.now() - TimeDelta::days(100);
    for (id, vendor, total, offset_days) in [
        ("e-1", "ACME, Inc.", usd(4_250), 0),
        ("e-2", "acme inc", usd(4_250), 2),
        ("e-3", "Acme Inc", usd(4_250), 5),
        ("e-4", "acme inc", usd(4_251), 1),
        ("e-5", "acme inc", eur(4_250), 1),
        ("e-6", "Other Co", usd(4_250), 0),
    ] {
        store.save(&Expense::new(acme.clone(), id, vendor, total, "office", day + TimeDelta::days(offset_days))).await.expect("save");
    }
    let found = store.find_duplicates(&acme, "Acme Inc.", usd(4_250), day + TimeDelta::days(1), 3).await.expect("duplicates");
    assert_eq!(
        found.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e-1", "e-2"],
        "same vendor once normalised, the exact total in the same currency, within the window around the date (not around now)"
    );
    assert_eq!(store.find_duplicates(&acme, "acme inc", usd(4_250), day, 30).await.expect("wide").len(), 3);
    assert_invalid(store.find_duplicates(&acme, "acme inc", usd(4_250), day, 31).await, "tolerance_days");
    store.update_status(&acme, "e-2", ExpenseStatus::Duplicate, None).await.expect("mark duplicate");
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
            tokio::spawn(async move { store.update_status(&acme, "e-0", status, Some("cfo")).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => won += 1,
            Err(StorageError::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let decided = store.get(&acme, "e-0").await.expect("get").expect("present");
    assert_eq!(won, 1, "one decision");
    assert!(matches!(decided.status, ExpenseStatus::Approved | ExpenseStatus::Rejected));

    assert_invalid(store.update_status(&acme, "e-1", ExpenseStatus::Approved, None).await, "approved_by");
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
    assert!(matches!(store.mark_synced(&acme, "e-1", "qbo-78").await, Err(StorageError::Conflict { .. })), "synced once");
    assert!(matches!(store.mark_synced(&acme, "e-3", "qbo-79").await, Err(StorageError::Conflict { .. })), "only an approved expense");
    assert!(matches!(store.update_status(&acme, "e-1", ExpenseStatus::Pending, None).await, Err(StorageError::Conflict { .. })));

    // A correction keeps the approval and the sync (the original's column and body drifted apart).
    let mut corrected = store.get(&acme, "e-1").await.expect("get").expect("present");
    corrected.notes = Some("split with team".into());
    corrected.approved_by = None;
    corrected.synced = false;
    let corrected = store.update(&corrected).await.expect("correct");
    assert_eq!((corrected.approved_by.as_deref(), corrected.synced, corrected.status), (Some("cfo"), true, ExpenseStatus::Synced));
    assert_eq!(store.get(&acme, "e-1").await.expect("get").expect("present").approved_by.as_deref(), Some("cfo"));

    let of_bob = store
        .list(&acme, &ExpenseFilter { employee_id: Some("bob".into()), ..ExpenseFilter::default() }, &PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(of_bob.items.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e-3", "e-2"], "newest first");
    assert!(store.delete(&acme, "e-3").await.expect("delete"));
}
