//! RFC 7662 token introspection for the tokens that are not JWTs (settings:
//! [`Introspection`](crate::Introspection)).
//!
//! For one opaque token:
//! 1. its cached answer, when fresh, is used (cached under an HMAC of the token with a key of
//!    this process: the cache never holds a token);
//! 2. else one call is made, shared by every request with the same token; it runs in a task
//!    of its own, so a client giving up neither cancels it nor causes another one;
//! 3. the answer is checked like a JWT's claims (`claim_rules.rs`) against the entry, every
//!    time it is used (so `exp` is checked against the clock, not against the cache).
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the cache, the calls in flight, the checks of an answer |
//! | `call.rs` | one call: endpoint (configured or discovered), POST, answer |

mod call;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use jsonwebtoken::EncodingKey;
use serde::Deserialize;
use tokio::time::Instant;

use self::call::{Answer, CallError, Caller, Endpoint, FAILURE_COOLDOWN};
use crate::claim_rules::{EntryRules, ProofBinding, check_claim_values};
use crate::claims::{Claim, Claims};
use crate::client_auth::ClientAuth;
use crate::config::{AuthorizationServerEntry, Introspection, IntrospectionAuth, JwksOptions};
use crate::error::{ConfigError, ConfigErrorKind, ValidationError, ValidationErrorKind as K};
use crate::keys::fetch::HttpFetcher;
use crate::owner::ResourceOwner;
use crate::required_claims;
use crate::scope::ScopeContext;

/// The most bytes of answers cached (answers are at most 64 KiB each).
const MAX_CACHED_BYTES: u64 = 64 * 1024 * 1024;

/// A cached answer and until when it may be used.
struct Cached {
    answer: Answer,
    until: Instant,
}

/// The outcome of a call, shared by every request waiting for it.
type Outcome = Result<Arc<Cached>, Duration>;

