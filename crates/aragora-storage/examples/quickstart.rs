//! The README's quickstart: SQLite at ./aragora.db, one integration with a sealed token, one
//! webhook delivered twice, one Gmail token saved and listed.

use aragora_storage::{ClaimOutcome, GmailUserState, IntegrationConfig, PageRequest, Storage, TenantId};
use chrono::{TimeDelta, Utc};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_max_level(tracing_subscriber::filter::LevelFilter::WARN).init();
    let storage = Storage::from_env().await?;
    let tenant = TenantId::new("quickstart")?;
    println!("backend: {}", storage.backend());

    let integrations = storage.integration_store();
    let slack = IntegrationConfig::new(tenant.clone(), "workspace-123", "slack")
        .with_credential("token", "xoxb-quickstart-demo-token")
        .with_setting("channel", "#general");
    let stored = integrations.set(&slack).await?;
    let read = integrations.get(&tenant, "workspace-123").await?.ok_or("the integration was not stored")?;
    println!(
        "integration: stored `{}` ({}), version {}, channel {}, token readable: {}",
        read.key,
        read.integration_type,
        stored.version,
        read.settings["channel"],
        read.credentials["token"].expose() == "xoxb-quickstart-demo-token"
    );

    let webhooks = storage.webhook_store();
    let event_id = format!("evt_quickstart_{}", Utc::now().timestamp_micros());
    for delivery in 1..=2 {
        match webhooks.try_claim(&tenant, &event_id, TimeDelta::seconds(30)).await? {
            ClaimOutcome::Acquired(lease) => {
                webhooks.complete(&tenant, &lease, "processed").await?;
                println!("webhook delivery {delivery}: claimed {event_id} and processed it");
            }
            ClaimOutcome::AlreadyDone(done) => {
                println!("webhook delivery {delivery}: duplicate of {event_id}, skipped (result: {})", done.result)
            }
            ClaimOutcome::InFlight { .. } => println!("webhook delivery {delivery}: still in flight elsewhere"),
        }
    }

    let gmail = storage.gmail_token_store();
    let state = GmailUserState::new(tenant.clone(), "user-123", "user@example.com").with_tokens(
        "ya29.quickstart",
        "1//quickstart",
        Utc::now() + TimeDelta::hours(1),
    );
    gmail.set(&state).await?;
    let listed = gmail.list(&tenant, &PageRequest::first(10)).await?;
    for user in &listed.items {
        println!("gmail token: {} <{}>, org {}, connected: {}", user.user_id, user.email_address, user.org_id, user.is_connected());
    }

    storage.close().await;
    println!("done: secrets are sealed with AES-256-GCM in the database");
    Ok(())
}
