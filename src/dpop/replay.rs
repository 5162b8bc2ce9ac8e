//! The replay check of DPoP proofs (RFC 9449 §11.1): each proof's `jti` is remembered, per
//! key, for as long as its `iat` keeps it acceptable; a proof seen again is refused.
//!
//! Not a cache: an entry must never be forgotten before its proof expires, or the proof
//! could be replayed. moka (the crate's cache) admits new keys by frequency once it is full
//! and may drop them, and its entry API does not make two racing first uses one, so this is a
//! purpose-built set: sharded, two generations of one lifetime each, and **full means
//! refused** (the request is answered 503), never "forget something".

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::dpop::sha256;

const SHARDS: usize = 16;

/// What the replay check says of a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstUse {
    /// Never seen: remembered from now on.
    Yes,
    /// Seen before: a replay.
    Replayed,
    /// The set is full: the proof can not be remembered, so it is not accepted.
    Full,
    /// The shared store can not be reached: the proof can not be checked, so it is not
    /// accepted.
    Unavailable,
}

/// How long a proof is remembered: twice the `iat` window (a proof made at `iat` is accepted
/// from `iat - window` to `iat + window`), and a minute for clocks that step back or differ
/// between replicas.
pub(crate) fn lifetime(window: Duration) -> Duration {
    window.saturating_mul(2) + Duration::from_secs(60)
}

/// The fixed-size replay key of a proof: the SHA-256 of the key's thumbprint and the `jti`,
/// framed so that no two pairs share it (a thumbprint is 43 base64url characters, no dot).
pub(crate) fn replay_key(jkt: &str, jti: &str) -> Option<[u8; 32]> {
    sha256(format!("{jkt}.{jti}").as_bytes()).and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

/// One shard: proofs seen in the current generation and the one before.
struct Shard {
    current: HashSet<[u8; 32]>,
    previous: HashSet<[u8; 32]>,
    started: Instant,
}

/// The proofs seen lately, in this process. A proof is kept for at least its
/// [`lifetime`] and at most twice that.
pub(crate) struct ReplayCache {
    shards: Vec<Mutex<Shard>>,
    /// Picks the shard with a key of this process: a client choosing its `jti`s can not
    /// aim them all at one shard.
    shard_of: RandomState,
    lifetime: Duration,
    per_shard: usize,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("lifetime", &self.lifetime)
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl ReplayCache {
    pub(crate) fn new(window: Duration, capacity: u64) -> Self {
        let now = Instant::now();
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        current: HashSet::new(),
                        previous: HashSet::new(),
                        started: now,
                    })
                })
                .collect(),
            shard_of: RandomState::new(),
            lifetime: lifetime(window),
            per_shard: usize::try_from(capacity / SHARDS as u64)
                .unwrap_or(usize::MAX)
                .max(1),
        }
    }

    /// Whether this is the first use of the proof `jti` of the key `jkt` (then remembered).
    /// Checked and recorded under one lock: of two requests racing with one proof, one wins.
    pub(crate) fn first_use(&self, key: [u8; 32]) -> FirstUse {
        self.first_use_at(key, Instant::now())
    }

    fn first_use_at(&self, key: [u8; 32], now: Instant) -> FirstUse {
        let index = usize::try_from(self.shard_of.hash_one(key) % SHARDS as u64).unwrap_or(0);
        let Some(shard) = self.shards.get(index) else {
            return FirstUse::Full;
        };
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let age = now.saturating_duration_since(shard.started);
        if age >= self.lifetime {
            // A new generation: the last one is kept one more lifetime, older ones go.
            let last = std::mem::take(&mut shard.current);
            shard.previous = if age >= self.lifetime * 2 {
                HashSet::new()
            } else {
                last
            };
            shard.started = now;
        }
        if shard.current.contains(&key) || shard.previous.contains(&key) {
            return FirstUse::Replayed;
        }
        if shard.current.len() + shard.previous.len() >= self.per_shard {
            return FirstUse::Full;
        }
        shard.current.insert(key);
        FirstUse::Yes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(jkt: &str, jti: &str) -> [u8; 32] {
        replay_key(jkt, jti).unwrap()
    }

    #[test]
    fn a_proof_is_accepted_once_per_key_for_its_whole_lifetime() {
        let cache = ReplayCache::new(Duration::from_secs(300), 16_000);
        let t0 = Instant::now();
        assert_eq!(cache.first_use_at(k("k1", "a"), t0), FirstUse::Yes);
        assert_eq!(cache.first_use_at(k("k1", "a"), t0), FirstUse::Replayed);
        assert_eq!(
            cache.first_use_at(k("k2", "a"), t0),
            FirstUse::Yes,
            "another key"
        );
        assert_eq!(cache.first_use_at(k("k1", "b"), t0), FirstUse::Yes);
        // Still refused after twice the window and the margin, and after a generation.
        let later = t0 + Duration::from_secs(659);
        assert_eq!(cache.first_use_at(k("k1", "a"), later), FirstUse::Replayed);
        let next_generation = t0 + Duration::from_secs(700);
        assert_eq!(
            cache.first_use_at(k("k1", "a"), next_generation),
            FirstUse::Replayed
        );
        // Forgotten only long after no proof of then can be accepted.
        let much_later = t0 + Duration::from_secs(1500);
        assert_eq!(cache.first_use_at(k("k1", "a"), much_later), FirstUse::Yes);
    }

    #[test]
    fn a_full_set_refuses_instead_of_forgetting() {
        let cache = ReplayCache::new(Duration::from_secs(300), 16);
        let t0 = Instant::now();
        let mut full = 0;
        for i in 0..200 {
            match cache.first_use_at(k("k", &i.to_string()), t0) {
                FirstUse::Yes => {}
                FirstUse::Full => full += 1,
                FirstUse::Replayed | FirstUse::Unavailable => panic!("never seen"),
            }
        }
        assert!(full > 0);
        // Everything accepted is still remembered.
        for i in 0..200 {
            assert_ne!(
                cache.first_use_at(k("k", &i.to_string()), t0),
                FirstUse::Yes,
                "{i}"
            );
        }
    }
}
