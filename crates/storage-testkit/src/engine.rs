//! Conformance cases of the generic engine itself, on a probe document that declares every kind
//! of index, a unique and a global key, a counter, expiry and a sealed secret; and a child
//! document for atomic units across tables. SQL backends create their tables from
//! [`PROBE_TABLES`] (`storage_schema::ddl::create_table`).

use crate::{Subject, assert_invalid, tenant};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_core::{
    Applied, Change, Clock, Cursor, Document, Filter, IndexSpec, Order, PageRequest, Query, Result, RowWrite, Scope, Secret, StorageError,
    Table, TableDef, TenantId, Value, WriteMode,
};

/// A record with one index of every kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub tenant: TenantId,
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub rank: i64,
    pub flag: bool,
    pub hits: i64,
    pub token: Option<String>,
    pub code: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub secret: Secret<String>,
    pub payload: serde_json::Value,
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for Probe {
    const TABLE: TableDef = TableDef {
        name: "engine_probes",
        entity: "probe",
        id_field: "id",
        indexes: &[
            IndexSpec::text("name"),
            IndexSpec::text("grp"),
            IndexSpec::time("at"),
            IndexSpec::int("rank"),
            IndexSpec::bool("flag"),
            IndexSpec::counter("hits"),
            IndexSpec::text("token").unique(),
            IndexSpec::text("code").global(),
        ],
        expires: true,
        sealed: true,
        search: false,
    };
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    storage_core::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![
            Some(Value::from(&self.name)),
            self.group.as_ref().map(Value::from),
            self.at.map(Value::Time),
            Some(Value::Int(self.rank)),
            Some(Value::Bool(self.flag)),
            Some(Value::Int(self.hits)),
            self.token.as_ref().map(Value::from),
            self.code.as_ref().map(Value::from),
        ]
    }
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }
    fn set_counter(&mut self, column: &str, value: i64) -> Result<()> {
        assert_eq!(column, "hits");
        self.hits = value;
        Ok(())
    }
    fn secrets(&self) -> storage_core::document::Secrets {
        [("secret".to_owned(), self.secret.clone())].into_iter().collect()
    }
    fn set_secrets(&mut self, mut secrets: storage_core::document::Secrets) -> Result<()> {
        self.secret = secrets.remove("secret").unwrap_or_default();
        Ok(())
    }
}

