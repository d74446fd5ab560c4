//! Key rotation: the census, re-encryption beside live writers, resuming after a kill, and
//! retiring the old key only once nothing needs it.

use crate::{Subject, tenant};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use storage_core::rotation::{self, Rotation, RotationReport};
use storage_core::stores::integration::IntegrationConfig;
use storage_core::{Document, Engine, Filter, Scope, Secret, StorageError, Table, TenantId, with_sealer};
use storage_crypto::{EncryptionKey, KeyRing};

/// Two rings over one key change: the old one (`K1` alone) and the new one (`K2` sealing, `K1`
/// still opening), with the keys' ids.
#[derive(Debug)]
pub struct Rings {
    /// `K1` alone.
    pub old: Arc<KeyRing>,
    /// `K2` primary, `K1` previous.
    pub new: Arc<KeyRing>,
    /// `K1`'s id.
    pub old_key: String,
    /// `K2`'s id.
    pub new_key: String,
}

impl Rings {
    /// Two fresh keys.
    pub fn generate() -> Self {
        let k1 = EncryptionKey::generate().expect("key");
        let k2 = EncryptionKey::generate().expect("key");
        Self {
            old_key: k1.name(),
            new_key: k2.name(),
            old: Arc::new(KeyRing::single(k1.clone()).expect("ring")),
            new: Arc::new(KeyRing::new(k2, vec![k1]).expect("ring")),
        }
    }
}

fn config(tenant: &TenantId, i: usize) -> IntegrationConfig {
    IntegrationConfig::new(tenant.clone(), format!("integration-{i:06}"), "slack")
        .with_credential("token", format!("secret-{i}"))
        .with_setting("writes", 0)
}

/// Writes `count` sealed integration configs over `tenants` tenants, in units of up to 1,000.
pub async fn seed(table: &Table<IntegrationConfig>, tenants: usize, count: usize) -> Vec<(TenantId, String)> {
    let tenants: Vec<TenantId> = (0..tenants).map(|t| tenant(&format!("rot-{t}"))).collect();
    let mut ids = Vec::with_capacity(count);
    let mut by_tenant: BTreeMap<usize, Vec<IntegrationConfig>> = BTreeMap::new();
    for i in 0..count {
        let t = i % tenants.len();
        by_tenant.entry(t).or_default().push(config(&tenants[t], i));
    }
    for (t, docs) in by_tenant {
        for chunk in docs.chunks(1_000) {
            let mut unit = table.unit(&tenants[t]);
            for doc in chunk {
                unit.insert(table, doc).expect("unit");
                ids.push((tenants[t].clone(), doc.key.clone()));
            }
            unit.commit().await.expect("seed");
        }
    }
    ids
}

