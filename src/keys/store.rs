//! The read path of key sets: the current keys of a source under the policy in the
//! [`keys`](crate::keys) module docs, refetches for unknown key ids (with remembered misses),
//! background refreshes, warm-up and statistics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::future::Cache;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{AuthorizationServerEntry, JwksOptions};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::keys::fetch::HttpFetcher;
use crate::keys::jwks::KeySet;
use crate::keys::shared::{Flight, Shared, Snapshots};
use crate::keys::snapshot::{Plan, Snapshot, Unavailable};
use crate::keys::source::{Counters, Source, bump, location_key};
use crate::keys::stats::{self, KeySetStats, WarmUpFailure};

/// Longest `kid` remembered as unknown (longer ones are still refused, just not remembered).
const MAX_REMEMBERED_KID: usize = 256;

/// Fetches, caches and refreshes key sets; see the [`keys`](crate::keys) module docs.
pub(crate) struct KeyStore {
    shared: Arc<Shared>,
    /// (source, kid) → the key-set version in which the kid was found missing after a fetch.
    unknown_kids: Cache<(usize, Box<str>), u64>,
    by_location: HashMap<String, usize>,
    /// Dropped with the store: every fetch task sees the channel close and stops.
    _stop: watch::Sender<()>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("sources", &self.shared.sources)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    pub(crate) fn new(
        opts: JwksOptions,
        entries: &[AuthorizationServerEntry],
        roots: &[reqwest::Certificate],
    ) -> Result<Self, ConfigError> {
        opts.check()?;
        let fetcher = HttpFetcher::new(
            opts.connect_timeout,
            opts.fetch_timeout,
            opts.max_response_bytes,
            roots,
        )?;
        let mut sources: Vec<Source> = Vec::new();
        let mut by_location = HashMap::new();
        for (i, e) in entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.verifies_jwts() && !e.is_pattern())
        {
            let (key, location) = location_key(e);
            let id = *by_location.entry(key).or_insert_with(|| {
                sources.push(Source {
                    location,
                    issuers: Vec::new(),
                    counters: Counters::default(),
                    seed: None,
                });
                sources.len() - 1
            });
            if !sources[id].issuers.contains(&e.issuer) {
                sources[id].issuers.push(e.issuer.clone());
            }
            if let Some(json) = &e.initial_jwks {
                let bad = |message: String| {
                    ConfigError::new(ConfigErrorKind::InvalidValue, "initial_jwks", message)
                        .within(&format!("authorization_servers[{i}]"))
                };
                if sources[id].seed.is_some() {
                    return Err(bad(
                        "another entry with the same key set already gives its initial keys"
                            .to_owned(),
                    ));
                }
                sources[id].seed = Some(Arc::new(KeySet::parse_configured(json).map_err(bad)?));
            }
        }
        let (tx, rx) = watch::channel(());
        // A kid missing after a refetch is refused without work until the next refetch may
        // run (one cooldown): a key published meanwhile is accepted then.
        let remember = opts.refetch_cooldown;
        let snapshots = Snapshots::new(sources.len());
        for (id, source) in sources.iter().enumerate() {
            if let Some(seed) = &source.seed {
                snapshots.insert(id, Arc::new(Snapshot::seeded(seed.clone())));
            }
        }
        Ok(Self {
            shared: Arc::new(Shared {
                fetcher,
                snapshots,
                flights: sources
                    .iter()
                    .map(|_| Mutex::new(Flight::default()))
                    .collect(),
                stop: rx,
                sources,
                opts,
            }),
            unknown_kids: Cache::builder()
                .weigher(|k: &(usize, Box<str>), _: &u64| k.1.len() as u32 + 16)
                .max_capacity(1024 * 1024)
                .time_to_live(remember)
                .build(),
            by_location,
            _stop: tx,
        })
    }

    /// The source serving `entry` (entries passed to [`new`](Self::new) only).
    pub(crate) fn source_of(&self, entry: &AuthorizationServerEntry) -> Option<usize> {
        if !entry.verifies_jwts() || entry.is_pattern() {
            return None;
        }
        self.by_location.get(&location_key(entry).0).copied()
    }

    /// The keys of source `id` when they can be used now with nothing else to do: fresh,
    /// no refresh due. `None` otherwise ([`current`](Self::current) then decides). Counts
    /// nothing: the caller counts the hit with [`count_hit`](Self::count_hit) once it uses
    /// them.
    pub(crate) fn cached(&self, id: usize) -> Option<Arc<KeySet>> {
        let snap = self.shared.snapshots.get(&id)?;
        match snap.plan(Instant::now(), &self.shared.opts) {
            Plan::Use {
                keys,
                stale: false,
                refresh: false,
            } => Some(keys),
            _ => None,
        }
    }

    /// Counts a use of [`cached`](Self::cached) keys.
    pub(crate) fn count_hit(&self, id: usize) {
        if let Some(source) = self.shared.sources.get(id) {
            bump(&source.counters.hits);
        }
    }

    /// The keys of source `id` under the policy in the [`keys`](crate::keys) module docs.
    pub(crate) async fn current(&self, id: usize) -> Result<Arc<KeySet>, Unavailable> {
        let shared = &self.shared;
        let Some(source) = shared.sources.get(id) else {
            return Err(Unavailable {
                error: None,
                retry_after: Duration::ZERO,
            });
        };
        let snap = shared.snapshots.get(&id);
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
                        shared.start_background(id, seen);
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
            && self.unknown_kids.get(key).await == Some(seen.version)
        {
            return Ok(None);
        }
        let snap = shared.snapshots.get(&id);
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
                s.attempt
            }
            None => 0,
        };
        tracing::debug!(
            issuer = ?source.issuers,
            kid = ?kid.map(|k| k.chars().take(64).collect::<String>()),
            "unknown key id: joining or starting a refetch (one per cooldown)"
        );
        // Joins a running fetch; starts one only a cooldown after the last one started.
        let Some(snap) = shared
            .refetch(id, attempt, shared.opts.refetch_cooldown)
            .await
        else {
            return Ok(None);
        };
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
            self.unknown_kids
                .insert((id, Box::from(kid)), set.version)
                .await;
        }
    }

    /// Fetches every source now, waiting at most `deadline`; returns the sources that failed,
    /// with the reason.
    pub(crate) async fn warm_up(&self, deadline: Duration) -> Vec<WarmUpFailure> {
        let all = (0..self.shared.sources.len()).map(|id| async move {
            let reason = match tokio::time::timeout(deadline, self.current(id)).await {
                Ok(Ok(_)) => return None,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {deadline:?}"),
            };
            Some(WarmUpFailure {
                issuers: self.issuers_of(id).to_vec(),
                reason,
            })
        });
        let failed: Vec<WarmUpFailure> = futures_util::future::join_all(all)
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
        stats::collect(&self.shared)
    }

    /// The issuers served by source `id`.
    pub(crate) fn issuers_of(&self, id: usize) -> &[String] {
        self.shared
            .sources
            .get(id)
            .map_or(&[], |s| s.issuers.as_slice())
    }
}
