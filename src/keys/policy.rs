//! Key-set timing rules, pure functions of the settings: how long a key set lives, when a
//! background refresh starts, how long to back off after failures.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::JwksOptions;

impl JwksOptions {
    /// A server-given lifetime clamped to the bounds, or the configured TTL.
    pub(crate) fn lifetime(&self, given: Option<Duration>) -> Duration {
        given.map_or(self.ttl, |d| d.clamp(self.min_ttl, self.max_ttl))
    }

    /// How long before expiry a background refresh starts: a tenth of the lifetime, at least
    /// the fetch timeout plus a second (so a refresh ends before expiry), at most half.
    pub(crate) fn refresh_lead(&self, lifetime: Duration) -> Duration {
        (lifetime / 10)
            .max(self.fetch_timeout + Duration::from_secs(1))
            .min(lifetime / 2)
    }

    /// The wait before retrying after `failures` consecutive failures: exponential from the
    /// cooldown, capped, with jitter (50–100 %), never shorter than the cooldown.
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let base = self.refetch_cooldown.max(Duration::from_millis(100));
        let exp = base
            .checked_mul(1u32 << failures.saturating_sub(1).min(20))
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        let jitter = (random_u64() % 1000) as u32;
        let jittered = exp / 2 + exp / 2 * jitter / 1000;
        jittered.max(self.refetch_cooldown)
    }
}

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// `t + d`, saturating far in the future instead of overflowing.
pub(crate) fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 86400)))
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let opts = JwksOptions::default();
        for failures in 1..40 {
            let b = opts.backoff(failures);
            assert!(b >= opts.refetch_cooldown, "{failures}: {b:?}");
            assert!(b <= opts.max_backoff, "{failures}: {b:?}");
        }
        let third = opts.backoff(3);
        assert!(third >= Duration::from_secs(10) && third <= Duration::from_secs(20));
        assert!(opts.backoff(30) >= opts.max_backoff / 2);
    }

    #[test]
    fn lifetimes_are_clamped_and_refresh_starts_before_expiry() {
        let opts = JwksOptions::default();
        assert_eq!(opts.lifetime(None), Duration::from_secs(3600));
        assert_eq!(opts.lifetime(Some(Duration::ZERO)), Duration::from_secs(60));
        assert_eq!(
            opts.lifetime(Some(Duration::from_secs(7 * 86400))),
            Duration::from_secs(86400)
        );
        assert_eq!(
            opts.refresh_lead(Duration::from_secs(3600)),
            Duration::from_secs(360)
        );
        assert_eq!(
            opts.refresh_lead(Duration::from_secs(60)),
            Duration::from_secs(6)
        );
        assert_eq!(
            opts.refresh_lead(Duration::from_secs(4)),
            Duration::from_secs(2)
        );
    }
}
