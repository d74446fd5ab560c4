//! Conformance cases of `OrganizationStore`.

use crate::user::user;
use crate::{Subject, assert_invalid, collect_all};
use chrono::TimeDelta;
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{
    Clock, NewUser, OrganizationChanges, OrganizationStore, Organizations, Role, StorageError, UsageOutcome, UserStore, Users,
};

pub async fn creating_an_organisation_makes_its_owner_a_member(s: &Subject) {
    let (users, orgs) = (s.store::<Users>(), s.store::<Organizations>());
    let owner = user(&users, "owner@example.com").await;
    let org = orgs.create_organization("Acme Corp!", &owner.id, None, "pro").await.expect("create");
    assert_eq!((org.slug.as_str(), org.owner_count, org.version), ("acme-corp", 1, 1));
    let owner = users.get_user_by_id(&owner.id).await.expect("get").expect("present");
    assert_eq!((owner.org_id.as_deref(), owner.role), (Some(org.id.as_str()), Role::Owner));
    assert_eq!(orgs.get_organization_by_slug("acme-corp").await.expect("by slug").map(|o| o.id), Some(org.id.clone()));
    assert_eq!(orgs.get_organization_by_id(&org.id).await.expect("by id"), Some(org.clone()));
    let other = user(&users, "other@example.com").await;
    match orgs.create_organization("Another", &other.id, Some("acme-corp"), "free").await {
        Err(StorageError::Conflict { .. }) => {}
        other => panic!("a chosen slug that is taken: {other:?}"),
    }
    assert_invalid(orgs.create_organization("X", &other.id, Some("Not A Slug"), "free").await, "slug");
    assert_invalid(orgs.create_organization("X", &other.id, None, "Pro Plan").await, "tier");
    assert!(matches!(orgs.create_organization("X", "missing", None, "free").await, Err(StorageError::NotFound { .. })));
    assert_eq!(orgs.count_organizations(None).await.expect("count"), 1, "nothing else was written");
    // The owner of one organisation cannot found another and leave the first without an owner.
    assert!(matches!(orgs.create_organization("Second", &owner.id, None, "free").await, Err(StorageError::Conflict { .. })));
}

pub async fn concurrent_creations_with_one_name_get_distinct_slugs(s: &Subject) {
    let (users, orgs) = (s.store::<Users>(), Arc::new(s.store::<Organizations>()));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let founder = user(&users, &format!("founder{i}@example.com")).await;
        let orgs = Arc::clone(&orgs);
        tasks.push(tokio::spawn(async move { orgs.create_organization("Same Name", &founder.id, None, "free").await.expect("create") }));
    }
    let mut slugs = BTreeSet::new();
    for task in tasks {
        slugs.insert(task.await.expect("task").slug);
    }
    assert_eq!(slugs.len(), 16, "{slugs:?}");
    assert!(slugs.contains("same-name"));
    assert_eq!(orgs.count_organizations(None).await.expect("count"), 16);
}

