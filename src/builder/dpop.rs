//! The DPoP settings of [`ResourceServerAuthBuilder`] (RFC 9449): the proof `iat` window, the
//! replay cache and server nonces, and their assembly into the front door's [`DpopGuard`],
//! the `DPoP` challenge and the metadata fields.

use std::time::Duration;

use crate::algorithm::Algorithm;
use crate::builder::ResourceServerAuthBuilder;
use crate::challenge::DpopChallenge;
use crate::config::{AuthorizationServerEntry, DpopPolicy};
use crate::dpop::{DpopGuard, DpopVerifier, Nonces, Replay, ReplayCache};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::sealing_key::SealingKey;

/// The DPoP settings set in code (or, for the nonce key, from the environment).
#[derive(Clone)]
pub(crate) struct DpopSettings {
    pub(crate) nonce_key: Option<SealingKey>,
    nonce_lifetime: Duration,
    iat_window: Duration,
    replay_capacity: u64,
    /// A Redis URL: the replay check is shared there (never printed: it may hold a password).
    pub(crate) replay_redis: Option<String>,
}

impl std::fmt::Debug for DpopSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopSettings")
            .field("iat_window", &self.iat_window)
            .field("replay_capacity", &self.replay_capacity)
            .field(
                "replay_redis",
                &self.replay_redis.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl Default for DpopSettings {
    fn default() -> Self {
        Self {
            nonce_key: None,
            nonce_lifetime: ResourceServerAuthBuilder::DEFAULT_DPOP_NONCE_LIFETIME,
            iat_window: ResourceServerAuthBuilder::DEFAULT_DPOP_IAT_WINDOW,
            replay_capacity: ResourceServerAuthBuilder::DEFAULT_DPOP_REPLAY_CACHE_CAPACITY,
            replay_redis: None,
        }
    }
}

impl ResourceServerAuthBuilder {
    /// Default window around now for a DPoP proof's `iat`, either way: 5 minutes (the MCP
    /// DPoP profile).
    pub const DEFAULT_DPOP_IAT_WINDOW: Duration = Duration::from_secs(300);
    /// Default lifetime of a server nonce: 5 minutes.
    pub const DEFAULT_DPOP_NONCE_LIFETIME: Duration = Duration::from_secs(300);
    /// Default number of DPoP proofs remembered for the replay check: 1,000,000.
    pub const DEFAULT_DPOP_REPLAY_CACHE_CAPACITY: u64 = 1_000_000;

    /// How far a DPoP proof's `iat` may be from now, either way (default 5 minutes; between
    /// 1 second and 1 hour). Proofs are remembered for twice this long for the replay check.
    pub fn dpop_iat_window(mut self, window: Duration) -> Self {
        self.dpop.iat_window = window;
        self
    }

    /// Switches server nonces on (RFC 9449 §9): every DPoP proof must carry a nonce this
    /// resource made with `key`, no older than the [lifetime](Self::dpop_nonce_lifetime).
    /// A proof without one is answered 401 `error="use_dpop_nonce"` with a fresh nonce in
    /// `DPoP-Nonce`; an accepted request whose nonce is past half its life gets a fresh one
    /// too. Nonces hold no server state: every replica given the same key accepts them (use
    /// [`SealingKey::with_previous`] to rotate). From the environment:
    /// `MCP_SERVER_AUTH_DPOP_NONCE_KEY` (base64url, at least 32 bytes decoded; or `_FILE`).
    ///
    /// ```
    /// use protected_resource::{ResourceServerAuth, SealingKey};
    ///
    /// let builder = ResourceServerAuth::builder().dpop_nonce_key(SealingKey::random()?);
    /// # drop(builder);
    /// # Ok::<(), protected_resource::ConfigError>(())
    /// ```
    pub fn dpop_nonce_key(mut self, key: SealingKey) -> Self {
        self.dpop.nonce_key = Some(key);
        self
    }

    /// How long a server nonce is accepted (default 5 minutes; between 10 seconds and 1 day).
    pub fn dpop_nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.dpop.nonce_lifetime = lifetime;
        self
    }

    /// How many DPoP proofs the replay check remembers (default 1,000,000, about 80 MB when
    /// full; at least 1,000). A proof is remembered for at least twice the
    /// [`iat` window](Self::dpop_iat_window) and a minute, and at most twice that; nothing is forgotten
    /// early, so when the set is full new proofs are not accepted (503 with `Retry-After`,
    /// and a warning in the log) until old ones expire. Size it above the DPoP requests
    /// accepted in four windows (the default holds about 830 a second with the default
    /// window).
    pub fn dpop_replay_cache_capacity(mut self, capacity: u64) -> Self {
        self.dpop.replay_capacity = capacity;
        self
    }

    /// Keeps the DPoP replay check in Redis (`redis://host:port[/db]` or `unix:///path`; TLS
    /// is not built in), shared by every replica given the same URL: a proof one replica
    /// accepted is refused by all (one `SET … NX PX` per accepted proof, kept twice the `iat`
    /// window and a minute, keys named by a hash, never by a token or a user). Without it,
    /// each process remembers its own proofs, which the `iat` window and nonces make
    /// acceptable. When Redis does not answer within 2 s, DPoP requests are answered 503 with
    /// `Retry-After`: a proof that can not be checked is not accepted. The Redis server must
    /// keep keys until they expire: `maxmemory-policy noeviction`, persistence or a replica
    /// that is in sync (a key lost early is a proof that can be replayed). From the
    /// environment: `MCP_SERVER_AUTH_DPOP_REPLAY_STORE`. Feature `redis`.
    ///
    /// ```
    /// use protected_resource::ResourceServerAuth;
    ///
    /// let builder = ResourceServerAuth::builder().dpop_replay_redis("redis://127.0.0.1:6379/0");
    /// # drop(builder);
    /// ```
    #[cfg(feature = "redis")]
    pub fn dpop_replay_redis(mut self, url: impl Into<String>) -> Self {
        self.dpop.replay_redis = Some(url.into());
        self
    }
}

