//! Key management: when key sets are fetched, how long they are trusted, and what happens when
//! an authorization server is slow, down, rotating keys or flooded with made-up key ids.
//!
//! One *key source* exists per configured `jwks_uri` (shared by every entry naming it), or per
//! issuer for entries that discover their `jwks_uri` ([`crate::discovery`] logic). Its latest
//! state is an immutable [`Snapshot`] held in a moka cache; readers take it without locks, and
//! every fetch runs under moka's per-key compute lock, so concurrent fetches of one source
//! coalesce into one (single flight) while readers never wait on it.
//!
//! The policy, for a request needing a source's keys at time `now`:
//!
//! | state | answer |
//! |---|---|
//! | fresh (`now` < fetched + lifetime) | the cached keys; past the refresh point a background refresh starts |
//! | expired, last refresh failed, within `stale_if_error` | the last good keys (stale), a background retry once the backoff allows |
//! | never fetched, or expired with no failure known | wait for one (shared) fetch |
//! | no usable keys and the backoff has not elapsed | fail at once (503 with `Retry-After`) |
//!
//! A key id missing from the cached set causes at most one refetch per source per cooldown;
//! kids still missing after a refetch are remembered (bounded, per key-set version) and refused
//! without any work until the key set changes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::AuthorizationServerEntry;
use crate::discovery;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::fetch::{FetchError, Fetched, HttpFetcher, Validators};
use crate::jwks::KeySet;

/// Key-set fetching and caching settings (see the builder methods `jwks_*`).
#[derive(Debug, Clone)]
pub(crate) struct JwksOptions {
    /// Lifetime of a key set whose answer has no caching headers.
    pub(crate) ttl: Duration,
    /// Bounds for lifetimes given by `Cache-Control` / `Expires`.
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    /// How long past its lifetime a key set is still used while refreshes fail.
    pub(crate) stale_if_error: Duration,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) allow_insecure_http: bool,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            stale_if_error: Duration::from_secs(24 * 3600),
            refetch_cooldown: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            max_response_bytes: 1024 * 1024,
            allow_insecure_http: false,
        }
    }
}

impl JwksOptions {
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, msg: &str| {
            Err(ConfigError::new(ConfigErrorKind::InvalidValue, field, msg))
        };
        if self.ttl.is_zero() {
            return invalid("jwks_cache_ttl", "must be greater than zero");
        }
        if self.min_ttl < Duration::from_secs(1) || self.min_ttl > self.max_ttl {
            return invalid(
                "jwks_cache_ttl_bounds",
                "the minimum must be at least 1 s and not above the maximum",
            );
        }
        if self.fetch_timeout.is_zero() {
            return invalid("jwks_fetch_timeout", "must be greater than zero");
        }
        if self.connect_timeout.is_zero() {
            return invalid("jwks_connect_timeout", "must be greater than zero");
        }
        if self.max_response_bytes == 0 {
            return invalid("jwks_max_response_bytes", "must be greater than zero");
        }
        if self.max_backoff < self.refetch_cooldown {
            return invalid(
                "jwks_max_backoff",
                "must not be shorter than jwks_refetch_cooldown",
            );
        }
        Ok(())
    }

    /// A server-given lifetime clamped to the bounds, or the configured TTL.
    fn lifetime(&self, given: Option<Duration>) -> Duration {
        given.map_or(self.ttl, |d| d.clamp(self.min_ttl, self.max_ttl))
    }

    /// How long before expiry a background refresh starts: a tenth of the lifetime, at least
    /// the fetch timeout plus a second (so a refresh ends before expiry), at most half.
    fn refresh_lead(&self, lifetime: Duration) -> Duration {
        (lifetime / 10)
            .max(self.fetch_timeout + Duration::from_secs(1))
            .min(lifetime / 2)
    }

    /// The wait before retrying after `failures` consecutive failures: exponential from the
    /// cooldown, capped, with jitter (50–100 %), never shorter than the cooldown.
    fn backoff(&self, failures: u32) -> Duration {
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
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 86400)))
        .unwrap_or(t)
}

/// Keys that can not be obtained, and when to try again.
#[derive(Debug, Clone)]
pub(crate) struct Unavailable {
    pub(crate) error: Option<FetchError>,
    pub(crate) retry_after: Duration,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            Some(e) => write!(f, "{e}"),
            None => f.write_str("no usable key"),
        }
    }
}

