//! Every store, listed once: a `Storage` method and the seed's process-wide accessors for each.
//! `get_X_store()` returns the store the environment selects (or the one installed with
//! `set_X_store`), `reset_X_store()` forgets the installed one.
//!
//! The default `Storage` is built once, on first use, and only kept if building it succeeded:
//! a refused configuration (say, no key in production) fails every call, and never leaves a
//! half-configured store behind.

use crate::Storage;
use std::sync::{Arc, PoisonError, RwLock};
use storage_core::*;
use tokio::sync::Mutex;

static DEFAULT_STORAGE: Mutex<Option<Storage>> = Mutex::const_new(None);

async fn default_storage() -> Result<Storage> {
    let mut slot = DEFAULT_STORAGE.lock().await;
    if let Some(storage) = slot.as_ref() {
        return Ok(storage.clone());
    }
    let storage = Storage::from_env().await?;
    *slot = Some(storage.clone());
    Ok(storage)
}

macro_rules! stores {
    ($($method:ident: $trait:ident = $store:ident, $get:ident, $set:ident, $reset:ident;)+) => {
        /// Every store's accessor name, in the order they are listed.
        #[doc(hidden)]
        pub const STORE_ACCESSORS: &[&str] = &[$(stringify!($method)),+];

        impl Storage {
            $(
                #[doc = concat!("The [`", stringify!($trait), "`] on this backend.")]
                pub fn $method(&self) -> Arc<dyn $trait> {
                    Arc::new(<$store>::on(self.engine_for(stringify!($method)).as_ref()))
                }
            )+
        }
        $(
            mod $method {
                use super::*;
                /// The installed (or first configured) store.
                pub(super) static SLOT: RwLock<Option<Arc<dyn $trait>>> = RwLock::new(None);
            }

            #[doc = concat!("The [`", stringify!($trait), "`] the environment selects, or the one installed with [`", stringify!($set), "`].")]
            pub async fn $get() -> Result<Arc<dyn $trait>> {
                if let Some(store) = $method::SLOT.read().unwrap_or_else(PoisonError::into_inner).clone() {
                    return Ok(store);
                }
                let store = default_storage().await?.$method();
                let mut slot = $method::SLOT.write().unwrap_or_else(PoisonError::into_inner);
                Ok(Arc::clone(slot.get_or_insert(store)))
            }

            #[doc = concat!("Installs `store` as the process-wide [`", stringify!($trait), "`] (e.g. an in-memory one in tests).")]
            pub fn $set(store: Arc<dyn $trait>) {
                *$method::SLOT.write().unwrap_or_else(PoisonError::into_inner) = Some(store);
            }

            #[doc = concat!("Forgets the installed [`", stringify!($trait), "`]; the next [`", stringify!($get), "`] returns the configured one.")]
            pub fn $reset() {
                *$method::SLOT.write().unwrap_or_else(PoisonError::into_inner) = None;
            }
        )+
    };
}

