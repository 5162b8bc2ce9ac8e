//! JWK sets (RFC 7517/7518): parsing a fetched set, judging each key on its own, and finding
//! a token's key. Fetching and caching are in `store.rs`.

use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::jwk::{Jwk, KeyOperations, PublicKeyUse};
use serde::Deserialize;

use crate::algorithm::Algorithm;
use crate::keys::fetch::FetchError;
use crate::keys::verify::PublicKey;

/// Numbers every parsed key set, so that "the same set" is a cheap comparison.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

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
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Key>,
    /// Unique per parsed set (a 304 keeps the version).
    pub(crate) version: u64,
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

impl<'a> KeySet {
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

    /// Looks a token's key up over all the key sets of one issuer (regional entries may
    /// publish different sets): with a `kid`, the first set holding a fitting key with it;
    /// without one, the single fitting key over all the sets (two or more: ambiguous).
    pub(crate) fn find_in(sets: &[&'a Self], kid: Option<&str>, alg: Algorithm) -> Lookup<'a> {
        let mut found = None;
        let mut wrong = false;
        let mut ambiguous = false;
        for set in sets {
            match set.find(kid, alg) {
                Lookup::Found(key) if kid.is_some() => return Lookup::Found(key),
                Lookup::Found(key) => {
                    ambiguous |= found.is_some();
                    found = Some(key);
                }
                Lookup::Ambiguous => ambiguous = true,
                Lookup::WrongAlgorithm => wrong = true,
                Lookup::NotFound => {}
            }
        }
        match (ambiguous, found, wrong) {
            (true, _, _) => Lookup::Ambiguous,
            (false, Some(key), _) => Lookup::Found(key),
            (false, None, true) => Lookup::WrongAlgorithm,
            (false, None, false) => Lookup::NotFound,
        }
    }

    /// Parses a JWK set document. Each key is judged alone: a key that can not be used is
    /// skipped (with a debug log) and never spoils the others.
    pub(crate) fn parse(body: &[u8], uri: &str) -> Result<Self, FetchError> {
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
        Ok(Self {
            keys,
            version: NEXT_VERSION.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Parses a key set given in the configuration ([`initial_jwks`]): stricter than
    /// [`parse`](Self::parse), as the operator can fix it, so every key must be usable and
    /// there must be one at least. The error never shows key material.
    ///
    /// [`initial_jwks`]: crate::AuthorizationServerEntry::initial_jwks
    pub(crate) fn parse_configured(json: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_str(json).map_err(|e| {
            format!(
                "not a JWK set (a JSON object with a `keys` array): line {}, column {}",
                e.line(),
                e.column()
            )
        })?;
        if raw.keys.is_empty() {
            return Err("the key set holds no key".to_owned());
        }
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (index, value) in raw.keys.into_iter().enumerate() {
            keys.push(judge(value).map_err(|reason| format!("key {index}: {reason}"))?);
        }
        Ok(Self {
            keys,
            version: NEXT_VERSION.fetch_add(1, Ordering::Relaxed),
        })
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
