//! Conformance cases of `DebateArchiveStore`.

use crate::{Subject, assert_invalid, collect_all, tenant};
use chrono::{NaiveDate, TimeDelta};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{
    ArchivedDebate, Clock, DebateArchive, DebateArchiveStore, DebateAudio, NewArchivedDebate, PageRequest, StorageError, TenantId,
    slug_base,
};

fn debate(id: &str, task: &str) -> NewArchivedDebate {
    NewArchivedDebate {
        debate_id: id.to_owned(),
        task: task.to_owned(),
        agents: vec!["claude".into(), "gpt".into()],
        artifact: json!({"rounds": 3, "summary": format!("about {task}")}),
        consensus_reached: true,
        confidence: Some(0.75),
        is_public: false,
    }
}

fn today(s: &Subject) -> String {
    s.clock.now().date_naive().format("%Y-%m-%d").to_string()
}

/// A debate is archived under the slug of its task and the day; a re-save replaces its content
/// and keeps its slug and views.
pub async fn a_debate_is_archived_under_a_slug_and_resaved_in_place(s: &Subject) {
    let date = NaiveDate::from_ymd_opt(2026, 11, 29).expect("date");
    assert_eq!(slug_base("Should we adopt a Rate-Limiter design for the API?", date), "adopt-rate-limiter-design-2026-11-29");
    assert_eq!(slug_base("What is it?", date), "debate-2026-11-29", "no word but stop words");
    assert_eq!(slug_base("Über größe café", date), "ber-gr-e-caf-2026-11-29", "ASCII letters and digits only");

    let store = s.store::<DebateArchive>();
    let acme = tenant("acme");
    let saved = store.save(&acme, debate("d-1", "Should we adopt a rate limiter?")).await.expect("save");
    assert_eq!(saved.slug, format!("adopt-rate-limiter-{}", today(s)));
    assert_eq!((saved.view_count, saved.version, saved.archived_at, saved.is_public), (0, 1, s.clock.now(), false));
    assert_eq!(store.get(&acme, "d-1").await.expect("get").expect("present"), saved, "round trip");
    assert_eq!(store.get_by_slug(&acme, &saved.slug).await.expect("by slug").expect("present"), saved, "by slug, no view counted");
    store.open_permalink(&saved.slug, Some(&acme)).await.expect("open").expect("owner opens");

    s.clock.advance(TimeDelta::days(1));
    let mut changed = debate("d-1", "A different task entirely");
    (changed.consensus_reached, changed.is_public) = (false, true);
    let resaved = store.save(&acme, changed).await.expect("resave");
    assert_eq!((resaved.slug.as_str(), resaved.view_count, resaved.archived_at), (saved.slug.as_str(), 1, saved.archived_at));
    assert_eq!((resaved.task.as_str(), resaved.consensus_reached, resaved.is_public), ("A different task entirely", false, true));
    assert_eq!(store.count(&acme).await.expect("count"), 1);
    let audio = DebateAudio { path: "audio/d-1.mp3".into(), generated_at: s.clock.now(), duration_seconds: 310 };
    let voiced = store.set_audio(&acme, "d-1", Some(audio.clone())).await.expect("audio");
    assert_eq!(voiced.audio, Some(audio));
    assert!(store.delete(&acme, "d-1").await.expect("delete"));
    assert!(!store.delete(&acme, "d-1").await.expect("delete"), "deleted once");
    assert!(store.get_by_slug(&acme, &saved.slug).await.expect("by slug").is_none());
}

