//! One module per store: its models, its trait, and its logic, written once over the engine.

pub mod approval_request;
pub mod ar_invoice;
pub mod audit;
pub mod audit_trail;
pub mod bot_installation;
pub mod channel_subscription;
pub mod debate_archive;
pub mod decision_result;
pub mod email;
pub mod expense;
pub mod external_identity;
pub mod federation;
pub mod finding_workflow;
pub mod gauntlet_run;
pub mod gmail_token;
pub mod governance;
pub mod impersonation;
pub mod inbox;
pub mod inbox_activity;
pub mod integration;
pub mod invitation;
pub mod invoice;
pub mod job_queue;
pub mod marketplace;
pub mod notification;
pub mod notification_template;
pub mod oauth;
pub mod onboarding;
pub mod organization;
pub mod password_reset;
pub mod pipeline;
pub mod plaid;
pub mod playground;
pub mod provenance;
pub mod receipt;
pub mod share;
pub mod slack_debate;
pub mod token_blacklist;
pub mod usage;
pub mod user;
pub mod vertical;
pub mod webhook;
pub mod webhook_config;

use crate::document::{Document, TableDef};
use crate::ledger::Ledgered;
use crate::multi::MultiValued;

/// Two ids as one, unambiguous whatever they contain: the first is length-prefixed, so
/// (`a:b`, `c`) and (`a`, `b:c`) stay apart.
pub(crate) fn joined_id(first: &str, second: &str) -> String {
    format!("{}:{first}{second}", first.len())
}

/// `doc` with the metadata a unit's change `at` was written with.
pub(crate) fn written<D: Document>(mut doc: D, applied: &[crate::Applied], at: usize) -> D {
    if let Some(crate::Applied::Written(meta)) = applied.get(at) {
        doc.set_meta(*meta);
    }
    doc
}

/// Every table whose records carry sealed secrets: what key rotation re-encrypts (a test checks
/// it against the tables that declare `sealed`).
pub const SEALED: &[&dyn crate::rotation::SealedTable] = {
    use crate::rotation::Sealed;
    &[
        &Sealed::<integration::IntegrationConfig>::TABLE,
        &Sealed::<gmail_token::GmailUserState>::TABLE,
        &Sealed::<user::User>::TABLE,
        &Sealed::<external_identity::ExternalIdentity>::TABLE,
        &Sealed::<audit::AuditEntry>::TABLE,
        &Sealed::<bot_installation::BotInstallation>::TABLE,
        &Sealed::<plaid::PlaidCredential>::TABLE,
        &Sealed::<notification::EmailConfig>::TABLE,
        &Sealed::<notification::TelegramConfig>::TABLE,
        &Sealed::<webhook_config::WebhookConfig>::TABLE,
        &Sealed::<channel_subscription::ChannelSubscription>::TABLE,
        &Sealed::<inbox::InboxMessage>::TABLE,
        &Sealed::<federation::FederatedRegion>::TABLE,
    ]
};