/// Re-encryption reseals every sealed value under the primary key, in small batches through a
/// checkpoint file, leaves every secret and every other field as it was, and lets the old key go
/// only when nothing uses it any more.
pub async fn rotation_reseals_everything_and_retires_the_old_key(s: &Subject) {
    let rings = Rings::generate();
    let old = with_sealer(Arc::clone(&s.engine), rings.old.clone());
    let new = with_sealer(Arc::clone(&s.engine), rings.new.clone());
    let ids = seed(&old.table::<IntegrationConfig>(), 3, 50).await;

    let census = rotation::census(new.as_ref()).await.expect("census");
    assert_eq!(census.count(&rings.old_key), 50);
    assert_eq!(census.tables.get("integrations").and_then(|keys| keys.get(&rings.old_key)), Some(&50));
    let refused = rotation::retire(new.as_ref(), &rings.old_key).await;
    assert!(matches!(refused, Err(StorageError::Conflict { .. })), "{refused:?}");
    assert!(matches!(rotation::retire(new.as_ref(), &rings.new_key).await, Err(StorageError::InvalidInput { .. })), "not the primary");
    assert!(matches!(
        rotation::reencrypt(new.as_ref(), &Rotation { batch: 0, checkpoint: None }, &|_| {}).await,
        Err(StorageError::InvalidInput { .. })
    ));

    let dir = tempfile::tempdir().expect("dir");
    let checkpoint = dir.path().join("rotation.json");
    let seen = AtomicU64::new(0);
    let options = Rotation { batch: 7, checkpoint: Some(checkpoint.clone()) };
    let report = rotation::reencrypt(new.as_ref(), &options, &|p| seen.store(p.scanned, Ordering::SeqCst)).await.expect("rotate");
    assert_eq!((report.resealed, report.scanned, report.resumed), (50, 50, false), "{report:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 50);
    assert!(!checkpoint.exists(), "a finished rotation leaves no checkpoint");

    let census = rotation::census(new.as_ref()).await.expect("census");
    assert_eq!((census.count(&rings.old_key), census.count(&rings.new_key)), (0, 50));
    rotation::retire(new.as_ref(), &rings.old_key).await.expect("the old key is free");

    let table = new.table::<IntegrationConfig>();
    for (tenant, id) in &ids {
        let doc = table.get(tenant, id).await.expect("read").expect("present");
        let i: usize = id.trim_start_matches("integration-").parse().expect("index");
        assert_eq!(doc.credentials.get("token").map(Secret::expose), Some(&format!("secret-{i}")));
        assert_eq!(doc.meta().version, 2, "one write each");
    }
    // Without K2 nothing opens: the values really are sealed with it now.
    let stale = old.table::<IntegrationConfig>().get(&ids[0].0, &ids[0].1).await;
    assert!(matches!(stale, Err(StorageError::Crypto { .. })), "{stale:?}");

    let again = rotation::reencrypt(new.as_ref(), &Rotation::default(), &|_| {}).await.expect("rerun");
    assert_eq!((again.resealed, again.scanned), (0, 50), "a rerun finds nothing to do");
}

/// What a rotation under load measured.
#[derive(Debug)]
pub struct RotationUnderLoad {
    /// The three runs (two killed, one finished): how long each ran.
    pub runs: Vec<Duration>,
    /// The finished run's report.
    pub report: RotationReport,
    /// Records re-sealed per second, over the three runs.
    pub rate: f64,
    /// Updates the writers made while it ran.
    pub updates: u64,
}

/// Rotates `count` sealed records while 4 tasks keep updating them (a secret and a counter in
/// the record each time), killing the rotation twice mid-way (its task dropped, as a crash or
/// Ctrl-C drops it) and resuming from its checkpoint: every record readable and under the new key,
/// every writer's last update there, and the old key retirable only at the end.
pub async fn rotation_survives_kills_beside_writers(engine: Arc<dyn Engine>, count: usize) -> RotationUnderLoad {
    let rings = Rings::generate();
    let old = with_sealer(Arc::clone(&engine), rings.old.clone());
    let new = with_sealer(Arc::clone(&engine), rings.new.clone());
    let ids = Arc::new(seed(&old.table::<IntegrationConfig>(), 8, count).await);

    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..4usize {
        let (table, ids, stop, updates) = (new.table::<IntegrationConfig>(), Arc::clone(&ids), Arc::clone(&stop), Arc::clone(&updates));
        writers.push(tokio::spawn(async move {
            // Each writer owns every fourth record: its last value for each is what must remain.
            let mut last: BTreeMap<usize, u64> = BTreeMap::new();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let at = w + 4 * fastrand::usize(..ids.len() / 4);
                let (tenant, id) = &ids[at];
                n += 1;
                // As an application would: a retryable error (a lock wait past the statement
                // timeout on a loaded machine) is tried again; the patch is idempotent.
                loop {
                    let patched = table
                        .patch(tenant, id, |doc| {
                            doc.settings.insert("writes".into(), n.into());
                            doc.credentials.insert("token".into(), Secret::new(format!("w{w}-{n}")));
                            Ok(())
                        })
                        .await;
                    match patched {
                        Ok(_) => break,
                        Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(10)).await,
                        Err(e) => panic!("update: {e:?}"),
                    }
                }
                last.insert(at, n);
                updates.fetch_add(1, Ordering::Relaxed);
            }
            (w, last)
        }));
    }

    // A fifth task keeps creating records, sealed with the new key, while the rotation runs.
    let inserter = {
        let (table, stop) = (new.table::<IntegrationConfig>(), Arc::clone(&stop));
        tokio::spawn(async move {
            let fresh = tenant("rot-fresh");
            let mut inserted = 0usize;
            while !stop.load(Ordering::SeqCst) && inserted < 2_000 {
                let mut retried = false;
                loop {
                    match table.insert(&config(&fresh, count + inserted)).await {
                        Ok(_) => break,
                        // An earlier attempt whose answer was lost had inserted it.
                        Err(StorageError::Conflict { .. }) if retried => break,
                        Err(e) if e.is_retryable() => {
                            retried = true;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err(e) => panic!("insert: {e:?}"),
                    }
                }
                inserted += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            inserted
        })
    };

    let dir = tempfile::tempdir().expect("dir");
    let options = Rotation { batch: 500, checkpoint: Some(dir.path().join("rotation.json")) };
    let mut runs = Vec::new();
    let mut report = None;
    let mut last_seen = 0u64;
    let mut interrupted = 0;
    // Killed at 30 % and 60 %, then run to the end (again, if a run stops on a retryable error).
    for kill_at in [0.3, 0.6].into_iter().chain(std::iter::repeat(f64::INFINITY)) {
        if report.is_some() {
            break;
        }
        let scanned = Arc::new(AtomicU64::new(0));
        let first = Arc::new(AtomicU64::new(u64::MAX));
        let (engine, run_options, seen, first_seen) = (Arc::clone(&new), options.clone(), Arc::clone(&scanned), Arc::clone(&first));
        let started = Instant::now();
        let mut run = tokio::spawn(async move {
            let progress = move |p: &storage_core::RotationProgress| {
                let _ = first_seen.compare_exchange(u64::MAX, p.scanned, Ordering::SeqCst, Ordering::SeqCst);
                seen.store(p.scanned, Ordering::SeqCst);
            };
            rotation::reencrypt(engine.as_ref(), &run_options, &progress).await
        });
        let limit = (count as f64 * kill_at) as u64;
        loop {
            tokio::select! {
                outcome = &mut run => {
                    match outcome.expect("rotation task") {
                        Ok(done) => report = Some(done),
                        // A unit failed retryably (on PostgreSQL, once, a lock wait past the
                        // statement timeout beside the writers): the run stops as a killed one
                        // does, and the next resumes from the checkpoint, as an operator would.
                        Err(e) if e.is_retryable() && interrupted < 3 => {
                            interrupted += 1;
                            println!("the rotation stopped on a retryable error and is run again: {e}");
                        }
                        Err(e) => panic!("rotation: {e:?}"),
                    }
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(5)) => {
                    if scanned.load(Ordering::SeqCst) >= limit {
                        run.abort();
                        let _ = run.await;
                        break;
                    }
                }
            }
        }
        runs.push(started.elapsed());
        let first = first.load(Ordering::SeqCst);
        assert!(last_seen == 0 || first > last_seen, "a resumed run starts after the checkpoint ({first} > {last_seen})");
        last_seen = scanned.load(Ordering::SeqCst);
        if report.is_none() {
            assert!(options.checkpoint.as_ref().is_some_and(|c| c.exists()), "a killed run leaves its checkpoint");
            let refused = rotation::retire(new.as_ref(), &rings.old_key).await;
            assert!(matches!(refused, Err(StorageError::Conflict { .. })), "the old key is still in use: {refused:?}");
        }
    }
    let report = report.expect("the third run finishes");
    assert!(report.resumed, "the last run resumed where the killed one stopped");

    stop.store(true, Ordering::SeqCst);
    let mut expected: BTreeMap<usize, (usize, u64)> = BTreeMap::new();
    for writer in writers {
        let (w, last) = writer.await.expect("writer");
        expected.extend(last.into_iter().map(|(at, n)| (at, (w, n))));
    }
    let inserted = inserter.await.expect("inserter");
    assert!(inserted > 0);
    let census = rotation::census(new.as_ref()).await.expect("census");
    assert_eq!(census.count(&rings.old_key), 0, "nothing left under the old key: {census:?}");
    assert_eq!(census.count(&rings.new_key), (count + inserted) as u64, "the records created meanwhile too");
    rotation::retire(new.as_ref(), &rings.old_key).await.expect("retire at the end");

    let table = new.table::<IntegrationConfig>();
    let mut by_tenant: BTreeMap<&TenantId, Vec<(usize, &str)>> = BTreeMap::new();
    for (at, (tenant, id)) in ids.iter().enumerate() {
        by_tenant.entry(tenant).or_default().push((at, id.as_str()));
    }
    let mut checked = 0usize;
    for (tenant, records) in by_tenant {
        for chunk in records.chunks(500) {
            let wanted: Vec<&str> = chunk.iter().map(|(_, id)| *id).collect();
            let docs = table.get_many(tenant, &wanted).await.expect("every record readable");
            assert_eq!(docs.len(), wanted.len());
            for ((at, id), doc) in chunk.iter().zip(&docs) {
                let token = doc.credentials.get("token").map(|t| t.expose().clone());
                match expected.get(at) {
                    Some((w, n)) => {
                        assert_eq!(token, Some(format!("w{w}-{n}")), "record {at}: writer {w}'s last update survives");
                        assert_eq!(doc.settings.get("writes"), Some(&(*n).into()));
                    }
                    None => {
                        let seeded = id.trim_start_matches("integration-").parse::<usize>().expect("index");
                        assert_eq!(token, Some(format!("secret-{seeded}")), "record {id} was never updated");
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, count);
    let listed = table.count(Scope::AllTenants, Filter::all()).await.expect("count");
    assert_eq!(listed, (count + inserted) as u64);
    let fresh =
        table.list_all(Scope::Tenant(&tenant("rot-fresh")), storage_core::Query::new(Filter::all())).await.expect("fresh ones open");
    assert_eq!(fresh.len(), inserted);

    let total: Duration = runs.iter().sum();
    let rate = count as f64 / total.as_secs_f64();
    RotationUnderLoad { runs, report, rate, updates: updates.load(Ordering::Relaxed) }
}
