//! The marketplace: a global catalogue of workflow templates (no organisation owns it: its
//! records live in the system tenant), with ratings, reviews, download counts and search.
//!
//! A rating and its template's aggregate (sum and count of stars) are written in one atomic unit
//! at the template's version, so the aggregate always equals what the rating rows say, however
//! many users rate at once. Stars are integers; the average is kept in thousandths of a star.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Direction, Filter, Order, Query, Scope};
use crate::stores::gauntlet_run::check_tags;
use crate::stores::joined_id;
use crate::table::{Table, retry_contended};
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// The fewest stars.
pub const MIN_STARS: u8 = 1;
/// The most stars.
pub const MAX_STARS: u8 = 5;
/// An unrated template's rank among ascending averages: above any average (5,000 thousandths at
/// most), so unrated templates come last in either direction. Descending, an unrated template
/// ranks 0, below any average (1,000 thousandths at least).
pub const UNRATED_ASCENDING_RANK: i64 = 10_000;
/// The longest description or review text, in bytes (prose: kept in the body, never indexed).
pub const MAX_PROSE_BYTES: usize = 16 * 1024;

/// Free text kept in the body, never indexed: lines and tabs are fine, other control characters
/// and more than `max` bytes are not.
pub(crate) fn check_prose(field: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(StorageError::invalid(field, format!("is {} bytes long; the limit is {max}", text.len())));
    }
    if let Some(c) = text.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(StorageError::invalid(field, format!("contains the control character {c:?}")));
    }
    Ok(())
}

