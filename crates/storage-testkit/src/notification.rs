//! Conformance cases of `NotificationConfigStore` and `NotificationTemplateStore`.

use crate::{Subject, assert_invalid, tenant};
use serde_json::json;
use storage_core::Clock;
use storage_core::{
    EmailConfig, EmailProvider, NotificationConfigStore, NotificationConfigs, NotificationTemplateStore, NotificationTemplates, NotifyOn,
    Secret, TelegramConfig,
};

fn map(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().cloned().unwrap_or_default()
}

pub async fn channels_and_recipients_are_per_organisation(s: &Subject) {
    let store = s.store::<NotificationConfigs>();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut email = EmailConfig::smtp(acme.clone(), "smtp.example.com", 587, "alerts@acme.example");
    email.smtp_username = Some("alerts".into());
    email.smtp_password = Some(Secret::from("smtp-pass".to_owned()));
    email.min_consensus_confidence = 0.7;
    let saved = store.save_email_config(&email).await.expect("save");
    let read = store.get_email_config(&acme).await.expect("get").expect("present");
    assert_eq!(read.smtp_password.as_ref().map(|p| p.expose().as_str()), Some("smtp-pass"));
    assert_eq!((read.provider, read.smtp_port, read.min_consensus_confidence), (EmailProvider::Smtp, Some(587), 0.7));
    email.notify_on = NotifyOn { consensus: true, debate_end: false, error: true };
    let replaced = store.save_email_config(&email).await.expect("replace");
    assert_eq!((replaced.created_at, replaced.version, replaced.notify_on.debate_end), (saved.created_at, 2, false));
    assert!(store.get_email_config(&globex).await.expect("get").is_none(), "tenants are isolated");
    let mut sendgrid = EmailConfig::smtp(globex.clone(), "unused", 25, "a@globex.example");
    sendgrid.provider = EmailProvider::Sendgrid;
    assert_invalid(store.save_email_config(&sendgrid).await, "sendgrid_api_key");
    email.min_consensus_confidence = f64::NAN;
    assert_invalid(store.save_email_config(&email).await, "min_consensus_confidence");
    let telegram = TelegramConfig {
        tenant: acme.clone(),
        bot_token: Secret::from("123:telegram-token".to_owned()),
        chat_id: "-100200300".into(),
        notify_on: NotifyOn::default(),
        max_messages_per_minute: 20,
        version: 0,
        created_at: s.clock.now(),
        updated_at: s.clock.now(),
    };
    store.save_telegram_config(&telegram).await.expect("telegram");
    assert_eq!(store.get_telegram_config(&acme).await.expect("get").expect("present").bot_token.expose(), "123:telegram-token");
    assert!(store.delete_telegram_config(&acme).await.expect("delete"));
    assert!(!store.delete_telegram_config(&acme).await.expect("delete again"));
    assert!(store.delete_email_config(&acme).await.expect("delete"));
    store.add_recipient(&acme, "Ada@Example.com", Some("Ada"), map(json!({"digest": true}))).await.expect("add");
    let again = store.add_recipient(&acme, "ada@example.com", Some("Ada L."), map(json!({"digest": false}))).await.expect("update");
    assert_eq!(
        (again.email.as_str(), again.name.as_deref(), again.version),
        ("ada@example.com", Some("Ada L."), 2),
        "one recipient per address"
    );
    store.add_recipient(&acme, "bob@example.com", None, map(json!({}))).await.expect("add");
    store.add_recipient(&globex, "zed@example.com", None, map(json!({}))).await.expect("add");
    let recipients = store.get_recipients(&acme).await.expect("list");
    assert_eq!(recipients.iter().map(|r| r.email.as_str()).collect::<Vec<_>>(), ["ada@example.com", "bob@example.com"]);
    assert!(store.remove_recipient(&acme, "BOB@example.com").await.expect("remove"));
    assert_invalid(store.add_recipient(&acme, "not-an-address", None, map(json!({}))).await, "email");
    assert_eq!(store.clear_recipients(&acme).await.expect("clear"), 1);
    assert_eq!(store.get_recipients(&globex).await.expect("list").len(), 1, "another organisation's recipients stay");
}

pub async fn template_overrides_are_per_user_and_template(s: &Subject) {
    let store = s.store::<NotificationTemplates>();
    store.save_override("ada", "debate_end", map(json!({"subject": "Done: {topic}"}))).await.expect("save");
    store.save_override("ada", "consensus", map(json!({"subject": "Agreed"}))).await.expect("save");
    store.save_override("ada", "debate_end", map(json!({"subject": "Finished: {topic}"}))).await.expect("replace");
    // Ids that a sanitised file name would have merged stay apart.
    store.save_override("a/b", "consensus", map(json!({"x": 1}))).await.expect("save");
    store.save_override("a_b", "consensus", map(json!({"x": 2}))).await.expect("save");
    let ada = store.load_overrides("ada").await.expect("load");
    assert_eq!(ada.keys().collect::<Vec<_>>(), ["consensus", "debate_end"]);
    assert_eq!(ada["debate_end"]["subject"], "Finished: {topic}");
    assert_eq!(store.load_overrides("a/b").await.expect("load")["consensus"]["x"], 1);
    assert_eq!(store.load_overrides("a_b").await.expect("load")["consensus"]["x"], 2);
    assert!(store.load_overrides("nobody").await.expect("load").is_empty());
    let all = store.list_all_overrides().await.expect("all");
    assert_eq!(all.keys().collect::<Vec<_>>(), ["a/b", "a_b", "ada"]);
    assert!(store.delete_override("ada", "consensus").await.expect("delete"));
    assert!(!store.delete_override("ada", "consensus").await.expect("delete again"));
    assert_eq!(store.load_overrides("ada").await.expect("load").len(), 1);
    assert_invalid(store.save_override("ada", "bad\ttemplate", map(json!({}))).await, "template_id");
}
