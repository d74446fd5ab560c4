//! Organisations: the tenants themselves, their members and their usage.
//!
//! An organisation is the root of a tenant, so its record lives in [`TenantId::system`]: slugs and
//! Stripe ids find it without knowing the tenant. Members are users whose `org_id` names it;
//! every membership change updates the user and the organisation's owner count in one atomic
//! unit, so no sequence of changes, however concurrent, leaves an organisation without an owner.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::{Applied, Engine};
use crate::query::{Filter, Query, Scope};
use crate::stores::user::{User, system};
use crate::table::{Table, int_value, retry_contended};
use crate::{Page, PageRequest, Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// A member's role in an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Full control, billing included. Every organisation keeps at least one.
    Owner,
    /// Manages members and settings.
    Admin,
    /// Uses the organisation.
    Member,
    /// Reads only.
    Viewer,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }
}

/// An organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    /// A UUID the store assigns; also the organisation's [`TenantId`].
    pub id: String,
    /// The display name.
    pub name: String,
    /// The URL name, unique across organisations.
    pub slug: String,
    /// The plan (application-defined: `free`, `pro`, ...).
    pub tier: String,
    /// The primary owner.
    pub owner_id: String,
    /// How many members are owners (at least one).
    pub owner_count: u32,
    /// The Stripe customer, unique across organisations.
    pub stripe_customer_id: Option<String>,
    /// The Stripe subscription, unique across organisations.
    pub stripe_subscription_id: Option<String>,
    /// Debates used in the current billing cycle.
    pub debates_used_this_month: u64,
    /// The plan's limit of debates per cycle; none means unlimited.
    pub debate_limit: Option<u64>,
    /// When the current billing cycle started.
    pub billing_cycle_start: DateTime<Utc>,
    /// Settings, stored as given.
    pub settings: Map<String, Value>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When created.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last changed.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

impl Organization {
    /// The organisation's tenant, under which its own records live.
    pub fn tenant_id(&self) -> Result<TenantId> {
        TenantId::new(self.id.clone())
    }
}

/// A change to an organisation through [`OrganizationStore::update_organization`].
#[derive(Debug, Clone, Default)]
pub struct OrganizationChanges {
    /// A new display name.
    pub name: Option<String>,
    /// A new plan.
    pub tier: Option<String>,
    /// Set or clear the Stripe customer.
    pub stripe_customer_id: Option<Option<String>>,
    /// Set or clear the Stripe subscription.
    pub stripe_subscription_id: Option<Option<String>>,
    /// Set or clear the debate limit.
    pub debate_limit: Option<Option<u64>>,
    /// Replace the settings.
    pub settings: Option<Map<String, Value>>,
}

/// What [`OrganizationStore::increment_usage`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageOutcome {
    /// Counted; the new total.
    Recorded(u64),
    /// Not counted: it would pass the limit.
    LimitReached {
        /// Used so far.
        used: u64,
        /// The limit.
        limit: u64,
    },
}

/// Where an organisation stands in its billing cycle ([`OrganizationStore::get_usage_summary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageSummary {
    /// Debates used in the current cycle.
    pub used: u64,
    /// The plan's limit; none means unlimited.
    pub limit: Option<u64>,
    /// What is left of the limit, if there is one.
    pub remaining: Option<u64>,
    /// When the current cycle started.
    pub billing_cycle_start: DateTime<Utc>,
}

/// What a new slug is made of: lowercase ASCII letters and digits, single dashes.
fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 48 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() { "org".to_owned() } else { slug.to_owned() }
}

fn validate_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(StorageError::invalid("slug", format!("`{}` must be 1 to 64 of a-z, 0-9 and inner `-`", slug.escape_debug())))
    }
}

fn validate_tier(tier: &str) -> Result<()> {
    let ok = !tier.is_empty()
        && tier.len() <= 64
        && tier.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(StorageError::invalid("tier", format!("`{}` must be 1 to 64 of a-z, 0-9, `_`, `-`", tier.escape_debug()))) }
}