/// A workflow template in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Its id (`tpl-` and 16 hex digits, set by the store).
    pub id: String,
    /// Its name, unique in the catalogue whatever its case and spacing.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Who wrote it.
    pub author_id: String,
    /// Their name.
    pub author_name: String,
    /// Its category.
    pub category: String,
    /// The workflow pattern it follows.
    pub pattern: String,
    /// Labels.
    pub tags: Vec<String>,
    /// The workflow itself.
    pub workflow_definition: Value,
    /// How often it was downloaded (a counter: changed without a read).
    #[serde(default)]
    pub downloads: i64,
    /// The sum of its ratings' stars (set by the store).
    pub rating_sum: i64,
    /// How many ratings (set by the store).
    pub rating_count: i64,
    /// Featured by the operators.
    pub featured: bool,
    /// Marked trending by the operators.
    pub trending: bool,
    /// When published (set by the store).
    pub published_at: DateTime<Utc>,
    /// When last changed by its author or the operators (set by the store).
    pub changed_at: DateTime<Utc>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When published.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last written.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Template {
    /// A template to publish.
    pub fn new(name: impl Into<String>, author_id: impl Into<String>, category: impl Into<String>, workflow_definition: Value) -> Self {
        Self {
            id: String::new(),
            name: name.into(),
            description: String::new(),
            author_id: author_id.into(),
            author_name: String::new(),
            category: category.into(),
            pattern: String::new(),
            tags: Vec::new(),
            workflow_definition,
            downloads: 0,
            rating_sum: 0,
            rating_count: 0,
            featured: false,
            trending: false,
            published_at: DateTime::<Utc>::UNIX_EPOCH,
            changed_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// The average rating in thousandths of a star (rounded down); 0 while unrated.
    pub fn average_milli(&self) -> i64 {
        self.rating_sum.saturating_mul(1_000).checked_div(self.rating_count).unwrap_or(0)
    }

    /// Its rank among ascending averages: its average, or [`UNRATED_ASCENDING_RANK`] while
    /// unrated.
    fn ascending_rank(&self) -> i64 {
        if self.rating_count == 0 { UNRATED_ASCENDING_RANK } else { self.average_milli() }
    }
}

/// A name as uniqueness sees it: lower case, single spaces.
fn name_key(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

impl Document for Template {
    const TABLE: TableDef = TableDef {
        name: "marketplace_templates",
        entity: "template",
        id_field: "template_id",
        indexes: &[
            IndexSpec::text("name_key").unique(),
            IndexSpec::text("category"),
            IndexSpec::text("author_id"),
            IndexSpec::int("rating"),
            IndexSpec::counter("downloads"),
            IndexSpec::bool("featured"),
            IndexSpec::bool("trending"),
            IndexSpec::time("published_at"),
            IndexSpec::time("changed_at"),
            IndexSpec::int("rating_asc"),
        ],
        expires: false,
        sealed: false,
        search: true,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![
            Some(IndexValue::Text(name_key(&self.name))),
            Some(IndexValue::from(&self.category)),
            Some(IndexValue::from(&self.author_id)),
            Some(IndexValue::Int(self.average_milli())),
            Some(IndexValue::Int(self.downloads)),
            Some(IndexValue::Bool(self.featured)),
            Some(IndexValue::Bool(self.trending)),
            Some(IndexValue::Time(self.published_at)),
            Some(IndexValue::Time(self.changed_at)),
            Some(IndexValue::Int(self.ascending_rank())),
        ]
    }
    fn validate(&self) -> Result<()> {
        crate::limits::check_text("name", &self.name)?;
        if name_key(&self.name).is_empty() {
            return Err(StorageError::invalid("name", "is empty"));
        }
        check_prose("description", &self.description, MAX_PROSE_BYTES)?;
        for (field, value) in [("author_name", &self.author_name), ("pattern", &self.pattern)] {
            crate::limits::check_text(field, value)?;
        }
        validate_id("author_id", &self.author_id)?;
        validate_id("category", &self.category)?;
        check_tags(&self.tags)?;
        if self.rating_sum < 0 || self.rating_count < 0 {
            return Err(StorageError::invalid("rating", "the aggregate is negative"));
        }
        if self.downloads < 0 {
            return Err(StorageError::invalid("downloads", "is negative"));
        }
        Ok(())
    }
    fn search_text(&self) -> String {
        format!("{} {} {} {}", self.name, self.description, self.category, self.tags.join(" "))
    }
    fn set_counter(&mut self, column: &str, value: i64) -> Result<()> {
        match column {
            "downloads" => {
                self.downloads = value;
                Ok(())
            }
            other => Err(StorageError::invalid("counter", format!("`{other}` is not a counter of templates"))),
        }
    }
}

fn system() -> &'static TenantId {
    static SYSTEM: std::sync::OnceLock<TenantId> = std::sync::OnceLock::new();
    SYSTEM.get_or_init(TenantId::system)
}

fn check_stars(stars: u8) -> Result<()> {
    if (MIN_STARS..=MAX_STARS).contains(&stars) {
        Ok(())
    } else {
        Err(StorageError::invalid("rating", format!("{stars} stars; {MIN_STARS} to {MAX_STARS}")))
    }
}

/// One user's rating of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    /// The template.
    pub template_id: String,
    /// The user.
    pub user_id: String,
    /// 1 to 5.
    pub stars: u8,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first rated.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last rated.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for Rating {
    const TABLE: TableDef = TableDef {
        name: "marketplace_ratings",
        entity: "rating",
        id_field: "rating_id",
        indexes: &[IndexSpec::text("template_id")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        joined_id(&self.template_id, &self.user_id)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.template_id))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("template_id", &self.template_id)?;
        validate_id("user_id", &self.user_id)?;
        check_stars(self.stars)
    }
}

/// A user's review of a template (its stars are the user's rating).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The template.
    pub template_id: String,
    /// The user.
    pub user_id: String,
    /// Their name.
    pub user_name: String,
    /// 1 to 5.
    pub stars: u8,
    /// Title.
    pub title: String,
    /// Text.
    pub content: String,
    /// When posted or last edited (set by the store).
    pub posted_at: DateTime<Utc>,
    /// How many readers found it helpful (a counter, kept when the review is edited).
    #[serde(default)]
    pub helpful_count: i64,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first posted.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last edited.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Document for Review {
    const TABLE: TableDef = TableDef {
        name: "marketplace_reviews",
        entity: "review",
        id_field: "review_id",
        indexes: &[IndexSpec::text("template_id"), IndexSpec::time("posted_at"), IndexSpec::counter("helpful_count")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        joined_id(&self.template_id, &self.user_id)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.template_id)), Some(IndexValue::Time(self.posted_at)), Some(IndexValue::Int(self.helpful_count))]
    }
    fn validate(&self) -> Result<()> {
        validate_id("template_id", &self.template_id)?;
        validate_id("user_id", &self.user_id)?;
        for (field, value) in [("user_name", &self.user_name), ("title", &self.title)] {
            crate::limits::check_text(field, value)?;
        }
        check_prose("content", &self.content, MAX_PROSE_BYTES)?;
        if self.helpful_count < 0 {
            return Err(StorageError::invalid("helpful_count", "is negative"));
        }
        check_stars(self.stars)
    }
    fn set_counter(&mut self, column: &str, value: i64) -> Result<()> {
        match column {
            "helpful_count" => {
                self.helpful_count = value;
                Ok(())
            }
            other => Err(StorageError::invalid("counter", format!("`{other}` is not a counter of reviews"))),
        }
    }
}

