//! Server nonces for DPoP proofs (RFC 9449 §9) without server state: a nonce is the time it
//! was made and a MAC of that time under the nonce key, so any replica holding the key
//! accepts it, for a configured lifetime.
//!
//! The nonce shows the time it was made (which the `Date` header shows too): it only has to
//! be unforgeable and expire, and the MAC does both. Key rotation works as for sessions
//! ([`SealingKey::with_previous`]).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;

use crate::sealing_key::SealingKey;

/// The MAC label: no tag made for sessions or state handles verifies as a nonce.
const LABEL: &str = "protected-resource dpop-nonce v1";
/// Base64url of the 8-byte time.
const TIME_CHARS: usize = 11;

/// Makes and checks nonces.
#[derive(Clone, Debug)]
pub(crate) struct Nonces {
    key: SealingKey,
    lifetime: Duration,
}

/// What a proof's nonce is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceCheck {
    /// Made by a key we hold and still valid; `renew` when more than half its life is gone
    /// (the answer then carries a fresh one).
    Valid { renew: bool },
    /// Missing, forged, expired or from the future: answer `use_dpop_nonce`.
    Invalid,
}

fn now_secs() -> u64 {
    crate::clock::unix_secs()
}

impl Nonces {
    pub(crate) fn new(key: SealingKey, lifetime: Duration) -> Self {
        Self { key, lifetime }
    }

    /// A fresh nonce.
    pub(crate) fn issue(&self) -> HeaderValue {
        self.issue_at(now_secs())
    }

    fn issue_at(&self, secs: u64) -> HeaderValue {
        let time = secs.to_be_bytes();
        let nonce = format!(
            "{}{}",
            URL_SAFE_NO_PAD.encode(time),
            self.key.seal(LABEL, &[&time])
        );
        // Base64url only: always a valid header value.
        HeaderValue::from_str(&nonce).unwrap_or(HeaderValue::from_static("-"))
    }

    /// Checks the nonce a proof carries.
    pub(crate) fn check(&self, nonce: Option<&str>) -> NonceCheck {
        self.check_at(nonce, now_secs())
    }

    fn check_at(&self, nonce: Option<&str>, now: u64) -> NonceCheck {
        let Some(nonce) = nonce.filter(|n| n.len() > TIME_CHARS && n.is_ascii()) else {
            return NonceCheck::Invalid;
        };
        let (time, tag) = nonce.split_at(TIME_CHARS);
        let Some(bytes) = URL_SAFE_NO_PAD
            .decode(time)
            .ok()
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
        else {
            return NonceCheck::Invalid;
        };
        if !self.key.verify(LABEL, &[&bytes], tag) {
            return NonceCheck::Invalid;
        }
        let made = u64::from_be_bytes(bytes);
        let lifetime = self.lifetime.as_secs();
        // A nonce from the future (a replica's clock ahead) is accepted within 5 seconds.
        if made > now.saturating_add(5) || now.saturating_sub(made) > lifetime {
            return NonceCheck::Invalid;
        }
        NonceCheck::Valid {
            renew: now.saturating_sub(made) > lifetime / 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces(key: u8) -> Nonces {
        Nonces::new(
            SealingKey::from_bytes(&[key; 32]).unwrap(),
            Duration::from_secs(300),
        )
    }

    #[test]
    fn a_nonce_is_valid_for_its_lifetime_with_the_key_that_made_it() {
        let n = nonces(1);
        let nonce = n.issue_at(1_000_000);
        let nonce = nonce.to_str().unwrap();
        assert_eq!(
            n.check_at(Some(nonce), 1_000_000),
            NonceCheck::Valid { renew: false }
        );
        assert_eq!(
            n.check_at(Some(nonce), 1_000_200),
            NonceCheck::Valid { renew: true }
        );
        assert_eq!(n.check_at(Some(nonce), 1_000_301), NonceCheck::Invalid);
        assert_eq!(n.check_at(Some(nonce), 999_990), NonceCheck::Invalid);
        assert_eq!(
            nonces(2).check_at(Some(nonce), 1_000_000),
            NonceCheck::Invalid
        );
        // A replica with the same key accepts it.
        assert!(matches!(
            nonces(1).check_at(Some(nonce), 1_000_001),
            NonceCheck::Valid { .. }
        ));
        // The time can not be changed without the key.
        let later = URL_SAFE_NO_PAD.encode(1_000_250u64.to_be_bytes());
        let forged = format!("{later}{}", &nonce[TIME_CHARS..]);
        assert_eq!(n.check_at(Some(&forged), 1_000_260), NonceCheck::Invalid);
        for bad in ["", "short", "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"] {
            assert_eq!(n.check_at(Some(bad), 1_000_000), NonceCheck::Invalid);
        }
        assert_eq!(n.check_at(None, 1_000_000), NonceCheck::Invalid);
    }
}