/// Introspects the opaque tokens of one entry.
pub(crate) struct Introspector {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: Arc<str>,
    rules: EntryRules,
    caller: Caller,
    cache_ttl: Duration,
    max_concurrent: usize,
    /// The HMAC key naming tokens in the cache and the calls in flight.
    mac_key: EncodingKey,
    answers: moka::sync::Cache<String, Arc<Cached>>,
    in_flight: Mutex<HashMap<String, Shared<BoxFuture<'static, Outcome>>>>,
    /// No new call before this, after a failed one (cached answers are still used).
    failing_until: Mutex<Option<Instant>>,
    scopes: Arc<ScopeContext>,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// The introspector of the one entry that introspects opaque tokens, if any (two are a
    /// configuration error).
    pub(crate) fn for_entries(
        entries: &[AuthorizationServerEntry],
        canonical: &str,
        roots: &[reqwest::Certificate],
        jwks: &JwksOptions,
        scopes: Arc<ScopeContext>,
    ) -> Result<Option<Self>, ConfigError> {
        let mut introspecting = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.introspection.is_some());
        let Some((i, entry)) = introspecting.next() else {
            return Ok(None);
        };
        if let Some((j, _)) = introspecting.next() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "introspection",
                "only one entry may introspect: an opaque token names no issuer, and must not be sent to a server that did not issue it",
            )
            .within(&format!("authorization_servers[{j}]")));
        }
        let fetcher = HttpFetcher::new(
            jwks.connect_timeout,
            jwks.fetch_timeout,
            jwks.max_response_bytes,
            roots,
        )?;
        Self::new(
            entry,
            EntryRules::of(entry, canonical),
            fetcher,
            roots,
            // Tokens and credentials go there: never over http to another host.
            false,
            scopes,
        )
        .map_err(|e| e.within(&format!("authorization_servers[{i}]")))
    }

    /// The introspector of `entry` (which has introspection settings), or `None`.
    pub(crate) fn new(
        entry: &AuthorizationServerEntry,
        rules: EntryRules,
        fetcher: HttpFetcher,
        roots: &[reqwest::Certificate],
        allow_insecure: bool,
        scopes: Arc<ScopeContext>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(settings) = &entry.introspection else {
            return Ok(None);
        };
        let Introspection {
            endpoint,
            client_id,
            auth,
            cache_ttl,
            timeout,
            max_concurrent,
        } = settings;
        let auth = match auth {
            IntrospectionAuth::Basic(secret) => ClientAuth::Basic {
                id: client_id.clone(),
                secret: secret.clone(),
            },
            IntrospectionAuth::Post(secret) => ClientAuth::Post {
                id: client_id.clone(),
                secret: secret.clone(),
            },
            IntrospectionAuth::PrivateKeyJwt { pem, alg, kid } => {
                ClientAuth::private_key_jwt(client_id.clone(), pem, *alg, kid.clone())
                    .map_err(|e| e.within("introspection"))?
            }
        };
        let client = reqwest::Client::builder()
            .tls_certs_merge(roots.iter().cloned())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(*timeout)
            .connect_timeout(*timeout)
            .user_agent(concat!("protected-resource/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConfigError::new(
                    ConfigErrorKind::HttpClient,
                    "introspection",
                    format!("HTTP client: {e}"),
                )
            })?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| {
            ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "introspection",
                "no randomness for the cache key",
            )
        })?;
        let endpoint = match endpoint {
            Some(url) => Endpoint::Fixed(Arc::from(url.as_str())),
            None => Endpoint::Discover {
                issuer: entry.issuer.clone(),
                found: tokio::sync::Mutex::default(),
            },
        };
        Ok(Some(Self {
            inner: Arc::new(Inner {
                issuer: Arc::from(entry.issuer.as_str()),
                rules,
                caller: Caller {
                    endpoint,
                    auth,
                    client,
                    fetcher,
                    allow_insecure,
                },
                cache_ttl: *cache_ttl,
                max_concurrent: *max_concurrent,
                mac_key: EncodingKey::from_secret(&key),
                answers: moka::sync::Cache::builder()
                    .weigher(|key: &String, cached: &Arc<Cached>| {
                        let answer = match &cached.answer {
                            Answer::Active(raw) => raw.len(),
                            Answer::Inactive => 0,
                        };
                        u32::try_from(key.len() + answer + 64).unwrap_or(u32::MAX)
                    })
                    .max_capacity(MAX_CACHED_BYTES)
                    .time_to_live((*cache_ttl).max(Duration::from_secs(1)))
                    .build(),
                in_flight: Mutex::new(HashMap::new()),
                failing_until: Mutex::new(None),
                scopes,
            }),
        }))
    }

    /// The decision for `token` from a fresh cached answer, without waiting; `None` when a
    /// call is needed.
    pub(crate) fn decide_now(
        &self,
        token: &str,
        proof: Option<ProofBinding<'_>>,
    ) -> Option<Result<ResourceOwner, ValidationError>> {
        let key = self.inner.key(token)?;
        let cached = self.inner.answers.get(&key)?;
        (Instant::now() < cached.until).then(|| self.inner.judge_cached(&cached.answer, proof))
    }

    /// The decision for `token`: from the cache, or after a call.
    pub(crate) async fn decide(
        &self,
        token: &str,
        proof: Option<ProofBinding<'_>>,
    ) -> Result<ResourceOwner, ValidationError> {
        let inner = &self.inner;
        let Some(key) = inner.key(token) else {
            return Err(ValidationError::introspection_unavailable(FAILURE_COOLDOWN));
        };
        if let Some(cached) = inner.answers.get(&key)
            && Instant::now() < cached.until
        {
            return inner.judge_cached(&cached.answer, proof);
        }
        let call = self.join_or_start(key, token)?;
        match call.await {
            Ok(cached) => inner.judge(&cached.answer, proof),
            Err(wait) => Err(ValidationError::introspection_unavailable(wait)),
        }
    }

    /// The call in flight for `key`, or a new one (refused while calls are failing, or when
    /// `max_concurrent` run already).
    fn join_or_start(
        &self,
        key: String,
        token: &str,
    ) -> Result<Shared<BoxFuture<'static, Outcome>>, ValidationError> {
        let inner = &self.inner;
        let mut in_flight = inner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(call) = in_flight.get(&key) {
            return Ok(call.clone());
        }
        let now = Instant::now();
        if let Some(until) = *inner
            .failing_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            && now < until
        {
            return Err(ValidationError::introspection_unavailable(until - now));
        }
        if in_flight.len() >= inner.max_concurrent {
            tracing::warn!(
                issuer = %inner.issuer,
                max_concurrent = inner.max_concurrent,
                "too many introspection calls at once; refusing with 503"
            );
            return Err(ValidationError::introspection_unavailable(FAILURE_COOLDOWN));
        }
        let task = tokio::spawn({
            let inner = inner.clone();
            let token = token.to_owned();
            let key = key.clone();
            async move {
                // Leaves the calls in flight however the task ends (a panic included).
                let _leave = Leave {
                    inner: inner.clone(),
                    key: key.clone(),
                };
                let outcome = inner.call(&token).await;
                if let Ok(cached) = &outcome
                    && !inner.cache_ttl.is_zero()
                {
                    inner.answers.insert(key.clone(), cached.clone());
                }
                outcome
            }
        });
        let call = async move { task.await.unwrap_or(Err(FAILURE_COOLDOWN)) }
            .boxed()
            .shared();
        in_flight.insert(key, call.clone());
        Ok(call)
    }
}

/// Removes a call from the calls in flight when dropped.
struct Leave {
    inner: Arc<Inner>,
    key: String,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// The members of an active answer read besides the claims.
#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(default, borrow)]
    token_type: Option<std::borrow::Cow<'a, str>>,
    /// Ory Hydra's kind of token (`access_token` or `refresh_token`).
    #[serde(default, borrow)]
    token_use: Option<std::borrow::Cow<'a, str>>,
}

