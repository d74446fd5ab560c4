//! Conformance cases of `InboxActivityStore`.

use crate::{Subject, assert_invalid, collect_all, page_under_churn, tenant};
use chrono::TimeDelta;
use storage_core::{Clock, InboxActivities, InboxActivity, InboxActivityStore, NewActivity, PageRequest};

fn activity(inbox: &str, actor: &str, action: &str, target: Option<&str>) -> NewActivity {
    NewActivity {
        inbox_id: inbox.to_owned(),
        actor_id: actor.to_owned(),
        action: action.to_owned(),
        target_id: target.map(str::to_owned),
        metadata: [("note".to_owned(), format!("{action} by {actor}"))].into(),
    }
}

fn actions(items: &[InboxActivity]) -> Vec<String> {
    items.iter().map(|a| a.action.clone()).collect()
}

pub async fn activities_list_newest_first_in_their_organisation_and_expire(s: &Subject) {
    let store = s.store::<InboxActivities>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let first = store.log_activity(&acme, activity("support", "ada", "assigned", Some("msg-1"))).await.expect("log");
    let start = s.clock.now();
    s.clock.advance(TimeDelta::seconds(1));
    store.log_activity(&acme, activity("support", "bob", "status_changed", Some("msg-1"))).await.expect("log");
    store.log_activity(&acme, activity("support", "ada", "note_added", Some("msg-2"))).await.expect("log");
    s.clock.advance(TimeDelta::seconds(1));
    store.log_activity(&acme, activity("sales", "ada", "sla_breached", None)).await.expect("log");
    store.log_activity(&globex, activity("support", "ada", "assigned", Some("msg-1"))).await.expect("log");

    assert_eq!(store.get_activity(&acme, &first.id).await.expect("get"), Some(first.clone()));
    let support = |action: Option<&'static str>, after| {
        let (store, acme) = (&store, &acme);
        async move { store.get_activities(acme, "support", action, after, &PageRequest::first(10)).await.expect("list").items }
    };
    assert_eq!(actions(&support(None, None).await)[2], "assigned", "newest first: the first activity last");
    assert_eq!(support(None, None).await.len(), 3);
    assert_eq!(actions(&support(Some("note_added"), None).await), ["note_added"]);
    assert_eq!(support(None, Some(start)).await.len(), 2, "after an instant");
    let history = store.get_message_history(&acme, "msg-1", &PageRequest::first(10)).await.expect("history");
    assert_eq!(actions(&history.items), ["status_changed", "assigned"]);
    let ada = store.get_actor_activities(&acme, "ada", &PageRequest::first(10)).await.expect("actor");
    assert_eq!(actions(&ada.items), ["sla_breached", "note_added", "assigned"], "an actor's, in this organisation only");
    let (store_ref, acme_ref) = (&store, &acme);
    let everything = collect_all(2, |page| async move { store_ref.get_org_activities(acme_ref, None, &page).await }).await;
    assert_eq!(everything.len(), 4, "stable pages of two");
    assert_eq!(store.count_activities(&acme, Some("support"), None).await.expect("count"), 3);
    assert_eq!(store.count_activities(&acme, None, Some("assigned")).await.expect("count"), 1);
    assert_eq!(store.count_activities(&globex, None, None).await.expect("count"), 1);
    assert!(store.get_activity(&globex, &first.id).await.expect("get").is_none(), "no id reaches another organisation");

    assert_invalid(store.log_activity(&acme, activity("support", "ada", "bad action\u{7}", None)).await, "action");
    assert_invalid(store.get_activities(&acme, "", None, None, &PageRequest::first(10)).await, "inbox_id");
    assert_invalid(store.cleanup_expired(TimeDelta::zero()).await, "retention");
    assert_eq!(store.count_activities(&acme, None, None).await.expect("count"), 4, "nothing written");

    s.clock.advance(TimeDelta::days(91));
    store.log_activity(&acme, activity("support", "ada", "note_added", None)).await.expect("log");
    assert_eq!(store.cleanup_expired(TimeDelta::days(90)).await.expect("cleanup"), 5, "older than 90 days, every organisation");
    assert_eq!(store.count_activities(&acme, None, None).await.expect("count"), 1);
    assert_eq!(store.count_activities(&globex, None, None).await.expect("count"), 0);
}

pub async fn pages_of_activities_stay_whole_while_more_are_logged(s: &Subject) {
    let store = s.store::<InboxActivities>();
    let acme = tenant("acme");
    let mut logged = Vec::new();
    for n in 0..12 {
        // Ties on the instant: two activities per tick.
        if n % 2 == 0 {
            s.clock.advance(TimeDelta::milliseconds(1));
        }
        logged.push(store.log_activity(&acme, activity("support", "ada", "note_added", None)).await.expect("log").id);
    }
    let (store_ref, acme_ref, clock) = (&store, &acme, &s.clock);
    let seen = page_under_churn(
        5,
        |page| async move { store_ref.get_activities(acme_ref, "support", None, None, &page).await },
        |a: &InboxActivity| a.id.clone(),
        |_| async move {
            clock.advance(TimeDelta::milliseconds(1));
            store_ref.log_activity(acme_ref, activity("support", "bob", "assigned", None)).await.expect("log");
        },
    )
    .await;
    crate::assert_each_once(&seen, logged, "activities logged before the pages");
}