impl Document for Organization {
    const TABLE: TableDef = TableDef {
        name: "organizations",
        entity: "organization",
        id_field: "org_id",
        indexes: &[
            IndexSpec::text("slug").unique(),
            IndexSpec::text("tier"),
            IndexSpec::text("stripe_customer_id").unique(),
            IndexSpec::text("stripe_subscription_id").unique(),
            IndexSpec::counter("debates_used_this_month"),
            IndexSpec::time("billing_cycle_start"),
        ],
        expires: false,
        sealed: false,
        search: false,
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
            Some(IndexValue::from(&self.slug)),
            Some(IndexValue::from(&self.tier)),
            self.stripe_customer_id.as_ref().map(IndexValue::from),
            self.stripe_subscription_id.as_ref().map(IndexValue::from),
            Some(int_value(self.debates_used_this_month)),
            Some(IndexValue::Time(self.billing_cycle_start)),
        ]
    }
    fn set_counter(&mut self, column: &str, value: i64) -> Result<()> {
        match column {
            "debates_used_this_month" => {
                self.debates_used_this_month = u64::try_from(value).map_err(|_| StorageError::invalid(column, "is negative"))?;
                Ok(())
            }
            other => Err(StorageError::invalid("counter", format!("`{other}` is not a counter of organizations"))),
        }
    }
    fn validate(&self) -> Result<()> {
        TenantId::new(self.id.clone()).map_err(|e| StorageError::invalid("org_id", e))?;
        crate::limits::check_text("name", &self.name)?;
        validate_slug(&self.slug)?;
        validate_tier(&self.tier)?;
        validate_id("owner_id", &self.owner_id)?;
        for id in [&self.stripe_customer_id, &self.stripe_subscription_id].into_iter().flatten() {
            validate_id("stripe id", id)?;
        }
        Ok(())
    }
}

