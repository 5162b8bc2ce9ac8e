//! The replay check of DPoP proofs (RFC 9449 §11.1): each proof's `jti` is remembered, per
//! key, for as long as its `iat` keeps it acceptable; a proof seen again is refused.

use std::time::Duration;

use crate::dpop::sha256_b64;

/// The proofs seen lately, in this process: bounded in count, each kept for twice the `iat`
/// window (a proof made at `iat` is accepted from `iat - window` to `iat + window`, so it is
/// remembered at least until it can no longer be accepted).
#[derive(Clone)]
pub(crate) struct ReplayCache {
    seen: moka::sync::Cache<String, ()>,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("entries", &self.seen.entry_count())
            .finish()
    }
}

impl ReplayCache {
    pub(crate) fn new(window: Duration, capacity: u64) -> Self {
        Self {
            seen: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(window.saturating_mul(2) + Duration::from_secs(1))
                .build(),
        }
    }

    /// Whether this is the first time the proof `jti` of the key `jkt` is presented (and
    /// remembers it). Atomic: of two requests racing with one proof, one wins.
    pub(crate) fn first_use(&self, jkt: &str, jti: &str) -> bool {
        // A fixed-size key: the hash of the thumbprint and the jti, framed so that no two
        // pairs share it (a thumbprint is 43 base64url characters without a dot).
        let Some(key) = sha256_b64(format!("{jkt}.{jti}").as_bytes()) else {
            return false;
        };
        self.seen.entry(key).or_insert(()).is_fresh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_accepted_once_per_key() {
        let cache = ReplayCache::new(Duration::from_secs(300), 100);
        assert!(cache.first_use("k1", "a"));
        assert!(!cache.first_use("k1", "a"));
        assert!(
            cache.first_use("k2", "a"),
            "another key's jti is another proof"
        );
        assert!(cache.first_use("k1", "b"));
    }
}
