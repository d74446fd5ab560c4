//! Conformance cases of `InvoiceStore` (accounts payable) and of the payment ledger.

use crate::{Subject, assert_invalid, tenant};
use chrono::TimeDelta;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::Arc;
use storage_core::{
    Clock, Currency, EntryKind, Invoice, InvoiceStatus, InvoiceStore, Invoices, MAX_MINOR, Money, NewEntry, PageRequest, StorageError,
    TenantId,
};

pub(crate) fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("USD").expect("usd")).expect("amount")
}

fn invoice(s: &Subject, t: &TenantId, id: &str, vendor: &str, number: &str, subtotal: i64) -> Invoice {
    Invoice::new(t.clone(), id, vendor, number, usd(subtotal), usd(subtotal / 10), s.clock.now())
}

/// A saved invoice, approved and ready for payment.
async fn approved(s: &Subject, store: &Invoices, t: &TenantId, id: &str, subtotal: i64) -> Invoice {
    store.save(&invoice(s, t, id, "v-1", id, subtotal)).await.expect("save");
    store.update_status(t, id, InvoiceStatus::PendingApproval, None, None).await.expect("submit");
    store.update_status(t, id, InvoiceStatus::Approved, Some("cfo"), None).await.expect("approve")
}

fn conflict<T: std::fmt::Debug>(result: storage_core::Result<T>, what: &str) {
    assert!(matches!(result, Err(StorageError::Conflict { .. })), "{what}: expected Conflict, got {result:?}");
}

pub async fn an_invoice_moves_through_approval_as_its_status_allows(s: &Subject) {
    let store = s.store::<Invoices>();
    let (t, globex) = (tenant("acme"), tenant("globex"));
    let saved = store.save(&invoice(s, &t, "inv-1", "v-1", "A-100", 10_000)).await.expect("save");
    assert_eq!((saved.status, saved.balance.total, saved.balance.due), (InvoiceStatus::Draft, usd(11_000), usd(11_000)));
    conflict(store.save(&invoice(s, &t, "inv-1", "v-1", "A-100", 10_000)).await, "an id once");
    assert_eq!(store.get(&globex, "inv-1").await.expect("get"), None, "tenants are apart");
    conflict(store.record_payment(&t, "inv-1", &NewEntry::payment("p-1", usd(100), s.clock.now())).await, "a draft takes no payment");
    conflict(store.update_status(&t, "inv-1", InvoiceStatus::Approved, Some("cfo"), None).await, "approval first");
    assert_invalid(store.update_status(&t, "inv-1", InvoiceStatus::Rejected, None, None).await, "reason");
    store.update_status(&t, "inv-1", InvoiceStatus::PendingApproval, None, None).await.expect("submit");
    assert_invalid(store.update_status(&t, "inv-1", InvoiceStatus::Approved, None, None).await, "approved_by");
    let rejected = store.update_status(&t, "inv-1", InvoiceStatus::Rejected, None, Some("wrong PO")).await.expect("reject");
    assert_eq!(rejected.rejection_reason.as_deref(), Some("wrong PO"));
    conflict(
        store.record_payment(&t, "inv-1", &NewEntry::payment("p-1", usd(100), s.clock.now())).await,
        "a rejected invoice takes no payment",
    );
    let mut corrected = rejected.clone();
    corrected.subtotal = usd(9_000);
    corrected.tax = usd(900);
    let corrected = store.update(&corrected).await.expect("a rejected invoice is corrected");
    assert_eq!((corrected.balance.total, corrected.status), (usd(9_900), InvoiceStatus::Rejected));
    assert_eq!(corrected.created_at, saved.created_at, "a correction keeps when the invoice was recorded");
    store.update_status(&t, "inv-1", InvoiceStatus::Draft, None, None).await.expect("back to draft");
    store.update_status(&t, "inv-1", InvoiceStatus::PendingApproval, None, None).await.expect("submit");
    let approved = store.update_status(&t, "inv-1", InvoiceStatus::Approved, Some("cfo"), None).await.expect("approve");
    assert_eq!(approved.approved_by.as_deref(), Some("cfo"));
    conflict(store.update(&approved).await, "an approved invoice is not corrected");
    conflict(store.delete(&t, "inv-1").await, "an approved invoice is kept");

    // Every move the table forbids, from every status, changes nothing.
    use InvoiceStatus::*;
    let all = [Draft, PendingApproval, Approved, Rejected, PartiallyPaid, Paid, Void];
    for from in [Draft, PendingApproval, Approved, Rejected] {
        for to in all {
            if from.may_become(to) {
                continue;
            }
            let id = format!("t-{}-{}", from.as_str(), to.as_str());
            store.save(&invoice(s, &t, &id, "v-2", &id, 100)).await.expect("save");
            let path: &[InvoiceStatus] = match from {
                Draft => &[],
                PendingApproval => &[PendingApproval],
                Approved => &[PendingApproval, Approved],
                _ => &[PendingApproval, Rejected],
            };
            for step in path {
                store.update_status(&t, &id, *step, Some("cfo"), Some("why")).await.expect("path");
            }
            let before = store.get(&t, &id).await.expect("get").expect("saved");
            conflict(store.update_status(&t, &id, to, Some("cfo"), Some("why")).await, &id);
            assert_eq!(store.get(&t, &id).await.expect("get"), Some(before), "{id}: unchanged");
        }
    }
    let mut no_approval = invoice(s, &t, "inv-2", "v-1", "A-101", 100);
    no_approval.requires_approval = false;
    store.save(&no_approval).await.expect("save");
    store.update_status(&t, "inv-2", InvoiceStatus::Approved, Some("clerk"), None).await.expect("no approval needed");
    store.save(&invoice(s, &t, "inv-3", "v-1", "A-102", 100)).await.expect("save");
    assert!(store.delete(&t, "inv-3").await.expect("a draft goes"));
    assert!(!store.delete(&t, "inv-3").await.expect("once"));

    let mut bad = invoice(s, &t, "inv-4", "v-1", "A-103", 100);
    bad.tax = Money::from_minor(5, Currency::from_code("EUR").expect("eur")).expect("amount");
    assert_invalid(store.save(&bad).await, "amount");
    let mut bad = invoice(s, &t, "inv-4", "v-1", "A-103", 100);
    bad.subtotal = usd(-100);
    assert_invalid(store.save(&bad).await, "subtotal");
    let mut bad = invoice(s, &t, "inv-4", "v-1", "A-103", 100);
    bad.subtotal = usd(MAX_MINOR);
    assert_invalid(store.save(&bad).await, "amount");
    assert_eq!(store.get(&t, "inv-4").await.expect("get"), None, "nothing partial");
}

