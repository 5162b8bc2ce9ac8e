//! DPoP proofs (RFC 9449): [`DpopVerifier`] checks one proof JWT against the request it came
//! with, as RFC 9449 §4.3 says, and tells the key it proves possession of.
//!
//! This is the proof check on its own, usable wherever a request and its `DPoP` header are at
//! hand (a WebSocket upgrade, a queue). What a resource server adds around it: exactly one
//! `DPoP` header, the `Authorization: DPoP` scheme, remembering each proof's `jti` for the
//! window (replay), and the token's `cnf.jkt` equal to the proof key's
//! [`thumbprint`](VerifiedDpopProof::jkt).
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the verifier, its checks, the verified proof and the errors |
//! | `htu.rs` | the request URI comparison (RFC 3986 normalisation) |
//! | `replay.rs` | the `jti` replay check of the front door, in this process |
//! | `shared_replay.rs` | the same in Redis, shared by replicas (feature `redis`) |
//! | `nonce.rs` | stateless server nonces (a MAC'd time) |
//! | `resource.rs` | the front door's proof check: one header, `htu` from the canonical URL, nonce |

mod htu;
mod nonce;
mod replay;
mod resource;
#[cfg(feature = "redis")]
mod shared_replay;

pub(crate) use self::nonce::Nonces;
#[cfg(feature = "redis")]
pub(crate) use self::replay::lifetime as replay_lifetime;
pub(crate) use self::replay::{FirstUse, ReplayCache};
pub(crate) use self::resource::{CheckedProof, DPOP, DPOP_NONCE, DpopGuard, Replay};
#[cfg(feature = "redis")]
pub(crate) use self::shared_replay::RedisReplay;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde::Deserialize;

use crate::algorithm::{Algorithm, install_crypto_provider};
use crate::keys::verify::PublicKey;

/// Members only private (or symmetric) keys have: a proof's `jwk` must have none (RFC 9449
/// §4.2: "MUST NOT contain a private key").
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// The longest proof accepted (a proof carries its public key: RSA 4096 fits easily).
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// The longest `jti` accepted (it is remembered for replay checks).
const MAX_JTI_BYTES: usize = 256;

/// Why a proof was refused. [`description`](Self::description) is the fixed text for
/// `error_description`, which never says more than the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopErrorKind {
    /// Not a compact JWS with JSON header and claims, a member repeated or of the wrong
    /// type, a required claim missing, or too long.
    Malformed,
    /// The header `typ` is not `dpop+jwt`.
    InvalidType,
    /// `alg` is `none`, symmetric, unknown or not allowed.
    AlgorithmNotAllowed,
    /// The `jwk` is missing, private, symmetric, unusable, or does not fit `alg`.
    InvalidKey,
    /// The signature does not verify with the `jwk`.
    InvalidSignature,
    /// `htm` is not the request's method.
    MethodMismatch,
    /// `htu` is not the request's URI.
    UrlMismatch,
    /// `iat` is outside the accepted window around now.
    Stale,
    /// `ath` is missing or is not the hash of the access token sent with it.
    TokenHashMismatch,
    /// The request has no `DPoP` header (a resource server's check).
    Missing,
    /// The request has more than one `DPoP` header (a resource server's check).
    Multiple,
    /// The proof was presented before (a resource server's replay check).
    Replayed,
    /// The proof carries no server nonce, or one that is not valid (any more): answered
    /// `error="use_dpop_nonce"` with a fresh `DPoP-Nonce` (RFC 9449 §9).
    NonceRequired,
}

impl DpopErrorKind {
    /// The fixed, token-free text for `error_description`.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "The DPoP proof is malformed",
            Self::InvalidType => "The DPoP proof type is not dpop+jwt",
            Self::AlgorithmNotAllowed => "The DPoP proof signing algorithm is not allowed",
            Self::InvalidKey => "The DPoP proof key is not a usable public key",
            Self::InvalidSignature => "The DPoP proof signature is invalid",
            Self::MethodMismatch => "The DPoP proof is for another HTTP method",
            Self::UrlMismatch => "The DPoP proof is for another URL",
            Self::Stale => "The DPoP proof is too old or from the future",
            Self::TokenHashMismatch => "The DPoP proof is for another access token",
            Self::Missing => "The request has no DPoP proof",
            Self::Multiple => "The request has more than one DPoP proof",
            Self::Replayed => "The DPoP proof was already used",
            Self::NonceRequired => "The DPoP proof must carry a fresh nonce from this resource",
        }
    }
}

/// A refused proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopError {
    kind: DpopErrorKind,
}

