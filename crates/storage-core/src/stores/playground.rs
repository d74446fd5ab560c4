//! Playground debate results (catalogue #47): the results of quick public debates, kept for a
//! while to be shared, and a content-addressed cache index that finds an earlier debate of the
//! same topic, models and rounds.
//!
//! Both expire with the engine's own expiry (every read stops seeing them at once; one cleanup
//! purges both tables, so index rows never outlive their debate for long), and a re-save renews
//! the debate's entries with it. A cache hit counts itself with one conditional increment, so
//! concurrent hits are all counted.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::limits::add;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::{Table, int_value};
use crate::token::hash_token;
use crate::{PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;

/// How long a result is kept unless the caller says otherwise.
pub const DEFAULT_PLAYGROUND_TTL: TimeDelta = TimeDelta::days(30);
/// The longest a result may be kept.
pub const MAX_PLAYGROUND_TTL: TimeDelta = TimeDelta::days(3_650);
/// The largest result, in bytes of JSON.
pub const MAX_PLAYGROUND_RESULT_BYTES: usize = 1024 * 1024;
/// The most models a cache key covers.
pub const MAX_CACHE_MODELS: usize = 64;
/// The longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 4 * 1024;
/// The most cache entries a re-save renews with its debate (more expire at the old time: a miss,
/// never a wrong hit).
pub const MAX_RENEWED_ENTRIES: u32 = 1_000;

/// A playground debate's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaygroundDebate {
    /// The tenant (a deployment's public playground uses one of its own).
    pub tenant: TenantId,
    /// The debate.
    pub debate_id: String,
    /// What was debated.
    pub topic: String,
    /// The result.
    pub result: Value,
    /// Where it came from (`playground` by default).
    pub source: String,
    /// When last saved (the store's clock); `list_recent` goes newest first by it.
    pub saved_at: DateTime<Utc>,
    /// When it stops being readable.
    pub expires_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first saved.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last saved.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for PlaygroundDebate {
    const TABLE: TableDef = TableDef {
        name: "playground_debates",
        entity: "playground debate",
        id_field: "debate_id",
        indexes: &[IndexSpec::time("saved_at")],
        expires: true,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.debate_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::Time(self.saved_at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("debate_id", &self.debate_id)?;
        validate_id("source", &self.source)?;
        crate::limits::check_prose("topic", &self.topic, MAX_TOPIC_BYTES)?;
        let size = serde_json::to_string(&self.result).map_err(|e| StorageError::invalid("result", e))?.len();
        if size > MAX_PLAYGROUND_RESULT_BYTES {
            return Err(StorageError::invalid("result", format!("{size} bytes of JSON; at most {MAX_PLAYGROUND_RESULT_BYTES}")));
        }
        Ok(())
    }
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        Some(self.expires_at)
    }
}

/// A cache index entry: which debate answered a topic, for these models and rounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedDebate {
    /// The tenant.
    pub tenant: TenantId,
    /// [`cache_key`] of the topic, models and rounds.
    pub cache_key: String,
    /// The debate that answered it.
    pub debate_id: String,
    /// The topic, normalised.
    pub topic_normalized: String,
    /// The models, sorted.
    pub model_ids: Vec<String>,
    /// The rounds.
    pub rounds: u32,
    /// How often it was hit.
    #[serde(default)]
    pub hit_count: u64,
    /// When indexed (the store's clock).
    pub indexed_at: DateTime<Utc>,
    /// When it expires: with its debate.
    pub expires_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When indexed.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for CachedDebate {
    const TABLE: TableDef = TableDef {
        name: "playground_cache",
        entity: "playground cache entry",
        id_field: "cache_key",
        indexes: &[IndexSpec::text("debate_id"), IndexSpec::counter("hit_count"), IndexSpec::time("indexed_at")],
        expires: true,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.cache_key.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.debate_id)), Some(int_value(self.hit_count)), Some(IndexValue::Time(self.indexed_at))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("cache_key", &self.cache_key)?;
        validate_id("debate_id", &self.debate_id)?;
        Ok(())
    }
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        Some(self.expires_at)
    }
    fn set_counter(&mut self, _column: &str, value: i64) -> Result<()> {
        self.hit_count = u64::try_from(value).map_err(|_| StorageError::invalid("hit_count", "is negative"))?;
        Ok(())
    }
}