/// The replay store the settings ask for.
fn replay(settings: &DpopSettings, window: Duration) -> Result<Replay, ConfigError> {
    let Some(url) = &settings.replay_redis else {
        return Ok(Replay::Local(ReplayCache::new(
            window,
            settings.replay_capacity,
        )));
    };
    #[cfg(feature = "redis")]
    {
        crate::dpop::RedisReplay::new(url, crate::dpop::replay_lifetime(window))
            .map(|store| Replay::Shared(Box::new(store)))
            .ok_or_else(|| {
                ConfigError::new(
                    ConfigErrorKind::InvalidValue,
                    "dpop_replay_redis",
                    "not a Redis URL (redis:// or unix://)",
                )
            })
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = url;
        Err(ConfigError::new(
            ConfigErrorKind::InvalidEnvironment,
            crate::env::DPOP_REPLAY_STORE,
            "a shared DPoP replay store needs the `redis` feature of protected-resource",
        ))
    }
}

/// What DPoP adds to the running resource server.
pub(crate) struct DpopParts {
    pub(crate) guard: Option<DpopGuard>,
    pub(crate) challenge: Option<DpopChallenge>,
    /// `dpop_signing_alg_values_supported` (empty when DPoP is off everywhere).
    pub(crate) algs: Vec<&'static str>,
    /// `dpop_bound_access_tokens_required`, when DPoP is on somewhere.
    pub(crate) required: Option<bool>,
}

fn out_of_range(field: &str, message: &str) -> ConfigError {
    ConfigError::new(ConfigErrorKind::InvalidValue, field, message)
}

/// Checks the settings and builds the parts for `entries` and the canonical URL's `origin`.
pub(crate) fn assemble(
    settings: &DpopSettings,
    entries: &[AuthorizationServerEntry],
    origin: &str,
) -> Result<DpopParts, ConfigError> {
    let window = settings.iat_window;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&window) {
        return Err(out_of_range(
            "dpop_iat_window",
            "must be between 1 second and 1 hour",
        ));
    }
    let lifetime = settings.nonce_lifetime;
    if !(Duration::from_secs(10)..=Duration::from_secs(86_400)).contains(&lifetime) {
        return Err(out_of_range(
            "dpop_nonce_lifetime",
            "must be between 10 seconds and 1 day",
        ));
    }
    if settings.replay_capacity < 1000 {
        return Err(out_of_range(
            "dpop_replay_cache_capacity",
            "must be at least 1000",
        ));
    }
    // One issuer, one policy: else a token refused by a `required` entry would be accepted
    // by a sibling entry of the same issuer that allows bearer tokens.
    for (i, a) in entries.iter().enumerate() {
        if let Some(b) = entries[i + 1..]
            .iter()
            .find(|b| b.issuer == a.issuer && b.dpop != a.dpop)
        {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "dpop",
                format!(
                    "the entries of one issuer must have the same DPoP policy (`{}` and `{}`)",
                    a.dpop, b.dpop
                ),
            ));
        }
    }
    let on: Vec<&AuthorizationServerEntry> = entries
        .iter()
        .filter(|e| e.dpop != DpopPolicy::Off)
        .collect();
    if on.is_empty() {
        return Ok(DpopParts {
            guard: None,
            challenge: None,
            algs: Vec::new(),
            required: None,
        });
    }
    // Every algorithm some entry accepts for proofs, in the crate's order.
    let algorithms: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| on.iter().any(|e| e.dpop_algorithms.contains(a)))
        .collect();
    let algs: Vec<&'static str> = algorithms.iter().map(|a| a.as_str()).collect();
    let nonces = settings
        .nonce_key
        .clone()
        .map(|key| Nonces::new(key, lifetime));
    let verifier = DpopVerifier::new()
        .algorithms(algorithms)
        .iat_window(window);
    Ok(DpopParts {
        guard: Some(DpopGuard::new(
            verifier,
            origin.to_owned(),
            replay(settings, window)?,
            nonces.clone(),
        )),
        challenge: Some(DpopChallenge {
            algs: algs.join(" "),
            nonces,
        }),
        required: Some(entries.iter().all(|e| e.dpop == DpopPolicy::Required)),
        algs,
    })
}
