//! Key sets: fetching a JWKS over HTTP, judging each key on its own, and caching the result.
//!
//! One key set is kept per `jwks_uri` and shared by every entry that names it. Concurrent misses
//! coalesce into one fetch (moka's `try_get_with`), and cache hits never wait on a fetch. A
//! token whose `kid` is unknown causes at most one refetch per key set per cooldown: the outcome
//! of the latest fetch (keys or error) is remembered for the cooldown, and every request in that
//! window gets that outcome without network.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, KeyOperations, PublicKeyUse};
use moka::future::Cache;
use serde::Deserialize;

use crate::algorithm::Algorithm;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::verify::PublicKey;

/// Key-set fetching and caching settings (see the builder methods `jwks_*`).
#[derive(Debug, Clone)]
pub(crate) struct JwksOptions {
    pub(crate) ttl: Duration,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) allow_insecure_http: bool,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            refetch_cooldown: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            max_response_bytes: 1024 * 1024,
            allow_insecure_http: false,
        }
    }
}

/// Why a key set could not be obtained. Reported to clients as 503, never as 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    Transport(String),
    Status(u16),
    TooLarge,
    NotAKeySet(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Transport(e) => write!(f, "request failed: {e}"),
            FetchError::Status(s) => write!(f, "answered HTTP {s}"),
            FetchError::TooLarge => f.write_str("response exceeds the size cap"),
            FetchError::NotAKeySet(e) => write!(f, "response is not a JWK set: {e}"),
        }
    }
}

/// One usable verification key.
#[derive(Debug)]
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    /// The JWK's own `alg`, when it has one: the token's `alg` must then equal it.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) key: PublicKey,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family() && self.alg.is_none_or(|a| a == alg)
    }
}

/// The usable keys of one fetch.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Key>,
}

/// The result of looking a token's key up in a key set.
pub(crate) enum Lookup<'a> {
    Found(&'a Key),
    /// No key with this `kid` (or, without `kid`, no key fits the algorithm).
    NotFound,
    /// Keys with this `kid` exist, but none fits the token's algorithm.
    WrongAlgorithm,
    /// No `kid`, and more than one key fits the algorithm.
    Ambiguous,
}

impl KeySet {
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        match kid {
            Some(kid) => {
                let mut named = false;
                for k in self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)) {
                    named = true;
                    if k.fits(alg) {
                        return Lookup::Found(k);
                    }
                }
                if named {
                    Lookup::WrongAlgorithm
                } else {
                    Lookup::NotFound
                }
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Lookup::Found(k),
                    (None, _) => Lookup::NotFound,
                    (Some(_), Some(_)) => Lookup::Ambiguous,
                }
            }
        }
    }

    /// Parses a JWK set document. Each key is judged alone: a key that can not be used is
    /// skipped (with a debug log) and never spoils the others.
    pub(crate) fn parse(body: &[u8], uri: &str) -> Result<KeySet, FetchError> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw =
            serde_json::from_slice(body).map_err(|e| FetchError::NotAKeySet(e.to_string()))?;
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (index, value) in raw.keys.into_iter().enumerate() {
            match judge(value) {
                Ok(key) => keys.push(key),
                Err(reason) => {
                    tracing::debug!(jwks_uri = uri, index, reason, "skipping unusable JWK");
                }
            }
        }
        Ok(KeySet { keys })
    }
}

/// Members that only private (or symmetric) keys have.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

fn judge(value: serde_json::Value) -> Result<Key, &'static str> {
    let obj = value.as_object().ok_or("not a JSON object")?;
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err("contains private key material");
    }
    let alg = match obj.get("alg") {
        None => None,
        Some(serde_json::Value::String(s)) => {
            Some(Algorithm::from_header(s).ok_or("`alg` is not a supported signature algorithm")?)
        }
        Some(_) => return Err("`alg` is not a string"),
    };
    let kid = match obj.get("kid") {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`kid` is not a string"),
    };
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| "not a valid JWK")?;
    if let Some(u) = &jwk.common.public_key_use
        && *u != PublicKeyUse::Signature
    {
        return Err("`use` is not `sig`");
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("`key_ops` lacks `verify`");
    }
    let key = PublicKey::from_jwk(&jwk)?;
    if let Some(a) = alg
        && a.family() != key.family()
    {
        return Err("`alg` does not fit the key type");
    }
    Ok(Key { kid, alg, key })
}

/// Fetches and caches key sets, one per `jwks_uri`.
pub(crate) struct KeyStore {
    client: reqwest::Client,
    sets: Cache<Arc<str>, Arc<KeySet>>,
    /// The outcome of the latest fetch per URI, kept for the refetch cooldown.
    recent: Cache<Arc<str>, Result<Arc<KeySet>, FetchError>>,
    max_response_bytes: usize,
}