pub async fn stripe_ids_find_their_organisation_and_stay_unique(s: &Subject) {
    let (users, orgs) = (s.store::<Users>(), s.store::<Organizations>());
    let a = orgs.create_organization("A", &user(&users, "a@example.com").await.id, None, "free").await.expect("a");
    let b = orgs.create_organization("B", &user(&users, "b@example.com").await.id, None, "free").await.expect("b");
    let billing = OrganizationChanges {
        stripe_customer_id: Some(Some("cus_1".into())),
        stripe_subscription_id: Some(Some("sub_1".into())),
        tier: Some("pro".into()),
        ..OrganizationChanges::default()
    };
    let updated = orgs.update_organization(&a.id, &billing).await.expect("update");
    assert_eq!((updated.tier.as_str(), updated.version), ("pro", 2));
    assert_eq!(orgs.get_organization_by_stripe_customer("cus_1").await.expect("customer").map(|o| o.id), Some(a.id.clone()));
    assert_eq!(orgs.get_organization_by_subscription("sub_1").await.expect("subscription").map(|o| o.id), Some(a.id.clone()));
    let steal = OrganizationChanges { stripe_customer_id: Some(Some("cus_1".into())), ..OrganizationChanges::default() };
    assert!(matches!(orgs.update_organization(&b.id, &steal).await, Err(StorageError::Conflict { .. })));
    let clear = OrganizationChanges { stripe_customer_id: Some(None), ..OrganizationChanges::default() };
    orgs.update_organization(&a.id, &clear).await.expect("clear");
    assert!(orgs.get_organization_by_stripe_customer("cus_1").await.expect("customer").is_none());
    orgs.update_organization(&b.id, &steal).await.expect("now free");
    assert_eq!(orgs.get_organizations_batch(&[&b.id, "missing", &a.id]).await.expect("batch").len(), 2);
    assert_eq!(orgs.count_organizations(Some("pro")).await.expect("count"), 1);
    assert_eq!(
        collect_all(1, |page| {
            let orgs = &orgs;
            async move { orgs.list_all_organizations(Some("free"), &page).await }
        })
        .await
        .len(),
        1
    );
    assert_eq!(
        collect_all(1, |page| {
            let orgs = &orgs;
            async move { orgs.list_all_organizations(None, &page).await }
        })
        .await
        .len(),
        2
    );
}

pub async fn members_join_change_role_and_leave_but_an_owner_always_remains(s: &Subject) {
    let (users, orgs) = (s.store::<Users>(), s.store::<Organizations>());
    let owner = user(&users, "owner@example.com").await;
    let org = orgs.create_organization("Acme", &owner.id, None, "free").await.expect("org");
    let bob = user(&users, "bob@example.com").await;
    let joined = orgs.add_member(&org.id, &bob.id, Role::Member).await.expect("join");
    assert_eq!((joined.org_id.as_deref(), joined.role), (Some(org.id.as_str()), Role::Member));
    let members = collect_all(10, |page| {
        let (orgs, id) = (&orgs, &org.id);
        async move { orgs.get_org_members(id, &page).await }
    })
    .await;
    assert_eq!(members.len(), 2);
    assert!(matches!(orgs.remove_member(&org.id, &owner.id).await, Err(StorageError::Conflict { .. })), "the last owner");
    assert!(matches!(orgs.set_member_role(&org.id, &owner.id, Role::Admin).await, Err(StorageError::Conflict { .. })));
    orgs.set_member_role(&org.id, &bob.id, Role::Owner).await.expect("promote");
    assert_eq!(orgs.get_organization_by_id(&org.id).await.expect("get").expect("present").owner_count, 2);
    let left = orgs.remove_member(&org.id, &owner.id).await.expect("now the first owner may leave");
    assert_eq!(left.org_id, None);
    let org_now = orgs.get_organization_by_id(&org.id).await.expect("get").expect("present");
    assert_eq!((org_now.owner_count, org_now.owner_id.as_str()), (1, bob.id.as_str()));
    assert!(matches!(orgs.remove_member(&org.id, &owner.id).await, Err(StorageError::NotFound { .. })), "no longer a member");
    assert!(matches!(orgs.add_member("missing", &owner.id, Role::Member).await, Err(StorageError::NotFound { .. })));
    let other = orgs.create_organization("Globex", &owner.id, None, "free").await.expect("another org");
    let batch = orgs.get_orgs_with_members_batch(&[other.id.as_str(), "missing", org.id.as_str()]).await.expect("batch");
    let summary: Vec<(String, Vec<String>)> =
        batch.into_iter().map(|(o, members)| (o.name, members.into_iter().map(|m| m.email).collect())).collect();
    assert_eq!(
        summary,
        [("Globex".to_owned(), vec!["owner@example.com".to_owned()]), ("Acme".to_owned(), vec!["bob@example.com".to_owned()])]
    );
}

