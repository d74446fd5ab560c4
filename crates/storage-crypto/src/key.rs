//! Encryption keys: parsing, ids, and the development key file.

use crate::KeyRing;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use storage_core::{Result, StorageConfig, StorageError};

/// The length of a key: AES-256.
pub const KEY_BYTES: usize = 32;

/// A 256-bit key and its id (derived from the key, so it never needs configuring).
#[derive(Clone)]
pub struct EncryptionKey {
    bytes: [u8; KEY_BYTES],
    id: u32,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({:08x}, [REDACTED])", self.id)
    }
}

impl EncryptionKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        let tagged = digest::digest(&digest::SHA256, &[b"aragora-storage/key-id/v1:".as_slice(), &bytes].concat());
        // A SHA-256 digest always has its first four bytes.
        let id = u32::from_be_bytes(tagged.as_ref().first_chunk::<4>().copied().unwrap_or_default());
        Self { bytes, id }
    }

    /// Parses a key given as 64 hex characters or as base64 (standard or URL-safe) of 32 bytes.
    /// `source` names where it came from, for the error; the value is never echoed.
    pub fn parse(source: &str, text: &str) -> Result<Self> {
        let text = text.trim();
        let hex = text.bytes().all(|b| b.is_ascii_hexdigit()) && text.len() == KEY_BYTES.saturating_mul(2);
        let bytes = if hex {
            text.as_bytes()
                .chunks_exact(2)
                .map(|pair| std::str::from_utf8(pair).ok().and_then(|pair| u8::from_str_radix(pair, 16).ok()))
                .collect::<Option<Vec<u8>>>()
        } else {
            STANDARD.decode(text).or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('='))).ok()
        };
        let bytes = bytes.ok_or_else(|| {
            StorageError::crypto(format!(
                "{source} is malformed ({} characters): expected 64 hex characters or base64 of 32 bytes",
                text.len()
            ))
        })?;
        let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
            StorageError::crypto(format!("{source} decodes to {} bytes; AES-256 needs exactly {KEY_BYTES}", b.len()))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// A new random key.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; KEY_BYTES];
        SystemRandom::new().fill(&mut bytes).map_err(|_| StorageError::crypto("the system random generator failed"))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key id written into every ciphertext it seals.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The key id as operators see it: 8 hex digits.
    pub fn name(&self) -> String {
        key_name(self.id)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.bytes
    }

    /// The key as 64 hex characters (for writing a key file).
    fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The key as 64 hex characters, to hand to an operator (`cargo xtask rotate-key --generate`).
    pub fn export(&self) -> storage_core::Secret<String> {
        storage_core::Secret::new(self.to_hex())
    }
}

/// A key id as operators see it (doctor, rotation, errors): 8 hex digits.
pub fn key_name(id: u32) -> String {
    format!("{id:08x}")
}

/// The keys of `ARAGORA_ENCRYPTION_PREVIOUS_KEYS`, in order.
pub fn previous_keys(config: &StorageConfig) -> Result<Vec<EncryptionKey>> {
    match &config.encryption_previous_keys {
        Some(list) => list
            .expose()
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .enumerate()
            .map(|(i, key)| EncryptionKey::parse(&format!("ARAGORA_ENCRYPTION_PREVIOUS_KEYS[{i}]"), key))
            .collect(),
        None => Ok(Vec::new()),
    }
}

/// Builds the key ring the configuration describes.
///
/// `ENCRYPTION_KEY` is the primary key and `ARAGORA_ENCRYPTION_PREVIOUS_KEYS` the retired ones. With
/// no key, production refuses to start; development generates a key once, keeps it in a file
/// beside the SQLite database (mode 0600) and warns, so data stays readable across restarts.
pub fn load_key_ring(config: &StorageConfig) -> Result<KeyRing> {
    let previous = previous_keys(config)?;
    let primary = match &config.encryption_key {
        Some(key) => EncryptionKey::parse("ENCRYPTION_KEY", key.expose())?,
        None if config.is_production() => {
            return Err(StorageError::config(format!("ENCRYPTION_KEY is required in production (ARAGORA_ENV=`{}`)", config.environment.0)));
        }
        None => development_key(&config.key_file())?,
    };
    KeyRing::new(primary, previous)
}

/// The primary encryption key of the configuration read from the environment.
pub fn get_encryption_key() -> Result<EncryptionKey> {
    Ok(load_key_ring(&StorageConfig::from_env()?)?.primary().clone())
}

