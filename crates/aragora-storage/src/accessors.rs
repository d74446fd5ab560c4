//! The seed's process-wide accessors: `get_X_store()` returns the store the environment selects
//! (or the one installed with `set_X_store`), `reset_X_store()` forgets the installed one.
//!
//! The default `Storage` is built once, on first use, and only kept if building it succeeded:
//! a refused configuration (say, no key in production) fails every call, and never leaves a
//! half-configured store behind.

use crate::Storage;
use std::sync::{Arc, PoisonError, RwLock};
use storage_core::{GmailTokenStore, IntegrationStore, Result, WebhookStore};
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

macro_rules! accessors {
    ($slot:ident, $trait:ident, $get:ident, $set:ident, $reset:ident, $from_storage:ident, $what:literal) => {
        static $slot: RwLock<Option<Arc<dyn $trait>>> = RwLock::new(None);

        #[doc = concat!("The ", $what, " the environment selects, or the one installed with [`", stringify!($set), "`].")]
        pub async fn $get() -> Result<Arc<dyn $trait>> {
            if let Some(store) = $slot.read().unwrap_or_else(PoisonError::into_inner).as_ref() {
                return Ok(Arc::clone(store));
            }
            let store = default_storage().await?.$from_storage();
            let mut slot = $slot.write().unwrap_or_else(PoisonError::into_inner);
            Ok(Arc::clone(slot.get_or_insert(store)))
        }

        #[doc = concat!("Installs `store` as the process-wide ", $what, " (e.g. an in-memory one in tests).")]
        pub fn $set(store: Arc<dyn $trait>) {
            *$slot.write().unwrap_or_else(PoisonError::into_inner) = Some(store);
        }

        #[doc = concat!("Forgets the installed ", $what, "; the next [`", stringify!($get), "`] returns the configured one.")]
        pub fn $reset() {
            *$slot.write().unwrap_or_else(PoisonError::into_inner) = None;
        }
    };
}

accessors!(
    INTEGRATION_STORE,
    IntegrationStore,
    get_integration_store,
    set_integration_store,
    reset_integration_store,
    integration_store,
    "integration store"
);
accessors!(WEBHOOK_STORE, WebhookStore, get_webhook_store, set_webhook_store, reset_webhook_store, webhook_store, "webhook store");
accessors!(
    GMAIL_TOKEN_STORE,
    GmailTokenStore,
    get_gmail_token_store,
    set_gmail_token_store,
    reset_gmail_token_store,
    gmail_token_store,
    "Gmail token store"
);