/// How templates are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TemplateSort {
    /// By average rating in thousandths of a star; unrated templates come last in either
    /// direction (see [`UNRATED_ASCENDING_RANK`]).
    #[default]
    Rating,
    /// By downloads.
    Downloads,
    /// By publication.
    Newest,
    /// By the last change of its author or the operators.
    Updated,
}

/// The marketplace.
#[async_trait]
pub trait MarketplaceStore: Send + Sync + fmt::Debug {
    /// Publishes a template under a new id; `Conflict` if its name is taken (whatever its case
    /// and spacing).
    async fn create_template(&self, template: &Template) -> Result<Template>;
    /// The template.
    async fn get_template(&self, template_id: &str) -> Result<Option<Template>>;
    /// Removes a template with its ratings and reviews; whether it existed.
    async fn delete_template(&self, template_id: &str) -> Result<bool>;
    /// One page of templates (of a category, or all) in `sort` order, and how many there are.
    async fn list_templates(
        &self,
        category: Option<&str>,
        sort: TemplateSort,
        direction: Direction,
        page: &PageRequest,
    ) -> Result<(Page<Template>, u64)>;
    /// The templates (of a category, or all) whose name, description, category or tags hold
    /// every word of `query`, best first, `limit` after `offset`, and how many match.
    async fn search_templates(&self, query: &str, category: Option<&str>, limit: u32, offset: u32) -> Result<(Vec<Template>, u64)>;
    /// The best rated featured templates.
    async fn get_featured(&self, limit: u32) -> Result<Vec<Template>>;
    /// The most downloaded trending templates.
    async fn get_trending(&self, limit: u32) -> Result<Vec<Template>>;
    /// Counts a download; the new count.
    async fn increment_download(&self, template_id: &str) -> Result<i64>;
    /// Features a template, or stops.
    async fn set_featured(&self, template_id: &str, featured: bool) -> Result<Template>;
    /// Marks a template trending, or stops.
    async fn set_trending(&self, template_id: &str, trending: bool) -> Result<Template>;
    /// Rates a template (a user's new rating replaces their old one): the template with its new
    /// aggregate (`rating_sum / rating_count` exactly; [`Template::average_milli`]). `NotFound`
    /// for a missing template: no rating is kept without one.
    async fn rate_template(&self, template_id: &str, user_id: &str, stars: u8) -> Result<Template>;
    /// One page of a template's ratings (by user id).
    async fn list_ratings(&self, template_id: &str, page: &PageRequest) -> Result<Page<Rating>>;
    /// Posts (or replaces) a user's review; its stars are their rating, written with the rating
    /// and the template's aggregate in one unit. An edit keeps the review's helpful count.
    async fn create_review(&self, review: &Review) -> Result<(Review, Template)>;
    /// Counts a reader finding `user_id`'s review of the template helpful; the new count.
    async fn mark_review_helpful(&self, template_id: &str, user_id: &str) -> Result<i64>;
    /// One page of a template's reviews, newest first.
    async fn list_reviews(&self, template_id: &str, page: &PageRequest) -> Result<Page<Review>>;
    /// Every category and how many templates it holds (reads every template: an administrative
    /// call; the counts are never stale).
    async fn list_categories(&self) -> Result<BTreeMap<String, u64>>;
}

/// [`MarketplaceStore`] on any backend.
pub struct Marketplace<B: ?Sized = dyn Engine> {
    templates: Table<Template>,
    ratings: Table<Rating>,
    reviews: Table<Review>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Marketplace { templates, ratings, reviews });

/// Retries a unit whose insert lost to a concurrent one, as a version mismatch (read again).
fn contended(e: StorageError) -> StorageError {
    match e {
        StorageError::Conflict { entity, id, .. } if entity == Rating::TABLE.entity || entity == Review::TABLE.entity => {
            StorageError::VersionMismatch { entity, id, expected: 0, actual: 1 }
        }
        other => other,
    }
}

