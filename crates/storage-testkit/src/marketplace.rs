//! Conformance cases of `MarketplaceStore`.

use crate::{Subject, assert_invalid, collect_all};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use std::sync::Arc;
use storage_core::{Direction, Marketplace, MarketplaceStore, PageRequest, Rating, Review, StorageError, Template, TemplateSort};

fn template(name: &str, category: &str) -> Template {
    let mut t = Template::new(name, "author-1", category, json!({"steps": ["scan", "report"]}));
    t.description = format!("{name}: a {category} workflow");
    t.tags = vec!["audit".into(), category.into()];
    t
}

fn review(template_id: &str, user_id: &str, stars: u8) -> Review {
    Review {
        template_id: template_id.into(),
        user_id: user_id.into(),
        user_name: "Grace".into(),
        stars,
        title: "Too long".into(),
        content: "Needs fewer steps".into(),
        posted_at: DateTime::<Utc>::UNIX_EPOCH,
        helpful_count: 0,
        version: 0,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        updated_at: DateTime::<Utc>::UNIX_EPOCH,
    }
}

async fn ratings(store: &Marketplace, template_id: &str) -> Vec<Rating> {
    collect_all(7, |p| async move { store.list_ratings(template_id, &p).await }).await
}

/// The template's aggregate against its rating rows, read back.
async fn assert_aggregate_matches_rows(store: &Marketplace, template_id: &str) -> Template {
    let rows = ratings(store, template_id).await;
    let template = store.get_template(template_id).await.expect("get").expect("present");
    let sum: i64 = rows.iter().map(|r| i64::from(r.stars)).sum();
    let count = i64::try_from(rows.len()).expect("count");
    assert_eq!((template.rating_sum, template.rating_count), (sum, count), "the aggregate is the rating rows'");
    assert_eq!(template.average_milli(), if count == 0 { 0 } else { sum * 1000 / count }, "the mean of the rating rows");
    template
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
    let rated = assert_aggregate_matches_rows(&store, &created.id).await;
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
    let rerated = assert_aggregate_matches_rows(&store, &created.id).await;
    assert_eq!(rerated.rating_count, 32, "a re-rating replaces, it does not add");
    let rows = ratings(&store, &created.id).await;
    assert_eq!(rows.iter().filter(|r| r.user_id == "user-0").count(), 1, "exactly one rating row of user-0");

    // One user re-rating a template nobody else rated: one row, and the aggregate is that row.
    let solo = store.create_template(&template("Solo", "compliance")).await.expect("create");
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let (store, id) = (Arc::clone(&store), solo.id.clone());
            tokio::spawn(async move { store.rate_template(&id, "user-0", i % 5 + 1).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("re-rate");
    }
    let solo = assert_aggregate_matches_rows(&store, &solo.id).await;
    assert_eq!(solo.rating_count, 1);
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
    assert_eq!(unrated.average_milli(), 0);
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
    assert_eq!(by_rating(Direction::Asc).await, ["Pentest Triage", "Vendor Risk Review", "Contract Clause Check", "Unrated Thing"]);
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

    let review = review(&a.id, "u2", 2);
    let (_, rated) = store.create_review(&review).await.expect("review");
    assert_eq!((rated.rating_sum, rated.rating_count), (6, 2), "a review's stars are its author's rating, in the same unit");
    s.clock.advance(TimeDelta::seconds(1));
    store.create_review(&Review { user_id: "u3".into(), stars: 5, ..review.clone() }).await.expect("review");
    assert_eq!(store.mark_review_helpful(&a.id, "u2").await.expect("helpful"), 1);
    assert_eq!(store.mark_review_helpful(&a.id, "u2").await.expect("helpful"), 2);
    assert!(matches!(store.mark_review_helpful(&a.id, "nobody").await, Err(StorageError::NotFound { .. })));
    s.clock.advance(TimeDelta::seconds(1));
    let (edited, rerated) = store.create_review(&Review { stars: 4, ..review.clone() }).await.expect("edit review");
    assert_eq!((rerated.rating_sum, rerated.rating_count), (13, 3));
    assert_eq!(edited.helpful_count, 2, "an edit keeps the helpful count");
    let reviews = store.list_reviews(&a.id, &PageRequest::first(10)).await.expect("reviews").items;
    assert_eq!(
        reviews.iter().map(|r| (r.user_id.as_str(), r.stars, r.helpful_count)).collect::<Vec<_>>(),
        [("u2", 4, 2), ("u3", 5, 0)],
        "one review per user, newest first"
    );
    assert_aggregate_matches_rows(&store, &a.id).await;
    assert_invalid(store.create_review(&Review { stars: 9, ..review.clone() }).await, "rating");

    assert!(store.delete_template(&a.id).await.expect("delete"));
    assert!(!store.delete_template(&a.id).await.expect("once"));
    assert_eq!(store.list_reviews(&a.id, &PageRequest::first(10)).await.expect("reviews").items.len(), 0, "its reviews went with it");
    assert!(ratings(&store, &a.id).await.is_empty(), "its ratings went with it");
    assert!(matches!(store.rate_template(&a.id, "u1", 3).await, Err(StorageError::NotFound { .. })));
    store.create_template(&template("Vendor Risk Review", "security")).await.expect("a deleted template's name is free again");
    assert_invalid(store.create_template(&template("   ", "security")).await, "name");
}

/// Unrated templates come after every rated one whichever the direction, across page boundaries.
pub async fn unrated_templates_sort_last_in_both_directions(s: &Subject) {
    let store = s.store::<Marketplace>();
    let mut ids = Vec::new();
    for (name, stars) in [("U1", None), ("R5", Some(5)), ("U2", None), ("R1", Some(1)), ("R3", Some(3)), ("U3", None)] {
        let t = store.create_template(&template(name, "ops")).await.expect("create");
        if let Some(stars) = stars {
            store.rate_template(&t.id, "rater", stars).await.expect("rate");
        }
        ids.push(t.id);
    }
    let listed = |direction| {
        let store = &store;
        async move {
            collect_all(
                1,
                |p| async move { store.list_templates(Some("ops"), TemplateSort::Rating, direction, &p).await.map(|(page, _)| page) },
            )
            .await
            .into_iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
        }
    };
    let (desc, asc) = (listed(Direction::Desc).await, listed(Direction::Asc).await);
    assert_eq!(desc.get(..3), Some(&["R5".to_owned(), "R3".into(), "R1".into()][..]));
    assert_eq!(asc.get(..3), Some(&["R1".to_owned(), "R3".into(), "R5".into()][..]));
    for listed in [&desc, &asc] {
        let mut tail = listed.get(3..).expect("six").to_vec();
        tail.sort();
        assert_eq!(tail, ["U1", "U2", "U3"], "unrated last: {listed:?}");
    }
    let (_, total) = store.list_templates(Some("ops"), TemplateSort::Rating, Direction::Asc, &PageRequest::first(2)).await.expect("list");
    assert_eq!(total, 6, "the total counts unrated templates too");

    // A template rated later moves out of the unrated tail.
    store.rate_template(&ids[0], "rater", 2).await.expect("rate");
    assert_eq!(listed(Direction::Asc).await.get(..2), Some(&["R1".to_owned(), "U1".into()][..]));
    assert_eq!(listed(Direction::Desc).await.get(..4), Some(&["R5".to_owned(), "R3".into(), "U1".into(), "R1".into()][..]));
}

/// Bad input is `InvalidInput` naming the field, and nothing is written.
pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = s.store::<Marketplace>();
    let good = template("Good One", "ops");
    let bad: Vec<(&str, Template)> = vec![
        ("name", Template { name: String::new(), ..good.clone() }),
        ("name", Template { name: "x\0y".into(), ..good.clone() }),
        ("name", Template { name: "n".repeat(100_000), ..good.clone() }),
        ("author_id", Template { author_id: String::new(), ..good.clone() }),
        ("category", Template { category: "a\nb".into(), ..good.clone() }),
        ("description", Template { description: "d\0".into(), ..good.clone() }),
        ("tags", Template { tags: vec![String::new()], ..good.clone() }),
    ];
    for (field, t) in bad {
        assert_invalid(store.create_template(&t).await, field);
    }
    let (listed, total) = store.list_templates(None, TemplateSort::Newest, Direction::Desc, &PageRequest::first(10)).await.expect("list");
    assert_eq!((listed.items.len(), total), (0, 0), "nothing was written");

    let t = store.create_template(&good).await.expect("create");
    assert_invalid(store.rate_template(&t.id, "", 3).await, "user_id");
    assert_invalid(store.rate_template("", "u1", 3).await, "template_id");
    assert_invalid(store.create_review(&Review { title: "t\0".into(), ..review(&t.id, "u1", 3) }).await, "title");
    assert_invalid(store.create_review(&Review { stars: 0, ..review(&t.id, "u1", 3) }).await, "rating");
    assert_invalid(store.create_review(&review(&t.id, "u\n1", 3)).await, "user_id");
    assert_invalid(store.list_templates(Some(""), TemplateSort::Rating, Direction::Desc, &PageRequest::first(10)).await, "category");
    assert_invalid(store.list_reviews("", &PageRequest::first(10)).await, "template_id");
    let after = store.get_template(&t.id).await.expect("get").expect("present");
    assert_eq!((after.rating_sum, after.rating_count), (0, 0), "no refused rating counted");
    assert!(ratings(&store, &t.id).await.is_empty(), "no refused rating kept");
    assert!(store.list_reviews(&t.id, &PageRequest::first(10)).await.expect("reviews").items.is_empty(), "no refused review kept");
    assert!(matches!(store.create_review(&review("tpl-missing", "u1", 3)).await, Err(StorageError::NotFound { .. })));
    assert!(matches!(store.set_trending("tpl-missing", true).await, Err(StorageError::NotFound { .. })));
    assert_eq!(store.search_templates("", None, 10, 0).await.expect("an empty query finds nothing"), (vec![], 0));
}
