//! The debate archive (catalogue #48, the original's `DebateStorage`): finished debates of an
//! organisation, each under a human-readable permalink slug that is unique across tenants.
//!
//! A slug is allocated by the unique index itself: the store inserts under the slug of the task
//! and, when another debate holds it, under that slug with a random suffix, until an insert
//! succeeds — so concurrent saves of one title get distinct slugs, a deletion never leads to a
//! taken slug being handed out, and suffixes say nothing about how many other organisations
//! debated the same title that day. Every call that reads a debate by
//! id or changes one names the organisation that owns it (there is no unchecked variant); a
//! permalink opens without an organisation only for a public debate.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Order, Query, Scope};
use crate::table::{Table, int_value};
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;

/// The most words of a task that make its slug.
pub const SLUG_WORDS: usize = 4;
/// Random suffixes tried when a debate's slug is taken (each is 32 random bits: with a million
/// debates of one title and day, all eight collide with odds below 10^-18).
pub const SLUG_ATTEMPTS: usize = 8;
/// The most agents a debate lists.
pub const MAX_AGENTS: usize = 64;
/// The longest task, in bytes.
pub const MAX_TASK_BYTES: usize = 4 * 1024;

/// Words left out of slugs.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how", "if", "in", "is", "it", "of", "on", "or",
    "should", "that", "the", "this", "to", "vs", "was", "we", "what", "when", "which", "who", "why", "will", "with", "would",
];

/// A debate's generated audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebateAudio {
    /// Where the audio file is.
    pub path: String,
    /// When it was generated.
    pub generated_at: DateTime<Utc>,
    /// How long it plays, in seconds.
    pub duration_seconds: u32,
}

/// An archived debate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedDebate {
    /// The organisation that owns it.
    pub tenant: TenantId,
    /// The debate.
    pub debate_id: String,
    /// Its permalink slug, unique across organisations (set by the store, never changed).
    pub slug: String,
    /// What was debated.
    pub task: String,
    /// Who debated.
    pub agents: Vec<String>,
    /// The debate's artifact.
    pub artifact: Value,
    /// Whether the agents agreed.
    pub consensus_reached: bool,
    /// How confident the consensus is, 0 to 1.
    pub confidence: Option<f64>,
    /// How often its permalink was opened.
    #[serde(default)]
    pub view_count: u64,
    /// Its audio, once generated.
    pub audio: Option<DebateAudio>,
    /// Whether its permalink opens for anyone.
    pub is_public: bool,
    /// When first archived (the store's clock); lists go newest first by it.
    pub archived_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first archived.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for ArchivedDebate {
    const TABLE: TableDef = TableDef {
        name: "archived_debates",
        entity: "archived debate",
        id_field: "debate_id",
        indexes: &[
            IndexSpec::text("slug").global(),
            IndexSpec::bool("is_public"),
            IndexSpec::time("archived_at"),
            IndexSpec::counter("view_count"),
        ],
        expires: false,
        sealed: false,
        search: true,
    };

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn id(&self) -> String {
        self.debate_id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::from(&self.slug)),
            Some(IndexValue::Bool(self.is_public)),
            Some(IndexValue::Time(self.archived_at)),
            Some(int_value(self.view_count)),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("debate_id", &self.debate_id)?;
        validate_id("slug", &self.slug)?;
        check_task(&self.task)?;
        if self.agents.len() > MAX_AGENTS {
            return Err(StorageError::invalid("agents", format!("{} agents; at most {MAX_AGENTS}", self.agents.len())));
        }
        self.agents.iter().try_for_each(|agent| validate_id("agents", agent))?;
        if let Some(confidence) = self.confidence
            && !(0.0..=1.0).contains(&confidence)
        {
            return Err(StorageError::invalid("confidence", format!("{confidence}; must be 0 to 1")));
        }
        if let Some(audio) = &self.audio {
            crate::limits::check_text("audio.path", &audio.path)?;
        }
        Ok(())
    }
    fn search_text(&self) -> String {
        format!("{} {}", self.task, self.slug.replace('-', " "))
    }
    fn set_counter(&mut self, _column: &str, value: i64) -> Result<()> {
        self.view_count = u64::try_from(value).map_err(|_| StorageError::invalid("view_count", "is negative"))?;
        Ok(())
    }
}

