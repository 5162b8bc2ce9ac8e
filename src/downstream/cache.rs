//! Per-user caching of downstream tokens: keyed by the owner's (issuer, subject) and the whole
//! need, kept until shortly before expiry, fetched once at a time per key; denials are never
//! kept.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::Expiry;
use moka::future::Cache;

use super::{BrokerFuture, Denial, DownstreamToken, TokenBroker, TokenNeed};
use crate::ResourceOwner;

/// Tokens are dropped this long before they expire, so a tool never gets one that expires
/// on the way.
const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(60);
/// Most tokens kept.
const DEFAULT_CAPACITY: u64 = 10_000;

/// (principal, need): the principal is [`ResourceOwner::principal`], issuer and subject
/// length-prefixed, so `sub` alone never matches across issuers.
type Key = (Vec<u8>, TokenNeed);

/// Caches the tokens of another broker per user; see the module docs.
///
/// ```
/// use protected_resource::downstream::{CachedBroker, TokenExchangeBroker};
///
/// # fn main() -> Result<(), protected_resource::ConfigError> {
/// let broker = CachedBroker::new(
///     TokenExchangeBroker::builder("https://auth.example.com/oauth/token")
///         .client_secret_post("mcp-server", "secret")
///         .build()?,
/// );
/// # drop(broker);
/// # Ok(())
/// # }
/// ```
pub struct CachedBroker<B> {
    inner: B,
    cache: Cache<Key, DownstreamToken>,
}

impl<B> std::fmt::Debug for CachedBroker<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedBroker")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// Each entry lives until `refresh_before` ahead of its token's expiry; a token without a
/// known expiry is not kept.
struct UntilExpiry {
    refresh_before: Duration,
}

impl Expiry<Key, DownstreamToken> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &Key,
        token: &DownstreamToken,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = token
            .expires_at()
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::ZERO);
        Some(left.saturating_sub(self.refresh_before))
    }
}

impl<B: TokenBroker> CachedBroker<B> {
    /// Caches `inner`'s tokens (at most 10,000; each dropped a minute before it expires).
    pub fn new(inner: B) -> Self {
        Self::with_limits(inner, DEFAULT_CAPACITY, DEFAULT_REFRESH_BEFORE)
    }

    /// Caches at most `capacity` tokens, each dropped `refresh_before` before it expires.
    pub fn with_limits(inner: B, capacity: u64, refresh_before: Duration) -> Self {
        Self {
            inner,
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpiry { refresh_before })
                .support_invalidation_closures()
                .build(),
        }
    }

    /// Drops every token kept for `owner` (for example when the user disconnects).
    pub fn forget(&self, owner: &ResourceOwner) {
        let principal = owner.principal();
        // Bounded: the cache holds at most `capacity` entries.
        let _ = self
            .cache
            .invalidate_entries_if(move |(p, _), _| *p == principal);
    }

    /// The broker whose tokens are kept.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B: TokenBroker> TokenBroker for CachedBroker<B> {
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a> {
        Box::pin(async move {
            let key = (owner.principal(), need.clone());
            self.cache
                .try_get_with(key, self.inner.token(owner, need))
                .await
                .map_err(|e: Arc<Denial>| (*e).clone())
        })
    }
}