impl KeyStore {
    pub(crate) fn new(opts: JwksOptions) -> Result<Self, ConfigError> {
        let invalid = |field: &str, msg: &str| {
            Err(ConfigError::new(ConfigErrorKind::InvalidValue, field, msg))
        };
        if opts.ttl.is_zero() {
            return invalid("jwks_cache_ttl", "must be greater than zero");
        }
        if opts.fetch_timeout.is_zero() || opts.connect_timeout.is_zero() {
            return invalid("jwks_fetch_timeout", "timeouts must be greater than zero");
        }
        if opts.max_response_bytes == 0 {
            return invalid("jwks_max_response_bytes", "must be greater than zero");
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.fetch_timeout)
            .user_agent(concat!("protected-resource/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConfigError::new(
                    ConfigErrorKind::HttpClient,
                    "jwks",
                    format!("HTTP client: {e}"),
                )
            })?;
        // moka refuses a zero TTL; a zero cooldown means "refetch at most once at a time".
        let cooldown = opts.refetch_cooldown.max(Duration::from_millis(1));
        Ok(Self {
            client,
            sets: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(opts.ttl)
                .build(),
            recent: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(cooldown)
                .build(),
            max_response_bytes: opts.max_response_bytes,
        })
    }

    /// The cached key set, fetching it (once, however many callers wait) on a miss.
    pub(crate) async fn current(&self, uri: &Arc<str>) -> Result<Arc<KeySet>, FetchError> {
        if let Some(set) = self.sets.get(uri).await {
            return Ok(set);
        }
        // A fetch that failed within the cooldown is not repeated.
        if let Some(Err(e)) = self.recent.get(uri).await {
            return Err(e);
        }
        self.sets
            .try_get_with(uri.clone(), async {
                let outcome = self.fetch(uri).await;
                self.recent.insert(uri.clone(), outcome.clone()).await;
                outcome
            })
            .await
            .map_err(|e| (*e).clone())
    }

    /// A fresh key set for an unknown `kid`: at most one fetch per URI per cooldown; within the
    /// cooldown, the latest outcome is returned without network.
    pub(crate) async fn refetch(&self, uri: &Arc<str>) -> Result<Arc<KeySet>, FetchError> {
        self.recent
            .get_with(uri.clone(), async {
                let outcome = self.fetch(uri).await;
                if let Ok(set) = &outcome {
                    self.sets.insert(uri.clone(), set.clone()).await;
                }
                outcome
            })
            .await
    }

    async fn fetch(&self, uri: &str) -> Result<Arc<KeySet>, FetchError> {
        let started = std::time::Instant::now();
        let result = self.fetch_inner(uri).await;
        match &result {
            Ok(set) => tracing::debug!(
                jwks_uri = uri,
                keys = set.keys.len(),
                duration_ms = started.elapsed().as_millis() as u64,
                "fetched key set"
            ),
            Err(e) => tracing::warn!(
                jwks_uri = uri,
                error = %e,
                duration_ms = started.elapsed().as_millis() as u64,
                "key set fetch failed"
            ),
        }
        result
    }

    async fn fetch_inner(&self, uri: &str) -> Result<Arc<KeySet>, FetchError> {
        let mut response = self
            .client
            .get(uri)
            .header(
                http::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| FetchError::Transport(transport_reason(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Transport(transport_reason(&e)))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::parse(&body, uri).map(Arc::new)
    }
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_key_never_spoils_the_set() {
        let body = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
            {"kty":"RSA","n":"AQAB","e":"AQAB","kid":"short"},
            {"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"badpoint"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed","use":"sig"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"enc","use":"enc"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ops","key_ops":["sign"]},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"wrongalg","alg":"RS256"},
            {"kty":"XYZ","kid":"unknown"},
            "not even an object"
        ]}"#;
        let set = KeySet::parse(body, "test").unwrap();
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, vec![Some("ed")]);
        assert!(matches!(
            set.find(Some("ed"), Algorithm::EdDSA),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.find(Some("ed"), Algorithm::RS256),
            Lookup::WrongAlgorithm
        ));
        assert!(matches!(
            set.find(Some("nope"), Algorithm::EdDSA),
            Lookup::NotFound
        ));
        assert!(matches!(set.find(None, Algorithm::EdDSA), Lookup::Found(_)));
    }

    #[test]
    fn garbage_is_not_a_key_set() {
        assert!(matches!(
            KeySet::parse(b"<html>", "t"),
            Err(FetchError::NotAKeySet(_))
        ));
        assert!(matches!(
            KeySet::parse(b"{\"k\":[]}", "t"),
            Err(FetchError::NotAKeySet(_))
        ));
    }
}
