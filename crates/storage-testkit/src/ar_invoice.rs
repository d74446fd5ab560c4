//! Conformance cases of `ArInvoiceStore` (accounts receivable and customers).

use crate::invoice::usd;
use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::TimeDelta;
use std::sync::Arc;
use storage_core::{
    ArInvoice, ArInvoiceStore, ArInvoices, ArStatus, Clock, Currency, Customer, EntryKind, Money, NewEntry, PageRequest, StorageError,
    TenantId,
};

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("EUR").expect("eur")).expect("amount")
}

async fn sent(s: &Subject, store: &ArInvoices, t: &TenantId, id: &str, customer: &str, total: Money, due_in_days: i64) -> ArInvoice {
    let mut invoice = ArInvoice::new(t.clone(), id, customer, total, s.clock.now());
    invoice.due_date = Some(s.clock.now() + TimeDelta::days(due_in_days));
    store.save_invoice(&invoice).await.expect("save");
    store.update_status(t, id, ArStatus::Sent).await.expect("send")
}

fn conflict<T: std::fmt::Debug>(result: storage_core::Result<T>, what: &str) {
    assert!(matches!(result, Err(StorageError::Conflict { .. })), "{what}: expected Conflict, got {result:?}");
}

pub async fn receivables_are_sent_reminded_and_settled_with_write_offs_apart(s: &Subject) {
    let store = s.store::<ArInvoices>();
    let (t, globex) = (tenant("acme"), tenant("globex"));
    let draft = store.save_invoice(&ArInvoice::new(t.clone(), "ar-1", "c-1", usd(10_000), s.clock.now())).await.expect("save");
    assert_eq!((draft.status, draft.sent_at), (ArStatus::Draft, None));
    conflict(store.record_payment(&t, "ar-1", &NewEntry::payment("p", usd(1), s.clock.now())).await, "a draft takes no payment");
    conflict(store.record_reminder_sent(&t, "ar-1", 1).await, "a draft is not reminded");
    let sent = store.update_status(&t, "ar-1", ArStatus::Sent).await.expect("send");
    assert_eq!(sent.sent_at, Some(s.clock.now()));
    store.record_reminder_sent(&t, "ar-1", 1).await.expect("first reminder");
    let reminded = store.record_reminder_sent(&t, "ar-1", 2).await.expect("second");
    assert_eq!(reminded.reminders.iter().map(|r| r.level).collect::<Vec<_>>(), [1, 2]);
    conflict(store.record_reminder_sent(&t, "ar-1", 2).await, "a level once");
    assert_invalid(store.record_reminder_sent(&t, "ar-1", 0).await, "level");

    let now = s.clock.now();
    let part = store.record_payment(&t, "ar-1", &NewEntry::payment("p-1", usd(6_000), now)).await.expect("pay");
    assert_eq!(part.bill.status, ArStatus::PartiallyPaid);
    conflict(store.update_status(&t, "ar-1", ArStatus::Void).await, "a paid invoice is not voided");
    let write_off = NewEntry { kind: EntryKind::WriteOff, ..NewEntry::payment("wo-1", usd(4_000), now) };
    let settled = store.record_payment(&t, "ar-1", &write_off).await.expect("write off");
    assert_eq!(settled.bill.status, ArStatus::WrittenOff);
    assert_eq!(
        (settled.bill.balance.paid, settled.bill.balance.written_off, settled.bill.balance.due),
        (usd(6_000), usd(4_000), usd(0)),
        "a write-off is never counted as money received"
    );
    conflict(store.record_payment(&t, "ar-1", &NewEntry::payment("p-2", usd(1), now)).await, "settled");
    assert_eq!(store.payments(&t, "ar-1").await.expect("ledger").len(), 2);
    conflict(store.delete_invoice(&t, "ar-1").await, "a settled invoice is kept");
    assert_eq!(store.get_invoice(&globex, "ar-1").await.expect("get"), None, "tenants are apart");

    // Every move the table forbids is refused and changes nothing.
    use ArStatus::*;
    for from in [Draft, Sent, Collections] {
        for to in [Draft, Sent, PartiallyPaid, Paid, Collections, WrittenOff, Void] {
            if from.may_become(to) {
                continue;
            }
            let id = format!("t-{}-{}", from.as_str(), to.as_str());
            store.save_invoice(&ArInvoice::new(t.clone(), id.as_str(), "c-2", usd(100), s.clock.now())).await.expect("save");
            let path: &[ArStatus] = match from {
                Draft => &[],
                Sent => &[Sent],
                _ => &[Sent, Collections],
            };
            for step in path {
                store.update_status(&t, &id, *step).await.expect("path");
            }
            let before = store.get_invoice(&t, &id).await.expect("get");
            conflict(store.update_status(&t, &id, to).await, &id);
            assert_eq!(store.get_invoice(&t, &id).await.expect("get"), before, "{id}: unchanged");
        }
    }
    store.save_invoice(&ArInvoice::new(t.clone(), "ar-2", "c-1", usd(100), s.clock.now())).await.expect("save");
    assert!(store.delete_invoice(&t, "ar-2").await.expect("a draft goes"));
    let mut bad = ArInvoice::new(t.clone(), "ar-3", "c-1", usd(100), s.clock.now());
    bad.line_items.push(storage_core::LineItem { description: "x".into(), amount: eur(100) });
    assert_invalid(store.save_invoice(&bad).await, "line_items");
    assert_invalid(store.save_invoice(&ArInvoice::new(t.clone(), "ar-3", "c-1", usd(-100), s.clock.now())).await, "total");
    assert_eq!(store.get_invoice(&t, "ar-3").await.expect("get"), None);
}

