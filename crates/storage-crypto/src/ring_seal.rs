//! The key ring and the sealed-value format.

use crate::key::{EncryptionKey, key_name};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use storage_core::{Result, SealContext, Sealer, Secret, StorageError};

/// The sealed format this build writes.
pub const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4;
const TAG_LEN: usize = 16;
/// How many encryptions under one key a ring warns at. With random 96-bit nonces, AES-GCM keeps
/// its guarantees for at most 2^32 encryptions per key (NIST SP 800-38D, 8.3); the ring warns at a
/// quarter of that, and again at every doubling, so a key is rotated long before the limit.
pub const NONCE_WARNING: u64 = 1 << 30;

/// One primary key that encrypts and any number of retired keys that still decrypt.
///
/// Rotation: deploy the new key as `ARAGORA_ENCRYPTION_PREVIOUS_KEYS` everywhere first (so every
/// process can read it), then promote it to `ENCRYPTION_KEY` and move the old one to the previous
/// list; re-encrypt with `cargo xtask`, then drop the old key.
pub struct KeyRing {
    primary: EncryptionKey,
    keys: HashMap<u32, LessSafeKey>,
    rng: SystemRandom,
    encryptions: AtomicU64,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.keys.keys().map(|id| format!("{id:08x}")).collect();
        ids.sort();
        f.debug_struct("KeyRing").field("primary", &format!("{:08x}", self.primary.id())).field("keys", &ids).finish()
    }
}

impl KeyRing {
    /// A ring that encrypts with `primary` and decrypts with it and with `previous`.
    pub fn new(primary: EncryptionKey, previous: Vec<EncryptionKey>) -> Result<Self> {
        let mut keys = HashMap::new();
        for key in std::iter::once(&primary).chain(&previous) {
            let unbound = UnboundKey::new(&AES_256_GCM, key.bytes()).map_err(|_| StorageError::crypto("AES-256-GCM rejected the key"))?;
            keys.entry(key.id()).or_insert_with(|| LessSafeKey::new(unbound));
        }
        Ok(Self { primary, keys, rng: SystemRandom::new(), encryptions: AtomicU64::new(0) })
    }

    /// A ring of one key.
    pub fn single(key: EncryptionKey) -> Result<Self> {
        Self::new(key, Vec::new())
    }

    /// The key that encrypts.
    pub fn primary(&self) -> &EncryptionKey {
        &self.primary
    }

    /// How many values this ring has sealed under its primary key, in this process. The metric
    /// `aragora_storage_encryptions_total{key_id}` sums it over every process and restart.
    pub fn encryptions(&self) -> u64 {
        self.encryptions.load(Ordering::Relaxed)
    }

    /// Counts one encryption, warning as the count nears the random-nonce limit.
    fn count_encryption(&self) {
        let count = self.encryptions.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        metrics::counter!("aragora_storage_encryptions_total", "key_id" => key_name(self.primary.id())).increment(1);
        if count >= NONCE_WARNING && count.is_power_of_two() {
            tracing::warn!(
                key_id = %key_name(self.primary.id()),
                encryptions = count,
                "encryption key {} has sealed {count} values in this process; AES-GCM allows 2^32 per key: rotate it (cargo xtask rotate-key)",
                key_name(self.primary.id())
            );
        }
    }

    /// The id of the key that sealed `sealed`, without decrypting it (for re-encryption jobs).
    pub fn key_id_of(sealed: &str) -> Result<u32> {
        Ok(decode(sealed)?.key_id)
    }

