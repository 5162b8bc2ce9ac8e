//! [`Readiness`]: whether every configured issuer has usable keys, read from the key sets'
//! state without any I/O (for a readiness probe such as `/readyz`).

use serde_json::{Value, json};

use crate::auth::{JwksTokenValidator, ResourceServerAuth};
use crate::keys::KeySetStats;

/// Whether the front door can validate tokens of every configured issuer now: each has
/// usable keys (fresh, or stale while refreshes fail). Built without I/O, from the key sets'
/// state ([`ResourceServerAuth::readiness`]).
///
/// ```
/// use protected_resource::{AuthorizationServerEntry, ResourceServerAuth};
///
/// let auth = ResourceServerAuth::builder()
///     .canonical_url("https://mcp.example.com/mcp")
///     .authorization_server(
///         AuthorizationServerEntry::new("https://auth.example.com")
///             .jwks_uri("https://auth.example.com/jwks"),
///     )
///     .build()?;
/// // Nothing fetched yet (no warm-up): not ready, and the probe says which issuer.
/// let readiness = auth.readiness();
/// assert!(!readiness.is_ready());
/// assert_eq!(readiness.not_ready()[0].issuer(), "https://auth.example.com");
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    not_ready: Vec<IssuerNotReady>,
}

/// An issuer without usable keys, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerNotReady {
    issuer: String,
    reason: NotReadyReason,
}

/// Why an issuer has no usable keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotReadyReason {
    /// No fetch has completed yet (no warm-up, or it is still running).
    NotFetchedYet,
    /// Fetching the keys (or discovering where they are) fails.
    FetchFailing,
    /// The key set was fetched but holds no usable key.
    NoUsableKey,
}

impl NotReadyReason {
    /// A short snake_case word (`not_fetched_yet`, `fetch_failing`, `no_usable_key`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFetchedYet => "not_fetched_yet",
            Self::FetchFailing => "fetch_failing",
            Self::NoUsableKey => "no_usable_key",
        }
    }
}

impl IssuerNotReady {
    /// The issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Why it has no usable keys (the fetch error itself is in
    /// [`KeySetStats::last_error`] and the logs, not here: a probe's answer is public).
    #[must_use]
    pub fn reason(&self) -> NotReadyReason {
        self.reason
    }
}

impl Readiness {
    pub(crate) fn from_stats(stats: &[KeySetStats]) -> Self {
        let mut not_ready = Vec::new();
        for s in stats.iter().filter(|s| s.keys == 0) {
            let reason = if s.consecutive_failures > 0 {
                NotReadyReason::FetchFailing
            } else if s.age.is_some() {
                NotReadyReason::NoUsableKey
            } else {
                NotReadyReason::NotFetchedYet
            };
            not_ready.extend(s.issuers.iter().map(|issuer| IssuerNotReady {
                issuer: issuer.clone(),
                reason,
            }));
        }
        Self { not_ready }
    }

    /// Every issuer has usable keys.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.not_ready.is_empty()
    }

    /// The issuers without usable keys, in configuration order.
    #[must_use]
    pub fn not_ready(&self) -> &[IssuerNotReady] {
        &self.not_ready
    }

    /// The probe's body: `{"ready": true}` or `{"ready": false, "issuers": [{"issuer",
    /// "reason"}]}`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        if self.is_ready() {
            json!({"ready": true})
        } else {
            let issuers: Vec<Value> = self
                .not_ready
                .iter()
                .map(|n| json!({"issuer": n.issuer, "reason": n.reason.as_str()}))
                .collect();
            json!({"ready": false, "issuers": issuers})
        }
    }
}

impl ResourceServerAuth {
    /// Whether every configured issuer has usable keys now (no I/O: the key sets' state).
    /// Pair it with [`warm_up`](Self::warm_up) at start, run without blocking.
    #[must_use]
    pub fn readiness(&self) -> Readiness {
        Readiness::from_stats(&self.key_set_stats())
    }
}

impl JwksTokenValidator {
    /// Whether the issuer has usable keys now (no I/O).
    #[must_use]
    pub fn readiness(&self) -> Readiness {
        Readiness::from_stats(&self.key_set_stats())
    }
}
