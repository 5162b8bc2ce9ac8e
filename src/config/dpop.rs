//! Per-entry DPoP settings (RFC 9449): [`DpopPolicy`] and the proof algorithms of an
//! [`AuthorizationServerEntry`].

use crate::algorithm::Algorithm;
use crate::config::AuthorizationServerEntry;
use crate::error::{ConfigError, ConfigErrorKind};

/// Whether an authorization server's tokens may, must or may not be DPoP-bound (RFC 9449),
/// set per entry with [`AuthorizationServerEntry::dpop`] or `"dpop"` in the environment JSON.
///
/// | policy | `Authorization: Bearer` with an unbound token | `Authorization: DPoP` with a bound token and its proof |
/// |---|---|---|
/// | [`Allowed`](Self::Allowed) (default) | accepted | accepted |
/// | [`Required`](Self::Required) | refused (401 `invalid_token`) | accepted |
/// | [`Off`](Self::Off) | accepted | refused, as any bound token |
///
/// Whatever the policy, a bound token sent as a bearer token and an unbound token sent with
/// the `DPoP` scheme are refused.
///
/// ```
/// use protected_resource::{AuthorizationServerEntry, DpopPolicy};
///
/// let entry = AuthorizationServerEntry::new("https://auth.example.com").dpop(DpopPolicy::Required);
/// assert_eq!(entry.get_dpop(), DpopPolicy::Required);
/// assert_eq!("off".parse::<DpopPolicy>(), Ok(DpopPolicy::Off));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpopPolicy {
    /// Bearer tokens, and DPoP-bound tokens with their proofs.
    #[default]
    Allowed,
    /// DPoP-bound tokens with their proofs only.
    Required,
    /// Bearer tokens only (the crate's behaviour before DPoP).
    Off,
}

impl DpopPolicy {
    /// The name used in the environment JSON: `allowed`, `required` or `off`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Required => "required",
            Self::Off => "off",
        }
    }
}

impl std::fmt::Display for DpopPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DpopPolicy {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allowed" => Ok(Self::Allowed),
            "required" => Ok(Self::Required),
            "off" => Ok(Self::Off),
            _ => Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "dpop",
                "expected `allowed`, `required` or `off`",
            )),
        }
    }
}

/// Every asymmetric algorithm this build supports: the default proof algorithms.
pub(crate) fn default_dpop_algorithms() -> Vec<Algorithm> {
    Algorithm::supported().collect()
}

impl AuthorizationServerEntry {
    /// Whether this server's tokens may be DPoP-bound (default [`DpopPolicy::Allowed`]).
    #[must_use]
    pub fn dpop(mut self, policy: DpopPolicy) -> Self {
        self.dpop = policy;
        self
    }

    /// The algorithms a DPoP proof for this server's tokens may be signed with (default:
    /// every asymmetric algorithm this build supports, whatever the tokens are signed with:
    /// a client's ES256 proofs work with an RS256-only server). An empty list is a
    /// configuration error.
    ///
    /// ```
    /// use protected_resource::{Algorithm, AuthorizationServerEntry};
    ///
    /// let entry = AuthorizationServerEntry::new("https://auth.example.com")
    ///     .dpop_algorithms([Algorithm::ES256, Algorithm::EdDSA]);
    /// assert_eq!(entry.get_dpop_algorithms(), [Algorithm::ES256, Algorithm::EdDSA]);
    /// ```
    #[must_use]
    pub fn dpop_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.dpop_algorithms = algorithms.into_iter().collect();
        self
    }

    /// See [`dpop`](Self::dpop).
    #[must_use]
    pub fn get_dpop(&self) -> DpopPolicy {
        self.dpop
    }

    /// See [`dpop_algorithms`](Self::dpop_algorithms).
    #[must_use]
    pub fn get_dpop_algorithms(&self) -> &[Algorithm] {
        &self.dpop_algorithms
    }
}

/// The `build()` checks of the DPoP settings of `entry`.
pub(crate) fn check_dpop(entry: &AuthorizationServerEntry) -> Result<(), ConfigError> {
    if entry.dpop_algorithms.is_empty() {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidAlgorithm,
            "dpop_algorithms",
            "at least one DPoP proof algorithm must be allowed",
        ));
    }
    if let Some(alg) = entry.dpop_algorithms.iter().find(|a| !a.is_supported()) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidAlgorithm,
            "dpop_algorithms",
            format!("{alg} needs the `aws_lc_rs` feature of protected-resource"),
        ));
    }
    Ok(())
}