/// 32 concurrent payments under 8 idempotency keys: 8 counted, the balance exact to the cent.
pub async fn concurrent_payments_with_repeated_keys_are_counted_once(s: &Subject) {
    let store = Arc::new(s.store::<Invoices>());
    let t = tenant("acme");
    approved(s, &store, &t, "inv-1", 9_091).await; // 90.91 + 9.09 tax = 100.00
    let now = s.clock.now();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (store, t) = (Arc::clone(&store), t.clone());
        let entry = NewEntry::payment(format!("pay-{}", i % 8), usd(1_000 + i64::from(i % 8)), now);
        tasks.push(tokio::spawn(async move { store.record_payment(&t, "inv-1", &entry).await }));
    }
    let mut applied = 0;
    for task in tasks {
        if task.await.expect("join").expect("pay").applied {
            applied += 1;
        }
    }
    assert_eq!(applied, 8, "each key counted once");
    let invoice = store.get(&t, "inv-1").await.expect("get").expect("saved");
    let paid: i64 = (0..8).map(|k| 1_000 + k).sum();
    assert_eq!((invoice.balance.paid, invoice.balance.due), (usd(paid), usd(10_000 - paid)));
    assert_eq!(invoice.status, InvoiceStatus::PartiallyPaid);
    let entries = store.payments(&t, "inv-1").await.expect("ledger");
    assert_eq!(entries.len(), 8);
    assert_eq!(entries.iter().map(|e| e.amount.minor()).sum::<i64>(), paid, "the ledger adds up to the balance");

    let rest = 10_000 - paid;
    conflict(store.record_payment(&t, "inv-1", &NewEntry::payment("over", usd(rest + 1), now)).await, "an overpayment");
    conflict(store.record_payment(&t, "inv-1", &NewEntry::payment("pay-0", usd(5), now)).await, "a key reused for another amount");
    assert_invalid(store.record_payment(&t, "inv-1", &NewEntry::payment("neg", usd(-5), now)).await, "amount");
    assert_invalid(store.record_payment(&t, "inv-1", &NewEntry::payment("zero", usd(0), now)).await, "amount");
    let eur = Money::from_minor(5, Currency::from_code("EUR").expect("eur")).expect("amount");
    assert_invalid(store.record_payment(&t, "inv-1", &NewEntry::payment("eur", eur, now)).await, "amount");
    conflict(
        store.record_payment(&t, "inv-1", &NewEntry { kind: EntryKind::WriteOff, ..NewEntry::payment("wo", usd(1), now) }).await,
        "payables are not written off",
    );
    let paid_off = store.record_payment(&t, "inv-1", &NewEntry::payment("final", usd(rest), now)).await.expect("pay the rest");
    assert_eq!((paid_off.bill.status, paid_off.bill.balance.due), (InvoiceStatus::Paid, usd(0)));
    let replay = store.record_payment(&t, "inv-1", &NewEntry::payment("pay-3", usd(1_003), now)).await.expect("replay");
    assert!(!replay.applied, "a replayed key answers what it did, even on a paid invoice");
    let refund = NewEntry { kind: EntryKind::Refund, ..NewEntry::payment("refund-1", usd(500), now) };
    let refunded = store.record_payment(&t, "inv-1", &refund).await.expect("refund");
    assert_eq!((refunded.bill.status, refunded.bill.balance.due), (InvoiceStatus::PartiallyPaid, usd(500)));
    assert!(matches!(
        store.record_payment(&t, "inv-missing", &NewEntry::payment("p", usd(1), now)).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        store.record_payment(&tenant("globex"), "inv-1", &NewEntry::payment("p", usd(1), now)).await,
        Err(StorageError::NotFound { .. })
    ));
}