/// 16 concurrent saves of one title in different tenants get 16 distinct slugs: the title's, and
/// the title's with random suffixes; after a deletion, a new save gets a free one (never a taken
/// one).
pub async fn concurrent_saves_of_one_title_get_distinct_slugs(s: &Subject) {
    let store = Arc::new(s.store::<DebateArchive>());
    let saves: Vec<_> = (0..16)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(
                async move { store.save(&tenant(&format!("org-{}", n % 4)), debate(&format!("d-{n}"), "Rate limiter design")).await },
            )
        })
        .collect();
    let mut slugs = BTreeSet::new();
    for save in saves {
        slugs.insert(save.await.expect("join").expect("save").slug);
    }
    let base = format!("rate-limiter-design-{}", today(s));
    assert_eq!(slugs.len(), 16, "16 distinct slugs: {slugs:?}");
    assert!(slugs.contains(&base), "one has the title's own slug");
    let suffixed = |slug: &String| {
        slug.strip_prefix(&format!("{base}-")).is_some_and(|suffix| suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    assert!(slugs.iter().filter(|slug| **slug != base).all(suffixed), "the others a random suffix: {slugs:?}");
    assert!(store.open_permalink(&base, None).await.expect("open").is_none(), "private debates do not open without their tenant");
    // Free the title's slug: the next save of the title gets it, the one after a suffix.
    let mut freed = false;
    for n in 0..16 {
        let (org, id) = (tenant(&format!("org-{}", n % 4)), format!("d-{n}"));
        if store.get(&org, &id).await.expect("get").is_some_and(|d| d.slug == base) {
            freed = store.delete(&org, &id).await.expect("delete");
        }
    }
    assert!(freed, "one debate held {base}");
    let later = store.save(&tenant("org-9"), debate("d-later", "Rate limiter design")).await.expect("save after a deletion");
    assert_eq!(later.slug, base);
    let next = store.save(&tenant("org-9"), debate("d-next", "Rate limiter design")).await.expect("save");
    assert!(suffixed(&next.slug) && !slugs.contains(&next.slug), "a fresh slug: {}", next.slug);
}

/// A permalink opens without a tenant only for a public debate, counting a view each time; the
/// owner opens its private ones; another tenant sees nothing.
pub async fn private_debates_open_only_for_their_owner(s: &Subject) {
    let store = s.store::<DebateArchive>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let private = store.save(&acme, debate("d-private", "Private strategy")).await.expect("save");
    let public = store.save(&acme, NewArchivedDebate { is_public: true, ..debate("d-public", "Public roadmap") }).await.expect("save");
    assert!(store.open_permalink(&private.slug, None).await.expect("open").is_none(), "a private debate needs its tenant");
    assert!(store.open_permalink(&private.slug, Some(&globex)).await.expect("open").is_none(), "and only its own");
    assert!(store.get_by_slug(&globex, &private.slug).await.expect("by slug").is_none());
    let opened = store.open_permalink(&private.slug, Some(&acme)).await.expect("open").expect("owner");
    assert_eq!(opened.view_count, 1);
    for expected in 1..=3 {
        let viewed = store.open_permalink(&public.slug, None).await.expect("open").expect("public");
        assert_eq!((viewed.debate_id.as_str(), viewed.view_count), ("d-public", expected));
    }
    assert_eq!(store.open_permalink(&public.slug, Some(&globex)).await.expect("open").expect("public").view_count, 4);
    assert!(store.open_permalink("no-such-slug", None).await.expect("open").is_none());
    store.set_public(&acme, "d-public", false).await.expect("unpublish");
    assert!(store.open_permalink(&public.slug, None).await.expect("open").is_none(), "unpublished: closed");
    assert_eq!(store.get(&acme, "d-public").await.expect("get").expect("present").view_count, 4, "refused opens count nothing");
}

/// Every change names the owning tenant: another tenant's calls change nothing.
pub async fn ownership_is_checked_on_every_change(s: &Subject) {
    let store = s.store::<DebateArchive>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let saved = store.save(&acme, debate("d-1", "Owned debate")).await.expect("save");
    assert!(matches!(store.set_public(&globex, "d-1", true).await, Err(StorageError::NotFound { .. })));
    assert!(matches!(store.set_audio(&globex, "d-1", None).await, Err(StorageError::NotFound { .. })));
    assert!(!store.delete(&globex, "d-1").await.expect("delete"));
    assert!(store.get(&globex, "d-1").await.expect("get").is_none());
    assert_eq!(store.count(&globex).await.expect("count"), 0);
    assert!(store.search(&globex, "owned", 10, 0).await.expect("search").0.is_empty());
    // The same id in another tenant is another debate, with its own slug.
    let theirs = store.save(&globex, debate("d-1", "Owned debate")).await.expect("save");
    assert_ne!(theirs.slug, saved.slug);
    assert_eq!(store.get(&acme, "d-1").await.expect("get").expect("present"), saved, "untouched");
}

/// Search finds debates by the words of their task or slug, best first, with the total;
/// lists go newest first in stable pages.
pub async fn search_and_lists_find_a_tenants_debates(s: &Subject) {
    let store = s.store::<DebateArchive>();
    let acme = tenant("acme");
    let tasks = ["Rate limiter design", "Rate limiter rollout", "Database sharding", "Cache eviction policy", "Sharding the rate table"];
    for (n, task) in tasks.iter().enumerate() {
        store.save(&acme, debate(&format!("d-{n}"), task)).await.expect("save");
        s.clock.advance(TimeDelta::minutes(1));
    }
    let (found, total) = store.search(&acme, "rate", 2, 0).await.expect("search");
    assert_eq!((found.len(), total), (2, 3), "a page of the matches and the total");
    let (rest, _) = store.search(&acme, "rate", 2, 2).await.expect("search");
    let mut all: Vec<_> = found.iter().chain(&rest).map(|d| d.debate_id.clone()).collect();
    all.sort_unstable();
    assert_eq!(all, ["d-0", "d-1", "d-4"]);
    let (phrase, total) = store.search(&acme, "\"limiter rollout\"", 10, 0).await.expect("search");
    assert_eq!((phrase.iter().map(|d| d.debate_id.as_str()).collect::<Vec<_>>(), total), (vec!["d-1"], 1));
    let (by_word, _) = store.search(&acme, "eviction", 10, 0).await.expect("search");
    assert_eq!(by_word.len(), 1);
    let (nothing, total) = store.search(&acme, "\" OR 1=1 --", 10, 0).await.expect("odd queries are no error");
    assert!(nothing.is_empty() && total == 0);

    let listed: Vec<ArchivedDebate> = collect_all(2, |page| {
        let store = store.clone();
        let acme = acme.clone();
        async move { store.list_recent(&acme, &page).await }
    })
    .await;
    let order: Vec<_> = listed.iter().map(|d| d.debate_id.as_str()).collect();
    assert_eq!(order, ["d-4", "d-3", "d-2", "d-1", "d-0"], "newest first");
    assert_eq!(store.count(&acme).await.expect("count"), 5);
    assert_eq!(store.list_recent(&acme, &PageRequest::first(1)).await.expect("list").items.len(), 1);
}

/// Bad input is `InvalidInput` naming the field, and nothing is written.
pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = s.store::<DebateArchive>();
    let acme: TenantId = tenant("acme");
    assert_invalid(store.save(&acme, debate("d-\u{7}", "Task")).await, "debate_id");
    assert_invalid(store.save(&acme, debate("d-1", "   ")).await, "task");
    assert_invalid(store.save(&acme, debate("d-1", &"x".repeat(storage_core::stores::debate_archive::MAX_TASK_BYTES + 1))).await, "task");
    assert_invalid(store.save(&acme, NewArchivedDebate { confidence: Some(1.5), ..debate("d-1", "Task") }).await, "confidence");
    assert_invalid(store.save(&acme, NewArchivedDebate { agents: vec!["bad\u{7}".into()], ..debate("d-1", "Task") }).await, "agents");
    assert_eq!(store.count(&acme).await.expect("count"), 0, "nothing written");
    store.save(&acme, debate("d-1", "Task")).await.expect("save");
    let audio = DebateAudio { path: "bad\u{7}path".into(), generated_at: s.clock.now(), duration_seconds: 1 };
    assert_invalid(store.set_audio(&acme, "d-1", Some(audio)).await, "audio.path");
    assert!(store.get(&acme, "d-1").await.expect("get").expect("present").audio.is_none());
}
