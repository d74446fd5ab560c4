//! Field-level encryption for `aragora-storage`.
//!
//! Secrets are sealed with AES-256-GCM under a fresh random 96-bit nonce. The associated data
//! binds each ciphertext to its format version, key id, store, tenant, record id and field, so a
//! value copied to another row or column does not open. A [`KeyRing`] holds one primary key, which
//! encrypts, and any number of retired keys, which still decrypt: keys rotate without downtime.
//!
//! Sealed format (base64url, no padding): `version (1) | key id (4, BE) | nonce (12) | ciphertext | tag (16)`.
#![forbid(unsafe_code)]
// Library code must not panic nor wrap: no unchecked arithmetic, signed/unsigned casts,
// indexing, string slicing or unwrap.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_sign_loss))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::panic, clippy::string_slice, clippy::unwrap_used))]

mod key;
mod ring_seal;

pub use key::{EncryptionKey, KEY_BYTES, get_encryption_key, key_name, load_key_ring, previous_keys};
pub use ring_seal::{EncryptedField, FORMAT_VERSION, KeyRing, NONCE_WARNING};
pub use storage_core::token::{generate_token, hash_token};
