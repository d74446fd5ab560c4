//! What must never be stored in clear: the secrets the stores accept (passwords, MFA, API keys,
//! invitation tokens, identity claims, bot tokens and signing secrets, bank tokens, mail
//! passwords, webhook signing secrets, channel credentials, inbox message bodies, federation API
//! keys). A backend's own tests plant them with [`plant_secrets`], dump what the backend holds
//! (files, tables, keys) and check the dump with [`assert_no_secret_in`].

use storage_core::{
    BotInstallation, BotInstallationStore, BotInstallations, ChannelSubscriptionStore, ChannelSubscriptions, ChannelType, EmailConfig,
    Engine, ExternalIdentities, ExternalIdentityStore, ExternalProfile, FederatedRegion, FederationRegistry, FederationRegistryStore,
    ImpersonationStore, Impersonations, InboxAccount, InboxMessage, InvitationStore, Invitations, Mfa, NewImpersonation, NewSubscription,
    NewUser, NotificationConfigStore, NotificationConfigs, PasswordResetStore, PasswordResets, PlaidCredentialStore, PlaidCredentials,
    Platform, ReceiptShareStore, ReceiptShares, ResetRequest, Role, Secret, ShareSettings, ShareStore, Shares, Store, TenantId,
    TokenBlacklist, TokenBlacklistStore, UnifiedInbox, UnifiedInboxStore, UserChanges, UserStore, Users, Visibility, WebhookConfigStore,
    WebhookConfigs, WebhookRegistration,
};

/// Writes a user with a password, MFA and an API key, an invitation, an external identity with
/// claims, a bot installation, a Plaid item and a mail channel; returns every secret written (the raw API key
/// and invitation token included).
pub async fn plant_secrets(engine: &dyn Engine) -> Vec<String> {
    let users: Users = Users::on(engine);
    let invitations: Invitations = Invitations::on(engine);
    let identities: ExternalIdentities = ExternalIdentities::on(engine);
    let user = users
        .create_user(NewUser::new("canary@at-rest.example", "Canary").with_password("pw-hash-canary-6c1f", "pw-salt-canary-93ab"))
        .await
        .expect("user");
    let mfa = Mfa {
        secret: Secret::new("totp-canary-JBSWY3DPEHPK3PXP".to_owned()),
        backup_codes: vec![Secret::new("backup-canary-4417".to_owned())],
    };
    users.update_user(&user.id, &UserChanges { mfa: Some(Some(mfa)), ..UserChanges::default() }).await.expect("mfa");
    let key = users.issue_api_key(&user.id, vec!["read".to_owned()], None).await.expect("api key");
    let org = TenantId::new("at-rest-org").expect("tenant");
    let invitation =
        invitations.create_invitation(&org, "invitee@at-rest.example", Role::Member, &user.id, None).await.expect("invitation");
    let mut claims = serde_json::Map::new();
    claims.insert("session_token".to_owned(), "claims-canary-b7e2".into());
    let profile =
        ExternalProfile { provider: "okta".to_owned(), external_id: "sub-1".to_owned(), raw_claims: claims, ..ExternalProfile::default() };
    identities.create(&user.id, &profile).await.expect("identity");
    let bots: BotInstallations = BotInstallations::on(engine);
    let mut bot = BotInstallation::new(org.clone(), Platform::Slack, "T-AT-REST", "At Rest", "xoxb-bot-canary-51d0", chrono::Utc::now());
    bot.signing_secret = Some(Secret::new("signing-canary-0e9c".to_owned()));
    bots.save(&bot.with_refresh("xoxe-refresh-canary-77aa", chrono::Utc::now())).await.expect("bot");
    let plaid: PlaidCredentials = PlaidCredentials::on(engine);
    plaid
        .save_credentials(&org, &user.id, "item-1", Secret::new("access-sandbox-canary-c3f1".to_owned()), "ins_1", "Bank")
        .await
        .expect("plaid");
    let mut email = EmailConfig::smtp(org.clone(), "smtp.at-rest.example", 587, "alerts@at-rest.example");
    email.smtp_password = Some(Secret::new("smtp-canary-9a4e".to_owned()));
    let notifications: NotificationConfigs = NotificationConfigs::on(engine);
    notifications.save_email_config(&email).await.expect("email config");
    let webhooks: WebhookConfigs = WebhookConfigs::on(engine);
    let registration = WebhookRegistration {
        url: "https://hooks.at-rest.example/in".to_owned(),
        events: ["debate.completed".to_owned()].into(),
        ..WebhookRegistration::default()
    };
    let webhook = webhooks.register(&org, registration).await.expect("webhook");
    let subscriptions: ChannelSubscriptions = ChannelSubscriptions::on(engine);
    let subscription = NewSubscription {
        channel_type: ChannelType::Webhook,
        channel_id: "endpoint-1".to_owned(),
        workspace_id: None,
        channel_name: None,
        event_types: ["debate.completed".to_owned()].into(),
        created_by: None,
        config: [("authorization".to_owned(), "Bearer header-canary-2d8b".to_owned())].into(),
    };
    subscriptions.create(&org, subscription).await.expect("subscription");
    // A thousand messages whose bodies the inbox seals (their common prefix is the canary), in
    // 50 mailboxes written concurrently, so that a backend with group commit is quick about it.
    let inbox: UnifiedInbox = UnifiedInbox::on(engine);
    let now = chrono::Utc::now();
    let saves: Vec<_> = (0..50)
        .map(|box_n| {
            let (inbox, org) = (inbox.clone(), org.clone());
            tokio::spawn(async move {
                let mailbox = format!("mailbox-{box_n}");
                let address = format!("{mailbox}@at-rest.example");
                inbox.save_account(&InboxAccount::new(org.clone(), &mailbox, "gmail", &address, now)).await.expect("account");
                for i in 0..20 {
                    let mut message = InboxMessage::new(org.clone(), &mailbox, &format!("m-{i}"), "Subject", "sender@at-rest.example", now);
                    message.body_preview = Secret::new(format!("inbox-body-canary-7f3e {box_n} {i}"));
                    inbox.save_message(&message).await.expect("message");
                }
            })
        })
        .collect();
    for save in saves {
        save.await.expect("save");
    }
    let federation: FederationRegistry = FederationRegistry::on(engine);
    let region =
        FederatedRegion::new(Some(&org), "eu-west", "https://eu.at-rest.example", Secret::new("fed-api-key-canary-5b2d".to_owned()));
    federation.save(&region).await.expect("federated region");
    federation.save(&FederatedRegion { tenant: TenantId::system(), ..region }).await.expect("global region");
    let bearer = plant_bearer_tokens(engine, &org).await;
    let mut secrets = vec![
        "inbox-body-canary-7f3e".to_owned(),
        key.key.expose().clone(),
        webhook.secret.expose().clone(),
        "header-canary-2d8b".to_owned(),
        invitation.token.expose().clone(),
        "pw-hash-canary-6c1f".to_owned(),
        "pw-salt-canary-93ab".to_owned(),
        "totp-canary-JBSWY3DPEHPK3PXP".to_owned(),
        "backup-canary-4417".to_owned(),
        "claims-canary-b7e2".to_owned(),
        "xoxb-bot-canary-51d0".to_owned(),
        "signing-canary-0e9c".to_owned(),
        "xoxe-refresh-canary-77aa".to_owned(),
        "access-sandbox-canary-c3f1".to_owned(),
        "smtp-canary-9a4e".to_owned(),
        "fed-api-key-canary-5b2d".to_owned(),
    ];
    secrets.extend(bearer);
    // The secrets must still work: the store reads them back through the sealer.
    let sealed = federation.get("eu-west", Some(&org)).await.expect("region").expect("present");
    assert_eq!(sealed.api_key.expose(), "fed-api-key-canary-5b2d");
    assert_eq!(users.get_user_by_api_key(key.key.expose()).await.expect("by key").map(|u| u.id), Some(user.id.clone()));
    let found = invitations.get_invitation_by_token(invitation.token.expose()).await.expect("by token");
    assert_eq!(found.map(|i| i.id), Some(invitation.invitation.id));
    secrets
}