pub async fn concurrent_demotions_never_leave_an_organisation_without_owner(s: &Subject) {
    let (users, orgs) = (s.store::<Users>(), Arc::new(s.store::<Organizations>()));
    let first = user(&users, "first@example.com").await;
    let org = orgs.create_organization("Acme", &first.id, None, "free").await.expect("org");
    let mut owners = vec![first.id.clone()];
    for i in 0..7 {
        let created = users.create_user(NewUser::new(format!("o{i}@example.com"), "O").in_org(&org.id, Role::Owner)).await.expect("owner");
        owners.push(created.id);
    }
    let tasks: Vec<_> = owners
        .iter()
        .map(|id| {
            let (orgs, org, id) = (Arc::clone(&orgs), org.id.clone(), id.clone());
            tokio::spawn(async move { orgs.set_member_role(&org, &id, Role::Member).await })
        })
        .collect();
    let mut demoted = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => demoted += 1,
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(demoted, 7, "all but one owner stepped down");
    let org = orgs.get_organization_by_id(&org.id).await.expect("get").expect("present");
    let still_owners = collect_all(10, |page| {
        let (orgs, id) = (&orgs, &org.id);
        async move { orgs.get_org_members(id, &page).await }
    })
    .await
    .into_iter()
    .filter(|u| u.role == Role::Owner)
    .count();
    assert_eq!((org.owner_count, still_owners), (1, 1));
}

pub async fn usage_never_passes_the_limit(s: &Subject) {
    let (users, orgs) = (s.store::<Users>(), Arc::new(s.store::<Organizations>()));
    let org = orgs.create_organization("Acme", &user(&users, "o@example.com").await.id, None, "free").await.expect("org");
    assert_eq!(orgs.increment_usage(&org.id, 2).await.expect("usage"), UsageOutcome::Recorded(2), "no limit yet");
    let limit = OrganizationChanges { debate_limit: Some(Some(10)), ..OrganizationChanges::default() };
    orgs.update_organization(&org.id, &limit).await.expect("limit");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (orgs, id) = (Arc::clone(&orgs), org.id.clone());
            tokio::spawn(async move { orgs.increment_usage(&id, 1).await.expect("usage") })
        })
        .collect();
    let mut recorded = 0;
    for task in tasks {
        match task.await.expect("task") {
            UsageOutcome::Recorded(total) => {
                assert!(total <= 10);
                recorded += 1;
            }
            UsageOutcome::LimitReached { used, limit } => assert_eq!((used, limit), (10, 10)),
        }
    }
    assert_eq!(recorded, 8, "exactly up to the limit");
    let summary = orgs.get_usage_summary(&org.id).await.expect("summary");
    assert_eq!((summary.used, summary.limit, summary.remaining), (10, Some(10), Some(0)));
    assert_eq!(orgs.get_organization_by_id(&org.id).await.expect("get").expect("present").debates_used_this_month, 10);
    assert!(matches!(orgs.increment_usage("missing", 1).await, Err(StorageError::NotFound { .. })));
}

pub async fn the_monthly_reset_happens_once_per_cycle(s: &Subject) {
    let (users, orgs) = (s.store::<Users>(), s.store::<Organizations>());
    let mut ids = Vec::new();
    for i in 0..3 {
        let org = orgs.create_organization("Org", &user(&users, &format!("o{i}@example.com")).await.id, None, "free").await.expect("org");
        orgs.increment_usage(&org.id, 5).await.expect("usage");
        ids.push(org.id);
    }
    s.clock.advance(TimeDelta::days(31));
    let cycle = s.clock.now();
    assert_eq!(orgs.reset_monthly_usage(cycle).await.expect("reset"), 3);
    assert_eq!(orgs.reset_monthly_usage(cycle).await.expect("again"), 0, "idempotent per cycle");
    orgs.increment_usage(&ids[0], 1).await.expect("usage");
    assert!(!orgs.reset_org_usage(&ids[0], cycle).await.expect("same cycle"));
    let org = orgs.get_organization_by_id(&ids[0]).await.expect("get").expect("present");
    assert_eq!((org.debates_used_this_month, org.billing_cycle_start), (1, cycle));
}
