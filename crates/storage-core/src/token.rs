//! Bearer tokens (API keys, invitation tokens): drawn from the operating system's generator,
//! handed to the caller once, and stored only as SHA-256 digests, so a database dump never holds
//! one that works.

use crate::{Result, StorageError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt::Write;

/// The SHA-256 digest of a bearer token, as 64 hex characters: what stores keep instead of the
/// token. Tokens carry enough entropy (256 bits) that a fast hash is the right tool; passwords
/// are another matter, hashed by the application with a password KDF.
pub fn hash_token(token: &str) -> String {
    digest(&SHA256, token.as_bytes()).as_ref().iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// A new random token: 32 bytes, base64url (43 characters).
pub fn generate_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| StorageError::crypto("the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex_and_tokens_are_unique() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let (a, b) = (generate_token().expect("token"), generate_token().expect("token"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
