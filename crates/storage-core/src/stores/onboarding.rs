//! Onboarding flows: where each user stands in the first-run journey, one flow per user and
//! organisation.

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Query, Scope};
use crate::stores::user::system;
use crate::table::Table;
use crate::{Result, StorageError, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// A user's onboarding flow in an organisation (or outside any).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardingFlow {
    /// A UUID the store assigns.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The organisation, if any.
    pub org_id: Option<String>,
    /// The step the user is on.
    pub current_step: String,
    /// The steps done, in order.
    pub completed_steps: Vec<String>,
    /// The use case the user chose.
    pub use_case: Option<String>,
    /// The template the user chose.
    pub selected_template: Option<String>,
    /// The user's first debate.
    pub first_debate_id: Option<String>,
    /// The quick-start profile.
    pub quick_start_profile: Option<String>,
    /// Anything else, stored as given.
    pub metadata: Map<String, Value>,
    /// When the flow started.
    pub started_at: DateTime<Utc>,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
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

/// The unique key of a flow: its user and organisation (length-prefixed: ids may hold anything).
fn flow_key(user_id: &str, org_id: Option<&str>) -> String {
    format!("{}:{user_id}{}", user_id.len(), org_id.unwrap_or(""))
}

/// A change to a flow through [`OnboardingStore::update_flow`].
#[derive(Debug, Clone, Default)]
pub struct FlowChanges {
    /// Move to this step, recording the current one as completed.
    pub advance_to: Option<String>,
    /// The chosen use case.
    pub use_case: Option<String>,
    /// The chosen template.
    pub selected_template: Option<String>,
    /// The first debate.
    pub first_debate_id: Option<String>,
    /// The quick-start profile.
    pub quick_start_profile: Option<String>,
    /// Replace the metadata.
    pub metadata: Option<Map<String, Value>>,
}

/// Completion figures over the flows started in a period.
#[derive(Debug, Clone, PartialEq)]
pub struct OnboardingAnalytics {
    /// Flows started.
    pub total: u64,
    /// Of them, completed.
    pub completed: u64,
    /// `completed / total`, in percent (0 when there are none).
    pub completion_rate: f64,
    /// How many flows stand at each step.
    pub current_steps: BTreeMap<String, u64>,
}

impl Document for OnboardingFlow {
    const TABLE: TableDef = TableDef {
        name: "onboarding_flows",
        entity: "onboarding flow",
        id_field: "flow_id",
        indexes: &[
            IndexSpec::text("flow_key").unique(),
            IndexSpec::text("user_id"),
            IndexSpec::time("started_at"),
            IndexSpec::bool("completed"),
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
            Some(IndexValue::Text(flow_key(&self.user_id, self.org_id.as_deref()))),
            Some(IndexValue::from(&self.user_id)),
            Some(IndexValue::Time(self.started_at)),
            Some(IndexValue::Bool(self.completed_at.is_some())),
        ]
    }
    fn validate(&self) -> Result<()> {
        validate_id("flow_id", &self.id)?;
        validate_id("user_id", &self.user_id)?;
        if let Some(org) = &self.org_id {
            validate_id("org_id", org)?;
        }
        for step in std::iter::once(&self.current_step).chain(&self.completed_steps) {
            validate_id("step", step)?;
        }
        for (field, value) in [
            ("use_case", &self.use_case),
            ("selected_template", &self.selected_template),
            ("first_debate_id", &self.first_debate_id),
            ("quick_start_profile", &self.quick_start_profile),
        ] {
            if let Some(value) = value {
                validate_id(field, value)?;
            }
        }
        Ok(())
    }
}

/// Onboarding flows.
#[async_trait]
pub trait OnboardingStore: Send + Sync + fmt::Debug {
    /// Starts the flow of `user_id` in `org_id` at `first_step`; `Conflict` if it has one.
    async fn create_flow(&self, user_id: &str, org_id: Option<&str>, first_step: &str) -> Result<OnboardingFlow>;
    /// The flow of `user_id` in `org_id`.
    async fn get_flow(&self, user_id: &str, org_id: Option<&str>) -> Result<Option<OnboardingFlow>>;
    /// The flow with this id.
    async fn get_flow_by_id(&self, id: &str) -> Result<Option<OnboardingFlow>>;
    /// Applies `changes`.
    async fn update_flow(&self, id: &str, changes: &FlowChanges) -> Result<OnboardingFlow>;
    /// Marks the flow completed now (its current step done); completing it again changes nothing.
    async fn complete_flow(&self, id: &str) -> Result<OnboardingFlow>;
    /// Figures over the flows started in `[start, end)` (either end open). Reads every such flow.
    async fn get_analytics(&self, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result<OnboardingAnalytics>;
}

/// [`OnboardingStore`] on any backend.
pub struct Onboarding<B: ?Sized = dyn Engine> {
    flows: Table<OnboardingFlow>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(Onboarding { flows });

#[async_trait]
impl<B: ?Sized> OnboardingStore for Onboarding<B> {
    async fn create_flow(&self, user_id: &str, org_id: Option<&str>, first_step: &str) -> Result<OnboardingFlow> {
        let flow = OnboardingFlow {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            org_id: org_id.map(str::to_owned),
            current_step: first_step.to_owned(),
            completed_steps: Vec::new(),
            use_case: None,
            selected_template: None,
            first_debate_id: None,
            quick_start_profile: None,
            metadata: Map::new(),
            started_at: self.flows.now(),
            completed_at: None,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        self.flows.insert(&flow).await
    }

    async fn get_flow(&self, user_id: &str, org_id: Option<&str>) -> Result<Option<OnboardingFlow>> {
        validate_id("user_id", user_id)?;
        if let Some(org) = org_id {
            validate_id("org_id", org)?;
        }
        self.flows.get_by_unique(system(), "flow_key", flow_key(user_id, org_id)).await
    }

    async fn get_flow_by_id(&self, id: &str) -> Result<Option<OnboardingFlow>> {
        self.flows.get(system(), id).await
    }

    async fn update_flow(&self, id: &str, changes: &FlowChanges) -> Result<OnboardingFlow> {
        self.flows
            .patch(system(), id, |flow| {
                if let Some(next) = &changes.advance_to {
                    if !flow.completed_steps.contains(&flow.current_step) {
                        flow.completed_steps.push(flow.current_step.clone());
                    }
                    flow.current_step.clone_from(next);
                }
                for (field, value) in [
                    (&mut flow.use_case, &changes.use_case),
                    (&mut flow.selected_template, &changes.selected_template),
                    (&mut flow.first_debate_id, &changes.first_debate_id),
                    (&mut flow.quick_start_profile, &changes.quick_start_profile),
                ] {
                    if value.is_some() {
                        field.clone_from(value);
                    }
                }
                if let Some(metadata) = &changes.metadata {
                    flow.metadata.clone_from(metadata);
                }
                Ok(())
            })
            .await
    }

    async fn complete_flow(&self, id: &str) -> Result<OnboardingFlow> {
        let now = self.flows.now();
        self.flows
            .patch(system(), id, |flow| {
                if flow.completed_at.is_none() {
                    if !flow.completed_steps.contains(&flow.current_step) {
                        flow.completed_steps.push(flow.current_step.clone());
                    }
                    flow.completed_at = Some(now);
                }
                Ok(())
            })
            .await
    }

    async fn get_analytics(&self, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result<OnboardingAnalytics> {
        let mut filter = Filter::all();
        if let Some(start) = start {
            filter = filter.ge("started_at", start);
        }
        if let Some(end) = end {
            filter = filter.lt("started_at", end);
        }
        if let (Some(start), Some(end)) = (start, end)
            && start > end
        {
            return Err(StorageError::invalid("start", "is after end"));
        }
        let flows = self.flows.list_all(Scope::Tenant(system()), Query::new(filter)).await?;
        let mut analytics = OnboardingAnalytics { total: 0, completed: 0, completion_rate: 0.0, current_steps: BTreeMap::new() };
        for flow in &flows {
            analytics.total = analytics.total.saturating_add(1);
            if flow.completed_at.is_some() {
                analytics.completed = analytics.completed.saturating_add(1);
            }
            let at_step = analytics.current_steps.entry(flow.current_step.clone()).or_insert(0);
            *at_step = at_step.saturating_add(1);
        }
        if analytics.total > 0 {
            #[allow(clippy::cast_precision_loss)] // a percentage: counts far below 2^52
            let rate = analytics.completed as f64 * 100.0 / analytics.total as f64;
            analytics.completion_rate = rate;
        }
        Ok(analytics)
    }
}