/// Reads the development key file, or creates it (mode 0600) if it does not exist yet.
///
/// The key is written whole to a temporary file beside it, synced, and then linked into place:
/// a link never replaces an existing file and appears with its full contents, so processes that
/// start together all end up with the one key that was linked first, and none ever reads a
/// partly written file. An empty file (left by an older build that crashed mid-write) holds no
/// key and is replaced.
fn development_key(path: &Path) -> Result<EncryptionKey> {
    let io_error = |action: &str, e: std::io::Error| StorageError::Crypto {
        message: format!("cannot {action} the development key file {}", path.display()),
        source: Some(Box::new(e)),
    };
    let source = format!("development key file {}", path.display());
    for _ in 0..3 {
        match fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => {
                tracing::warn!(path = %path.display(), "the development key file is empty (an interrupted start?); replacing it");
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("replace the empty", e)),
                }
                continue;
            }
            Ok(text) => {
                let mode = fs::metadata(path).map_err(|e| io_error("inspect", e))?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the development key file is readable by others; chmod 600 it");
                }
                return EncryptionKey::parse(&source, &text);
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("read", e)),
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| io_error("create the directory of", e))?;
        let key = EncryptionKey::generate()?;
        let mut temporary = tempfile::Builder::new()
            .prefix(".aragora-key-")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| io_error("create a temporary file for", e))?;
        temporary.write_all(key.to_hex().as_bytes()).and_then(|()| temporary.as_file().sync_all()).map_err(|e| io_error("write", e))?;
        match fs::hard_link(temporary.path(), path) {
            Ok(()) => {
                tracing::warn!(
                    path = %path.display(),
                    "no ENCRYPTION_KEY set: generated a development key and saved it beside the database; set ENCRYPTION_KEY in production"
                );
                return Ok(key);
            }
            // Another process linked its key first: read that one.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error("create", e)),
        }
    }
    Err(StorageError::crypto(format!("the development key file {} keeps changing", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_core::Secret;

    #[test]
    fn keys_parse_from_hex_and_base64_and_malformed_keys_are_named() {
        let hex = "ab".repeat(32);
        let from_hex = EncryptionKey::parse("ENCRYPTION_KEY", &hex).expect("hex key");
        let from_b64 = EncryptionKey::parse("ENCRYPTION_KEY", &STANDARD.encode([0xab; 32])).expect("base64 key");
        assert_eq!(from_hex.id(), from_b64.id());
        for bad in ["", "not-a-key", &"ab".repeat(16), &"zz".repeat(32)] {
            let err = EncryptionKey::parse("ENCRYPTION_KEY", bad).expect_err(bad).to_string();
            assert!(err.contains("ENCRYPTION_KEY"), "{err}");
            assert!(bad.len() < 8 || !err.contains(bad), "the key leaked into {err}");
        }
    }

    #[test]
    fn development_mode_generates_a_private_key_file_once_and_reuses_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StorageConfig { sqlite_path: dir.path().join("app.db"), ..Default::default() };
        let first = load_key_ring(&config).expect("generated");
        let path = dir.path().join("app.db.key");
        let mode = fs::metadata(&path).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_key_ring(&config).expect("reused");
        assert_eq!(first.primary().id(), second.primary().id());
    }

    #[test]
    fn processes_starting_together_share_one_key_and_an_empty_file_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StorageConfig { sqlite_path: dir.path().join("race.db"), ..Default::default() };
        let ids: Vec<u32> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..16).map(|_| scope.spawn(|| load_key_ring(&config).map(|ring| ring.primary().id()))).collect();
            starts.into_iter().map(|start| start.join().expect("thread").expect("every start reads a whole key")).collect()
        });
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one key for everyone: {ids:?}");
        let leftovers = fs::read_dir(dir.path())
            .expect("dir")
            .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with(".aragora-key-")))
            .count();
        assert_eq!(leftovers, 0, "temporary files are removed");
        let empty = StorageConfig { sqlite_path: dir.path().join("empty.db"), ..Default::default() };
        fs::write(empty.key_file(), "").expect("an empty key file");
        assert!(load_key_ring(&empty).is_ok(), "an empty key file does not block a start");
    }

    #[test]
    fn a_hex_key_of_digits_keeps_its_leading_zeros() {
        let zeros = EncryptionKey::parse("ENCRYPTION_KEY", &"0".repeat(64)).expect("64 zeros are a key");
        assert_eq!(zeros.to_hex(), "0".repeat(64));
    }

    #[test]
    fn production_without_a_key_refuses_and_a_malformed_key_is_an_error() {
        let config = StorageConfig { environment: storage_core::Environment("production".into()), ..Default::default() };
        assert!(matches!(load_key_ring(&config), Err(StorageError::Config { .. })));
        let config = StorageConfig { encryption_key: Some(Secret::from("short")), ..Default::default() };
        assert!(matches!(load_key_ring(&config), Err(StorageError::Crypto { .. })));
    }
}
