//! Core types of `aragora-storage`.
//!
//! This crate is deliberately small: it holds the store traits, their models and their logic
//! (written once, over any backend), the error type, the configuration, the injected [`Clock`],
//! [`Secret`], [`TenantId`], keyset pagination, and the engine contract every backend implements
//! once: [`Engine`] and its generic [`Tables`], typed for stores by [`Table`].
//!
//! Backends (`storage-memory`, `storage-sqlite`, `storage-postgres`, `storage-redis`) depend on
//! this crate only; applications normally use the `aragora-storage` umbrella.
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]

pub mod backend;
pub mod clock;
pub mod config;
pub mod document;
pub mod engine;
pub mod error;
pub mod fts;
pub mod health;
pub mod instrument;
pub mod ledger;
pub mod limits;
pub mod money;
pub mod multi;
pub mod page;
pub mod placement;
pub mod query;
pub mod resilience;
pub mod rotation;
pub mod secret;
pub mod stores;
pub mod table;
pub mod tenant;
pub mod token;

pub use backend::DatabaseBackend;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use config::{Environment, RedisMode, SqliteSynchronous, StorageConfig};
pub use document::{Document, IndexKind, IndexSpec, RecordMeta, TableDef, Unique, Value};
pub use engine::{
    Applied, Change, Engine, EngineParts, Incremented, OpenEngine, Row, RowPage, RowWrite, SearchPage, Step, Store, Tables, WriteMode,
    with_parts, with_sealer,
};
pub use error::{BoxError, Result, StorageError};
pub use fts::{Search, build_fts_match_query, build_tsquery, escape_fts_string, sanitize_fts_query};
pub use health::{Health, PoolHealth, ReplicaHealth};
pub use instrument::{Instrumentation, instrumented};
pub use ledger::{Balance, EntryKind, LedgerEntry, Ledgered, NewEntry, Posted, ledger_table};
pub use money::{Currency, MAX_MINOR, Money, Totals};
pub use multi::{MultiValued, Posting, postings_table};
pub use page::{Cursor, MAX_PAGE_SIZE, Page, PageRequest};
pub use query::{Direction, Filter, Op, Order, Position, Predicate, Query, Scope};
pub use resilience::{BreakerSettings, BreakerState, CircuitBreaker, RetryPolicy, retry};
pub use rotation::{KeyCensus, Rotation, RotationProgress, RotationReport};
pub use secret::{SealContext, Sealer, Secret};
pub use stores::approval_request::{ApprovalRequest, ApprovalRequestStore, ApprovalRequests, ApprovalResponse, RequestStatus};
pub use stores::ar_invoice::{AgingBucket, AgingReport, ArInvoice, ArInvoiceStore, ArInvoices, ArStatus, Customer, Reminder};
pub use stores::audit::{Audit, AuditEntry, AuditEvent, AuditHead, AuditQuery, AuditStore, BrokenLink, ChainReport, StoredEvent};
pub use stores::audit_trail::{Artifact, ArtifactQuery, AuditTrailStore, AuditTrails};
pub use stores::bot_installation::{
    BotInstallation, BotInstallationStore, BotInstallations, DiscordGuildStore, Platform, PlatformInstallations, PlatformKind,
    RefreshLease, SlackWorkspaceStore, TeamsTenantStore, TeamsWorkspaceStore,
};
pub use stores::channel_subscription::{
    ChannelSubscription, ChannelSubscriptionStore, ChannelSubscriptions, ChannelType, NewSubscription, SubscriptionChanges,
};
pub use stores::debate_archive::{ArchivedDebate, DebateArchive, DebateArchiveStore, DebateAudio, NewArchivedDebate, slug_base};
pub use stores::decision_result::{DecisionResult, DecisionResultOptions, DecisionResultStore, DecisionResults};
pub use stores::email::{
    EmailStore, EmailUserConfig, Emails, FeedbackStats, MessageStatus, NewDecision, NewRoutingRule, NewSharedInbox, PrioritizationDecision,
    RoutingRule, RoutingRuleChanges, SharedInbox, SharedInboxChanges, SharedMessage, VipSender,
};
pub use stores::expense::{
    Expense, ExpenseFilter, ExpenseStats, ExpenseStatus, ExpenseStore, Expenses, MAX_DUPLICATE_WINDOW_DAYS, MAX_STATISTICS_EXPENSES,
    normalise_vendor,
};
pub use stores::external_identity::{ExternalIdentities, ExternalIdentity, ExternalIdentityStore, ExternalProfile};
pub use stores::federation::{FederatedRegion, FederationMode, FederationRegistry, FederationRegistryStore, SyncDirection, SyncScope};
pub use stores::finding_workflow::{
    FindingChange, FindingEvent, FindingState, FindingWorkflow, FindingWorkflowStore, FindingWorkflows, NewFinding,
};
pub use stores::gauntlet_run::{GauntletRun, GauntletRunStore, GauntletRuns, QueueAnalytics, QueuedRun, RunStatus};
pub use stores::gmail_token::{GmailSyncJob, GmailTokenStore, GmailTokens, GmailUserState, SyncStatus, TokenRefresh};
pub use stores::governance::{
    Approval, ApprovalDecision, ApprovalStatus, Decision, Governance, GovernanceRetention, GovernanceStore, Verification,
};
pub use stores::impersonation::{
    ImpersonationAuditQuery, ImpersonationSession, ImpersonationStore, Impersonations, NewImpersonation, StartedSession,
};
pub use stores::inbox::{
    AccountChanges, InboxAccount, InboxMessage, MessageFilter, PriorityTier, TriageResult, UnifiedInbox, UnifiedInboxStore,
};
pub use stores::inbox_activity::{InboxActivities, InboxActivity, InboxActivityStore, NewActivity};
pub use stores::integration::{IntegrationConfig, IntegrationStatus, IntegrationStore, Integrations, UserIdMapping};
pub use stores::invitation::{Invitation, InvitationStatus, InvitationStore, Invitations, IssuedInvitation};
pub use stores::invoice::{Invoice, InvoiceStatus, InvoiceStore, Invoices, LineItem, MAX_LINE_ITEMS};
pub use stores::job_queue::{Backoff, Enqueued, Job, JobFilter, JobQueue, JobQueueStore, JobState, NewJob};
pub use stores::marketplace::{Marketplace, MarketplaceStore, Rating, Review, Template, TemplateSort};
pub use stores::notification::{
    EmailConfig, EmailProvider, EmailRecipient, NotificationConfigStore, NotificationConfigs, NotifyOn, TelegramConfig,
};
pub use stores::notification_template::{NotificationTemplateStore, NotificationTemplates, TemplateOverride};
pub use stores::oauth::{OAuthLink, OAuthLinkStore, OAuthLinks};
pub use stores::onboarding::{FlowChanges, Onboarding, OnboardingAnalytics, OnboardingFlow, OnboardingStore};
pub use stores::organization::{Organization, OrganizationChanges, OrganizationStore, Organizations, Role, UsageOutcome, UsageSummary};
pub use stores::password_reset::{PasswordResetStore, PasswordResets, ResetRequest};
pub use stores::pipeline::{PipelineResult, PipelineResults, PipelineStatus, PipelineStore, StageStatus};
pub use stores::plaid::{PlaidCredential, PlaidCredentialStore, PlaidCredentials};
pub use stores::playground::{
    CacheHit, CachedDebate, DEFAULT_PLAYGROUND_TTL, PlaygroundDebate, PlaygroundDebateStore, PlaygroundDebates, cache_key, normalize_topic,
};
pub use stores::provenance::{
    BrokenRecord, ChainVerification, Citation, CitationsOf, EvidenceRecord, NewEvidence, Provenance, ProvenanceChain, ProvenanceStats,
    ProvenanceStore,
};
pub use stores::receipt::{
    DEFAULT_RECEIPT_RETENTION, DeletionQuery, DeletionReason, LegalHold, Receipt, ReceiptDeletion, ReceiptQuery, ReceiptSignature,
    ReceiptSort, ReceiptStats, ReceiptStore, ReceiptVerification, Receipts, SignatureAlgorithm, SignatureCheck, TrustedTimestamp,
    VerifyingKey,
};
pub use stores::share::{
    DebateShare, IssuedReceiptShare, ReceiptShare, ReceiptShareStore, ReceiptShares, SavedShare, ShareSettings, ShareStats, ShareStore,
    Shares, Visibility,
};
pub use stores::slack_debate::{DebateOutcome, DebateStatus, SlackDebate, SlackDebateStore, SlackDebates};
pub use stores::token_blacklist::{TokenBlacklist, TokenBlacklistStore};
pub use stores::usage::{Usage, UsageEvent, UsageStore};
pub use stores::user::{
    ApiKeyInfo, IssuedApiKey, LockoutInfo, LockoutPolicy, Mfa, NewUser, User, UserChanges, UserQuery, UserStats, UserStore, Users,
};
pub use stores::vertical::{VerticalConfig, VerticalStore, Verticals};
pub use stores::webhook::{ClaimOutcome, Delivery, EventState, Lease, WebhookEvents, WebhookOptions, WebhookStore, Webhooks};
pub use stores::webhook_config::{WebhookChanges, WebhookConfig, WebhookConfigStore, WebhookConfigs, WebhookRegistration};
pub use table::{Table, Unit};
pub use tenant::{TenantId, validate_id};