pub async fn duplicates_schedules_and_overdue_invoices_are_found(s: &Subject) {
    let store = s.store::<Invoices>();
    let t = tenant("acme");
    for (i, (vendor, number, subtotal)) in
        [("v-1", "A-1", 1_000), ("v-1", "A-2", 2_000), ("v-2", "A-1", 1_000), ("v-1", "A-3", 1_000)].iter().enumerate()
    {
        let mut inv = invoice(s, &t, &format!("inv-{i}"), vendor, number, *subtotal);
        inv.po_number = Some(if i < 2 { "po-1".into() } else { "po-2".into() });
        inv.due_date = Some(s.clock.now() + TimeDelta::days(i as i64 * 10 + 1));
        store.save(&inv).await.expect("save");
        s.clock.advance(TimeDelta::hours(1));
    }
    let dupes = store.find_duplicates(&t, "v-1", "A-1", usd(1_100)).await.expect("duplicates");
    assert_eq!(dupes.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["inv-0", "inv-3"], "same number, or the same total exactly");
    let eur = Money::from_minor(1_100, Currency::from_code("EUR").expect("eur")).expect("amount");
    let found = store.find_duplicates(&t, "v-1", "Z-9", eur).await.expect("duplicates");
    assert!(found.is_empty(), "another currency is not the same total: {found:?}");
    assert_eq!(store.get_by_po(&t, "po-1").await.expect("po").len(), 2);
    let newest = store.list(&t, None, Some("v-1"), &PageRequest::first(10)).await.expect("list");
    assert_eq!(newest.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["inv-3", "inv-1", "inv-0"]);

    for id in ["inv-0", "inv-1", "inv-2"] {
        store.update_status(&t, id, InvoiceStatus::PendingApproval, None, None).await.expect("submit");
    }
    let pending = store.list_pending_approval(&t, &PageRequest::first(10)).await.expect("pending");
    assert_eq!(pending.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["inv-0", "inv-1", "inv-2"], "oldest first");
    for id in ["inv-0", "inv-1"] {
        store.update_status(&t, id, InvoiceStatus::Approved, Some("cfo"), None).await.expect("approve");
    }
    conflict(store.schedule_payment(&t, "inv-2", s.clock.now()).await, "only a payable invoice is scheduled");
    let day = s.clock.now() + TimeDelta::days(5);
    store.schedule_payment(&t, "inv-1", day).await.expect("schedule");
    store.schedule_payment(&t, "inv-0", day + TimeDelta::days(1)).await.expect("schedule");
    let scheduled = store.list_scheduled_payments(&t, day, day + TimeDelta::days(1), &PageRequest::first(10)).await.expect("scheduled");
    assert_eq!(scheduled.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["inv-1", "inv-0"], "soonest first, ends included");
    assert_eq!(
        store
            .list_scheduled_payments(&t, day + TimeDelta::days(2), day + TimeDelta::days(3), &PageRequest::first(10))
            .await
            .expect("none")
            .items
            .len(),
        0
    );

    assert_eq!(store.list_overdue(&t, &PageRequest::first(10)).await.expect("overdue").items.len(), 0);
    s.clock.advance(TimeDelta::days(15));
    let overdue = store.list_overdue(&t, &PageRequest::first(10)).await.expect("overdue");
    assert_eq!(overdue.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["inv-0", "inv-1"], "payable and past due");
    store.record_payment(&t, "inv-0", &NewEntry::payment("all", usd(1_100), s.clock.now())).await.expect("pay");
    let overdue = store.list_overdue(&t, &PageRequest::first(10)).await.expect("overdue");
    assert_eq!(overdue.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["inv-1"], "a paid invoice is not overdue");
}

