//! Bearer tokens: generated with 256 bits of entropy, stored only as SHA-256 digests.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use storage_core::{Result, StorageError};

/// The SHA-256 digest of a bearer token, as 64 hex characters: what stores keep instead of the
/// token. Tokens carry enough entropy that a fast hash is the right tool (no password KDF).
pub fn hash_token(token: &str) -> String {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token: 32 bytes, base64url.
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