/// Where a source's keys come from.
#[derive(Debug)]
enum Location {
    Fixed(Arc<str>),
    Discover(String),
}

#[derive(Debug, Default)]
struct Counters {
    fetches: AtomicU64,
    failures: AtomicU64,
    not_modified: AtomicU64,
    hits: AtomicU64,
    stale_hits: AtomicU64,
    misses: AtomicU64,
    unknown_kid_refetches: AtomicU64,
    unknown_kid_rejections: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug)]
struct Source {
    location: Location,
    issuers: Vec<String>,
    refreshing: AtomicBool,
    counters: Counters,
}

/// The latest state of one source. Replaced as a whole, never mutated.
#[derive(Debug)]
struct Snapshot {
    /// Increases with every completed fetch attempt (used to coalesce fetches).
    attempt: u64,
    /// The last good keys.
    keys: Option<Arc<KeySet>>,
    /// Where `keys` came from.
    jwks_uri: Option<Arc<str>>,
    validators: Validators,
    /// When `keys` were last confirmed by the server (200 or 304).
    confirmed_at: Option<Instant>,
    fresh_until: Instant,
    refresh_at: Instant,
    /// When the latest attempt ended.
    attempted_at: Instant,
    consecutive_failures: u32,
    /// No new attempt before this, except a cold one.
    retry_at: Instant,
    /// The error of the latest attempt, if it failed.
    last_error: Option<FetchError>,
    /// A discovered `jwks_uri` and until when its metadata is fresh.
    discovery: Option<(Arc<str>, Instant)>,
}

enum Plan {
    Use {
        keys: Arc<KeySet>,
        stale: bool,
        refresh: bool,
    },
    FailFast,
    Fetch,
}

impl Snapshot {
    fn plan(&self, now: Instant, opts: &JwksOptions) -> Plan {
        if let Some(keys) = &self.keys {
            if now < self.fresh_until {
                return Plan::Use {
                    keys: keys.clone(),
                    stale: false,
                    refresh: now >= self.refresh_at && now >= self.retry_at,
                };
            }
            if self.consecutive_failures > 0 && now < later(self.fresh_until, opts.stale_if_error) {
                return Plan::Use {
                    keys: keys.clone(),
                    stale: true,
                    refresh: now >= self.retry_at,
                };
            }
        }
        if now < self.retry_at {
            Plan::FailFast
        } else {
            Plan::Fetch
        }
    }

    /// The keys right after an attempt: the new ones, or the stale ones while allowed.
    fn after_attempt(&self, now: Instant, opts: &JwksOptions) -> Option<Arc<KeySet>> {
        let keys = self.keys.as_ref()?;
        (self.last_error.is_none() || now < later(self.fresh_until, opts.stale_if_error))
            .then(|| keys.clone())
    }

    fn unavailable(&self, now: Instant) -> Unavailable {
        Unavailable {
            error: self.last_error.clone(),
            retry_after: self.retry_at.saturating_duration_since(now),
        }
    }
}

/// Shared by the store and its background tasks.
struct Shared {
    fetcher: HttpFetcher,
    opts: JwksOptions,
    sources: Vec<Source>,
    snapshots: Cache<usize, Arc<Snapshot>>,
    /// (source, kid) → the key-set version in which the kid was found missing after a fetch.
    unknown_kids: Cache<(usize, Box<str>), u64>,
}

/// Longest `kid` remembered as unknown (longer ones are still refused, just not remembered).
const MAX_REMEMBERED_KID: usize = 256;

/// Fetches, caches and refreshes key sets; see the [module docs](self).
pub(crate) struct KeyStore {
    shared: Arc<Shared>,
    by_location: HashMap<String, usize>,
    /// Dropped with the store: every background task sees the channel close and stops.
    _stop: watch::Sender<()>,
    stop: watch::Receiver<()>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("sources", &self.shared.sources)
            .finish_non_exhaustive()
    }
}