fn check_task(task: &str) -> Result<()> {
    if task.trim().is_empty() {
        return Err(StorageError::invalid("task", "must not be empty"));
    }
    crate::limits::check_prose("task", task, MAX_TASK_BYTES)
}

/// The slug of a debate of `task` archived on `date`: its first [`SLUG_WORDS`] words that are
/// not stop words, lower-case ASCII letters and digits joined by `-`, then the date
/// (`rate-limiter-design-2026-11-29`); `debate-<date>` for a task without such words.
pub fn slug_base(task: &str, date: NaiveDate) -> String {
    let words: Vec<String> = task
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .filter(|word| !word.is_empty() && !STOP_WORDS.contains(&word.as_str()))
        .take(SLUG_WORDS)
        .map(|word| word.chars().take(32).collect())
        .collect();
    let stem = if words.is_empty() { "debate".to_owned() } else { words.join("-") };
    format!("{stem}-{}", date.format("%Y-%m-%d"))
}

/// A debate to archive: [`DebateArchiveStore::save`]'s input.
#[derive(Debug, Clone, PartialEq)]
pub struct NewArchivedDebate {
    /// The debate.
    pub debate_id: String,
    /// What was debated.
    pub task: String,
    /// Who debated.
    pub agents: Vec<String>,
    /// The debate's artifact.
    pub artifact: Value,
    /// Whether the agents agreed.
    pub consensus_reached: bool,
    /// How confident the consensus is, 0 to 1.
    pub confidence: Option<f64>,
    /// Whether its permalink opens for anyone.
    pub is_public: bool,
}