/// A topic as the cache compares it: trimmed, lower-cased, runs of white space as one space.
pub fn normalize_topic(topic: &str) -> String {
    topic.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

/// The cache key of a debate of `topic` between `model_ids` (in any order) over `rounds`: the
/// SHA-256 of the normalised topic, the sorted models and the rounds.
pub fn cache_key(topic: &str, model_ids: &[&str], rounds: u32) -> String {
    let mut models: Vec<&str> = model_ids.to_vec();
    models.sort_unstable();
    hash_token(&serde_json::json!([normalize_topic(topic), models, rounds]).to_string())
}

/// A cache hit: the debate, and how often its entry has been hit, this hit included.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheHit {
    /// The debate.
    pub debate: PlaygroundDebate,
    /// The entry's hits so far.
    pub hit_count: u64,
}

/// Playground debate results and their cache index, per tenant.
#[async_trait]
pub trait PlaygroundDebateStore: Send + Sync + fmt::Debug {
    /// Saves a debate's result for `ttl` (positive, at most [`MAX_PLAYGROUND_TTL`]), replacing an
    /// earlier one; its cache entries now expire with it.
    async fn save(
        &self,
        tenant: &TenantId,
        debate_id: &str,
        topic: &str,
        result: Value,
        source: &str,
        ttl: TimeDelta,
    ) -> Result<PlaygroundDebate>;
    /// The debate's result, until it expires.
    async fn get(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<PlaygroundDebate>>;
    /// The `limit` most recently saved live results, newest first.
    async fn list_recent(&self, tenant: &TenantId, limit: u32) -> Result<Vec<PlaygroundDebate>>;
    /// Deletes a result and its cache entries; whether it existed.
    async fn delete(&self, tenant: &TenantId, debate_id: &str) -> Result<bool>;
    /// Indexes a live debate under [`cache_key`] of `topic`, `model_ids` and `rounds` (replacing
    /// an earlier entry, hits reset); the entry expires with the debate. `NotFound` if the debate
    /// is not live.
    async fn save_cache_index(
        &self,
        tenant: &TenantId,
        topic: &str,
        model_ids: &[&str],
        rounds: u32,
        debate_id: &str,
    ) -> Result<CachedDebate>;
    /// The debate a cache key finds, counting the hit; `None` (and the entry forgotten) when
    /// its debate is gone.
    async fn get_by_cache_key(&self, tenant: &TenantId, cache_key: &str) -> Result<Option<CacheHit>>;
    /// Deletes every expired result and cache entry of every tenant; how many.
    async fn cleanup_expired(&self) -> Result<u64>;
}

/// [`PlaygroundDebateStore`] on any backend.
pub struct PlaygroundDebates<B: ?Sized = dyn Engine> {
    debates: Table<PlaygroundDebate>,
    cache: Table<CachedDebate>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(PlaygroundDebates { debates, cache });

#[async_trait]
impl<B: ?Sized> PlaygroundDebateStore for PlaygroundDebates<B> {
    async fn save(
        &self,
        tenant: &TenantId,
        debate_id: &str,
        topic: &str,
        result: Value,
        source: &str,
        ttl: TimeDelta,
    ) -> Result<PlaygroundDebate> {
        if ttl <= TimeDelta::zero() || ttl > MAX_PLAYGROUND_TTL {
            return Err(StorageError::invalid("ttl", format!("{ttl}; must be positive and at most {MAX_PLAYGROUND_TTL}")));
        }
        let now = self.debates.now();
        let debate = PlaygroundDebate {
            tenant: tenant.clone(),
            debate_id: debate_id.to_owned(),
            topic: topic.to_owned(),
            result,
            source: source.to_owned(),
            saved_at: now,
            expires_at: add("ttl", now, ttl)?,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let saved = self.debates.upsert(&debate).await?;
        // Renew the entries that find it (a failure here leaves them expiring early: misses).
        let query = Query::new(Filter::all().eq("debate_id", debate_id));
        let entries = self.cache.list(Scope::Tenant(tenant), query, &PageRequest::first(MAX_RENEWED_ENTRIES)).await?;
        for entry in entries.items {
            let expires_at = saved.expires_at;
            let renewed = self.cache.patch(tenant, &entry.cache_key, |entry| {
                if entry.debate_id == debate_id {
                    entry.expires_at = expires_at;
                }
                Ok(())
            });
            match renewed.await {
                Ok(_) | Err(StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(saved)
    }

    async fn get(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<PlaygroundDebate>> {
        self.debates.get(tenant, debate_id).await
    }

    async fn list_recent(&self, tenant: &TenantId, limit: u32) -> Result<Vec<PlaygroundDebate>> {
        let query = Query::new(Filter::all()).order(Order::desc("saved_at"));
        Ok(self.debates.list(Scope::Tenant(tenant), query, &PageRequest::first(limit)).await?.items)
    }

    async fn delete(&self, tenant: &TenantId, debate_id: &str) -> Result<bool> {
        // The debate first: an entry indexed meanwhile is refused (no live debate), so none
        // outlives this call.
        let existed = self.debates.delete(tenant, debate_id).await?;
        self.cache.delete_where(Scope::Tenant(tenant), Filter::all().eq("debate_id", debate_id)).await?;
        Ok(existed)
    }

    async fn save_cache_index(
        &self,
        tenant: &TenantId,
        topic: &str,
        model_ids: &[&str],
        rounds: u32,
        debate_id: &str,
    ) -> Result<CachedDebate> {
        crate::limits::check_text("topic", topic)?;
        if model_ids.len() > MAX_CACHE_MODELS {
            return Err(StorageError::invalid("model_ids", format!("{} models; at most {MAX_CACHE_MODELS}", model_ids.len())));
        }
        model_ids.iter().try_for_each(|model| validate_id("model_ids", model))?;
        let debate =
            self.debates.get(tenant, debate_id).await?.ok_or_else(|| StorageError::not_found(PlaygroundDebate::TABLE.entity, debate_id))?;
        let mut models: Vec<String> = model_ids.iter().map(|&model| model.to_owned()).collect();
        models.sort_unstable();
        let entry = CachedDebate {
            tenant: tenant.clone(),
            cache_key: cache_key(topic, model_ids, rounds),
            debate_id: debate_id.to_owned(),
            topic_normalized: normalize_topic(topic),
            model_ids: models,
            rounds,
            hit_count: 0,
            indexed_at: self.cache.now(),
            expires_at: debate.expires_at,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        self.cache.upsert(&entry).await
    }

    async fn get_by_cache_key(&self, tenant: &TenantId, cache_key: &str) -> Result<Option<CacheHit>> {
        let Some(entry) = self.cache.get(tenant, cache_key).await? else { return Ok(None) };
        let Some(debate) = self.debates.get(tenant, &entry.debate_id).await? else {
            // The debate is gone: forget the entries that found it when this one was read (one
            // indexed again since, for a debate saved again, stays).
            let stale = Filter::all().eq("debate_id", entry.debate_id.as_str()).le("indexed_at", entry.indexed_at);
            self.cache.delete_where(Scope::Tenant(tenant), stale).await?;
            return Ok(None);
        };
        match self.cache.increment(tenant, cache_key, "hit_count", 1, None).await {
            Ok(hits) => Ok(Some(CacheHit { debate, hit_count: u64::try_from(hits).unwrap_or(0) })),
            // Expired or deleted between the reads: a miss.
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let entries = self.cache.purge_expired().await?;
        Ok(entries.saturating_add(self.debates.purge_expired().await?))
    }
}