/// A change of one user's membership: what [`change_membership`] applies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MemberChange<'a> {
    /// Creates `user`, a member of an organisation with a role.
    Create(&'a User, &'a str, Role),
    /// Moves the user into an organisation with a role, or out of any (`None`).
    Set(Option<(&'a str, Role)>),
    /// Deletes the user.
    Delete,
}

/// The refusal of a change that would leave `org` without an owner (entity `membership`, so it
/// is told apart from a taken slug).
fn last_owner(org: &Organization) -> StorageError {
    StorageError::conflict("membership", &org.id, "the last owner cannot leave or step down; make another member an owner first")
}

/// Applies a membership change: the user and every organisation whose owners change, in one
/// unit, checked against the versions read (and read again if another change got in between).
/// `None` when the user was deleted.
pub(crate) async fn change_membership(
    users: &Table<User>,
    orgs: &Table<Organization>,
    user_id: &str,
    change: MemberChange<'_>,
) -> Result<Option<User>> {
    validate_id("user_id", user_id)?;
    retry_contended(|| async {
        let (current, target) = match change {
            MemberChange::Create(_, org, role) => (None, Some((org, role))),
            MemberChange::Set(target) => {
                (Some(users.get(system(), user_id).await?.ok_or_else(|| StorageError::not_found("user", user_id))?), target)
            }
            MemberChange::Delete => {
                (Some(users.get(system(), user_id).await?.ok_or_else(|| StorageError::not_found("user", user_id))?), None)
            }
        };
        let before = current.as_ref().and_then(|u| u.org_id.as_deref().map(|org| (org.to_owned(), u.role)));
        let mut touched: Vec<Organization> = Vec::new();
        // The organisation the user leaves (or changes role in) loses an owner, if the user was one.
        if let Some((org_id, role)) = &before {
            let mut org = orgs.get(system(), org_id).await?.ok_or_else(|| StorageError::not_found("organization", org_id))?;
            if *role == Role::Owner {
                org.owner_count = org.owner_count.saturating_sub(1);
            }
            touched.push(org);
        }
        if let Some((org_id, role)) = target {
            validate_id("org_id", org_id)?;
            let position = touched.iter().position(|o| o.id == org_id);
            let org = match position.and_then(|i| touched.get_mut(i)) {
                Some(org) => org,
                None => {
                    let org = orgs.get(system(), org_id).await?.ok_or_else(|| StorageError::not_found("organization", org_id))?;
                    touched.push(org);
                    touched.last_mut().ok_or_else(|| StorageError::not_found("organization", org_id))?
                }
            };
            if role == Role::Owner {
                org.owner_count = org.owner_count.saturating_add(1);
            }
        }
        let leaving_owner = matches!(&before, Some((_, Role::Owner)));
        for org in &mut touched {
            if org.owner_count == 0 && leaving_owner {
                return Err(last_owner(org));
            }
            // The primary owner stepped down or left: another owner becomes primary.
            let still_owner = matches!(target, Some((o, Role::Owner)) if o == org.id);
            if org.owner_id == user_id && !still_owner {
                let filter = Filter::all().eq("org_id", org.id.as_str()).eq("role", Role::Owner.as_str());
                let others = users.list(Scope::Tenant(system()), Query::new(filter), &PageRequest::first(2)).await?;
                if let Some(other) = others.items.into_iter().find(|u| u.id != user_id) {
                    org.owner_id = other.id;
                }
            }
        }
        let mut unit = users.unit(system());
        let user = match (change, current) {
            (MemberChange::Create(user, org, role), _) => {
                let mut user = user.clone();
                (user.org_id, user.role) = (Some(org.to_owned()), role);
                unit.insert(users, &user)?;
                Some(user)
            }
            (MemberChange::Set(target), Some(mut user)) => {
                (user.org_id, user.role) = match target {
                    Some((org, role)) => (Some(org.to_owned()), role),
                    None => (None, Role::Member),
                };
                unit.update(users, &user)?;
                Some(user)
            }
            (_, _) => {
                unit.delete(users, user_id)?;
                None
            }
        };
        for org in &touched {
            unit.update(orgs, org)?;
        }
        let applied = unit.commit().await?;
        match (user, applied.first()) {
            (Some(mut user), Some(Applied::Written(meta))) => {
                user.set_meta(*meta);
                Ok(Some(user))
            }
            (None, Some(Applied::Deleted(true))) => Ok(None),
            (None, _) => Err(StorageError::not_found("user", user_id)),
            (Some(_), other) => Err(StorageError::conflict("user", user_id, format!("a membership change reported {other:?}"))),
        }
    })
    .await
}

/// Organisations, their members and usage.
#[async_trait]
pub trait OrganizationStore: Send + Sync + fmt::Debug {
    /// Creates an organisation owned by `owner_id` (who joins it as owner in the same step). Without
    /// a `slug`, one is made from the name, with a numeric suffix if it is taken: concurrent
    /// creations with one name get distinct slugs. A given slug that is taken is a `Conflict`.
    async fn create_organization(&self, name: &str, owner_id: &str, slug: Option<&str>, tier: &str) -> Result<Organization>;
    /// The organisation with this id.
    async fn get_organization_by_id(&self, org_id: &str) -> Result<Option<Organization>>;
    /// The organisation with this slug.
    async fn get_organization_by_slug(&self, slug: &str) -> Result<Option<Organization>>;
    /// The organisation of this Stripe customer.
    async fn get_organization_by_stripe_customer(&self, customer_id: &str) -> Result<Option<Organization>>;
    /// The organisation of this Stripe subscription.
    async fn get_organization_by_subscription(&self, subscription_id: &str) -> Result<Option<Organization>>;
    /// The organisations with these ids that exist, in the order given.
    async fn get_organizations_batch(&self, org_ids: &[&str]) -> Result<Vec<Organization>>;
    /// The organisations with these ids that exist, in the order given, each with its members
    /// (by user id): one read of the organisations and one of their members.
    async fn get_orgs_with_members_batch(&self, org_ids: &[&str]) -> Result<Vec<(Organization, Vec<User>)>>;
    /// Where the organisation stands in its billing cycle.
    async fn get_usage_summary(&self, org_id: &str) -> Result<UsageSummary>;
    /// Applies `changes` (nothing else can change).
    async fn update_organization(&self, org_id: &str, changes: &OrganizationChanges) -> Result<Organization>;
    /// Makes `user_id` a member of `org_id` with `role` (moving it from any other organisation);
    /// `Conflict` if that would leave an organisation without an owner.
    async fn add_member(&self, org_id: &str, user_id: &str, role: Role) -> Result<User>;
    /// Changes a member's role; `Conflict` for the last owner stepping down, `NotFound` for a
    /// user who is not a member.
    async fn set_member_role(&self, org_id: &str, user_id: &str, role: Role) -> Result<User>;
    /// Removes a member; `Conflict` for the last owner.
    async fn remove_member(&self, org_id: &str, user_id: &str) -> Result<User>;
    /// One page of an organisation's members, by user id.
    async fn get_org_members(&self, org_id: &str, page: &PageRequest) -> Result<Page<User>>;
    /// Counts `n` debates if that stays within the plan's limit, in one atomic step.
    async fn increment_usage(&self, org_id: &str, n: u64) -> Result<UsageOutcome>;
    /// Starts the billing cycle at `cycle_start` for one organisation (usage back to 0); whether
    /// it did (a second call for the same cycle does nothing).
    async fn reset_org_usage(&self, org_id: &str, cycle_start: DateTime<Utc>) -> Result<bool>;
    /// Starts the billing cycle at `cycle_start` for every organisation still in an earlier one;
    /// how many. Idempotent per cycle.
    async fn reset_monthly_usage(&self, cycle_start: DateTime<Utc>) -> Result<u64>;
    /// One page of organisations, of one tier or all, by id.
    async fn list_all_organizations(&self, tier: Option<&str>, page: &PageRequest) -> Result<Page<Organization>>;
    /// How many organisations, of one tier or all.
    async fn count_organizations(&self, tier: Option<&str>) -> Result<u64>;
}

/// [`OrganizationStore`] on any backend.
pub struct Organizations<B: ?Sized = dyn Engine> {
    orgs: Table<Organization>,
    users: Table<User>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Organizations { orgs, users });

/// How many numbered slugs are tried before a random suffix.
const SLUG_TRIES: u32 = 20;

impl<B: ?Sized> Organizations<B> {
    fn tier_filter(tier: Option<&str>) -> Result<Filter> {
        Ok(match tier {
            Some(tier) => {
                validate_tier(tier)?;
                Filter::all().eq("tier", tier)
            }
            None => Filter::all(),
        })
    }

    async fn member(&self, org_id: &str, user_id: &str) -> Result<User> {
        let user = self.users.get(system(), user_id).await?.ok_or_else(|| StorageError::not_found("user", user_id))?;
        if user.org_id.as_deref() != Some(org_id) {
            return Err(StorageError::not_found("member", format!("{org_id}/{user_id}")));
        }
        Ok(user)
    }

    async fn set(&self, user_id: &str, target: Option<(&str, Role)>) -> Result<User> {
        change_membership(&self.users, &self.orgs, user_id, MemberChange::Set(target))
            .await?
            .ok_or_else(|| StorageError::not_found("user", user_id))
    }

    /// Creates the organisation with one slug: the record and its owner's membership, in one unit.
    async fn create_with_slug(&self, org: &Organization) -> Result<Organization> {
        retry_contended(|| async {
            let mut owner = self.users.get(system(), &org.owner_id).await?.ok_or_else(|| StorageError::not_found("user", &org.owner_id))?;
            let mut touched = Vec::new();
            if let (Some(previous), Role::Owner) = (owner.org_id.clone(), owner.role) {
                let mut old =
                    self.orgs.get(system(), &previous).await?.ok_or_else(|| StorageError::not_found("organization", &previous))?;
                old.owner_count = old.owner_count.saturating_sub(1);
                if old.owner_count == 0 {
                    return Err(last_owner(&old));
                }
                touched.push(old);
            }
            (owner.org_id, owner.role) = (Some(org.id.clone()), Role::Owner);
            let mut unit = self.orgs.unit(system());
            unit.insert(&self.orgs, org)?;
            unit.update(&self.users, &owner)?;
            for old in &touched {
                unit.update(&self.orgs, old)?;
            }
            let applied = unit.commit().await?;
            let mut created = org.clone();
            if let Some(Applied::Written(meta)) = applied.first() {
                created.set_meta(*meta);
            }
            Ok(created)
        })
        .await
    }
}

#[async_trait]
impl<B: ?Sized> OrganizationStore for Organizations<B> {
    async fn create_organization(&self, name: &str, owner_id: &str, slug: Option<&str>, tier: &str) -> Result<Organization> {
        validate_id("owner_id", owner_id)?;
        let mut org = Organization {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            slug: slug.map_or_else(|| slugify(name), str::to_owned),
            tier: tier.to_owned(),
            owner_id: owner_id.to_owned(),
            owner_count: 1,
            stripe_customer_id: None,
            stripe_subscription_id: None,
            debates_used_this_month: 0,
            debate_limit: None,
            billing_cycle_start: self.orgs.now(),
            settings: Map::new(),
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        org.validate()?;
        if slug.is_some() {
            return self.create_with_slug(&org).await;
        }
        let base = org.slug.clone();
        for n in 1..=SLUG_TRIES.saturating_add(1) {
            org.slug = match n {
                1 => base.clone(),
                n if n <= SLUG_TRIES => format!("{base}-{n}"),
                _ => format!("{base}-{}", uuid::Uuid::new_v4().simple().to_string().chars().take(8).collect::<String>()),
            };
            match self.create_with_slug(&org).await {
                // The id is new, so an organisation that conflicts has this slug (it may not be
                // visible to a read yet: the other creation may still be committing).
                Err(StorageError::Conflict { entity: "organization", .. }) => continue,
                other => return other,
            }
        }
        Err(StorageError::conflict("organization", &org.id, format!("no free slug for `{base}`")))
    }

    async fn get_organization_by_id(&self, org_id: &str) -> Result<Option<Organization>> {
        self.orgs.get(system(), org_id).await
    }

    async fn get_organization_by_slug(&self, slug: &str) -> Result<Option<Organization>> {
        validate_slug(slug)?;
        self.orgs.get_by_unique(system(), "slug", slug).await
    }

    async fn get_organization_by_stripe_customer(&self, customer_id: &str) -> Result<Option<Organization>> {
        validate_id("customer_id", customer_id)?;
        self.orgs.get_by_unique(system(), "stripe_customer_id", customer_id).await
    }

    async fn get_organization_by_subscription(&self, subscription_id: &str) -> Result<Option<Organization>> {
        validate_id("subscription_id", subscription_id)?;
        self.orgs.get_by_unique(system(), "stripe_subscription_id", subscription_id).await
    }

    async fn get_organizations_batch(&self, org_ids: &[&str]) -> Result<Vec<Organization>> {
        self.orgs.get_many(system(), org_ids).await
    }

    async fn get_orgs_with_members_batch(&self, org_ids: &[&str]) -> Result<Vec<(Organization, Vec<User>)>> {
        let orgs = self.orgs.get_many(system(), org_ids).await?;
        if orgs.is_empty() {
            return Ok(Vec::new());
        }
        let members = self
            .users
            .list_all(Scope::Tenant(system()), Query::new(Filter::all().one_of("org_id", orgs.iter().map(|o| o.id.as_str()))))
            .await?;
        let mut by_org: std::collections::HashMap<String, Vec<User>> = std::collections::HashMap::new();
        for member in members {
            if let Some(org) = member.org_id.clone() {
                by_org.entry(org).or_default().push(member);
            }
        }
        Ok(orgs
            .into_iter()
            .map(|org| {
                let members = by_org.get(&org.id).cloned().unwrap_or_default();
                (org, members)
            })
            .collect())
    }

    async fn get_usage_summary(&self, org_id: &str) -> Result<UsageSummary> {
        let org = self.orgs.get(system(), org_id).await?.ok_or_else(|| StorageError::not_found("organization", org_id))?;
        Ok(UsageSummary {
            used: org.debates_used_this_month,
            limit: org.debate_limit,
            remaining: org.debate_limit.map(|limit| limit.saturating_sub(org.debates_used_this_month)),
            billing_cycle_start: org.billing_cycle_start,
        })
    }

    async fn update_organization(&self, org_id: &str, changes: &OrganizationChanges) -> Result<Organization> {
        self.orgs
            .patch(system(), org_id, |org| {
                if let Some(name) = &changes.name {
                    org.name.clone_from(name);
                }
                if let Some(tier) = &changes.tier {
                    org.tier.clone_from(tier);
                }
                if let Some(customer) = &changes.stripe_customer_id {
                    org.stripe_customer_id.clone_from(customer);
                }
                if let Some(subscription) = &changes.stripe_subscription_id {
                    org.stripe_subscription_id.clone_from(subscription);
                }
                if let Some(limit) = changes.debate_limit {
                    org.debate_limit = limit;
                }
                if let Some(settings) = &changes.settings {
                    org.settings.clone_from(settings);
                }
                Ok(())
            })
            .await
    }

    async fn add_member(&self, org_id: &str, user_id: &str, role: Role) -> Result<User> {
        self.set(user_id, Some((org_id, role))).await
    }

    async fn set_member_role(&self, org_id: &str, user_id: &str, role: Role) -> Result<User> {
        self.member(org_id, user_id).await?;
        self.set(user_id, Some((org_id, role))).await
    }

    async fn remove_member(&self, org_id: &str, user_id: &str) -> Result<User> {
        self.member(org_id, user_id).await?;
        self.set(user_id, None).await
    }

    async fn get_org_members(&self, org_id: &str, page: &PageRequest) -> Result<Page<User>> {
        validate_id("org_id", org_id)?;
        self.users.list(Scope::Tenant(system()), Query::new(Filter::all().eq("org_id", org_id)), page).await
    }

    async fn increment_usage(&self, org_id: &str, n: u64) -> Result<UsageOutcome> {
        let by = i64::try_from(n).map_err(|_| StorageError::invalid("n", format!("{n} is out of range")))?;
        let org = self.orgs.get(system(), org_id).await?.ok_or_else(|| StorageError::not_found("organization", org_id))?;
        let cap = org.debate_limit.map(|limit| i64::try_from(limit).unwrap_or(crate::limits::MAX_INT).min(crate::limits::MAX_INT));
        match self.orgs.increment(system(), org_id, "debates_used_this_month", by, cap).await {
            Ok(total) => Ok(UsageOutcome::Recorded(u64::try_from(total).unwrap_or(0))),
            Err(StorageError::Conflict { .. }) => {
                let used = self.orgs.get(system(), org_id).await?.map_or(0, |o| o.debates_used_this_month);
                Ok(UsageOutcome::LimitReached { used, limit: org.debate_limit.unwrap_or(0) })
            }
            Err(e) => Err(e),
        }
    }

    async fn reset_org_usage(&self, org_id: &str, cycle_start: DateTime<Utc>) -> Result<bool> {
        let cycle_start = crate::limits::check_instant("cycle_start", cycle_start)?;
        let reset = std::sync::atomic::AtomicBool::new(false);
        self.orgs
            .patch(system(), org_id, |org| {
                let due = org.billing_cycle_start < cycle_start;
                if due {
                    org.debates_used_this_month = 0;
                    org.billing_cycle_start = cycle_start;
                }
                reset.store(due, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            })
            .await?;
        Ok(reset.load(std::sync::atomic::Ordering::Relaxed))
    }

    async fn reset_monthly_usage(&self, cycle_start: DateTime<Utc>) -> Result<u64> {
        let cycle_start = crate::limits::check_instant("cycle_start", cycle_start)?;
        let query = Query::new(Filter::all().lt("billing_cycle_start", cycle_start));
        let mut request = PageRequest::first(crate::MAX_PAGE_SIZE);
        let mut reset = 0u64;
        loop {
            let page = self.orgs.list(Scope::Tenant(system()), query.clone(), &request).await?;
            for org in &page.items {
                if self.reset_org_usage(&org.id, cycle_start).await? {
                    reset = reset.saturating_add(1);
                }
            }
            match request.next(page.next.as_ref()) {
                Some(next) => request = next,
                None => return Ok(reset),
            }
        }
    }

    async fn list_all_organizations(&self, tier: Option<&str>, page: &PageRequest) -> Result<Page<Organization>> {
        self.orgs.list(Scope::Tenant(system()), Query::new(Self::tier_filter(tier)?), page).await
    }

    async fn count_organizations(&self, tier: Option<&str>) -> Result<u64> {
        self.orgs.count(Scope::Tenant(system()), Self::tier_filter(tier)?).await
    }
}
