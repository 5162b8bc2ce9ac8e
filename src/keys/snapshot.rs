//! The state of one key source at one moment ([`Snapshot`]), replaced as a whole after every
//! fetch attempt, and what a request does with it ([`Plan`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::JwksOptions;
use crate::keys::fetch::{FetchError, Validators};
use crate::keys::jwks::KeySet;
use crate::keys::policy::later;

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

/// The latest state of one source. Replaced as a whole, never mutated.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Increases with every completed fetch attempt (used to coalesce fetches).
    pub(crate) attempt: u64,
    /// The last good keys.
    pub(crate) keys: Option<Arc<KeySet>>,
    /// Where `keys` came from.
    pub(crate) jwks_uri: Option<Arc<str>>,
    pub(crate) validators: Validators,
    /// When `keys` were last confirmed by the server (200 or 304).
    pub(crate) confirmed_at: Option<Instant>,
    pub(crate) fresh_until: Instant,
    pub(crate) refresh_at: Instant,
    pub(crate) consecutive_failures: u32,
    /// No new attempt before this, except a cold one.
    pub(crate) retry_at: Instant,
    /// The error of the latest attempt, if it failed.
    pub(crate) last_error: Option<FetchError>,
    /// A discovered `jwks_uri` and until when its metadata is fresh.
    pub(crate) discovery: Option<(Arc<str>, Instant)>,
}

pub(crate) enum Plan {
    Use {
        keys: Arc<KeySet>,
        stale: bool,
        refresh: bool,
    },
    FailFast,
    Fetch,
}

impl Snapshot {
    /// The state of a source given keys in its configuration: usable at once (they never
    /// expire), a refresh due at once. A failed fetch keeps them (`failed` keeps the keys and
    /// their lifetime); the first successful one replaces them with the server's answer.
    pub(crate) fn seeded(keys: Arc<KeySet>) -> Self {
        let now = Instant::now();
        Self {
            attempt: 0,
            keys: Some(keys),
            jwks_uri: None,
            validators: Validators::default(),
            confirmed_at: None,
            fresh_until: later(now, crate::config::MAX_DURATION),
            refresh_at: now,
            consecutive_failures: 0,
            retry_at: now,
            last_error: None,
            discovery: None,
        }
    }

    pub(crate) fn plan(&self, now: Instant, opts: &JwksOptions) -> Plan {
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
    pub(crate) fn after_attempt(&self, now: Instant, opts: &JwksOptions) -> Option<Arc<KeySet>> {
        let keys = self.keys.as_ref()?;
        (self.last_error.is_none() || now < later(self.fresh_until, opts.stale_if_error))
            .then(|| keys.clone())
    }

    pub(crate) fn unavailable(&self, now: Instant) -> Unavailable {
        Unavailable {
            error: self.last_error.clone(),
            retry_after: self.retry_at.saturating_duration_since(now),
        }
    }
}