stores! {
    integration_store: IntegrationStore = Integrations, get_integration_store, set_integration_store, reset_integration_store;
    webhook_store: WebhookStore = Webhooks, get_webhook_store, set_webhook_store, reset_webhook_store;
    gmail_token_store: GmailTokenStore = GmailTokens, get_gmail_token_store, set_gmail_token_store, reset_gmail_token_store;
    user_store: UserStore = Users, get_user_store, set_user_store, reset_user_store;
    organization_store: OrganizationStore = Organizations, get_organization_store, set_organization_store, reset_organization_store;
    invitation_store: InvitationStore = Invitations, get_invitation_store, set_invitation_store, reset_invitation_store;
    oauth_link_store: OAuthLinkStore = OAuthLinks, get_oauth_link_store, set_oauth_link_store, reset_oauth_link_store;
    external_identity_store: ExternalIdentityStore = ExternalIdentities, get_external_identity_store, set_external_identity_store, reset_external_identity_store;
    onboarding_store: OnboardingStore = Onboarding, get_onboarding_store, set_onboarding_store, reset_onboarding_store;
    vertical_store: VerticalStore = Verticals, get_vertical_store, set_vertical_store, reset_vertical_store;
    usage_store: UsageStore = Usage, get_usage_store, set_usage_store, reset_usage_store;
    audit_store: AuditStore = Audit, get_audit_store, set_audit_store, reset_audit_store;
    audit_trail_store: AuditTrailStore = AuditTrails, get_audit_trail_store, set_audit_trail_store, reset_audit_trail_store;
    governance_store: GovernanceStore = Governance, get_governance_store, set_governance_store, reset_governance_store;
    bot_installation_store: BotInstallationStore = BotInstallations, get_bot_installation_store, set_bot_installation_store, reset_bot_installation_store;
    plaid_credential_store: PlaidCredentialStore = PlaidCredentials, get_plaid_credential_store, set_plaid_credential_store, reset_plaid_credential_store;
    slack_debate_store: SlackDebateStore = SlackDebates, get_slack_debate_store, set_slack_debate_store, reset_slack_debate_store;
    notification_config_store: NotificationConfigStore = NotificationConfigs, get_notification_config_store, set_notification_config_store, reset_notification_config_store;
    notification_template_store: NotificationTemplateStore = NotificationTemplates, get_notification_template_store, set_notification_template_store, reset_notification_template_store;
    webhook_config_store: WebhookConfigStore = WebhookConfigs, get_webhook_config_store, set_webhook_config_store, reset_webhook_config_store;
    channel_subscription_store: ChannelSubscriptionStore = ChannelSubscriptions, get_channel_subscription_store, set_channel_subscription_store, reset_channel_subscription_store;
    unified_inbox_store: UnifiedInboxStore = UnifiedInbox, get_unified_inbox_store, set_unified_inbox_store, reset_unified_inbox_store;
    inbox_activity_store: InboxActivityStore = InboxActivities, get_inbox_activity_store, set_inbox_activity_store, reset_inbox_activity_store;
    email_store: EmailStore = Emails, get_email_store, set_email_store, reset_email_store;
    receipt_store: ReceiptStore = Receipts, get_receipt_store, set_receipt_store, reset_receipt_store;
    invoice_store: InvoiceStore = Invoices, get_invoice_store, set_invoice_store, reset_invoice_store;
    ar_invoice_store: ArInvoiceStore = ArInvoices, get_ar_invoice_store, set_ar_invoice_store, reset_ar_invoice_store;
    gauntlet_run_store: GauntletRunStore = GauntletRuns, get_gauntlet_run_store, set_gauntlet_run_store, reset_gauntlet_run_store;
    approval_request_store: ApprovalRequestStore = ApprovalRequests, get_approval_request_store, set_approval_request_store, reset_approval_request_store;
    decision_result_store: DecisionResultStore = DecisionResults, get_decision_result_store, set_decision_result_store, reset_decision_result_store;
    expense_store: ExpenseStore = Expenses, get_expense_store, set_expense_store, reset_expense_store;
    marketplace_store: MarketplaceStore = Marketplace, get_marketplace_store, set_marketplace_store, reset_marketplace_store;
    provenance_store: ProvenanceStore = Provenance, get_provenance_store, set_provenance_store, reset_provenance_store;
    job_queue_store: JobQueueStore = JobQueue, get_job_queue_store, set_job_queue_store, reset_job_queue_store;
    password_reset_store: PasswordResetStore = PasswordResets, get_password_reset_store, set_password_reset_store, reset_password_reset_store;
    token_blacklist_store: TokenBlacklistStore = TokenBlacklist, get_token_blacklist_store, set_token_blacklist_store, reset_token_blacklist_store;
    share_store: ShareStore = Shares, get_share_store, set_share_store, reset_share_store;
    receipt_share_store: ReceiptShareStore = ReceiptShares, get_receipt_share_store, set_receipt_share_store, reset_receipt_share_store;
    impersonation_store: ImpersonationStore = Impersonations, get_impersonation_store, set_impersonation_store, reset_impersonation_store;
    finding_workflow_store: FindingWorkflowStore = FindingWorkflows, get_finding_workflow_store, set_finding_workflow_store, reset_finding_workflow_store;
    federation_registry_store: FederationRegistryStore = FederationRegistry, get_federation_registry_store, set_federation_registry_store, reset_federation_registry_store;
    pipeline_store: PipelineStore = PipelineResults, get_pipeline_store, set_pipeline_store, reset_pipeline_store;
    playground_debate_store: PlaygroundDebateStore = PlaygroundDebates, get_playground_debate_store, set_playground_debate_store, reset_playground_debate_store;
    debate_archive_store: DebateArchiveStore = DebateArchive, get_debate_archive_store, set_debate_archive_store, reset_debate_archive_store;
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_store_can_be_placed_by_name() {
        let accessors: Vec<&str> = super::STORE_ACCESSORS.iter().map(|m| m.strip_suffix("_store").unwrap_or(m)).collect();
        assert_eq!(accessors, storage_core::placement::STORES, "placement::STORES lists every accessor, in order");
    }
}