fn location_key(entry: &AuthorizationServerEntry) -> (String, Location) {
    match &entry.jwks_uri {
        Some(uri) => (uri.clone(), Location::Fixed(Arc::from(uri.as_str()))),
        None => (
            format!("discover:{}", entry.issuer),
            Location::Discover(entry.issuer.clone()),
        ),
    }
}

impl KeyStore {
    pub(crate) fn new(
        opts: JwksOptions,
        entries: &[AuthorizationServerEntry],
    ) -> Result<Self, ConfigError> {
        opts.check()?;
        let fetcher = HttpFetcher::new(
            opts.connect_timeout,
            opts.fetch_timeout,
            opts.max_response_bytes,
        )?;
        let mut sources: Vec<Source> = Vec::new();
        let mut by_location = HashMap::new();
        for e in entries {
            let (key, location) = location_key(e);
            let id = *by_location.entry(key).or_insert_with(|| {
                sources.push(Source {
                    location,
                    issuers: Vec::new(),
                    refreshing: AtomicBool::new(false),
                    counters: Counters::default(),
                });
                sources.len() - 1
            });
            if !sources[id].issuers.contains(&e.issuer) {
                sources[id].issuers.push(e.issuer.clone());
            }
        }
        let (tx, rx) = watch::channel(());
        Ok(Self {
            shared: Arc::new(Shared {
                fetcher,
                // One entry per configured source, never evicted: no capacity bound needed.
                snapshots: Cache::builder().build(),
                unknown_kids: Cache::builder()
                    .weigher(|k: &(usize, Box<str>), _: &u64| k.1.len() as u32 + 16)
                    .max_capacity(1024 * 1024)
                    .time_to_live(Duration::from_secs(600))
                    .build(),
                sources,
                opts,
            }),
            by_location,
            _stop: tx,
            stop: rx,
        })
    }

    /// The source serving `entry` (entries passed to [`new`](Self::new) only).
    pub(crate) fn source_of(&self, entry: &AuthorizationServerEntry) -> Option<usize> {
        self.by_location.get(&location_key(entry).0).copied()
    }

    /// The keys of source `id` under the policy in the [module docs](self).
    pub(crate) async fn current(&self, id: usize) -> Result<Arc<KeySet>, Unavailable> {
        let shared = &self.shared;
        let Some(source) = shared.sources.get(id) else {
            return Err(Unavailable {
                error: None,
                retry_after: Duration::ZERO,
            });
        };
        let snap = shared.snapshots.get(&id).await;
        let seen = snap.as_ref().map_or(0, |s| s.attempt);
        let now = Instant::now();
        if let Some(s) = &snap {
            match s.plan(now, &shared.opts) {
                Plan::Use {
                    keys,
                    stale,
                    refresh,
                } => {
                    bump(if stale {
                        &source.counters.stale_hits
                    } else {
                        &source.counters.hits
                    });
                    if refresh {
                        self.spawn_refresh(id, seen);
                    }
                    return Ok(keys);
                }
                Plan::FailFast => return Err(s.unavailable(now)),
                Plan::Fetch => {}
            }
        }
        bump(&source.counters.misses);
        let reason = if snap.is_some() { "expired" } else { "cold" };
        let snap = shared.attempt_once(id, seen, reason).await;
        let now = Instant::now();
        snap.after_attempt(now, &shared.opts)
            .ok_or_else(|| snap.unavailable(now))
    }

