//! The signature algorithms a token may be signed with.

use std::fmt;
use std::str::FromStr;

use crate::error::ConfigError;

/// A JWS signature algorithm accepted for access tokens (RFC 7518, RFC 8037).
///
/// Only asymmetric algorithms exist here: `none` and the HMAC family (`HS256`, …) can not be
/// expressed, so they can never be allowed by mistake. Parsing `"HS256"` or `"none"` with
/// [`str::parse`] fails with a [`ConfigError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the default).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512. Needs the `aws_lc_rs` backend (the default).
    ES512,
    /// EdDSA with Ed25519. Also matches the fully-specified name `Ed25519` (RFC 9864) in
    /// token headers, JWKs and configuration, which some servers (oidc-provider, for one)
    /// sign with.
    EdDSA,
}

impl Algorithm {
    /// The same algorithm in jsonwebtoken's terms (`None` for ES512, which it lacks).
    pub(crate) fn to_jsonwebtoken(self) -> Option<jsonwebtoken::Algorithm> {
        use jsonwebtoken::Algorithm as J;
        Some(match self {
            Self::RS256 => J::RS256,
            Self::RS384 => J::RS384,
            Self::RS512 => J::RS512,
            Self::PS256 => J::PS256,
            Self::PS384 => J::PS384,
            Self::PS512 => J::PS512,
            Self::ES256 => J::ES256,
            Self::ES384 => J::ES384,
            Self::EdDSA => J::EdDSA,
            Self::ES512 => return None,
        })
    }
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    P256,
    P384,
    P521,
    Ed25519,
}

impl Algorithm {
    /// Every algorithm this crate can verify, in a stable order.
    pub const ALL: [Self; 10] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::EdDSA,
    ];

    /// Every algorithm the compiled crypto backend can verify ([`ALL`](Self::ALL) less what
    /// [`is_supported`](Self::is_supported) refuses), in the same order.
    ///
    /// ```
    /// use protected_resource::Algorithm;
    ///
    /// assert!(Algorithm::supported().any(|a| a == Algorithm::ES256));
    /// assert!(Algorithm::supported().all(Algorithm::is_supported));
    /// ```
    pub fn supported() -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().filter(|a| a.is_supported())
    }

    /// The name used in JOSE headers and JWKs (`"RS256"`, `"EdDSA"`, …).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
        }
    }

    pub(crate) const fn family(self) -> KeyFamily {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyFamily::Rsa
            }
            Self::ES256 => KeyFamily::P256,
            Self::ES384 => KeyFamily::P384,
            Self::ES512 => KeyFamily::P521,
            Self::EdDSA => KeyFamily::Ed25519,
        }
    }

    /// Whether the compiled crypto backend can verify this algorithm.
    #[must_use]
    pub const fn is_supported(self) -> bool {
        !matches!(self, Self::ES512) || cfg!(feature = "aws_lc_rs")
    }

    /// Parses a header `alg` value. Unlike [`FromStr`], this never allocates an error.
    pub(crate) fn from_header(s: &str) -> Option<Self> {
        if s == "Ed25519" {
            // RFC 9864: EdDSA restricted to Ed25519, which is all this crate's EdDSA verifies.
            return Some(Self::EdDSA);
        }
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = ConfigError;

    /// Parses `"RS256"`, `"ES384"`, `"EdDSA"` (or `"Ed25519"`), …; `"none"` and `HS*` are refused with a message
    /// that says why.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(alg) = Self::from_header(s) {
            return Ok(alg);
        }
        let why = if s.eq_ignore_ascii_case("none") {
            "unsigned tokens (`none`) are never accepted"
        } else if s.to_ascii_uppercase().starts_with("HS") {
            "symmetric HMAC algorithms are refused: a resource server must not hold the signing secret"
        } else {
            "unknown algorithm; use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA"
        };
        Err(ConfigError::new(
            crate::error::ConfigErrorKind::InvalidAlgorithm,
            "algorithm",
            format!("`{}`: {why}", crate::error::printable(s)),
        ))
    }
}

/// Selects jsonwebtoken's process-wide crypto provider explicitly, so that a build with both
/// backends enabled (feature unification) never panics at the first signature. An already
/// installed provider is kept.
pub(crate) fn install_crypto_provider() {
    #[cfg(feature = "aws_lc_rs")]
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_algorithm_and_refuses_hmac_and_none() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>().ok(), Some(alg));
        }
        assert_eq!("Ed25519".parse::<Algorithm>().ok(), Some(Algorithm::EdDSA));
        for bad in [
            "none", "NONE", "HS256", "HS384", "hs512", "RS1", "Ed448", "",
        ] {
            let err = bad.parse::<Algorithm>().unwrap_err();
            assert_eq!(err.kind(), crate::error::ConfigErrorKind::InvalidAlgorithm);
        }
    }
}
