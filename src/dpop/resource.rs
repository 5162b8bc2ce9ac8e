//! The front door's DPoP proof check ([`DpopGuard`]): exactly one `DPoP` header, the proof
//! verified against the request (method, `htu` built from the canonical URL's scheme and
//! authority and the request's own path, `ath` of the token), and the server nonce when
//! nonces are on. The replay check runs after the token is accepted
//! ([`first_use`](DpopGuard::first_use)), so that only holders of a valid token fill the
//! replay cache.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::dpop::nonce::{NonceCheck, Nonces};
use crate::dpop::replay::{FirstUse, ReplayCache, replay_key};
use crate::dpop::{DpopErrorKind, DpopVerifier, VerifiedDpopProof};

/// The `DPoP` request header (RFC 9449 §4.1).
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The `DPoP-Nonce` response header (RFC 9449 §8.1, §9).
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// What the front door needs to check proofs, built once.
#[derive(Debug)]
pub(crate) struct DpopGuard {
    /// The union of the entries' proof algorithms (each entry checks its own afterwards).
    pub(crate) verifier: DpopVerifier,
    /// The canonical URL's scheme and authority.
    pub(crate) origin: String,
    pub(crate) replay: Replay,
    pub(crate) nonces: Option<Nonces>,
}

/// Where the proofs seen are remembered.
#[derive(Debug)]
pub(crate) enum Replay {
    /// In this process (the default).
    Local(ReplayCache),
    /// In Redis, shared by every replica.
    #[cfg(feature = "redis")]
    Shared(Box<crate::dpop::shared_replay::RedisReplay>),
}

/// A proof that passed every check but the replay check.
#[derive(Debug)]
pub(crate) struct CheckedProof {
    pub(crate) proof: VerifiedDpopProof,
    /// Its nonce is past half its life: the answer carries a fresh one.
    pub(crate) renew_nonce: bool,
}

impl DpopGuard {
    pub(crate) fn new(
        verifier: DpopVerifier,
        origin: String,
        replay: Replay,
        nonces: Option<Nonces>,
    ) -> Self {
        Self {
            verifier,
            origin,
            replay,
            nonces,
        }
    }

    /// Checks the proof of a request to `path` (as the client sent it) carrying `token`.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
        token: &str,
    ) -> Result<CheckedProof, DpopErrorKind> {
        let mut values = headers.get_all(DPOP).iter();
        let proof = match (values.next(), values.next()) {
            (Some(proof), None) => proof,
            (None, _) => return Err(DpopErrorKind::Missing),
            (Some(_), Some(_)) => return Err(DpopErrorKind::Multiple),
        };
        let proof = proof.to_str().map_err(|_| DpopErrorKind::Malformed)?;
        // The comparison removes dot segments and decodes unreserved characters, which the
        // router does not: a proof for `/mcp` must not serve a request routed to
        // `/x/%2e%2e/mcp` or `/%6Dcp`.
        if normalises_away(path) {
            return Err(DpopErrorKind::UrlMismatch);
        }
        let mut url = String::with_capacity(self.origin.len() + path.len());
        url.push_str(&self.origin);
        url.push_str(path);
        let proof = self
            .verifier
            .verify(proof, method.as_str(), &url, token)
            .map_err(|e| e.kind())?;
        let renew_nonce = match &self.nonces {
            None => false,
            Some(nonces) => match nonces.check(proof.nonce.as_deref()) {
                NonceCheck::Valid { renew } => renew,
                NonceCheck::Invalid => return Err(DpopErrorKind::NonceRequired),
            },
        };
        Ok(CheckedProof { proof, renew_nonce })
    }

    /// Whether the replay check must be awaited (a shared store).
    pub(crate) fn replay_is_shared(&self) -> bool {
        !matches!(self.replay, Replay::Local(_))
    }

    /// Whether the proof is presented for the first time (remembered from now on), when
    /// that can be told without waiting (`None`: a shared store, use
    /// [`first_use`](Self::first_use)).
    pub(crate) fn first_use_now(&self, proof: &VerifiedDpopProof) -> Option<FirstUse> {
        let Some(key) = replay_key(&proof.jkt, &proof.jti) else {
            return Some(FirstUse::Unavailable);
        };
        match &self.replay {
            Replay::Local(cache) => Some(cache.first_use(key)),
            #[cfg(feature = "redis")]
            Replay::Shared(_) => None,
        }
    }

    /// [`first_use_now`](Self::first_use_now), waiting for a shared store.
    pub(crate) async fn first_use(&self, proof: &VerifiedDpopProof) -> FirstUse {
        let Some(key) = replay_key(&proof.jkt, &proof.jti) else {
            return FirstUse::Unavailable;
        };
        match &self.replay {
            #[cfg(feature = "redis")]
            Replay::Shared(store) => store.first_use(key).await,
            Replay::Local(cache) => cache.first_use(key),
        }
    }

    /// A fresh nonce, when nonces are on.
    pub(crate) fn fresh_nonce(&self) -> Option<HeaderValue> {
        self.nonces.as_ref().map(Nonces::issue)
    }
}

/// Whether `path` holds something URL normalisation changes and a router may not: a `.` or
/// `..` segment (also percent-encoded), a backslash, or a percent-encoded unreserved
/// character (RFC 3986 §2.3).
fn normalises_away(path: &str) -> bool {
    let encoded_unreserved = path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
                })
    });
    encoded_unreserved
        || path.contains('\\')
        || path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

#[cfg(test)]
mod tests {
    use super::normalises_away;

    #[test]
    fn paths_normalisation_would_change_are_found() {
        for bad in [
            "/x/../mcp",
            "/./mcp",
            "/x/%2e%2E/mcp",
            "/x/.%2e/mcp",
            "/a\\b",
            "/mcp/.",
            "/%6Dcp",
            "/m%7Ecp",
            "/%41",
        ] {
            assert!(normalises_away(bad), "{bad}");
        }
        for good in [
            "/mcp",
            "/",
            "/a.b/c..d",
            "/.well-known/x",
            "/...",
            "/a%20b",
            "/a%2Fb",
            "/%e9",
            "/%",
            "/%4",
            "/%zz",
        ] {
            assert!(!normalises_away(good), "{good}");
        }
    }
}
