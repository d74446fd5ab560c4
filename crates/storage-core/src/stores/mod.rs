//! One module per store: its models and its trait. Every backend implements each trait in a file
//! of the same name (`src/stores/<store>.rs`).

pub mod gmail_token;
pub mod integration;
pub mod webhook;
