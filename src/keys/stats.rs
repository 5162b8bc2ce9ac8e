//! Key-source statistics ([`KeySetStats`]) and the warm-up report ([`WarmUpError`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::keys::shared::Shared;
use crate::keys::source::Location;

/// A statistics snapshot per source, in configuration order.
pub(crate) fn collect(shared: &Shared) -> Vec<KeySetStats> {
    let now = Instant::now();
    shared
        .sources
        .iter()
        .enumerate()
        .map(|(id, s)| {
            let snap = shared.snapshots.get(&id);
            let snap = snap.as_ref();
            let c = &s.counters;
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
            KeySetStats {
                issuers: s.issuers.clone(),
                jwks_uri: match &s.location {
                    Location::Fixed(u) => Some(u.to_string()),
                    Location::Discover(_) => snap
                        .and_then(|s| s.jwks_uri.as_ref().or(s.discovery.as_ref().map(|d| &d.0)))
                        .map(|u| u.to_string()),
                },
                discovered: matches!(s.location, Location::Discover(_)),
                fetches: load(&c.fetches),
                failures: load(&c.failures),
                not_modified: load(&c.not_modified),
                hits: load(&c.hits),
                stale_hits: load(&c.stale_hits),
                misses: load(&c.misses),
                unknown_kid_refetches: load(&c.unknown_kid_refetches),
                unknown_kid_rejections: load(&c.unknown_kid_rejections),
                keys: snap
                    .and_then(|s| s.keys.as_ref())
                    .map_or(0, |k| k.keys.len()),
                age: snap
                    .and_then(|s| s.confirmed_at)
                    .map(|t| now.saturating_duration_since(t)),
                stale: snap.is_some_and(|s| s.keys.is_some() && now >= s.fresh_until),
                seeded: snap.is_some_and(|s| s.keys.is_some() && s.confirmed_at.is_none()),
                consecutive_failures: snap.map_or(0, |s| s.consecutive_failures),
                last_error: snap
                    .and_then(|s| s.last_error.as_ref())
                    .map(|e| e.to_string()),
            }
        })
        .collect()
}

/// Statistics of one key source (a `jwks_uri`, or an issuer whose `jwks_uri` is discovered),
/// from [`ResourceServerAuth::key_set_stats`](crate::ResourceServerAuth::key_set_stats).
///
/// Counters only grow; export them as monotonic counters, and `keys`, `age`, `stale` and
/// `consecutive_failures` as gauges. Taking a snapshot reads a few atomics and is cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySetStats {
    /// The issuers whose tokens are verified with these keys.
    pub issuers: Vec<String>,
    /// The key-set URL (for a discovering entry: once discovered).
    pub jwks_uri: Option<String>,
    /// Whether the `jwks_uri` is discovered from the issuer's metadata.
    pub discovered: bool,
    /// Key-set requests sent.
    pub fetches: u64,
    /// Failed attempts (network, status, size, parse, discovery).
    pub failures: u64,
    /// Conditional requests answered `304 Not Modified`.
    pub not_modified: u64,
    /// Requests served from fresh cached keys.
    pub hits: u64,
    /// Requests served from stale keys while refreshes failed.
    pub stale_hits: u64,
    /// Requests that had to wait for a fetch (cold or expired keys).
    pub misses: u64,
    /// Fetches caused by unknown key ids.
    pub unknown_kid_refetches: u64,
    /// Tokens refused because no key has their key id (after any refetch). Most of them
    /// cost no fetch: see `unknown_kid_refetches`.
    pub unknown_kid_rejections: u64,
    /// Usable keys held now.
    pub keys: usize,
    /// Time since the server last confirmed the keys (`None`: never).
    pub age: Option<Duration>,
    /// Whether the held keys are past their lifetime (served only while refreshes fail).
    pub stale: bool,
    /// Whether the held keys are the entry's
    /// [`initial_jwks`](crate::AuthorizationServerEntry::initial_jwks), not yet replaced by a
    /// successful fetch.
    pub seeded: bool,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// The error of the latest attempt, if it failed.
    pub last_error: Option<String>,
}

/// Key sources that could not be fetched by
/// [`ResourceServerAuth::warm_up`](crate::ResourceServerAuth::warm_up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmUpError {
    failures: Vec<WarmUpFailure>,
}

/// One key source that failed to warm up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WarmUpFailure {
    /// The issuers whose keys are missing.
    pub issuers: Vec<String>,
    /// Why.
    pub reason: String,
}

impl WarmUpError {
    /// `None` when nothing failed.
    pub(crate) fn new(failures: Vec<WarmUpFailure>) -> Option<Self> {
        (!failures.is_empty()).then_some(Self { failures })
    }

    /// Every source that failed.
    #[must_use]
    pub fn failures(&self) -> &[WarmUpFailure] {
        &self.failures
    }
}

impl std::fmt::Display for WarmUpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("key sets could not be fetched for: ")?;
        for (i, failure) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} ({})", failure.issuers.join(", "), failure.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for WarmUpError {}