/// Any sequence of payments and refunds, of any amount (near the limits too), keeps
/// `due = total − paid` and `paid ≥ 0`: an entry the balance cannot take is refused and changes
/// nothing, an amount beyond the limits never becomes `Money`.
pub async fn payments_and_refunds_keep_the_balance_exact(s: &Subject) {
    let store = Arc::new(s.store::<Invoices>());
    let handle = tokio::runtime::Handle::current();
    let clock = s.clock.clone();
    let case = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let ops = proptest::collection::vec((any::<bool>(), prop_oneof![1i64..=20_000, (MAX_MINOR - 5)..=MAX_MINOR, Just(i64::MAX)]), 1..12);
    tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config { cases: 12, failure_persistence: None, ..Config::default() });
        runner
            .run(&(1i64..=50_000, ops), |(subtotal, ops)| {
                let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let t = TenantId::new(format!("ledger-{n}")).expect("tenant");
                handle.block_on(async {
                    let now = clock.now();
                    store.save(&Invoice::new(t.clone(), "inv", "v", "n", usd(subtotal), usd(0), now)).await.expect("save");
                    store.update_status(&t, "inv", InvoiceStatus::PendingApproval, None, None).await.expect("submit");
                    store.update_status(&t, "inv", InvoiceStatus::Approved, Some("cfo"), None).await.expect("approve");
                    let mut paid = 0i64;
                    for (i, (refund, amount)) in ops.into_iter().enumerate() {
                        let Ok(amount) = Money::from_minor(amount, Currency::from_code("USD").expect("usd")) else {
                            assert!(amount > MAX_MINOR, "only amounts beyond the limit are refused as money");
                            continue;
                        };
                        let kind = if refund { EntryKind::Refund } else { EntryKind::Payment };
                        let entry = NewEntry { kind, ..NewEntry::payment(format!("k{i}"), amount, now) };
                        let fits = if refund { amount.minor() <= paid } else { amount.minor() <= subtotal - paid };
                        let outcome = store.record_payment(&t, "inv", &entry).await;
                        match (fits, outcome) {
                            (true, Ok(posted)) => {
                                paid += if refund { -amount.minor() } else { amount.minor() };
                                assert!(posted.applied);
                            }
                            (false, Err(StorageError::Conflict { .. })) => {}
                            (fits, outcome) => panic!("{kind:?} of {amount} with {paid} paid of {subtotal}: fits {fits}, got {outcome:?}"),
                        }
                        let invoice = store.get(&t, "inv").await.expect("get").expect("saved");
                        assert_eq!((invoice.balance.paid, invoice.balance.due), (usd(paid), usd(subtotal - paid)));
                    }
                });
                Ok(())
            })
            .expect("property");
    })
    .await
    .expect("runner");
}