impl DpopError {
    const fn new(kind: DpopErrorKind) -> Self {
        Self { kind }
    }

    /// Why.
    #[must_use]
    pub fn kind(&self) -> DpopErrorKind {
        self.kind
    }
}

impl std::fmt::Display for DpopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind.description())
    }
}

impl std::error::Error for DpopError {}

/// A proof that passed every check of [`DpopVerifier::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedDpopProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof key (base64url): what a bound token's
    /// `cnf.jkt` must equal.
    pub jkt: String,
    /// The proof's unique id: remember it for the window, and refuse it when seen again.
    pub jti: String,
    /// When the proof was made (seconds since the epoch).
    pub iat: i64,
    /// The server nonce the proof carries, if any (checking it is the caller's).
    pub nonce: Option<String>,
    /// The algorithm the proof is signed with.
    pub alg: Algorithm,
}

/// Checks DPoP proofs (RFC 9449 §4.3).
///
/// ```
/// use std::time::Duration;
/// use protected_resource::dpop::{DpopErrorKind, DpopVerifier};
/// use protected_resource::Algorithm;
///
/// let verifier = DpopVerifier::new()
///     .algorithms([Algorithm::ES256, Algorithm::EdDSA])
///     .iat_window(Duration::from_secs(60));
/// let refused = verifier
///     .verify("not-a-proof", "POST", "https://mcp.example.com/mcp", "token")
///     .unwrap_err();
/// assert_eq!(refused.kind(), DpopErrorKind::Malformed);
/// ```
#[derive(Debug, Clone)]
pub struct DpopVerifier {
    algorithms: Vec<Algorithm>,
    window: Duration,
}

impl Default for DpopVerifier {
    fn default() -> Self {
        Self::new()
    }
}

/// The JOSE header members read.
#[derive(Deserialize)]
struct Header {
    typ: String,
    alg: String,
    jwk: serde_json::Map<String, serde_json::Value>,
    /// Whether `crit` is present: no extension is understood, so a proof naming one is
    /// refused (RFC 7515 §4.1.11).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` for a member that is present, whatever its value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The claims read (others are allowed and ignored).
#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: serde_json::Number,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, DpopError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DpopError::new(DpopErrorKind::Malformed))?;
    // A struct derive refuses a repeated member it reads. The `jwk` object is a map, which
    // keeps the last of repeated members: verification and thumbprint both use that one.
    serde_json::from_slice(&bytes).map_err(|_| DpopError::new(DpopErrorKind::Malformed))
}

/// The SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> Option<Vec<u8>> {
    #[cfg(feature = "aws_lc_rs")]
    let digest = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
        .key_utils
        .compute_digest;
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    let digest = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER
        .key_utils
        .compute_digest;
    digest(bytes, ThumbprintHash::SHA256).ok()
}

/// The base64url SHA-256 of `bytes` (an `ath`, or a thumbprint's hash).
pub(crate) fn sha256_b64(bytes: &[u8]) -> Option<String> {
    sha256(bytes).map(|d| URL_SAFE_NO_PAD.encode(d))
}

impl DpopVerifier {
    /// Every asymmetric algorithm the crate supports, and `iat` within 5 minutes of now (the
    /// MCP DPoP profile).
    #[must_use]
    pub fn new() -> Self {
        Self {
            algorithms: crate::config::default_dpop_algorithms(),
            window: Duration::from_secs(300),
        }
    }

