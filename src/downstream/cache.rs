//! Per-user caching of downstream tokens: keyed by the owner's (issuer, subject), the inbound
//! token's client and scopes, and the whole need; kept until shortly before expiry (an hour at
//! most), fetched once at a time per key; denials are never kept.

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
/// Longest a token is kept, whatever its expiry (a revoked one is not served for long).
const MAX_KEPT: Duration = Duration::from_secs(3600);

/// Whose token, obtained how, for what: the principal ([`ResourceOwner::principal`], issuer
/// and subject length-prefixed, so `sub` alone never matches across issuers), the inbound
/// token's client and scopes (an exchange's answer depends on them: a token obtained through
/// an admin session must not serve a narrower one), and the need.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    principal: Vec<u8>,
    client_id: Option<String>,
    scopes: Vec<String>,
    need: TokenNeed,
}

impl Key {
    fn new(owner: &ResourceOwner, need: &TokenNeed) -> Self {
        let mut scopes = owner.scopes().to_vec();
        scopes.sort();
        scopes.dedup();
        Self {
            principal: owner.principal(),
            client_id: owner.client_id().map(str::to_owned),
            scopes,
            need: need.clone(),
        }
    }
}

/// Caches the tokens of another broker per user; see the module docs.
///
/// ```
/// use protected_resource::downstream::{CachedBroker, TokenExchangeBroker};
///
/// # fn main() -> Result<(), protected_resource::ConfigError> {
/// let broker = CachedBroker::new(
///     TokenExchangeBroker::builder("https://auth.example.com/oauth/token")
///         .issuer("https://auth.example.com")
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

/// Each entry lives until `refresh_before` ahead of its token's expiry, at most an hour; a
/// token without a known expiry is not kept.
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
        Some(left.saturating_sub(self.refresh_before).min(MAX_KEPT))
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

    /// Drops every token kept for `owner`'s user (for example when the user disconnects). A
    /// fetch already under way may still store its token.
    pub fn forget(&self, owner: &ResourceOwner) {
        let principal = owner.principal();
        // Bounded: the cache holds at most `capacity` entries.
        let _ = self
            .cache
            .invalidate_entries_if(move |key, _| key.principal == principal);
    }

    /// Drops the token kept for this caller and need (for example after the provider
    /// answered 401 with it).
    pub async fn invalidate(&self, owner: &ResourceOwner, need: &TokenNeed) {
        self.cache.invalidate(&Key::new(owner, need)).await;
    }

    /// The broker whose tokens are kept.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B: TokenBroker> TokenBroker for CachedBroker<B> {
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a> {
        Box::pin(async move {
            let key = Key::new(owner, need);
            self.cache
                .try_get_with(key, self.inner.token(owner, need))
                .await
                .map_err(|e: Arc<Denial>| (*e).clone())
        })
    }
}