pub async fn aging_and_customer_balances_are_exact_per_currency(s: &Subject) {
    let store = s.store::<ArInvoices>();
    let t = tenant("acme");
    // Ten invoices of 0.10: exactly 1.00, never 0.9999.
    for i in 0..10 {
        sent(s, &store, &t, &format!("dime-{i}"), "c-dimes", usd(10), 30).await;
    }
    assert_eq!(store.get_customer_balance(&t, "c-dimes").await.expect("balance").get(usd(0).currency()), usd(100));
    for (id, total, due_in) in
        [("u-0", usd(1_000), 5), ("u-1", usd(2_000), -10), ("u-2", usd(3_000), -45), ("e-1", eur(4_000), -75), ("e-2", eur(5_000), -200)]
    {
        sent(s, &store, &t, id, "c-mixed", total, due_in).await;
    }
    store.record_payment(&t, "u-2", &NewEntry::payment("p", usd(500), s.clock.now())).await.expect("pay");
    let balance = store.get_customer_balance(&t, "c-mixed").await.expect("balance");
    assert_eq!(balance.iter().collect::<Vec<_>>(), [eur(9_000), usd(5_500)], "one total per currency, never added together");

    let report = store.get_aging_buckets(&t).await.expect("aging");
    assert_eq!((report.current.count, report.current.due.get(usd(0).currency())), (11, usd(1_100)));
    assert_eq!((report.days_1_30.count, report.days_1_30.due.get(usd(0).currency())), (1, usd(2_000)));
    assert_eq!((report.days_31_60.count, report.days_31_60.due.get(usd(0).currency())), (1, usd(2_500)));
    assert_eq!((report.days_61_90.count, report.days_61_90.due.get(eur(0).currency())), (1, eur(4_000)));
    assert_eq!((report.over_90.count, report.over_90.due.get(eur(0).currency())), (1, eur(5_000)));

    let overdue = collect_all(2, |p| {
        let (store, t) = (&store, &t);
        async move { store.list_overdue(t, &p).await }
    })
    .await;
    assert_eq!(overdue.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["e-2", "e-1", "u-2", "u-1"], "longest overdue first");
    store.record_payment(&t, "u-1", &NewEntry::payment("all", usd(2_000), s.clock.now())).await.expect("pay");
    assert_eq!(store.list_overdue(&t, &PageRequest::first(10)).await.expect("overdue").items.len(), 3, "paid is not overdue");
    let listed = store.list_invoices(&t, Some(ArStatus::Paid), None, &PageRequest::first(10)).await.expect("list");
    assert_eq!(listed.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["u-1"]);
    let of_customer = store.list_invoices(&t, None, Some("c-mixed"), &PageRequest::first(10)).await.expect("list");
    assert_eq!(of_customer.items.len(), 5);
}

/// The original lost updates when payments raced on PostgreSQL: here 32 concurrent payments of
/// one invoice, each under its own key, are all counted.
pub async fn concurrent_receivable_payments_lose_no_update(s: &Subject) {
    let store = Arc::new(s.store::<ArInvoices>());
    let t = tenant("acme");
    sent(s, &store, &t, "ar-1", "c-1", usd(100_000), 30).await;
    let now = s.clock.now();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, t) = (Arc::clone(&store), t.clone());
            tokio::spawn(async move { store.record_payment(&t, "ar-1", &NewEntry::payment(format!("p-{i}"), usd(100 + i), now)).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.expect("join").expect("pay").applied);
    }
    let invoice = store.get_invoice(&t, "ar-1").await.expect("get").expect("saved");
    let paid: i64 = (0..32).map(|i| 100 + i).sum();
    assert_eq!((invoice.balance.paid, invoice.balance.due), (usd(paid), usd(100_000 - paid)));
    assert_eq!(store.payments(&t, "ar-1").await.expect("ledger").len(), 32);
}

pub async fn customers_are_kept_per_tenant(s: &Subject) {
    let store = s.store::<ArInvoices>();
    let (t, globex) = (tenant("acme"), tenant("globex"));
    let mut customer = Customer::new(t.clone(), "c-1", "Initech");
    customer.email = Some("ap@initech.example".into());
    customer.payment_terms_days = 45;
    let saved = store.save_customer(&customer).await.expect("save");
    let mut renamed = saved.clone();
    renamed.name = "Initech LLC".into();
    let renamed = store.save_customer(&renamed).await.expect("replace");
    assert_eq!((renamed.created_at, renamed.version), (saved.created_at, 2), "a replaced customer keeps when it was created");
    store.save_customer(&Customer::new(t.clone(), "c-2", "Globex")).await.expect("save");
    let all = store.list_customers(&t, &PageRequest::first(10)).await.expect("list");
    assert_eq!(all.items.iter().map(|c| c.customer_id.as_str()).collect::<Vec<_>>(), ["c-1", "c-2"]);
    assert_eq!(store.get_customer(&globex, "c-1").await.expect("get"), None);
    assert_invalid(store.save_customer(&Customer::new(t.clone(), "c-3", "bad\u{7}name")).await, "name");
}
