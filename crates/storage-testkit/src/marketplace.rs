//! Conformance cases of `MarketplaceStore`.

use crate::{Subject, assert_invalid, collect_all};
use serde_json::json;
use std::sync::Arc;
use storage_core::{Direction, Marketplace, MarketplaceStore, PageRequest, Review, StorageError, Template, TemplateSort};

fn template(name: &str, category: &str) -> Template {
    let mut t = Template::new(name, "author-1", category, json!({"steps": ["scan", "report"]}));
    t.description = format!("{name}: a {category} workflow");
    t.tags = vec!["audit".into(), category.into()];
    t
}

/// 32 users rate one template at once: the aggregate equals the ratings' own sum and count.
pub async fn concurrent_ratings_keep_the_aggregate_exact(s: &Subject) {
    let store = Arc::new(s.store::<Marketplace>());
    let created = store.create_template(&template("SOC 2 evidence", "compliance")).await.expect("create");
    let tasks: Vec<_> = (0..32u8)
        .map(|i| {
            let (store, id) = (Arc::clone(&store), created.id.clone());
            tokio::spawn(async move { store.rate_template(&id, &format!("user-{i}"), i % 5 + 1).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("rate");
    }
    let rated = store.get_template(&created.id).await.expect("get").expect("present");
    let expected_sum: i64 = (0..32).map(|i| i64::from(i % 5 + 1)).sum();
    assert_eq!((rated.rating_sum, rated.rating_count), (expected_sum, 32));
    assert_eq!(rated.average_milli(), expected_sum * 1000 / 32, "the mean of the rating rows");

    // 16 concurrent re-ratings by one user: still one rating of theirs in the aggregate.
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let (store, id) = (Arc::clone(&store), created.id.clone());
            tokio::spawn(async move { store.rate_template(&id, "user-0", i % 5 + 1).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("re-rate");
    }
    let rerated = store.get_template(&created.id).await.expect("get").expect("present");
    assert_eq!(rerated.rating_count, 32, "a re-rating replaces, it does not add");
    let others: i64 = (1..32).map(|i| i64::from(i % 5 + 1)).sum();
    let mine = rerated.rating_sum - others;
    assert!((1..=5).contains(&mine), "user-0's one rating is in the sum: {mine}");
    assert!(matches!(store.rate_template("tpl-missing", "user-1", 5).await, Err(StorageError::NotFound { .. })), "no orphan rating");
    assert_invalid(store.rate_template(&created.id, "user-1", 6).await, "rating");
    assert_invalid(store.rate_template(&created.id, "user-1", 0).await, "rating");
}

pub async fn templates_are_unique_by_name_sorted_searched_and_deleted_whole(s: &Subject) {
    let store = s.store::<Marketplace>();
    let a = store.create_template(&template("Vendor Risk Review", "security")).await.expect("create");
    assert!(a.id.starts_with("tpl-") && a.id.len() == 20);
    for dup in ["vendor risk review", "  Vendor   Risk Review "] {
        assert!(matches!(store.create_template(&template(dup, "security")).await, Err(StorageError::Conflict { .. })), "{dup}");
    }
    let b = store.create_template(&template("Contract Clause Check", "legal")).await.expect("create");
    let c = store.create_template(&template("Pentest Triage", "security")).await.expect("create");
    let unrated = store.create_template(&template("Unrated Thing", "security")).await.expect("create");
    assert_eq!(unrated.average_milli(), 0, "an unrated template ranks as 0 stars, on every backend");
    store.rate_template(&a.id, "u1", 4).await.expect("rate");
    store.rate_template(&b.id, "u1", 5).await.expect("rate");
    store.rate_template(&c.id, "u1", 2).await.expect("rate");
    for _ in 0..3 {
        store.increment_download(&c.id).await.expect("download");
    }
    assert_eq!(store.increment_download(&a.id).await.expect("download"), 1);
    assert!(matches!(store.increment_download("tpl-missing").await, Err(StorageError::NotFound { .. })));

    let by_rating = |direction| {
        let store = &store;
        async move {
            collect_all(2, |p| async move { store.list_templates(None, TemplateSort::Rating, direction, &p).await.map(|(page, _)| page) })
                .await
                .into_iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by_rating(Direction::Desc).await, ["Contract Clause Check", "Vendor Risk Review", "Pentest Triage", "Unrated Thing"]);
    assert_eq!(by_rating(Direction::Asc).await, ["Unrated Thing", "Pentest Triage", "Vendor Risk Review", "Contract Clause Check"]);
    let (page, total) =
        store.list_templates(Some("security"), TemplateSort::Downloads, Direction::Desc, &PageRequest::first(1)).await.expect("list");
    assert_eq!((page.items[0].name.as_str(), page.items[0].downloads, total), ("Pentest Triage", 3, 3));
    let (newest, _) = store.list_templates(None, TemplateSort::Newest, Direction::Desc, &PageRequest::first(10)).await.expect("list");
    assert_eq!(newest.items.len(), 4);

    let (found, total) = store.search_templates("vendor risk", None, 10, 0).await.expect("search");
    assert_eq!((found.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), total), (vec![a.id.as_str()], 1));
    assert_eq!(store.search_templates("security", None, 10, 0).await.expect("search").1, 3, "category words are searchable");
    assert_eq!(store.search_templates("audit", Some("legal"), 10, 0).await.expect("search").1, 1);
    assert_eq!(store.search_templates("100% ' OR \"", None, 10, 0).await.expect("never a syntax error").1, 0);

    store.set_featured(&a.id, true).await.expect("feature");
    store.set_featured(&b.id, true).await.expect("feature");
    store.set_trending(&c.id, true).await.expect("trend");
    assert!(matches!(store.set_featured("tpl-missing", true).await, Err(StorageError::NotFound { .. })));
    assert_eq!(
        store.get_featured(10).await.expect("featured").iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [b.id.as_str(), a.id.as_str()]
    );
    assert_eq!(store.get_trending(10).await.expect("trending").len(), 1);
    let categories = store.list_categories().await.expect("categories");
    assert_eq!((categories["security"], categories["legal"]), (3, 1));

    let review = Review {
        template_id: a.id.clone(),
        user_id: "u2".into(),
        user_name: "Grace".into(),
        stars: 2,
        title: "Too long".into(),
        content: "Needs fewer steps".into(),
        posted_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        version: 0,
        created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        updated_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
    };
    let (_, rated) = store.create_review(&review).await.expect("review");
    assert_eq!((rated.rating_sum, rated.rating_count), (6, 2), "a review's stars are its author's rating, in the same unit");
    let (_, rerated) = store.create_review(&Review { stars: 4, ..review.clone() }).await.expect("edit review");
    assert_eq!((rerated.rating_sum, rerated.rating_count), (8, 2));
    assert_eq!(store.list_reviews(&a.id, &PageRequest::first(10)).await.expect("reviews").items.len(), 1, "one review per user");
    assert_invalid(store.create_review(&Review { stars: 9, ..review.clone() }).await, "rating");

    assert!(store.delete_template(&a.id).await.expect("delete"));
    assert!(!store.delete_template(&a.id).await.expect("once"));
    assert_eq!(store.list_reviews(&a.id, &PageRequest::first(10)).await.expect("reviews").items.len(), 0, "its reviews went with it");
    assert!(matches!(store.rate_template(&a.id, "u1", 3).await, Err(StorageError::NotFound { .. })));
    store.create_template(&template("Vendor Risk Review", "security")).await.expect("a deleted template's name is free again");
    assert_invalid(store.create_template(&template("   ", "security")).await, "name");
}
