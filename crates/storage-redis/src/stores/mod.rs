//! One file per store, named as in `storage-core/src/stores/`.

pub(crate) mod gmail_token;
pub(crate) mod integration;
pub(crate) mod webhook;