    fn aad(version: u8, key_id: u32, context: &SealContext<'_>) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.push(version);
        aad.extend_from_slice(&key_id.to_be_bytes());
        for part in [context.store, context.tenant, context.record_id, context.field] {
            // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// A sealed value taken apart.
struct Parsed {
    version: u8,
    key_id: u32,
    nonce: [u8; NONCE_LEN],
    /// Ciphertext and tag.
    body: Vec<u8>,
}

fn decode(sealed: &str) -> Result<Parsed> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| StorageError::crypto("the value is not a sealed value (bad encoding)"))?;
    let truncated = || StorageError::crypto(format!("the sealed value is truncated ({} bytes)", bytes.len()));
    let (&version, rest) = bytes.split_first().ok_or_else(truncated)?;
    let (key_id, rest) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
    let (nonce, body) = rest.split_first_chunk::<NONCE_LEN>().ok_or_else(truncated)?;
    if body.len() < TAG_LEN {
        return Err(truncated());
    }
    if version != FORMAT_VERSION {
        return Err(StorageError::crypto(format!("sealed format version {version} is not supported (this build reads {FORMAT_VERSION})")));
    }
    Ok(Parsed { version, key_id: u32::from_be_bytes(*key_id), nonce: *nonce, body: body.to_vec() })
}

impl Sealer for KeyRing {
    fn seal(&self, context: &SealContext<'_>, plaintext: &str) -> Result<String> {
        let key_id = self.primary.id();
        let key = self.keys.get(&key_id).ok_or_else(|| StorageError::crypto("the primary key is missing from the ring"))?;
        self.count_encryption();
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| StorageError::crypto("the system random generator failed"))?;
        let mut out = Vec::with_capacity(plaintext.len().saturating_add(HEADER_LEN + NONCE_LEN + TAG_LEN));
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&key_id.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut body = plaintext.as_bytes().to_vec();
        let aad = Self::aad(FORMAT_VERSION, key_id, context);
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| StorageError::crypto("AES-256-GCM failed to seal"))?;
        out.extend_from_slice(&body);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    fn sealing_key(&self) -> Option<String> {
        Some(key_name(self.primary.id()))
    }

    fn key_of(&self, sealed: &str) -> Result<Option<String>> {
        Ok(Some(key_name(Self::key_id_of(sealed)?)))
    }

    fn open(&self, context: &SealContext<'_>, sealed: &str) -> Result<Secret<String>> {
        let Parsed { version, key_id, nonce, mut body } = decode(sealed)?;
        let key = self.keys.get(&key_id).ok_or_else(|| {
            StorageError::crypto(format!(
                "sealed with key {key_id:08x}, which is not in the key ring (add it to ARAGORA_ENCRYPTION_PREVIOUS_KEYS)"
            ))
        })?;
        let aad = Self::aad(version, key_id, context);
        let plain = key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body).map_err(|_| {
            StorageError::crypto(format!(
                "the sealed value of {}.{} does not open: tampered, or copied from another record or field",
                context.store, context.field
            ))
        })?;
        String::from_utf8(plain.to_vec()).map(Secret::new).map_err(|_| StorageError::crypto("the opened value is not UTF-8"))
    }
}

/// Encrypts and decrypts single values, as the seed's `EncryptedField` did.
///
/// ```
/// use storage_crypto::{EncryptedField, EncryptionKey};
/// let field = EncryptedField::new(EncryptionKey::generate()?)?;
/// let encrypted = field.encrypt("sensitive-data")?;
/// assert_eq!(field.decrypt(&encrypted)?.expose(), "sensitive-data");
/// # Ok::<(), storage_core::StorageError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EncryptedField {
    ring: Arc<KeyRing>,
}

const UNBOUND: SealContext<'static> = SealContext { store: "", tenant: "", record_id: "", field: "" };

impl EncryptedField {
    /// A field sealer with one key.
    pub fn new(key: EncryptionKey) -> Result<Self> {
        Ok(Self { ring: Arc::new(KeyRing::single(key)?) })
    }

    /// A field sealer over a whole key ring.
    pub fn from_ring(ring: Arc<KeyRing>) -> Self {
        Self { ring }
    }

    /// Seals a value that is not bound to a record.
    pub fn encrypt(&self, plaintext: &str) -> Result<String> {
        self.ring.seal(&UNBOUND, plaintext)
    }

    /// Opens a value sealed by [`EncryptedField::encrypt`].
    pub fn decrypt(&self, sealed: &str) -> Result<Secret<String>> {
        self.ring.open(&UNBOUND, sealed)
    }

