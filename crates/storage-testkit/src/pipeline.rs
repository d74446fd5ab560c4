//! Conformance cases of `PipelineStore`.

use crate::{Subject, assert_invalid, collect_all, overwrite, raw_body, tenant};
use chrono::TimeDelta;
use serde_json::json;
use std::collections::BTreeMap;
use storage_core::{
    Clock, PageRequest, PipelineResult, PipelineResults, PipelineStatus, PipelineStore, StageStatus, StorageError, TenantId,
};

fn stages(list: &[(&str, StageStatus)]) -> BTreeMap<String, StageStatus> {
    list.iter().map(|(name, status)| ((*name).to_owned(), *status)).collect()
}

fn result(t: &TenantId, id: &str, list: &[(&str, StageStatus)]) -> PipelineResult {
    let mut r = PipelineResult::new(t.clone(), id);
    r.stage_status = stages(list);
    r.ideas = Some(json!(["cache the catalogue", "shard by tenant"]));
    r.goals = Some(json!({"latency_ms": 50, "ratio": 0.25}));
    r.transitions = vec![json!({"from": "ideas", "to": "goals"})];
    (r.provenance_count, r.duration_ms) = (3, 1_250);
    r
}

/// The status follows the stages on every save, whatever the caller says: failed if any failed,
/// complete only when there are stages and all are complete (an empty map is pending), in
/// progress once any started.
pub async fn the_status_is_derived_from_the_stages(s: &Subject) {
    use StageStatus::*;
    let store = s.store::<PipelineResults>();
    let acme = tenant("acme");
    let cases: [(&[(&str, StageStatus)], PipelineStatus); 7] = [
        (&[], PipelineStatus::Pending),
        (&[("ideas", Pending), ("goals", Pending)], PipelineStatus::Pending),
        (&[("ideas", InProgress), ("goals", Pending)], PipelineStatus::InProgress),
        (&[("ideas", Complete), ("goals", Pending)], PipelineStatus::InProgress),
        (&[("ideas", Complete), ("goals", Complete)], PipelineStatus::Complete),
        (&[("ideas", Complete), ("goals", Failed)], PipelineStatus::Failed),
        (&[("ideas", Failed), ("goals", InProgress)], PipelineStatus::Failed),
    ];
    for (n, (list, expected)) in cases.iter().enumerate() {
        let mut r = result(&acme, &format!("p-{n}"), list);
        r.status = PipelineStatus::Complete; // ignored
        let saved = store.save(&r).await.expect("save");
        assert_eq!(saved.status, *expected, "stages {list:?}");
        assert_eq!(store.get(&acme, &format!("p-{n}")).await.expect("get").expect("present").status, *expected);
    }
    assert_eq!(store.count(&acme, Some(PipelineStatus::Complete)).await.expect("count"), 1, "an empty stage map is not complete");
    assert_eq!(store.count(&acme, Some(PipelineStatus::Failed)).await.expect("count"), 2);
    assert_eq!(store.count(&acme, None).await.expect("count"), 7);
}

/// A re-save replaces the result and keeps when the run started; lists go newest first in
/// stable pages, by status or all.
pub async fn a_resave_replaces_the_result_and_lists_go_newest_first(s: &Subject) {
    let store = s.store::<PipelineResults>();
    let acme = tenant("acme");
    let first = store.save(&result(&acme, "p-1", &[("ideas", StageStatus::InProgress)])).await.expect("save");
    assert_eq!((first.started_at, first.version), (s.clock.now(), 1));
    for n in 2..=9 {
        s.clock.advance(TimeDelta::minutes(1));
        let status = if n % 3 == 0 { StageStatus::Complete } else { StageStatus::InProgress };
        store.save(&result(&acme, &format!("p-{n}"), &[("ideas", status)])).await.expect("save");
    }
    s.clock.advance(TimeDelta::minutes(1));
    let mut done = result(&acme, "p-1", &[("ideas", StageStatus::Complete), ("goals", StageStatus::Complete)]);
    done.receipt = Some(json!({"verdict": "approved"}));
    let resaved = store.save(&done).await.expect("resave");
    assert_eq!((resaved.status, resaved.started_at, resaved.created_at), (PipelineStatus::Complete, first.started_at, first.created_at));
    assert_eq!((resaved.version, resaved.updated_at), (2, s.clock.now()));
    let got = store.get(&acme, "p-1").await.expect("get").expect("present");
    assert_eq!(got, resaved, "round trip");
    assert_eq!(got.receipt, Some(json!({"verdict": "approved"})));
    assert!(got.is_intact());

    let listed = collect_all(3, |page| {
        let store = store.clone();
        let acme = acme.clone();
        async move { store.list_pipelines(&acme, None, &page).await }
    })
    .await;
    let order: Vec<_> = listed.iter().map(|r| r.pipeline_id.as_str()).collect();
    assert_eq!(order, ["p-9", "p-8", "p-7", "p-6", "p-5", "p-4", "p-3", "p-2", "p-1"], "newest first by start");
    let complete = store.list_pipelines(&acme, Some(PipelineStatus::Complete), &PageRequest::first(10)).await.expect("list");
    let order: Vec<_> = complete.items.iter().map(|r| r.pipeline_id.as_str()).collect();
    assert_eq!(order, ["p-9", "p-6", "p-3", "p-1"]);
    assert!(store.delete(&acme, "p-1").await.expect("delete"));
    assert!(!store.delete(&acme, "p-1").await.expect("delete"), "deleted once");
    assert_eq!(store.count(&acme, None).await.expect("count"), 8);
}