    /// A newer key set for a token whose key was `NotFound` in `seen`: `Ok(None)` when no
    /// refetch is allowed yet (the kid is refused at once), `Ok(Some(keys))` after a refetch
    /// (ours or one that finished meanwhile), `Err` when the refetch failed.
    pub(crate) async fn refetch_for_unknown(
        &self,
        id: usize,
        seen: &KeySet,
        kid: Option<&str>,
    ) -> Result<Option<Arc<KeySet>>, Unavailable> {
        let shared = &self.shared;
        let Some(source) = shared.sources.get(id) else {
            return Ok(None);
        };
        let remembered = kid
            .filter(|k| k.len() <= MAX_REMEMBERED_KID)
            .map(|k| (id, Box::<str>::from(k)));
        if let Some(key) = &remembered
            && shared.unknown_kids.get(key).await == Some(seen.version)
        {
            return Ok(None);
        }
        let snap = shared.snapshots.get(&id).await;
        let now = Instant::now();
        let attempt = match &snap {
            Some(s) => {
                // Someone refreshed since `seen` was read: use that.
                if let Some(keys) = &s.keys
                    && keys.version != seen.version
                {
                    return Ok(Some(keys.clone()));
                }
                // While the server is failing, the backoff applies to unknown kids too; the
                // kid may be new, so the answer is "unavailable", not "unknown".
                if s.consecutive_failures > 0 && now < s.retry_at {
                    return Err(s.unavailable(now));
                }
                if now < later(s.attempted_at, shared.opts.refetch_cooldown) {
                    return Ok(None);
                }
                s.attempt
            }
            None => 0,
        };
        tracing::debug!(
            issuer = ?source.issuers,
            kid = ?kid.map(|k| k.chars().take(64).collect::<String>()),
            "unknown key id: refetching the key set"
        );
        let snap = shared.attempt_once(id, attempt, "unknown_kid").await;
        if snap.last_error.is_some() {
            return Err(snap.unavailable(Instant::now()));
        }
        Ok(snap.keys.clone())
    }

    /// Records a token refused because its key id is not in `set` (the newest keys of source
    /// `id`). After a refetch the kid is remembered, so that it is refused without work until
    /// the key set changes.
    pub(crate) async fn unknown_kid(
        &self,
        id: usize,
        kid: Option<&str>,
        set: &KeySet,
        refetched: bool,
    ) {
        if let Some(source) = self.shared.sources.get(id) {
            bump(&source.counters.unknown_kid_rejections);
        }
        if refetched && let Some(kid) = kid.filter(|k| k.len() <= MAX_REMEMBERED_KID) {
            self.shared
                .unknown_kids
                .insert((id, Box::from(kid)), set.version)
                .await;
        }
    }

    fn spawn_refresh(&self, id: usize, seen: u64) {
        let Some(source) = self.shared.sources.get(id) else {
            return;
        };
        if source.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            source.refreshing.store(false, Ordering::Release);
            return;
        };
        let shared = self.shared.clone();
        let mut stop = self.stop.clone();
        runtime.spawn(async move {
            {
                let refresh = std::pin::pin!(shared.attempt_once(id, seen, "refresh"));
                let stopped = std::pin::pin!(stop.changed());
                futures_util::future::select(refresh, stopped).await;
            }
            if let Some(s) = shared.sources.get(id) {
                s.refreshing.store(false, Ordering::Release);
            }
        });
    }

    /// Fetches every source now, waiting at most `deadline`; returns the sources that failed,
    /// with the reason.
    pub(crate) async fn warm_up(&self, deadline: Duration) -> Vec<(usize, String)> {
        let all = (0..self.shared.sources.len()).map(|id| async move {
            match tokio::time::timeout(deadline, self.current(id)).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some((id, e.to_string())),
                Err(_) => Some((id, format!("no answer within {deadline:?}"))),
            }
        });
        let failed: Vec<(usize, String)> = futures_util::future::join_all(all)
            .await
            .into_iter()
            .flatten()
            .collect();
        tracing::info!(
            sources = self.shared.sources.len(),
            failed = failed.len(),
            "key sets warmed up"
        );
        failed
    }

    /// A statistics snapshot per source, in configuration order.
    pub(crate) fn stats(&self) -> Vec<KeySetStats> {
        let snapshots: HashMap<usize, Arc<Snapshot>> =
            self.shared.snapshots.iter().map(|(k, v)| (*k, v)).collect();
        let now = Instant::now();
        self.shared
            .sources
            .iter()
            .enumerate()
            .map(|(id, s)| {
                let snap = snapshots.get(&id);
                let c = &s.counters;
                let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
                KeySetStats {
                    issuers: s.issuers.clone(),
                    jwks_uri: match &s.location {
                        Location::Fixed(u) => Some(u.to_string()),
                        Location::Discover(_) => snap
                            .and_then(|s| {
                                s.jwks_uri.as_ref().or(s.discovery.as_ref().map(|d| &d.0))
                            })
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
                    consecutive_failures: snap.map_or(0, |s| s.consecutive_failures),
                    last_error: snap
                        .and_then(|s| s.last_error.as_ref())
                        .map(|e| e.to_string()),
                }
            })
            .collect()
    }

    /// The issuers served by source `id`.
    pub(crate) fn issuers_of(&self, id: usize) -> &[String] {
        self.shared
            .sources
            .get(id)
            .map_or(&[], |s| s.issuers.as_slice())
    }
}

