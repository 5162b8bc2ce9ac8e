//! [`SealingKey`]: the secret that binds state handles and MCP sessions to their owner, with
//! rotation; HMAC-SHA-256 through jsonwebtoken's crypto backend (aws-lc-rs or RustCrypto,
//! constant-time verification in both).

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::algorithm::install_crypto_provider;
use crate::error::{ConfigError, ConfigErrorKind};

/// The shortest key accepted: 32 bytes (256 bits, the HMAC-SHA-256 output size).
const MIN_KEY_BYTES: usize = 32;

/// A secret key for sealing (MACing) values bound to a caller, with older keys still
/// accepted while a rotation completes.
///
/// Every replica that must accept what another sealed needs the same key. Keys are at least
/// 32 bytes; [`SealingKey::random`] draws one for a single process. `Debug` never shows it.
///
/// ```
/// use protected_resource::SealingKey;
///
/// let key = SealingKey::from_base64url("c2l4dHktZm91ci1ieXRlcy1vZi1rZXktbWF0ZXJpYWwtZm9yLXRlc3Rpbmch")?
///     .with_previous(&SealingKey::random()?);
/// assert_eq!(format!("{key:?}"), "SealingKey([redacted], previous: 1)");
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SealingKey(Arc<Keys>);

struct Keys {
    current: (EncodingKey, DecodingKey),
    previous: Vec<DecodingKey>,
}

impl SealingKey {
    /// A key from raw bytes (at least 32).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "sealing key",
                format!("{} bytes; at least {MIN_KEY_BYTES} are needed", bytes.len()),
            ));
        }
        install_crypto_provider();
        Ok(Self(Arc::new(Keys {
            current: (
                EncodingKey::from_secret(bytes),
                DecodingKey::from_secret(bytes),
            ),
            previous: Vec::new(),
        })))
    }

    /// A key from its base64url text (padding optional), at least 32 bytes decoded.
    pub fn from_base64url(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| {
                ConfigError::new(
                    ConfigErrorKind::InvalidValue,
                    "sealing key",
                    "not base64url",
                )
            })?;
        Self::from_bytes(&bytes)
    }

    /// A fresh random 32-byte key from the operating system. What it seals is accepted only
    /// by this process, and only until it ends.
    pub fn random() -> Result<Self, ConfigError> {
        let mut bytes = [0u8; MIN_KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| {
            ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "sealing key",
                format!("the operating system gave no random bytes: {e}"),
            )
        })?;
        Self::from_bytes(&bytes)
    }

    /// Also accept what `older` sealed (its own previous keys included); only this key
    /// seals. Rotating across replicas takes three rolling deploys, so that no replica ever
    /// sees a seal it can not open: first every replica gets the new key as a *previous* key
    /// (still sealing with the old one), then the new key becomes the current one with the
    /// old one as previous, then the old one is dropped.
    #[must_use]
    pub fn with_previous(self, older: &Self) -> Self {
        let mut previous = self.0.previous.clone();
        previous.push(older.0.current.1.clone());
        previous.extend(older.0.previous.iter().cloned());
        Self(Arc::new(Keys {
            current: self.0.current.clone(),
            previous,
        }))
    }

    /// The base64url MAC of `parts` under `label` with the current key.
    pub(crate) fn seal(&self, label: &str, parts: &[&[u8]]) -> String {
        let message = framed(label, parts);
        // HMAC with a secret key can not fail; an empty tag never verifies.
        jsonwebtoken::crypto::sign(&message, &self.0.current.0, Algorithm::HS256)
            .unwrap_or_default()
    }

    /// Whether `tag` is the MAC of `parts` under `label` with the current or a previous key
    /// (constant-time comparison in the crypto backend).
    pub(crate) fn verify(&self, label: &str, parts: &[&[u8]], tag: &str) -> bool {
        let message = framed(label, parts);
        std::iter::once(&self.0.current.1)
            .chain(&self.0.previous)
            .any(|key| {
                jsonwebtoken::crypto::verify(tag, &message, key, Algorithm::HS256).unwrap_or(false)
            })
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SealingKey([redacted], previous: {})",
            self.0.previous.len()
        )
    }
}

/// `label`, a zero byte, then each part with its length: one byte string per input, so no
/// two inputs frame the same.
fn framed(label: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(label.len() + 1 + parts.iter().map(|p| p.len() + 8).sum::<usize>());
    out.extend_from_slice(label.as_bytes());
    out.push(0);
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_under_the_same_label_parts_and_key_only() {
        let key = SealingKey::from_bytes(&[7; 32]).unwrap();
        let tag = key.seal("l", &[b"ab", b"c"]);
        assert!(key.verify("l", &[b"ab", b"c"], &tag));
        assert!(
            !key.verify("l", &[b"a", b"bc"], &tag),
            "framing keeps parts apart"
        );
        assert!(!key.verify("m", &[b"ab", b"c"], &tag));
        assert!(!key.verify("l", &[b"ab", b"c"], ""));
        let other = SealingKey::from_bytes(&[8; 32]).unwrap();
        assert!(!other.verify("l", &[b"ab", b"c"], &tag));
        // Rotation: the new key accepts the old one's tags and seals with its own.
        let rotated = other.with_previous(&key);
        assert!(rotated.verify("l", &[b"ab", b"c"], &tag));
        assert!(!key.verify("l", &[b"x"], &rotated.seal("l", &[b"x"])));
    }

    #[test]
    fn short_or_malformed_keys_are_refused_and_never_printed() {
        assert!(SealingKey::from_bytes(&[1; 31]).is_err());
        assert!(SealingKey::from_base64url("not base64!").is_err());
        let text = "c2l4dHktZm91ci1ieXRlcy1vZi1rZXktbWF0ZXJpYWwtZm9yLXRlc3Rpbmch";
        let key = SealingKey::from_base64url(text).unwrap();
        assert!(!format!("{key:?}").contains(text));
        assert!(SealingKey::random().is_ok());
    }
}
