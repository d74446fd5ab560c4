//! Users' overrides of notification templates: one document per user and template (the
//! original kept a JSON file per user, whose sanitised names collided).

use crate::document::{Document, IndexSpec, TableDef, Value as IndexValue};
use crate::engine::Engine;
use crate::query::{Filter, Query, Scope};
use crate::stores::joined_id as key;
use crate::stores::user::system;
use crate::table::Table;
use crate::{Result, TenantId, validate_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// One user's override of one template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateOverride {
    /// The user.
    pub user_id: String,
    /// The template.
    pub template_id: String,
    /// What the user changed, as the application defines it.
    pub overrides: Map<String, Value>,
    /// Version.
    #[serde(default)]
    pub version: u64,
    /// When first stored.
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// When last stored.
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
}

/// The id of a user's override of a template, both ids checked.
fn override_id(user_id: &str, template_id: &str) -> Result<String> {
    validate_id("user_id", user_id)?;
    validate_id("template_id", template_id)?;
    Ok(key(user_id, template_id))
}

impl Document for TemplateOverride {
    const TABLE: TableDef = TableDef {
        name: "notification_template_overrides",
        entity: "template override",
        id_field: "override_id",
        indexes: &[IndexSpec::text("user_id")],
        expires: false,
        sealed: false,
        search: false,
    };

    fn tenant(&self) -> &TenantId {
        system()
    }
    fn id(&self) -> String {
        key(&self.user_id, &self.template_id)
    }
    crate::record_meta!();
    fn index_values(&self) -> Vec<Option<IndexValue>> {
        vec![Some(IndexValue::from(&self.user_id))]
    }
    fn validate(&self) -> Result<()> {
        override_id(&self.user_id, &self.template_id).map(|_| ())
    }
}

/// Users' notification template overrides.
#[async_trait]
pub trait NotificationTemplateStore: Send + Sync + fmt::Debug {
    /// Stores a user's override of a template, replacing any.
    async fn save_override(&self, user_id: &str, template_id: &str, overrides: Map<String, Value>) -> Result<TemplateOverride>;
    /// A user's overrides, by template.
    async fn load_overrides(&self, user_id: &str) -> Result<BTreeMap<String, Map<String, Value>>>;
    /// Removes a user's override of a template; whether there was one.
    async fn delete_override(&self, user_id: &str, template_id: &str) -> Result<bool>;
    /// Every user's overrides, by user and template (administrative: reads them all).
    async fn list_all_overrides(&self) -> Result<BTreeMap<String, BTreeMap<String, Map<String, Value>>>>;
}

/// [`NotificationTemplateStore`] on any backend.
pub struct NotificationTemplates<B: ?Sized = dyn Engine> {
    overrides: Table<TemplateOverride>,
    _backend: PhantomData<fn(&B)>,
}

crate::seed_store!(NotificationTemplates { overrides });

#[async_trait]
impl<B: ?Sized> NotificationTemplateStore for NotificationTemplates<B> {
    async fn save_override(&self, user_id: &str, template_id: &str, overrides: Map<String, Value>) -> Result<TemplateOverride> {
        override_id(user_id, template_id)?;
        let record = TemplateOverride {
            user_id: user_id.to_owned(),
            template_id: template_id.to_owned(),
            overrides,
            version: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        self.overrides.upsert(&record).await
    }

    async fn load_overrides(&self, user_id: &str) -> Result<BTreeMap<String, Map<String, Value>>> {
        validate_id("user_id", user_id)?;
        let records = self.overrides.list_all(Scope::Tenant(system()), Query::new(Filter::all().eq("user_id", user_id))).await?;
        Ok(records.into_iter().map(|r| (r.template_id, r.overrides)).collect())
    }

    async fn delete_override(&self, user_id: &str, template_id: &str) -> Result<bool> {
        self.overrides.delete(system(), &override_id(user_id, template_id)?).await
    }

    async fn list_all_overrides(&self) -> Result<BTreeMap<String, BTreeMap<String, Map<String, Value>>>> {
        let mut all: BTreeMap<String, BTreeMap<String, Map<String, Value>>> = BTreeMap::new();
        for record in self.overrides.list_all(Scope::Tenant(system()), Query::default()).await? {
            all.entry(record.user_id).or_default().insert(record.template_id, record.overrides);
        }
        Ok(all)
    }
}