impl<B: ?Sized> Marketplace<B> {
    /// Writes a user's rating (and review, if any) and the template's new aggregate in one unit
    /// at the versions read, again on contention.
    async fn rate(&self, template_id: &str, user_id: &str, stars: u8, review: Option<&Review>) -> Result<(Template, Option<Review>)> {
        validate_id("template_id", template_id)?;
        validate_id("user_id", user_id)?;
        check_stars(stars)?;
        retry_contended(|| async {
            let Some(template) = self.templates.get(system(), template_id).await? else {
                return Err(StorageError::not_found(Template::TABLE.entity, template_id));
            };
            let previous = self.ratings.get(system(), &joined_id(template_id, user_id)).await?;
            let mut next = template.clone();
            match &previous {
                Some(old) => next.rating_sum = next.rating_sum.saturating_sub(i64::from(old.stars)).saturating_add(i64::from(stars)),
                None => {
                    next.rating_sum = next.rating_sum.saturating_add(i64::from(stars));
                    next.rating_count = next.rating_count.saturating_add(1);
                }
            }
            // The two reads are not one snapshot: a rating committed between them makes the sum
            // impossible (each rating is 1 to 5 stars). The unit would fail on the versions read
            // anyway; this reads again before validation refuses the impossible aggregate.
            let most = next.rating_count.saturating_mul(i64::from(MAX_STARS));
            if !(next.rating_count..=most).contains(&next.rating_sum) {
                return Err(StorageError::VersionMismatch {
                    entity: Template::TABLE.entity,
                    id: template_id.to_owned(),
                    expected: template.version,
                    actual: template.version,
                });
            }
            let mut unit = self.templates.unit(system());
            unit.update(&self.templates, &next)?;
            match previous {
                Some(mut rating) => {
                    rating.stars = stars;
                    unit.update(&self.ratings, &rating)?;
                }
                None => {
                    let rating = Rating {
                        template_id: template_id.to_owned(),
                        user_id: user_id.to_owned(),
                        stars,
                        version: 0,
                        created_at: DateTime::<Utc>::UNIX_EPOCH,
                        updated_at: DateTime::<Utc>::UNIX_EPOCH,
                    };
                    unit.insert(&self.ratings, &rating)?;
                }
            }
            let mut review = review.cloned();
            if let Some(review) = review.as_mut() {
                // An edit is written at the version read, keeping the readers' helpful count.
                match self.reviews.get(system(), &review.id()).await? {
                    Some(old) => {
                        review.helpful_count = old.helpful_count;
                        review.set_meta(old.meta());
                        unit.update(&self.reviews, review)?;
                    }
                    None => {
                        review.helpful_count = 0;
                        unit.insert(&self.reviews, review)?;
                    }
                }
            }
            let applied = unit.commit().await.map_err(contended)?;
            if let Some(crate::Applied::Written(meta)) = applied.first() {
                next.set_meta(*meta);
            }
            if let (Some(review), Some(crate::Applied::Written(meta))) = (review.as_mut(), applied.get(2)) {
                review.set_meta(*meta);
            }
            Ok((next, review))
        })
        .await
    }