/// A result altered behind the store fails its integrity check on every read.
pub async fn a_result_altered_behind_the_store_is_refused(s: &Subject) {
    let store = s.store::<PipelineResults>();
    let acme = tenant("acme");
    let corrupt = |r: Result<Option<PipelineResult>, StorageError>| matches!(r, Err(StorageError::Backend { .. }));
    let saved = store.save(&result(&acme, "p-1", &[("ideas", StageStatus::Complete)])).await.expect("save");
    let body = raw_body::<PipelineResult>(s, &acme, "p-1").await;
    let altered = body.replace("shard by tenant", "shard by region");
    assert_ne!(body, altered);
    overwrite(s, &acme, &saved, altered).await;
    assert!(corrupt(store.get(&acme, "p-1").await), "an altered result is not returned");
    let listed = store.list_pipelines(&acme, None, &PageRequest::first(10)).await;
    assert!(matches!(listed, Err(StorageError::Backend { .. })), "nor listed: {listed:?}");

    // Its status edited without its stages: refused too.
    let pending = store.save(&result(&acme, "p-2", &[("ideas", StageStatus::Pending)])).await.expect("save");
    let body = raw_body::<PipelineResult>(s, &acme, "p-2").await;
    assert!(body.contains("\"status\":\"pending\""), "{body}");
    overwrite(s, &acme, &pending, body.replace("\"status\":\"pending\"", "\"status\":\"complete\"")).await;
    assert!(corrupt(store.get(&acme, "p-2").await), "a status that does not follow the stages");

    // A body moved to another id: refused.
    let other = store.save(&result(&acme, "p-3", &[("ideas", StageStatus::Complete)])).await.expect("save");
    let moved = raw_body::<PipelineResult>(s, &acme, "p-3").await.replace("\"p-3\"", "\"p-4\"");
    overwrite(s, &acme, &PipelineResult { pipeline_id: "p-4".into(), ..other }, moved).await;
    assert!(store.get(&acme, "p-4").await.is_err(), "a result moved to another id is refused");
    assert!(store.get(&acme, "p-3").await.expect("untouched").is_some());
}

/// Bad input is `InvalidInput` naming the field, and nothing is written.
pub async fn bad_input_is_refused_naming_the_field_and_writes_nothing(s: &Subject) {
    let store = s.store::<PipelineResults>();
    let acme = tenant("acme");
    assert_invalid(store.save(&result(&acme, "p-\u{7}", &[])).await, "pipeline_id");
    assert_invalid(store.save(&result(&acme, "p-1", &[("bad\u{7}", StageStatus::Pending)])).await, "stage_status");
    let many: Vec<(String, StageStatus)> = (0..65).map(|n| (format!("s{n}"), StageStatus::Pending)).collect();
    let many: Vec<(&str, StageStatus)> = many.iter().map(|(n, st)| (n.as_str(), *st)).collect();
    assert_invalid(store.save(&result(&acme, "p-1", &many)).await, "stage_status");
    let mut huge = result(&acme, "p-1", &[]);
    huge.duration_ms = u64::MAX;
    assert_invalid(store.save(&huge).await, "duration_ms");
    assert_eq!(store.count(&acme, None).await.expect("count"), 0, "nothing written");
}

/// A tenant never sees, lists, counts or deletes another's results.
pub async fn tenants_never_see_or_change_each_others_results(s: &Subject) {
    let store = s.store::<PipelineResults>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mine = store.save(&result(&acme, "p-1", &[("ideas", StageStatus::Complete)])).await.expect("save");
    assert!(store.get(&globex, "p-1").await.expect("get").is_none());
    assert!(!store.delete(&globex, "p-1").await.expect("delete"));
    assert_eq!(store.count(&globex, None).await.expect("count"), 0);
    assert!(store.list_pipelines(&globex, None, &PageRequest::first(10)).await.expect("list").items.is_empty());
    let theirs = store.save(&result(&globex, "p-1", &[])).await.expect("same id, other tenant");
    assert_eq!(theirs.status, PipelineStatus::Pending);
    assert_eq!(store.get(&acme, "p-1").await.expect("get").expect("present"), mine);
}