    /// The proof algorithms accepted.
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How far `iat` may be from now, either way (default 5 minutes).
    #[must_use]
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The accepted algorithms, as advertised in `algs="…"` and
    /// `dpop_signing_alg_values_supported`.
    #[must_use]
    pub fn get_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Checks `proof` (the `DPoP` header's value) for a request with `method` to `url` (the
    /// URI as the client addressed it: behind a proxy, the public scheme and authority from
    /// the configuration, never from request headers) carrying `access_token`, which the
    /// proof must be bound to (`ath`).
    pub fn verify(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: &str,
    ) -> Result<VerifiedDpopProof, DpopError> {
        self.check(proof, method, url, Some(access_token))
    }

    /// [`verify`](Self::verify) for a request without an access token (a token endpoint,
    /// where the proof is not yet bound to a token): `ath` is not checked. A resource
    /// server uses [`verify`](Self::verify).
    pub fn verify_without_token(
        &self,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<VerifiedDpopProof, DpopError> {
        self.check(proof, method, url, None)
    }

    fn check(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<VerifiedDpopProof, DpopError> {
        let refuse = |kind| Err(DpopError::new(kind));
        if proof.len() > MAX_PROOF_BYTES {
            return refuse(DpopErrorKind::Malformed);
        }
        let mut parts = proof.split('.');
        let (Some(h64), Some(c64), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return refuse(DpopErrorKind::Malformed);
        };
        let header: Header = decode_json(h64)?;
        let claims: Claims = decode_json(c64)?;
        if header.crit {
            return refuse(DpopErrorKind::Malformed);
        }
        let typ = header.typ.to_ascii_lowercase();
        if typ != "dpop+jwt" && typ != "application/dpop+jwt" {
            return refuse(DpopErrorKind::InvalidType);
        }
        let Some(alg) = Algorithm::from_header(&header.alg)
            .filter(|a| a.is_supported() && self.algorithms.contains(a))
        else {
            return refuse(DpopErrorKind::AlgorithmNotAllowed);
        };
        // The cheap claim checks before any key work.
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_BYTES {
            return refuse(DpopErrorKind::Malformed);
        }
        if claims.htm != method {
            return refuse(DpopErrorKind::MethodMismatch);
        }
        match (htu::normalised(&claims.htu), htu::normalised(url)) {
            (Some(a), Some(b)) if a == b => {}
            _ => return refuse(DpopErrorKind::UrlMismatch),
        }
        let Some(iat) = claims.iat.as_f64().filter(|i| i.is_finite()) else {
            return refuse(DpopErrorKind::Malformed);
        };
        let now = crate::clock::unix_secs_f64();
        if (now - iat).abs() > self.window.as_secs_f64() {
            return refuse(DpopErrorKind::Stale);
        }
        if let Some(token) = access_token {
            let expected = sha256_b64(token.as_bytes());
            if claims.ath.is_none() || claims.ath != expected {
                return refuse(DpopErrorKind::TokenHashMismatch);
            }
        }
        // The key: public, canonical (one key, one thumbprint), fitting alg.
        if PRIVATE_MEMBERS.iter().any(|m| header.jwk.contains_key(*m))
            || !canonical_key_members(&header.jwk)
        {
            return refuse(DpopErrorKind::InvalidKey);
        }
        let jwk: Jwk = serde_json::from_value(serde_json::Value::Object(header.jwk))
            .map_err(|_| DpopError::new(DpopErrorKind::InvalidKey))?;
        let key =
            PublicKey::from_jwk(&jwk).map_err(|_| DpopError::new(DpopErrorKind::InvalidKey))?;
        if key.family() != alg.family() {
            return refuse(DpopErrorKind::InvalidKey);
        }
        let message = &proof.as_bytes()[..h64.len() + 1 + c64.len()];
        if !key.verify(alg, message, signature) {
            return refuse(DpopErrorKind::InvalidSignature);
        }
        install_crypto_provider();
        let jkt = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| DpopError::new(DpopErrorKind::InvalidKey))?;
        #[allow(clippy::cast_possible_truncation)] // within the window of now
        Ok(VerifiedDpopProof {
            jkt,
            jti: claims.jti,
            iat: iat as i64,
            nonce: claims.nonce,
            alg,
        })
    }
}

/// Whether the key members a thumbprint covers (`n`, `e`, `x`, `y`) are canonical base64url:
/// no padding, re-encoding gives the same text, and RSA integers have no leading zero. Else
/// one key would have several thumbprints.
fn canonical_key_members(jwk: &serde_json::Map<String, serde_json::Value>) -> bool {
    ["n", "e", "x", "y"].iter().all(|m| match jwk.get(*m) {
        None => true,
        Some(serde_json::Value::String(text)) => URL_SAFE_NO_PAD.decode(text).is_ok_and(|bytes| {
            URL_SAFE_NO_PAD.encode(&bytes) == *text
                && !(matches!(*m, "n" | "e") && bytes.first() == Some(&0))
        }),
        Some(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // RFC 9449 §7.1: the `ath` of its example access token.
        assert_eq!(
            sha256_b64(b"Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU").as_deref(),
            Some("fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo")
        );
        // RFC 8037 A.3: the thumbprint of its Ed25519 key.
        install_crypto_provider();
        let jwk: Jwk = serde_json::from_value(serde_json::json!({"crv": "Ed25519", "kty": "OKP",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn key_members_must_be_canonical() {
        let ok = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert!(canonical_key_members(ok.as_object().unwrap()));
        for bad in [
            serde_json::json!({"x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="}),
            serde_json::json!({"x": 7}),
            serde_json::json!({"n": "AAEC", "e": "AQAB"}),
        ] {
            assert!(!canonical_key_members(bad.as_object().unwrap()), "{bad}");
        }
    }
}