impl Inner {
    /// The cache key of `token`: its HMAC-SHA-256 under this process's key.
    fn key(&self, token: &str) -> Option<String> {
        jsonwebtoken::crypto::sign(
            token.as_bytes(),
            &self.mac_key,
            jsonwebtoken::Algorithm::HS256,
        )
        .ok()
    }

    /// [`judge`](Self::judge) for an answer from the cache (counted).
    fn judge_cached(
        &self,
        answer: &Answer,
        proof: Option<ProofBinding<'_>>,
    ) -> Result<ResourceOwner, ValidationError> {
        #[cfg(feature = "metrics")]
        ::metrics::counter!(
            crate::metric_names::INTROSPECTION_CACHE_HITS,
            "issuer" => ::metrics::SharedString::from(Arc::clone(&self.issuer))
        )
        .increment(1);
        self.judge(answer, proof)
    }

    /// One call, its answer cached for the cache lifetime, never past the token's `exp`.
    async fn call(&self, token: &str) -> Outcome {
        let outcome = self.caller.introspect(token).await;
        #[cfg(feature = "metrics")]
        if let Some(result) = match &outcome {
            Ok(Answer::Active(_)) => Some("active"),
            Ok(Answer::Inactive) => Some("inactive"),
            Err(Ok(_)) => Some("failed"),
            // Not called: a discovery failed moments ago.
            Err(Err(_)) => None,
        } {
            ::metrics::counter!(
                crate::metric_names::INTROSPECTION_CALLS,
                "issuer" => ::metrics::SharedString::from(Arc::clone(&self.issuer)),
                "result" => result
            )
            .increment(1);
        }
        match outcome {
            Ok(answer) => {
                let mut ttl = self.cache_ttl;
                if let Answer::Active(raw) = &answer
                    && let Some(exp) = Claims::parse(raw).and_then(|c| match c.exp {
                        Claim::Number(e) => Some(e),
                        _ => None,
                    })
                {
                    let left = exp - now_secs();
                    ttl = ttl.min(Duration::from_secs_f64(left.clamp(0.0, 1e9)));
                }
                Ok(Arc::new(Cached {
                    answer,
                    until: Instant::now() + ttl,
                }))
            }
            Err(Err(wait)) => Err(wait),
            Err(Ok(CallError { why, server_down })) => {
                tracing::warn!(issuer = %self.issuer, error = %why, server_down, "token introspection failed");
                if server_down {
                    *self
                        .failing_until
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) =
                        Some(Instant::now() + FAILURE_COOLDOWN);
                }
                Err(FAILURE_COOLDOWN)
            }
        }
    }

    /// An answer against the entry, as a JWT's claims are checked (its `cnf` against the
    /// request's DPoP `proof`).
    fn judge(
        &self,
        answer: &Answer,
        proof: Option<ProofBinding<'_>>,
    ) -> Result<ResourceOwner, ValidationError> {
        let Answer::Active(raw) = answer else {
            return Err(ValidationError::new(K::Inactive, "active: false"));
        };
        let claims = Claims::parse(raw).ok_or(ValidationError::new(
            K::Inactive,
            "the introspection answer is not a claims object",
        ))?;
        let kind: Kind<'_> = serde_json::from_str(raw).map_err(|_| {
            ValidationError::new(
                K::Inactive,
                "token_type or token_use in the introspection answer is not a string",
            )
        })?;
        // A refresh token is active too (servers may ignore the hint, RFC 7662 §2.1).
        if kind
            .token_use
            .as_deref()
            .is_some_and(|u| u != "access_token")
        {
            return Err(ValidationError::new(
                K::Inactive,
                "token_use is not access_token",
            ));
        }
        if let Some(t) = &kind.token_type {
            // A DPoP token only with its proof (the `cnf` check below then binds the two).
            if t.eq_ignore_ascii_case("dpop") && proof.is_none() {
                return Err(ValidationError::new(
                    K::SenderConstrained,
                    "token_type DPoP",
                ));
            }
            if !t.eq_ignore_ascii_case("bearer") && !t.eq_ignore_ascii_case("dpop") {
                return Err(ValidationError::new(
                    K::Inactive,
                    "token_type is not Bearer",
                ));
            }
        }
        if !matches!(&claims.iss, Claim::Absent) && claims.iss.as_str() != Some(&*self.issuer) {
            return Err(ValidationError::new(
                K::UnknownIssuer,
                "introspection answer names another issuer",
            ));
        }
        check_claim_values(&self.rules, &claims, proof, now_secs(), false)?;
        required_claims::check(&self.rules.options.required_claims, raw)?;
        let owner = ResourceOwner::new(
            self.issuer.clone(),
            &claims,
            self.rules.scope_prefix.as_deref(),
            self.scopes.clone(),
        )?;
        drop(claims);
        Ok(owner.with_raw_claims(raw.clone()))
    }
}

fn now_secs() -> f64 {
    crate::clock::unix_secs_f64()
}
