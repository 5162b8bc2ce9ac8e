//! [`EncryptionKey`]: AES-256-GCM for what connected accounts keep and hand out: the stored
//! tokens (at rest, bound to their owner and provider), the connect links and the browser
//! flow's state (bound to their purpose). Older keys still open what they sealed while a
//! rotation completes.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

use crate::error::{ConfigError, ConfigErrorKind};

/// The format byte in front of every sealed value.
const VERSION: u8 = 1;
const KEY_BYTES: usize = 32;
const TAG_BYTES: usize = 16;

/// An AES-256-GCM key (exactly 32 bytes) with older keys still accepted for opening while a
/// rotation completes: every replica that shares connected accounts needs the same keys.
/// `Debug` never shows a key.
///
/// ```
/// use protected_resource::downstream::EncryptionKey;
///
/// let old = EncryptionKey::random()?;
/// let key = EncryptionKey::from_base64url("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY")?
///     .with_previous(&old);
/// assert_eq!(format!("{key:?}"), "EncryptionKey([redacted], previous: 1)");
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct EncryptionKey(Arc<Keys>);

struct Keys {
    current: Arc<LessSafeKey>,
    previous: Vec<Arc<LessSafeKey>>,
}

impl EncryptionKey {
    /// A key from its 32 bytes, base64url (padding optional), as `field` names it in errors.
    ///
    /// # Errors
    /// A [`ConfigError`] (`encryption_key`) when the text is not base64url or not 32 bytes.
    pub fn from_base64url(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| bad("is not base64url"))?;
        Self::from_bytes(&bytes)
    }

    /// A key from exactly 32 bytes.
    ///
    /// # Errors
    /// A [`ConfigError`] (`encryption_key`) when `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        Ok(Self(Arc::new(Keys {
            current: Arc::new(aead_key(bytes)?),
            previous: Vec::new(),
        })))
    }

    /// A fresh random key: for one process (what it seals dies with it).
    ///
    /// # Errors
    /// A [`ConfigError`] when the system has no randomness to give.
    pub fn random() -> Result<Self, ConfigError> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| {
            ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "encryption_key",
                e.to_string(),
            )
        })?;
        Self::from_bytes(&bytes)
    }

    /// This key, also opening what `previous` (and the keys it still accepts) sealed.
    #[must_use]
    pub fn with_previous(&self, previous: &Self) -> Self {
        let mut older = vec![previous.0.current.clone()];
        older.extend(previous.0.previous.iter().cloned());
        older.extend(self.0.previous.iter().cloned());
        Self(Arc::new(Keys {
            current: self.0.current.clone(),
            previous: older,
        }))
    }

    /// Seals `plain` for `purpose` and `context` (both authenticated, not stored): the result
    /// opens only with the same purpose and context.
    pub(crate) fn seal(&self, purpose: &str, context: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len() + TAG_BYTES);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.0
            .current
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(purpose, context)),
                &mut body,
            )
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    /// Opens what [`seal`](Self::seal) made with the same purpose and context, with the
    /// current key or a previous one; `None` when nothing opens it.
    pub(crate) fn open(&self, purpose: &str, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        self.open_which(purpose, context, sealed)
            .map(|(plain, _)| plain)
    }

    /// [`open`](Self::open), also saying whether the current key opened it (`false`: a
    /// previous key did, and the value should be sealed again).
    pub(crate) fn open_which(
        &self,
        purpose: &str,
        context: &[u8],
        sealed: &[u8],
    ) -> Option<(Vec<u8>, bool)> {
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN + TAG_BYTES {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let aad = aad(purpose, context);
        std::iter::once(&self.0.current)
            .chain(&self.0.previous)
            .enumerate()
            .find_map(|(i, key)| {
                let mut buf = body.to_vec();
                let plain = key
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad.as_slice()),
                        &mut buf,
                    )
                    .ok()?;
                Some((plain.to_vec(), i == 0))
            })
    }

    /// [`seal`](Self::seal) as base64url text, for URLs.
    pub(crate) fn seal_text(&self, purpose: &str, context: &[u8], plain: &[u8]) -> Option<String> {
        self.seal(purpose, context, plain)
            .map(|s| URL_SAFE_NO_PAD.encode(s))
    }

    /// Opens [`seal_text`](Self::seal_text)'s text.
    pub(crate) fn open_text(&self, purpose: &str, context: &[u8], text: &str) -> Option<Vec<u8>> {
        let sealed = URL_SAFE_NO_PAD.decode(text).ok()?;
        self.open(purpose, context, &sealed)
    }
}

/// The associated data: the purpose, a zero byte, the context (purposes have no zero byte).
fn aad(purpose: &str, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(purpose.len() + 1 + context.len());
    aad.extend_from_slice(purpose.as_bytes());
    aad.push(0);
    aad.extend_from_slice(context);
    aad
}

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, ConfigError> {
    if bytes.len() != KEY_BYTES {
        return Err(bad("must be exactly 32 bytes (AES-256)"));
    }
    let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| bad("is not a valid AES key"))?;
    Ok(LessSafeKey::new(key))
}

fn bad(message: &str) -> ConfigError {
    ConfigError::new(ConfigErrorKind::InvalidValue, "encryption_key", message)
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncryptionKey([redacted], previous: {})",
            self.0.previous.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_the_same_purpose_context_and_a_known_key() {
        let old = EncryptionKey::random().unwrap();
        let new = EncryptionKey::random().unwrap();
        let sealed = old.seal("account", b"alice", b"refresh").unwrap();
        assert_eq!(old.open("account", b"alice", &sealed).unwrap(), b"refresh");
        assert!(old.open("account", b"mallory", &sealed).is_none());
        assert!(old.open("link", b"alice", &sealed).is_none());
        assert!(new.open("account", b"alice", &sealed).is_none());
        let rotated = new.with_previous(&old);
        assert_eq!(
            rotated.open("account", b"alice", &sealed).unwrap(),
            b"refresh"
        );
        // New seals use the new key: the old key alone can not open them.
        let fresh = rotated.seal("account", b"alice", b"x").unwrap();
        assert!(old.open("account", b"alice", &fresh).is_none());
        assert!(new.open("account", b"alice", &fresh).is_some());
        // Any changed byte fails.
        for i in 0..fresh.len() {
            let mut bad = fresh.clone();
            bad[i] ^= 1;
            assert!(
                rotated.open("account", b"alice", &bad).is_none(),
                "byte {i}"
            );
        }
        assert!(rotated.open("account", b"alice", &fresh[..10]).is_none());
        assert!(EncryptionKey::from_bytes(&[0; 31]).is_err());
        assert!(EncryptionKey::from_base64url("not base64!").is_err());
    }
}