impl Shared {
    /// Runs one fetch attempt for source `id` unless an attempt newer than `seen` already
    /// finished (then its outcome is returned). Attempts of one source never overlap.
    async fn attempt_once(&self, id: usize, seen: u64, reason: &'static str) -> Arc<Snapshot> {
        let result = self
            .snapshots
            .entry(id)
            .and_compute_with(|current| {
                let prev = current.map(|e| e.into_value());
                async move {
                    if prev.as_ref().map_or(0, |p| p.attempt) != seen {
                        return Op::Nop;
                    }
                    Op::Put(Arc::new(self.attempt(id, prev.as_deref(), reason).await))
                }
            })
            .await;
        match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) | CompResult::Unchanged(e) => {
                e.into_value()
            }
            // Not reachable (we only put or leave an existing entry); answer "no keys".
            CompResult::StillNone(_) | CompResult::Removed(_) => {
                let now = Instant::now();
                Arc::new(Snapshot {
                    attempt: seen,
                    keys: None,
                    jwks_uri: None,
                    validators: Validators::default(),
                    confirmed_at: None,
                    fresh_until: now,
                    refresh_at: now,
                    attempted_at: now,
                    consecutive_failures: 0,
                    retry_at: now,
                    last_error: None,
                    discovery: None,
                })
            }
        }
    }

    async fn attempt(&self, id: usize, prev: Option<&Snapshot>, reason: &'static str) -> Snapshot {
        let Some(source) = self.sources.get(id) else {
            // Not reachable: ids come from `new`.
            return self.failed(
                prev,
                None,
                FetchError::Discovery("no such source".into()),
                Instant::now(),
            );
        };
        let span = tracing::info_span!(
            "jwks_fetch",
            issuer = %source.issuers.join(" "),
            jwks_uri = tracing::field::Empty,
            reason,
        );
        async {
            let started = Instant::now();
            let (location, discovery) = self.locate(source, prev, started).await;
            let uri = match location {
                Ok(uri) => uri,
                Err(e) => {
                    bump(&source.counters.failures);
                    return self.failed(prev, discovery, e, started);
                }
            };
            tracing::Span::current().record("jwks_uri", &*uri);
            bump(&source.counters.fetches);
            if reason == "unknown_kid" {
                bump(&source.counters.unknown_kid_refetches);
            }
            // Validators only make sense for the same URI and when we still hold its keys.
            let validators = prev
                .filter(|p| p.keys.is_some() && p.jwks_uri.as_deref() == Some(&*uri))
                .map(|p| &p.validators);
            let outcome = self
                .fetcher
                .get(
                    &uri,
                    "application/jwk-set+json, application/json",
                    validators,
                )
                .await;
            let duration_ms = started.elapsed().as_millis() as u64;
            let now = Instant::now();
            let attempt = prev.map_or(0, |p| p.attempt) + 1;
            let (keys, validators, lifetime) = match outcome {
                Ok(Fetched::Body {
                    bytes,
                    validators,
                    lifetime,
                }) => match KeySet::parse(&bytes, &uri) {
                    Ok(set) if !set.keys.is_empty() => (Arc::new(set), validators, lifetime),
                    Ok(_) => {
                        bump(&source.counters.failures);
                        return self.failed(
                            prev,
                            discovery,
                            FetchError::NotAKeySet("no usable key in the set".into()),
                            started,
                        );
                    }
                    Err(e) => {
                        bump(&source.counters.failures);
                        return self.failed(prev, discovery, e, started);
                    }
                },
                Ok(Fetched::NotModified { lifetime }) => {
                    bump(&source.counters.not_modified);
                    match prev.and_then(|p| p.keys.clone().map(|k| (k, p.validators.clone()))) {
                        Some((keys, validators)) => (keys, validators, lifetime),
                        None => {
                            bump(&source.counters.failures);
                            return self.failed(prev, discovery, FetchError::Status(304), started);
                        }
                    }
                }
                Err(e) => {
                    bump(&source.counters.failures);
                    return self.failed(prev, discovery, e, started);
                }
            };
            let lifetime = self.opts.lifetime(lifetime);
            let fresh_until = later(now, lifetime);
            tracing::debug!(
                outcome = "ok",
                keys = keys.keys.len(),
                duration_ms,
                lifetime_s = lifetime.as_secs(),
                "key set fetched"
            );
            Snapshot {
                attempt,
                keys: Some(keys),
                jwks_uri: Some(uri),
                validators,
                confirmed_at: Some(now),
                fresh_until,
                refresh_at: fresh_until
                    .checked_sub(self.opts.refresh_lead(lifetime))
                    .unwrap_or(now),
                attempted_at: now,
                consecutive_failures: 0,
                retry_at: now,
                last_error: None,
                discovery,
            }
        }
        .instrument(span)
        .await
    }

    /// Where the keys are: the configured URI, or the discovered one (rediscovered when its
    /// metadata is no longer fresh; the previous one is kept while rediscovery fails).
    async fn locate(
        &self,
        source: &Source,
        prev: Option<&Snapshot>,
        now: Instant,
    ) -> (Result<Arc<str>, FetchError>, Option<(Arc<str>, Instant)>) {
        let issuer = match &source.location {
            Location::Fixed(uri) => return (Ok(uri.clone()), None),
            Location::Discover(issuer) => issuer,
        };
        let known = prev.and_then(|p| p.discovery.clone());
        if let Some((uri, until)) = &known
            && now < *until
        {
            return (Ok(uri.clone()), known);
        }
        match discovery::discover(&self.fetcher, issuer, self.opts.allow_insecure_http).await {
            Ok(found) => {
                let until = later(Instant::now(), self.opts.lifetime(found.lifetime));
                tracing::debug!(jwks_uri = %found.jwks_uri, "discovered the key set location");
                (Ok(found.jwks_uri.clone()), Some((found.jwks_uri, until)))
            }
            Err(e) => match known {
                Some((uri, until)) => {
                    tracing::warn!(error = %e, "rediscovery failed; keeping the known jwks_uri");
                    (Ok(uri.clone()), Some((uri, until)))
                }
                None => (Err(e), None),
            },
        }
    }

    /// The snapshot after a failed attempt: the last good keys are kept.
    fn failed(
        &self,
        prev: Option<&Snapshot>,
        discovery: Option<(Arc<str>, Instant)>,
        error: FetchError,
        started: Instant,
    ) -> Snapshot {
        let now = Instant::now();
        let failures = prev.map_or(0, |p| p.consecutive_failures).saturating_add(1);
        let wait = self.opts.backoff(failures);
        let serving_stale = prev.is_some_and(|p| {
            p.keys.is_some() && now < later(p.fresh_until, self.opts.stale_if_error)
        });
        tracing::warn!(
            outcome = "error",
            error = %error,
            duration_ms = now.saturating_duration_since(started).as_millis() as u64,
            consecutive_failures = failures,
            retry_in_ms = wait.as_millis() as u64,
            serving_stale,
            "key set fetch failed"
        );
        Snapshot {
            attempt: prev.map_or(0, |p| p.attempt) + 1,
            keys: prev.and_then(|p| p.keys.clone()),
            jwks_uri: prev.and_then(|p| p.jwks_uri.clone()),
            validators: prev.map(|p| p.validators.clone()).unwrap_or_default(),
            confirmed_at: prev.and_then(|p| p.confirmed_at),
            fresh_until: prev.map_or(now, |p| p.fresh_until),
            refresh_at: prev.map_or(now, |p| p.refresh_at),
            attempted_at: now,
            consecutive_failures: failures,
            retry_at: later(now, wait),
            last_error: Some(error),
            discovery: discovery.or_else(|| prev.and_then(|p| p.discovery.clone())),
        }
    }
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
    pub(crate) fn new(store: &KeyStore, failed: Vec<(usize, String)>) -> Option<Self> {
        (!failed.is_empty()).then(|| Self {
            failures: failed
                .into_iter()
                .map(|(id, reason)| WarmUpFailure {
                    issuers: store.issuers_of(id).to_vec(),
                    reason,
                })
                .collect(),
        })
    }

    /// Every source that failed.
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