/// Issues a password reset token, a debate and a receipt share link, an impersonation session
/// and a revocation; returns the tokens and session id (stores keep only their digests).
async fn plant_bearer_tokens(engine: &dyn Engine, org: &TenantId) -> Vec<String> {
    let resets: PasswordResets = PasswordResets::on(engine);
    let ResetRequest::Issued { token: reset, .. } = resets.create_token("canary@at-rest.example").await.expect("reset") else {
        panic!("the first reset token is never rate-limited");
    };
    let shares: Shares = Shares::on(engine);
    let settings = ShareSettings {
        debate_id: "debate-at-rest".to_owned(),
        visibility: Visibility::Public,
        owner_id: "owner".to_owned(),
        expires_at: None,
        max_views: None,
        allow_comments: false,
        allow_forking: false,
    };
    let share = shares.save(org, settings).await.expect("share").token.expect("a new share mints a token");
    let receipt_shares: ReceiptShares = ReceiptShares::on(engine);
    let receipt_share =
        receipt_shares.create(org, "receipt-at-rest", chrono::TimeDelta::hours(1), Some(3), None).await.expect("receipt share");
    let impersonations: Impersonations = Impersonations::on(engine);
    let session = impersonations
        .start(NewImpersonation {
            admin_id: "admin-at-rest".to_owned(),
            admin_email: "admin@at-rest.example".to_owned(),
            target_id: "user-at-rest".to_owned(),
            target_email: "user@at-rest.example".to_owned(),
            reason: "support ticket".to_owned(),
            ttl: chrono::TimeDelta::hours(1),
            ip_address: None,
            user_agent: None,
        })
        .await
        .expect("impersonation");
    let revoked = "eyJhbGciOiJIUzI1NiJ9.revoked-canary-jwt.sig".to_owned();
    let blacklist: TokenBlacklist = TokenBlacklist::on(engine);
    blacklist.revoke(&revoked, chrono::Utc::now() + chrono::TimeDelta::hours(1)).await.expect("revoke");
    // Each still works through its digest.
    assert!(resets.validate_token(reset.expose()).await.expect("validate").is_some());
    assert!(shares.get_by_token(share.expose()).await.expect("share").is_some());
    assert!(receipt_shares.get_by_token(receipt_share.token.expose()).await.expect("receipt share").is_some());
    assert!(impersonations.get(session.session_id.expose()).await.expect("session").is_some());
    assert!(blacklist.is_revoked(&revoked).await.expect("is_revoked"));
    vec![reset.expose().clone(), share.expose().clone(), receipt_share.token.expose().clone(), session.session_id.expose().clone(), revoked]
}

/// Fails naming the secret if any of `secrets` occurs in `dump`; `dump` must not be empty.
pub fn assert_no_secret_in(secrets: &[String], dump: &[u8], what: &str) {
    assert!(dump.len() > 1_000, "{what}: a dump of {} bytes cannot hold the planted records", dump.len());
    assert!(memchr::memmem::find(dump, b"canary@at-rest.example").is_some(), "{what}: the dump misses the planted user");
    for secret in secrets {
        let found = memchr::memmem::find(dump, secret.as_bytes()).is_some();
        assert!(!found, "{what}: `{}…` is stored in clear", secret.get(..8).unwrap_or(secret));
    }
}