/// Every document table of every store, for schema checks: the migrated SQL schemas must have
/// each of them, with its columns and indexes.
pub const TABLES: &[&TableDef] = &[
    &integration::IntegrationConfig::TABLE,
    &integration::UserIdMapping::TABLE,
    &gmail_token::GmailUserState::TABLE,
    &gmail_token::GmailSyncJob::TABLE,
    &user::User::TABLE,
    &organization::Organization::TABLE,
    &invitation::Invitation::TABLE,
    &oauth::OAuthLink::TABLE,
    &external_identity::ExternalIdentity::TABLE,
    &onboarding::OnboardingFlow::TABLE,
    &vertical::VerticalConfig::TABLE,
    &usage::UsageEvent::TABLE,
    &audit::AuditEntry::TABLE,
    &audit::AuditHead::TABLE,
    &audit_trail::TrailRecord::TABLE,
    &governance::Approval::TABLE,
    &governance::Verification::TABLE,
    &governance::Decision::TABLE,
    &bot_installation::BotInstallation::TABLE,
    &plaid::PlaidCredential::TABLE,
    &slack_debate::SlackDebate::TABLE,
    &notification::EmailConfig::TABLE,
    &notification::TelegramConfig::TABLE,
    &notification::EmailRecipient::TABLE,
    &notification_template::TemplateOverride::TABLE,
    &webhook_config::WebhookConfig::TABLE,
    &webhook_config::WebhookConfig::POSTINGS,
    &channel_subscription::ChannelSubscription::TABLE,
    &channel_subscription::ChannelSubscription::POSTINGS,
    &inbox::InboxAccount::TABLE,
    &inbox::InboxMessage::TABLE,
    &inbox::TriageResult::TABLE,
    &inbox_activity::InboxActivity::TABLE,
    &email::EmailUserConfig::TABLE,
    &email::VipSender::TABLE,
    &email::SharedInbox::TABLE,
    &email::SharedInbox::POSTINGS,
    &email::SharedMessage::TABLE,
    &email::RoutingRule::TABLE,
    &email::PrioritizationDecision::TABLE,
    &receipt::Receipt::TABLE,
    &invoice::Invoice::TABLE,
    &invoice::Invoice::ENTRIES,
    &ar_invoice::ArInvoice::TABLE,
    &ar_invoice::ArInvoice::ENTRIES,
    &ar_invoice::Customer::TABLE,
    &gauntlet_run::GauntletRun::TABLE,
    &approval_request::ApprovalRequest::TABLE,
    &decision_result::DecisionResult::TABLE,
    &expense::Expense::TABLE,
    &marketplace::Template::TABLE,
    &marketplace::Rating::TABLE,
    &marketplace::Review::TABLE,
    &provenance::ProvenanceChain::TABLE,
    &provenance::EvidenceRecord::TABLE,
    &provenance::Citation::TABLE,
    &password_reset::ResetToken::TABLE,
    &password_reset::ResetRequests::TABLE,
    &token_blacklist::Revocation::TABLE,
    &share::DebateShare::TABLE,
    &share::ReceiptShare::TABLE,
    &impersonation::ImpersonationSession::TABLE,
    &finding_workflow::FindingWorkflow::TABLE,
    &federation::FederatedRegion::TABLE,
    &pipeline::PipelineResult::TABLE,
    &playground::PlaygroundDebate::TABLE,
    &playground::CachedDebate::TABLE,
    &debate_archive::ArchivedDebate::TABLE,
];

/// Declares a store made of typed tables: [`crate::Store`] (each field is a table on the engine),
/// `Clone`, `Debug`, and the seed's per-backend constructors (see [`seed_constructors!`]).
#[macro_export]
#[doc(hidden)]
macro_rules! seed_store {
    ($store:ident { $($field:ident),+ $(,)? }) => {
        impl<B: ?Sized + 'static> $crate::Store for $store<B> {
            fn on(engine: &dyn $crate::Engine) -> Self {
                Self { $($field: engine.table(),)+ _backend: ::std::marker::PhantomData }
            }
        }
        impl<B: ?Sized> Clone for $store<B> {
            fn clone(&self) -> Self {
                Self { $($field: self.$field.clone(),)+ _backend: ::std::marker::PhantomData }
            }
        }
        impl<B: ?Sized> ::std::fmt::Debug for $store<B> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($store))$(.field(stringify!($field), &self.$field))+.finish()
            }
        }
        $crate::seed_constructors!($store);
    };
}

/// The seed's per-backend constructors of a store generic over its backend `B`:
/// `open(target)` for backends that open from one argument (`SQLiteIntegrationStore::open(path)`)
/// and `new()` for those with a default (`InMemoryIntegrationStore::new()`).
#[macro_export]
#[doc(hidden)]
macro_rules! seed_constructors {
    ($store:ident) => {
        impl<B: $crate::OpenEngine + 'static> $store<B> {
            /// Opens the backend at `target` (a path or URL) with the environment's settings, and
            /// this store on it.
            pub async fn open(target: impl Into<B::Target>) -> $crate::Result<Self> {
                let engine = B::open_engine(target.into()).await?;
                Ok(<Self as $crate::Store>::on(&engine))
            }
        }
        impl<B: $crate::Engine + Default + 'static> $store<B> {
            /// This store on a new backend of its own.
            pub fn new() -> Self {
                <Self as $crate::Store>::on(&B::default())
            }
        }
        impl<B: $crate::Engine + Default + 'static> Default for $store<B> {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_sealed_table_is_listed_for_rotation_once() {
        let declared: Vec<&str> = super::TABLES.iter().filter(|t| t.sealed).map(|t| t.name).collect();
        let mut listed: Vec<&str> = super::SEALED.iter().map(|s| s.def().name).collect();
        let mut sorted = declared.clone();
        sorted.sort_unstable();
        listed.sort_unstable();
        assert_eq!(listed, sorted, "SEALED must list exactly the tables that declare `sealed`");
        assert!(!declared.is_empty());
    }
}