/// A child row of a probe, for units across tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeChild {
    pub tenant: TenantId,
    pub id: String,
    pub parent: String,
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for ProbeChild {
    const TABLE: TableDef = TableDef {
        name: "engine_probe_children",
        entity: "probe child",
        id_field: "id",
        indexes: &[IndexSpec::text("parent")],
        expires: false,
        sealed: false,
        search: false,
    };
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    storage_core::record_meta!();
    fn index_values(&self) -> Vec<Option<Value>> {
        vec![Some(Value::from(&self.parent))]
    }
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// The tables SQL backends create for these cases.
pub const PROBE_TABLES: [&TableDef; 2] = [&Probe::TABLE, &ProbeChild::TABLE];

fn probes(s: &Subject) -> Table<Probe> {
    s.engine.table()
}

fn children(s: &Subject) -> Table<ProbeChild> {
    s.engine.table()
}

/// A probe whose fields vary with `i` (ties on purpose: ranks repeat, groups and instants are
/// sometimes unset).
pub fn probe(s: &Subject, t: &str, i: i64) -> Probe {
    let now = s.clock.now();
    Probe {
        tenant: tenant(t),
        id: format!("p-{i:03}"),
        name: ["alpha", "beta", "gamma", "delta"][(i % 4) as usize].to_owned(),
        group: (i % 3 != 0).then(|| format!("g{}", i % 5)),
        at: (i % 4 != 1).then(|| now + TimeDelta::minutes(i % 7 - 3)),
        rank: (i * 7) % 11 - 5,
        flag: i % 2 == 0,
        hits: 0,
        token: None,
        code: None,
        expires_at: None,
        secret: Secret::from(format!("secret-{i}")),
        payload: serde_json::json!({ "i": i, "nested": { "list": [i, "\u{0}nul", "é"] } }),
        version: 0,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        updated_at: DateTime::<Utc>::UNIX_EPOCH,
    }
}

async fn seed(s: &Subject, t: &str, n: i64) -> Vec<Probe> {
    let table = probes(s);
    let mut stored = Vec::new();
    for i in 0..n {
        stored.push(table.insert(&probe(s, t, i)).await.expect("insert"));
    }
    stored
}

/// Every page of a list, checking each page against its limit.
async fn all_pages(table: &Table<Probe>, scope: Scope<'_>, query: &Query, limit: u32) -> Vec<Probe> {
    let mut page = PageRequest::first(limit);
    let mut all = Vec::new();
    loop {
        let got = table.list(scope, query.clone(), &page).await.expect("list");
        assert!(got.items.len() <= limit as usize);
        all.extend(got.items);
        match page.next(got.next.as_ref()) {
            Some(next) => page = next,
            None => return all,
        }
    }
}

fn ids(records: &[Probe]) -> Vec<String> {
    records.iter().map(|p| p.id.clone()).collect()
}

/// The ids passing `filter`, in id order: the reference answer.
fn expected(records: &[Probe], filter: &Filter) -> Vec<String> {
    let filter = filter.clone().checked(&Probe::TABLE).expect("valid filter");
    let mut ids: Vec<String> = records.iter().filter(|p| filter.matches(&Probe::TABLE, &p.index_values())).map(|p| p.id.clone()).collect();
    ids.sort();
    ids
}

pub async fn filters_match_the_reference_semantics(s: &Subject) {
    let records = seed(s, "acme", 40).await;
    seed(s, "other", 10).await;
    let table = probes(s);
    let at = s.clock.now();
    let filters = [
        Filter::all(),
        Filter::all().eq("name", "beta"),
        Filter::all().one_of("name", ["alpha", "gamma", "nothing"]),
        Filter::all().is_null("grp"),
        Filter::all().not_null("grp"),
        Filter::all().eq("grp", "g2").eq("flag", true),
        Filter::all().lt("rank", 0_i64),
        Filter::all().le("rank", 0_i64).ge("rank", -2_i64),
        Filter::all().gt("rank", 3_i64),
        Filter::all().between("rank", -1_i64, 1_i64),
        Filter::all().one_of("rank", [-5_i64, 0, 5]),
        Filter::all().le("at", at),
        Filter::all().gt("at", at).eq("name", "delta"),
        Filter::all().between("at", at - TimeDelta::minutes(2), at + TimeDelta::minutes(1)),
        Filter::all().is_null("at").eq("flag", false),
        Filter::all().eq("flag", false).not_null("grp").lt("rank", 2_i64),
        Filter::all().eq("name", "nothing"),
    ];
    for filter in filters {
        let want = expected(&records, &filter);
        let got = all_pages(&table, Scope::Tenant(&tenant("acme")), &Query::new(filter.clone()), 7).await;
        assert_eq!(ids(&got), want, "{filter:?}");
        let count = table.count(Scope::Tenant(&tenant("acme")), filter.clone()).await.expect("count");
        assert_eq!(count, want.len() as u64, "count of {filter:?}");
    }
    let everywhere = table.count(Scope::AllTenants, Filter::all().eq("name", "alpha")).await.expect("count");
    assert_eq!(everywhere, 10 + 3, "alpha appears in both tenants");
}

pub async fn orders_by_an_index_both_ways_with_keyset_pages(s: &Subject) {
    let records = seed(s, "acme", 30).await;
    let table = probes(s);
    for (column, desc) in [("rank", false), ("rank", true), ("at", false), ("at", true), ("name", false), ("grp", true), ("flag", false)] {
        let order = if desc { Order::desc(column) } else { Order::asc(column) };
        let (position, _) = Probe::TABLE.index(column).expect("declared");
        let mut want: Vec<(Value, String)> =
            records.iter().filter_map(|p| p.index_values().get(position).cloned().flatten().map(|key| (key, p.id.clone()))).collect();
        want.sort();
        if desc {
            want.reverse();
        }
        for limit in [1, 4, 100] {
            let got = all_pages(&table, Scope::Tenant(&tenant("acme")), &Query::default().order(order), limit).await;
            assert_eq!(ids(&got), want.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(), "{column} desc={desc} limit={limit}");
        }
    }
    // Across tenants: tenant first, then the order.
    seed(s, "beta-corp", 5).await;
    let got = all_pages(&table, Scope::AllTenants, &Query::new(Filter::all().eq("name", "alpha")).order(Order::asc("rank")), 2).await;
    let tenants: Vec<&str> = got.iter().map(|p| p.tenant.as_str()).collect();
    assert_eq!(tenants, [vec!["acme"; 8], vec!["beta-corp"; 2]].concat());
    assert!(got[..8].windows(2).all(|w| (w[0].rank, &w[0].id) <= (w[1].rank, &w[1].id)));
}

pub async fn pages_stay_whole_under_concurrent_inserts_and_deletes(s: &Subject) {
    let table = probes(s);
    let t = tenant("acme");
    for i in 0..60 {
        let mut p = probe(s, "acme", i);
        p.id = format!("keep-{i:03}");
        table.insert(&p).await.expect("insert");
    }
    let mut n = 1000;
    for order in [Order::by_id(), Order::asc("rank"), Order::desc("at")] {
        let mut page = PageRequest::first(7);
        let mut seen = Vec::new();
        loop {
            let got = table.list(Scope::Tenant(&t), Query::default().order(order), &page).await.expect("list");
            seen.extend(got.items.iter().map(|p| p.id.clone()));
            // Others write meanwhile: new records on both sides of the cursor, and deletions of
            // records that did not exist throughout.
            for k in 0..3 {
                let mut p = probe(s, "acme", n + k);
                p.id = format!("churn-{:04}", n + k);
                table.insert(&p).await.expect("churn insert");
            }
            table.delete(&t, &format!("churn-{:04}", n - 6)).await.expect("churn delete");
            n += 3;
            match page.next(got.next.as_ref()) {
                Some(next) => page = next,
                None => break,
            }
        }
        let kept: Vec<&String> = seen.iter().filter(|id| id.starts_with("keep-")).collect();
        let unique: BTreeSet<&String> = kept.iter().copied().collect();
        assert_eq!(kept.len(), unique.len(), "{order:?}: a record appeared twice");
        let expected_keep = if order.column == Some("at") { 45 } else { 60 };
        assert_eq!(unique.len(), expected_keep, "{order:?}: a record that existed throughout was missed");
        table.delete_where(Scope::Tenant(&t), Filter::all().eq("flag", true).eq("name", "never")).await.expect("noop");
    }
}

pub async fn undeclared_columns_wrong_kinds_and_foreign_cursors_are_invalid(s: &Subject) {
    seed(s, "acme", 5).await;
    let table = probes(s);
    let t = tenant("acme");
    let scope = Scope::Tenant(&t);
    let page = PageRequest::first(2);
    assert_invalid(table.list(scope, Query::new(Filter::all().eq("nope", "x")), &page).await, "filter");
    assert_invalid(table.count(scope, Filter::all().eq("nope", "x")).await, "filter");
    assert_invalid(table.delete_where(scope, Filter::all().lt("nope", 1_i64)).await, "filter");
    assert_invalid(table.list(scope, Query::default().order(Order::asc("nope")), &page).await, "filter");
    assert_invalid(table.list(scope, Query::new(Filter::all().eq("rank", "seven")), &page).await, "rank");
    assert_invalid(table.list(scope, Query::new(Filter::all().one_of("rank", Vec::<i64>::new())), &page).await, "rank");
    assert_invalid(table.list(scope, Query::new(Filter::all().between("rank", 5_i64, 1_i64)), &page).await, "rank");
    assert_invalid(table.list(scope, Query::new(Filter::all().eq("name", "a\0b")), &page).await, "name");
    assert_invalid(table.list(scope, Query::new(Filter::all().le("at", DateTime::<Utc>::MAX_UTC)), &page).await, "at");
    assert_invalid(table.list(scope, Query::new(Filter::all().eq("rank", i64::MAX)), &page).await, "rank");
    let by_rank = table.list(scope, Query::default().order(Order::asc("rank")), &page).await.expect("list");
    let cursor = by_rank.next.expect("a second page");
    let foreign = PageRequest::first(2).after(cursor.clone());
    assert_invalid(table.list(scope, Query::default().order(Order::asc("name")), &foreign).await, "cursor");
    assert_invalid(table.list(scope, Query::default().order(Order::desc("rank")), &foreign).await, "cursor");
    assert_invalid(table.list(Scope::AllTenants, Query::default().order(Order::asc("rank")), &foreign).await, "cursor");
    for garbage in ["", "%%%", "e30", "eyJvIjoicmFuayJ9"] {
        let bad = PageRequest::first(2).after(Cursor::from_string(garbage));
        assert_invalid(table.list(scope, Query::default(), &bad).await, "cursor");
    }
    assert_invalid(table.increment(&t, "p-000", "rank", 1, None).await, "rank");
    assert_invalid(table.get_by_unique(&t, "name", "alpha").await, "name");
    assert_invalid(table.locate("token", "x").await, "token");
}

pub async fn counts_and_sweeps_in_a_tenant_and_across_tenants(s: &Subject) {
    seed(s, "acme", 20).await;
    seed(s, "other", 20).await;
    let table = probes(s);
    let (acme, other) = (tenant("acme"), tenant("other"));
    let flagged = || Filter::all().eq("flag", true);
    assert_eq!(table.count(Scope::Tenant(&acme), flagged()).await.expect("count"), 10);
    assert_eq!(table.delete_where(Scope::Tenant(&acme), flagged()).await.expect("sweep"), 10);
    assert_eq!(table.count(Scope::Tenant(&acme), flagged()).await.expect("count"), 0);
    assert_eq!(table.count(Scope::Tenant(&acme), Filter::all()).await.expect("count"), 10);
    assert_eq!(table.count(Scope::Tenant(&other), flagged()).await.expect("count"), 10, "the other tenant is untouched");
    assert!(table.get(&acme, "p-000").await.expect("get").is_none());
    assert!(table.get(&other, "p-000").await.expect("get").is_some());
    // Ranks below zero: 4 of acme's remaining (odd) records, 9 of the other tenant's.
    assert_eq!(table.delete_where(Scope::AllTenants, Filter::all().lt("rank", 0_i64)).await.expect("sweep"), 4 + 9);
    assert_eq!(table.count(Scope::AllTenants, Filter::all()).await.expect("count"), 10 + 20 - 13);
}

pub async fn expired_records_vanish_everywhere_and_purge_sweeps_them(s: &Subject) {
    let table = probes(s);
    let t = tenant("acme");
    let mut p = probe(s, "acme", 1);
    p.expires_at = Some(s.clock.now() + TimeDelta::seconds(10));
    p.token = Some("tok".into());
    p.code = Some("code-1".into());
    table.insert(&p).await.expect("insert");
    let mut keeper = probe(s, "acme", 2);
    keeper.expires_at = Some(s.clock.now() + TimeDelta::hours(1));
    table.insert(&keeper).await.expect("insert");
    table.insert(&probe(s, "acme", 3)).await.expect("insert");
    s.clock.advance(TimeDelta::seconds(9));
    assert!(table.get(&t, "p-001").await.expect("get").is_some(), "alive one second before");
    s.clock.advance(TimeDelta::seconds(1));
    assert!(table.get(&t, "p-001").await.expect("get").is_none(), "gone at its expiry");
    assert_eq!(ids(&table.get_many(&t, &["p-001", "p-002"]).await.expect("get many")), ["p-002"]);
    assert_eq!(all_pages(&table, Scope::Tenant(&t), &Query::default(), 10).await.len(), 2);
    assert_eq!(table.count(Scope::Tenant(&t), Filter::all()).await.expect("count"), 2);
    assert!(table.find_global("code", "code-1").await.expect("find").is_none());
    assert!(table.get_by_unique(&t, "token", "tok").await.expect("by token").is_none());
    assert!(!table.delete(&t, "p-001").await.expect("delete"), "an expired record was not there to delete");
    assert!(matches!(table.increment(&t, "p-001", "hits", 1, None).await, Err(StorageError::NotFound { .. })));
    // An expired record is absent to writes too: its id and its unique values are free again.
    let mut again = probe(s, "acme", 1);
    again.token = Some("tok".into());
    let stored = table.insert(&again).await.expect("insert over an expired record");
    assert_eq!(stored.version, 1);
    let mut thief = probe(s, "acme", 4);
    thief.code = Some("code-1".into());
    table.insert(&thief).await.expect("the expired record's global code is free");
    s.clock.advance(TimeDelta::hours(2));
    assert_eq!(table.purge_expired().await.expect("purge"), 1, "the keeper expired too");
    assert_eq!(table.purge_expired().await.expect("purge"), 0);
    assert_eq!(table.count(Scope::Tenant(&t), Filter::all()).await.expect("count"), 3);
}

pub async fn unique_keys_refuse_a_second_holder_and_find_their_record(s: &Subject) {
    let table = probes(s);
    let (acme, other) = (tenant("acme"), tenant("other"));
    let with = |t: &str, i: i64, token: Option<&str>, code: Option<&str>| {
        let mut p = probe(s, t, i);
        p.token = token.map(str::to_owned);
        p.code = code.map(str::to_owned);
        p
    };
    let first = table.insert(&with("acme", 1, Some("t-1"), Some("c-1"))).await.expect("insert");
    let conflict = table.insert(&with("acme", 2, Some("t-1"), None)).await;
    assert!(matches!(&conflict, Err(StorageError::Conflict { reason, .. }) if reason.contains("token")), "{conflict:?}");
    table.insert(&with("other", 2, Some("t-1"), None)).await.expect("a per-tenant key repeats in another tenant");
    let conflict = table.insert(&with("other", 3, None, Some("c-1"))).await;
    assert!(matches!(&conflict, Err(StorageError::Conflict { reason, .. }) if reason.contains("code")), "{conflict:?}");
    assert!(matches!(table.upsert(&with("acme", 5, Some("t-1"), None)).await, Err(StorageError::Conflict { .. })));
    assert_eq!(table.get_by_unique(&acme, "token", "t-1").await.expect("by token").map(|p| p.id), Some("p-001".into()));
    assert_eq!(table.get_by_unique(&other, "token", "t-1").await.expect("by token").map(|p| p.id), Some("p-002".into()));
    let found = table.find_global("code", "c-1").await.expect("global").expect("found");
    assert_eq!((found.tenant.as_str(), found.id.as_str(), found.secret.expose().as_str()), ("acme", "p-001", "secret-1"));
    assert_eq!(table.locate("code", "c-1").await.expect("locate"), Some((acme.clone(), "p-001".to_owned())));
    // Moving a record off a unique value frees it; deleting frees it too.
    let mut moved = first.clone();
    moved.code = Some("c-2".into());
    moved.token = None;
    table.update(&moved).await.expect("update");
    assert!(table.find_global("code", "c-1").await.expect("global").is_none());
    table.insert(&with("other", 3, None, Some("c-1"))).await.expect("the freed code is free");
    table.insert(&with("acme", 6, Some("t-1"), None)).await.expect("the freed token is free");
    assert!(table.delete(&other, "p-003").await.expect("delete"));
    assert!(table.locate("code", "c-1").await.expect("locate").is_none());
    let nothing: Vec<Probe> = table.get_many(&acme, &[]).await.expect("none");
    assert!(nothing.is_empty());
}

pub async fn increments_are_atomic_and_capped(s: &Subject) {
    let table = probes(s);
    let t = tenant("acme");
    let stored = table.insert(&probe(s, "acme", 1)).await.expect("insert");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (table, t) = (table.clone(), t.clone());
            tokio::spawn(async move {
                for _ in 0..10 {
                    table.increment(&t, "p-001", "hits", 1, None).await.expect("increment");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let read = table.get(&t, "p-001").await.expect("get").expect("present");
    assert_eq!(read.hits, 160, "every increment landed once");
    assert_eq!(read.version, stored.version + 160, "each increment is a write");
    assert_eq!(read.secret.expose(), "secret-1", "the rest of the record is untouched");
    assert_eq!(table.increment(&t, "p-001", "hits", 40, Some(200)).await.expect("up to the cap"), 200);
    assert!(matches!(table.increment(&t, "p-001", "hits", 1, Some(200)).await, Err(StorageError::Conflict { .. })));
    assert_eq!(table.increment(&t, "p-001", "hits", -150, Some(50)).await.expect("down to the floor"), 50);
    assert!(matches!(table.increment(&t, "p-001", "hits", -51, Some(0)).await, Err(StorageError::Conflict { .. })));
    assert_eq!(table.get(&t, "p-001").await.expect("get").expect("present").hits, 50, "a refused step changed nothing");
    assert!(matches!(table.increment(&t, "p-404", "hits", 1, None).await, Err(StorageError::NotFound { .. })));
    assert_invalid(table.increment(&t, "p-001", "hits", i64::MAX, None).await, "by");
    let ordered = all_pages(&table, Scope::Tenant(&t), &Query::new(Filter::all().ge("hits", 50_i64)), 5).await;
    assert_eq!(ids(&ordered), ["p-001"], "the counter column is indexed");
}

pub async fn get_many_returns_what_exists_in_order(s: &Subject) {
    seed(s, "acme", 5).await;
    let table = probes(s);
    let got = table.get_many(&tenant("acme"), &["p-003", "p-404", "p-000", "p-003"]).await.expect("get many");
    assert_eq!(ids(&got), ["p-003", "p-000"]);
    assert!(got.iter().all(|p| p.secret.expose().starts_with("secret-")));
    assert!(table.get_many(&tenant("other"), &["p-003"]).await.expect("get many").is_empty());
    assert_invalid(table.get_many(&tenant("acme"), &["ok", ""]).await, "id");
}

pub async fn units_apply_all_or_nothing(s: &Subject) {
    let (table, kids) = (probes(s), children(s));
    let t = tenant("acme");
    let stale = table.insert(&probe(s, "acme", 2)).await.expect("insert");
    table.update(&stale).await.expect("move it on");
    let child = |id: &str, parent: &str| ProbeChild {
        tenant: t.clone(),
        id: id.into(),
        parent: parent.into(),
        version: 0,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        updated_at: DateTime::<Utc>::UNIX_EPOCH,
    };
    let mut unit = table.unit(&t);
    unit.insert(&table, &probe(s, "acme", 1)).expect("add");
    unit.insert(&kids, &child("c-1", "p-001")).expect("add");
    unit.update(&table, &stale).expect("add");
    assert!(matches!(unit.commit().await, Err(StorageError::VersionMismatch { .. })));
    assert!(table.get(&t, "p-001").await.expect("get").is_none(), "nothing of a failed unit is applied");
    assert!(kids.get(&t, "c-1").await.expect("get").is_none());
    let mut unit = table.unit(&t);
    unit.insert(&table, &probe(s, "acme", 1)).expect("add");
    unit.insert(&kids, &child("c-1", "p-001")).expect("add");
    unit.insert(&kids, &child("c-2", "p-001")).expect("add");
    unit.delete(&table, "p-002").expect("add");
    let applied = unit.commit().await.expect("commit");
    assert!(matches!(applied.as_slice(), [Applied::Written(_), Applied::Written(_), Applied::Written(_), Applied::Deleted(true)]));
    assert!(table.get(&t, "p-002").await.expect("get").is_none());
    assert_eq!(kids.count(Scope::Tenant(&t), Filter::all().eq("parent", "p-001")).await.expect("count"), 2);
    let mut unit = table.unit(&t);
    assert_invalid(unit.insert(&table, &probe(s, "other", 9)), "unit");
    unit.delete(&kids, "c-1").expect("add");
    assert_invalid(unit.delete(&kids, "c-1"), "unit");
    let conflict = {
        let mut unit = table.unit(&t);
        unit.delete(&kids, "c-1").expect("add");
        unit.insert(&table, &probe(s, "acme", 1)).expect("add");
        unit.commit().await
    };
    assert!(matches!(conflict, Err(StorageError::Conflict { .. })));
    assert!(kids.get(&t, "c-1").await.expect("get").is_some(), "the delete before the conflict was not applied");
    // A run of inserts (one statement on PostgreSQL) with a taken id in the middle: a Conflict
    // naming that record, and none of the run applied.
    let mut unit = table.unit(&t);
    for id in ["c-3", "c-2", "c-4"] {
        unit.insert(&kids, &child(id, "p-009")).expect("add");
    }
    match unit.commit().await {
        Err(StorageError::Conflict { id, .. }) => assert_eq!(id, "c-2"),
        other => panic!("expected a Conflict on c-2, got {other:?}"),
    }
    assert_eq!(kids.count(Scope::Tenant(&t), Filter::all().eq("parent", "p-009")).await.expect("count"), 0);
}

pub async fn sealed_fields_cannot_be_removed_or_moved(s: &Subject) {
    let table = probes(s);
    let t = tenant("acme");
    let p = table.insert(&probe(s, "acme", 1)).await.expect("insert");
    let victim = table.insert(&probe(s, "acme", 2)).await.expect("insert");
    let tables = s.engine.tables();
    let now = s.clock.now();
    let raw = |id: &str| {
        let tables = Arc::clone(&tables);
        let (t, id) = (t.clone(), id.to_owned());
        async move { tables.get(&Probe::TABLE, &t, &[id], now).await.expect("raw get").pop().expect("row") }
    };
    let write = |id: &str, body: String, doc: &Probe| Change::Write {
        row: RowWrite {
            table: &Probe::TABLE,
            tenant: t.clone(),
            id: id.to_owned(),
            indexes: doc.index_values(),
            expires_at: None,
            body,
            search: None,
        },
        mode: WriteMode::Upsert,
    };
    // The sealed part removed from the stored body: the record does not read without it.
    let mut body: serde_json::Value = serde_json::from_str(&raw("p-001").await.body).expect("json");
    body.as_object_mut().expect("object").remove("s");
    tables.apply(&t, vec![write("p-001", body.to_string(), &p)], now).await.expect("tamper");
    assert!(matches!(table.get(&t, "p-001").await, Err(StorageError::Crypto { .. })));
    // Another record's sealed part, with this record's identity: it does not open here.
    let mut body: serde_json::Value = serde_json::from_str(&raw("p-002").await.body).expect("json");
    body["r"]["id"] = serde_json::Value::from("p-001");
    tables.apply(&t, vec![write("p-001", body.to_string(), &p)], now).await.expect("tamper");
    assert!(matches!(table.get(&t, "p-001").await, Err(StorageError::Crypto { .. })));
    assert_eq!(table.get(&t, "p-002").await.expect("get").expect("present"), victim, "the victim is intact");
}