/// The debate archive.
#[async_trait]
pub trait DebateArchiveStore: Send + Sync + fmt::Debug {
    /// Archives a debate of `tenant` under a new unique slug, or (archived already) replaces its
    /// content and visibility, keeping its slug, views and audio.
    async fn save(&self, tenant: &TenantId, debate: NewArchivedDebate) -> Result<ArchivedDebate>;
    /// The tenant's debate.
    async fn get(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<ArchivedDebate>>;
    /// The tenant's debate under `slug` (public or not), without counting a view.
    async fn get_by_slug(&self, tenant: &TenantId, slug: &str) -> Result<Option<ArchivedDebate>>;
    /// Opens a permalink, counting a view: the debate under `slug` if it is public or belongs to
    /// `viewer`; `None` otherwise (a private debate is not told apart from a missing one). The
    /// debate is checked as read: one made private while its permalink opens may still show, to
    /// that request only.
    async fn open_permalink(&self, slug: &str, viewer: Option<&TenantId>) -> Result<Option<ArchivedDebate>>;
    /// The tenant's debates whose task or slug holds every term of `query`, best first: `limit`
    /// of them after the first `offset`, and how many match in all.
    async fn search(&self, tenant: &TenantId, query: &str, limit: u32, offset: u32) -> Result<(Vec<ArchivedDebate>, u64)>;
    /// One page of the tenant's debates, newest first.
    async fn list_recent(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ArchivedDebate>>;
    /// How many debates the tenant has archived.
    async fn count(&self, tenant: &TenantId) -> Result<u64>;
    /// Makes the tenant's debate public or private. `NotFound` unless the tenant owns it.
    async fn set_public(&self, tenant: &TenantId, debate_id: &str, is_public: bool) -> Result<ArchivedDebate>;
    /// Sets or clears the tenant's debate's audio. `NotFound` unless the tenant owns it.
    async fn set_audio(&self, tenant: &TenantId, debate_id: &str, audio: Option<DebateAudio>) -> Result<ArchivedDebate>;
    /// Deletes the tenant's debate; whether the tenant owned it. Its slug is free again: a
    /// later debate of the same task and day may get it.
    async fn delete(&self, tenant: &TenantId, debate_id: &str) -> Result<bool>;
}

/// [`DebateArchiveStore`] on any backend.
pub struct DebateArchive<B: ?Sized = dyn Engine> {
    debates: Table<ArchivedDebate>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(DebateArchive { debates });

impl<B: ?Sized> DebateArchive<B> {
    /// Replaces the content of an archived debate.
    async fn replace(&self, tenant: &TenantId, debate: &NewArchivedDebate) -> Result<ArchivedDebate> {
        self.debates
            .patch(tenant, &debate.debate_id, |stored| {
                stored.task.clone_from(&debate.task);
                stored.agents.clone_from(&debate.agents);
                stored.artifact.clone_from(&debate.artifact);
                (stored.consensus_reached, stored.confidence, stored.is_public) =
                    (debate.consensus_reached, debate.confidence, debate.is_public);
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl<B: ?Sized> DebateArchiveStore for DebateArchive<B> {
    async fn save(&self, tenant: &TenantId, debate: NewArchivedDebate) -> Result<ArchivedDebate> {
        let now = self.debates.now();
        let base = slug_base(&debate.task, now.date_naive());
        let mut archived = ArchivedDebate {
            tenant: tenant.clone(),
            debate_id: debate.debate_id.clone(),
            slug: base.clone(),
            task: debate.task.clone(),
            agents: debate.agents.clone(),
            artifact: debate.artifact.clone(),
            consensus_reached: debate.consensus_reached,
            confidence: debate.confidence,
            view_count: 0,
            audio: None,
            is_public: debate.is_public,
            archived_at: now,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        archived.validate()?;
        let suffixed = || format!("{base}-{}", uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap_or_default());
        for slug in std::iter::once(base.clone()).chain(std::iter::repeat_with(suffixed).take(SLUG_ATTEMPTS)) {
            archived.slug = slug;
            match self.debates.insert(&archived).await {
                // The slug is taken — or the debate is archived already: then it is a re-save.
                Err(StorageError::Conflict { .. }) => {
                    if self.debates.get(tenant, &debate.debate_id).await?.is_some() {
                        return self.replace(tenant, &debate).await;
                    }
                }
                other => return other,
            }
        }
        Err(StorageError::conflict(ArchivedDebate::TABLE.entity, debate.debate_id, "no free slug was found; try again"))
    }

    async fn get(&self, tenant: &TenantId, debate_id: &str) -> Result<Option<ArchivedDebate>> {
        self.debates.get(tenant, debate_id).await
    }

    async fn get_by_slug(&self, tenant: &TenantId, slug: &str) -> Result<Option<ArchivedDebate>> {
        self.debates.get_by_unique(tenant, "slug", slug).await
    }

    async fn open_permalink(&self, slug: &str, viewer: Option<&TenantId>) -> Result<Option<ArchivedDebate>> {
        let Some(debate) = self.debates.find_global("slug", slug).await? else { return Ok(None) };
        if !debate.is_public && viewer != Some(&debate.tenant) {
            return Ok(None);
        }
        match self.debates.increment(&debate.tenant, &debate.debate_id, "view_count", 1, None).await {
            Ok(views) => {
                let mut viewed = debate;
                viewed.set_counter("view_count", views)?;
                Ok(Some(viewed))
            }
            // Deleted between the reads.
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn search(&self, tenant: &TenantId, query: &str, limit: u32, offset: u32) -> Result<(Vec<ArchivedDebate>, u64)> {
        self.debates.search(tenant, query, Filter::all(), limit, offset).await
    }

    async fn list_recent(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ArchivedDebate>> {
        self.debates.list(Scope::Tenant(tenant), Query::new(Filter::all()).order(Order::desc("archived_at")), page).await
    }

    async fn count(&self, tenant: &TenantId) -> Result<u64> {
        self.debates.count(Scope::Tenant(tenant), Filter::all()).await
    }

    async fn set_public(&self, tenant: &TenantId, debate_id: &str, is_public: bool) -> Result<ArchivedDebate> {
        self.debates
            .patch(tenant, debate_id, |debate| {
                debate.is_public = is_public;
                Ok(())
            })
            .await
    }

    async fn set_audio(&self, tenant: &TenantId, debate_id: &str, audio: Option<DebateAudio>) -> Result<ArchivedDebate> {
        self.debates
            .patch(tenant, debate_id, |debate| {
                debate.audio.clone_from(&audio);
                Ok(())
            })
            .await
    }

    async fn delete(&self, tenant: &TenantId, debate_id: &str) -> Result<bool> {
        self.debates.delete(tenant, debate_id).await
    }
}