    async fn flag(&self, template_id: &str, set: impl Fn(&mut Template) + Send + Sync) -> Result<Template> {
        let now = self.templates.now();
        self.templates
            .patch(system(), template_id, |template| {
                set(template);
                template.changed_at = now;
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl<B: ?Sized> MarketplaceStore for Marketplace<B> {
    async fn create_template(&self, template: &Template) -> Result<Template> {
        let now = self.templates.now();
        let mut template = template.clone();
        template.id = format!("tpl-{}", uuid::Uuid::new_v4().simple().to_string().get(..16).unwrap_or_default());
        (template.downloads, template.rating_sum, template.rating_count) = (0, 0, 0);
        (template.published_at, template.changed_at) = (now, now);
        self.templates.insert(&template).await
    }

    async fn get_template(&self, template_id: &str) -> Result<Option<Template>> {
        self.templates.get(system(), template_id).await
    }

    async fn delete_template(&self, template_id: &str) -> Result<bool> {
        // The template goes first: a rating or review left by an interruption belongs to no
        // template, and nothing reads one without its template.
        let existed = self.templates.delete(system(), template_id).await?;
        let children = || Filter::all().eq("template_id", template_id);
        self.ratings.delete_where(Scope::Tenant(system()), children()).await?;
        self.reviews.delete_where(Scope::Tenant(system()), children()).await?;
        Ok(existed)
    }

    async fn list_templates(
        &self,
        category: Option<&str>,
        sort: TemplateSort,
        direction: Direction,
        page: &PageRequest,
    ) -> Result<(Page<Template>, u64)> {
        let filter = match category {
            Some(category) => {
                validate_id("category", category)?;
                Filter::all().eq("category", category)
            }
            None => Filter::all(),
        };
        let column = match (sort, direction) {
            (TemplateSort::Rating, Direction::Desc) => "rating",
            (TemplateSort::Rating, Direction::Asc) => "rating_asc",
            (TemplateSort::Downloads, _) => "downloads",
            (TemplateSort::Newest, _) => "published_at",
            (TemplateSort::Updated, _) => "changed_at",
        };
        let order = Order { column: Some(column), direction };
        let listed = self.templates.list(Scope::Tenant(system()), Query::new(filter.clone()).order(order), page).await?;
        Ok((listed, self.templates.count(Scope::Tenant(system()), filter).await?))
    }

    async fn search_templates(&self, query: &str, category: Option<&str>, limit: u32, offset: u32) -> Result<(Vec<Template>, u64)> {
        let filter = match category {
            Some(category) => {
                validate_id("category", category)?;
                Filter::all().eq("category", category)
            }
            None => Filter::all(),
        };
        self.templates.search(system(), query, filter, limit, offset).await
    }

    async fn get_featured(&self, limit: u32) -> Result<Vec<Template>> {
        let query = Query::new(Filter::all().eq("featured", true)).order(Order::desc("rating"));
        Ok(self.templates.list(Scope::Tenant(system()), query, &PageRequest::first(limit)).await?.items)
    }

    async fn get_trending(&self, limit: u32) -> Result<Vec<Template>> {
        let query = Query::new(Filter::all().eq("trending", true)).order(Order::desc("downloads"));
        Ok(self.templates.list(Scope::Tenant(system()), query, &PageRequest::first(limit)).await?.items)
    }

    async fn increment_download(&self, template_id: &str) -> Result<i64> {
        self.templates.increment(system(), template_id, "downloads", 1, None).await
    }

    async fn set_featured(&self, template_id: &str, featured: bool) -> Result<Template> {
        self.flag(template_id, |t| t.featured = featured).await
    }

    async fn set_trending(&self, template_id: &str, trending: bool) -> Result<Template> {
        self.flag(template_id, |t| t.trending = trending).await
    }

    async fn rate_template(&self, template_id: &str, user_id: &str, stars: u8) -> Result<Template> {
        Ok(self.rate(template_id, user_id, stars, None).await?.0)
    }

    async fn list_ratings(&self, template_id: &str, page: &PageRequest) -> Result<Page<Rating>> {
        validate_id("template_id", template_id)?;
        self.ratings.list(Scope::Tenant(system()), Query::new(Filter::all().eq("template_id", template_id)), page).await
    }

    async fn create_review(&self, review: &Review) -> Result<(Review, Template)> {
        let mut review = review.clone();
        review.posted_at = self.reviews.now();
        review.validate()?;
        let (template, written) = self.rate(&review.template_id, &review.user_id, review.stars, Some(&review)).await?;
        Ok((written.unwrap_or(review), template))
    }

    async fn mark_review_helpful(&self, template_id: &str, user_id: &str) -> Result<i64> {
        validate_id("template_id", template_id)?;
        validate_id("user_id", user_id)?;
        self.reviews.increment(system(), &joined_id(template_id, user_id), "helpful_count", 1, None).await
    }

    async fn list_reviews(&self, template_id: &str, page: &PageRequest) -> Result<Page<Review>> {
        validate_id("template_id", template_id)?;
        let query = Query::new(Filter::all().eq("template_id", template_id)).order(Order::desc("posted_at"));
        self.reviews.list(Scope::Tenant(system()), query, page).await
    }

    async fn list_categories(&self) -> Result<BTreeMap<String, u64>> {
        let mut categories = BTreeMap::new();
        for template in self.templates.list_all(Scope::Tenant(system()), Query::new(Filter::all())).await? {
            let count: &mut u64 = categories.entry(template.category).or_default();
            *count = count.saturating_add(1);
        }
        Ok(categories)
    }
}