    /// Seals a value bound to `context`.
    pub fn encrypt_for(&self, context: &SealContext<'_>, plaintext: &str) -> Result<String> {
        self.ring.seal(context, plaintext)
    }

    /// Opens a value bound to `context`.
    pub fn decrypt_for(&self, context: &SealContext<'_>, sealed: &str) -> Result<Secret<String>> {
        self.ring.open(context, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(tenant: &'a str, record_id: &'a str, field: &'a str) -> SealContext<'a> {
        SealContext { store: "integrations", tenant, record_id, field }
    }

    fn ring() -> KeyRing {
        KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring")
    }

    #[test]
    fn round_trips_with_a_fresh_nonce_each_time() {
        let ring = ring();
        let c = ctx("t1", "r1", "token");
        for text in ["", "x", "xoxb-123", &"long ".repeat(10_000), "ünïcödé \u{1F512}"] {
            let a = ring.seal(&c, text).expect("seal");
            let b = ring.seal(&c, text).expect("seal");
            assert_ne!(a, b, "nonces must differ");
            assert_eq!(ring.open(&c, &a).expect("open").expose(), text);
        }
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let ring = ring();
        let c = ctx("t1", "r1", "token");
        let sealed = URL_SAFE_NO_PAD.decode(ring.seal(&c, "secret").expect("seal")).expect("b64");
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[i] ^= 1 << bit;
                let err = ring.open(&c, &URL_SAFE_NO_PAD.encode(&bad)).expect_err("tampered");
                assert!(matches!(err, StorageError::Crypto { .. }));
            }
        }
        for len in 0..sealed.len() {
            assert!(ring.open(&c, &URL_SAFE_NO_PAD.encode(&sealed[..len])).is_err(), "truncated to {len}");
        }
        assert!(ring.open(&c, "not base64 !").is_err());
    }

    #[test]
    fn a_value_moved_to_another_tenant_record_field_or_store_does_not_open() {
        let ring = ring();
        let sealed = ring.seal(&ctx("t1", "r1", "token"), "secret").expect("seal");
        for other in [ctx("t2", "r1", "token"), ctx("t1", "r2", "token"), ctx("t1", "r1", "password"), ctx("t", "1r1", "token")] {
            assert!(ring.open(&other, &sealed).is_err(), "{other:?}");
        }
        let other_store = SealContext { store: "gmail_tokens", ..ctx("t1", "r1", "token") };
        assert!(ring.open(&other_store, &sealed).is_err());
    }

    #[test]
    fn a_wrong_key_is_refused_and_rotation_keeps_old_values_readable() {
        let old = EncryptionKey::generate().expect("key");
        let new = EncryptionKey::generate().expect("key");
        let c = ctx("t1", "r1", "token");
        let before = KeyRing::single(old.clone()).expect("ring").seal(&c, "v1-secret").expect("seal");
        assert!(KeyRing::single(new.clone()).expect("ring").open(&c, &before).is_err(), "a wrong key must not open");
        let rotated = KeyRing::new(new.clone(), vec![old]).expect("ring");
        assert_eq!(rotated.open(&c, &before).expect("old value").expose(), "v1-secret");
        let after = rotated.seal(&c, "v2-secret").expect("seal");
        assert_eq!(KeyRing::key_id_of(&after).expect("id"), new.id());
        assert_eq!(KeyRing::key_id_of(&before).expect("id"), rotated.keys.keys().copied().find(|id| *id != new.id()).expect("old id"));
    }

    #[test]
    fn encrypted_field_matches_the_seed_api() {
        let field = EncryptedField::new(EncryptionKey::generate().expect("key")).expect("field");
        let encrypted = field.encrypt("sensitive-data").expect("encrypt");
        assert!(!encrypted.contains("sensitive-data"));
        assert_eq!(field.decrypt(&encrypted).expect("decrypt").expose(), "sensitive-data");
        assert!(field.decrypt("sensitive-data").is_err(), "plaintext is never returned as if it were the secret");
    }
}
