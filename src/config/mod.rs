//! Plain settings: the authorization servers a resource trusts ([`AuthorizationServerEntry`]),
//! per-entry claim checks ([`AccessTokenValidationOptions`]), key-set and session-binding
//! settings and their defaults; the checks `build()` runs on them are in `check.rs`. Nothing
//! here runs: the runtime is assembled from these values in `builder/`.

use std::time::Duration;

pub(crate) mod check;
mod dpop;
mod introspection;
pub(crate) mod pattern;

pub use self::dpop::DpopPolicy;
pub(crate) use self::dpop::{check_dpop, default_dpop_algorithms};
pub use self::introspection::Introspection;
pub(crate) use self::introspection::IntrospectionAuth;

pub(crate) use self::check::{
    check_canonical_url, check_entry, clean_scopes, is_loopback_host, is_scope_token,
    parse_absolute,
};

use crate::algorithm::Algorithm;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::required_claims::RequiredClaim;
use crate::sealing_key::SealingKey;

/// Which claim checks an authorization-server entry performs, beyond those that are always on.
///
/// Signature, issuer routing, audience and a non-empty `sub` are **always** checked and can not
/// be switched off. Mirrors the model's `AccessTokenValidationOptions`.
///
/// ```
/// use std::time::Duration;
/// use protected_resource::AccessTokenValidationOptions;
///
/// let mut options = AccessTokenValidationOptions::default();
/// options.leeway = Duration::from_secs(30); // tolerate 30 s of clock skew
/// assert!(options.verify_exp);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessTokenValidationOptions {
    /// Require `exp` and reject expired tokens. Default `true`. **Turning this off accepts
    /// tokens that never expire.**
    pub verify_exp: bool,
    /// Reject an `iat` in the future (when present, it must be a number). Default `true`.
    pub verify_iat: bool,
    /// Require the token's `iss` to equal the entry's issuer. Default `true`. When `false`, a
    /// token whose `iss` matches no entry is checked against the first such entry's keys (and
    /// only those); the owner then carries the configured issuer.
    pub verify_iss: bool,
    /// Reject a token before its `nbf` (when present, it must be a number). Default `true`.
    pub verify_nbf: bool,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default 0 s, like the model.
    pub leeway: Duration,
    /// Require the JOSE header `typ` to be `at+jwt` or `application/at+jwt` (RFC 9068 §4).
    /// Default `false`, because many providers do not set it. Even when `false`, a `typ`
    /// naming another kind of token (`dpop+jwt`, `logout+jwt`, `id_token+jwt`, …: anything
    /// but `at+jwt`, `application/at+jwt`, `JWT`, `application/jwt`) is refused
    /// (RFC 8725 §3.11).
    pub require_at_jwt_type: bool,
    /// Refuse tokens carrying claims only ID tokens have (`nonce`, `at_hash`, `c_hash`).
    /// Default `false`. Turn it on where [`expected_audiences`](crate::AuthorizationServerEntry::expected_audiences)
    /// is a client id: the provider's ID tokens for that client then have the same issuer,
    /// keys and audience as its access tokens, and would otherwise be accepted as access
    /// tokens (see `docs/identity-providers.md`).
    pub reject_id_token_claims: bool,
    /// The clients whose tokens are accepted, by the token's `client_id`, else `azp`, `cid`
    /// or `appid` (the first present; a client ID metadata document's URL is compared
    /// exactly). Empty (the default): any client. A token of another client, or naming none,
    /// is answered 403 (`insufficient_scope`, a fixed description that does not say which
    /// rule failed; the log does).
    pub allowed_clients: Vec<String>,
    /// Tokens issued (`iat`) longer ago than this are refused (401 `invalid_token`), and so
    /// are tokens without `iat`. `None` (the default): no limit beyond `exp`.
    pub max_token_age: Option<Duration>,
    /// Claim values every token must carry (all of them): groups, roles, a tenant. A token
    /// without one is answered 403 like a client not allowed. Empty (the default): none.
    pub required_claims: Vec<RequiredClaim>,
}

impl Default for AccessTokenValidationOptions {
    fn default() -> Self {
        Self {
            verify_exp: true,
            verify_iat: true,
            verify_iss: true,
            verify_nbf: true,
            leeway: Duration::ZERO,
            require_at_jwt_type: false,
            reject_id_token_claims: false,
            allowed_clients: Vec::new(),
            max_token_age: None,
            required_claims: Vec::new(),
        }
    }
}

/// One trusted authorization server: who signs its tokens (`issuer`), where its keys are
/// (`jwks_uri`), and where clients go to get tokens (`authorization_server_url`). Mirrors the
/// model's `AuthorizationServerEntry`; the setters have the names of its fields and of the
/// environment JSON keys ([`crate::env`]).
///
/// Only the issuer is required, and it is named at the call site: every other value has a
/// setter of its own, so two URLs can never be swapped by position.
///
/// ```
/// use protected_resource::{Algorithm, AuthorizationServerEntry};
///
/// let entry = AuthorizationServerEntry::new("https://auth.example.com")
///     .jwks_uri("https://auth.example.com/jwks")
///     .algorithms([Algorithm::RS256, Algorithm::ES256])
///     .expected_audiences(["my-client-id"]);
/// assert_eq!(entry.get_issuer(), "https://auth.example.com");
/// // Advertised to clients: the issuer, unless set with `authorization_server_url`.
/// assert_eq!(entry.get_authorization_server_url(), "https://auth.example.com");
///
/// // Without `jwks_uri`, it is discovered from the issuer's metadata.
/// let discovered = AuthorizationServerEntry::new("https://tenant.eu.auth0.com/");
/// assert_eq!(discovered.get_jwks_uri(), None);
/// ```
///
/// Getters carry a `get_` prefix, as `std::process::Command`'s do, because the setters take
/// the plain names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationServerEntry {
    /// `None`: the issuer.
    pub(crate) authorization_server_url: Option<String>,
    pub(crate) issuer: String,
    /// `None`: discovered from the issuer's metadata.
    pub(crate) jwks_uri: Option<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) expected_audiences: Vec<String>,
    pub(crate) validation_options: AccessTokenValidationOptions,
    /// A JWK set (JSON) used until the server's own answer replaces it.
    pub(crate) initial_jwks: Option<String>,
    /// Put before each granted scope of this server's tokens (Microsoft Entra's short form).
    pub(crate) scope_prefix: Option<String>,
    /// RFC 7662 introspection of the tokens that are not JWTs.
    pub(crate) introspection: Option<Introspection>,
    /// For an issuer pattern: the accepted placeholder values (empty: any).
    pub(crate) tenants: Vec<String>,
    /// For an issuer pattern: the claim equal to the placeholder's value (`None`: default).
    pub(crate) tenant_claim: Option<String>,
    /// For an issuer pattern: the most concrete issuers kept.
    pub(crate) max_tenants: usize,
    /// Whether this server's tokens may be DPoP-bound.
    pub(crate) dpop: DpopPolicy,
    /// The algorithms a DPoP proof may be signed with.
    pub(crate) dpop_algorithms: Vec<Algorithm>,
}

impl AuthorizationServerEntry {
    /// A server whose tokens carry exactly this `iss`. Defaults: `jwks_uri` discovered from
    /// the issuer's metadata (RFC 8414 `/.well-known/oauth-authorization-server`, then OpenID
    /// Connect discovery, which must name exactly this issuer; cached and refreshed like key
    /// sets), the issuer advertised as `authorization_server_url`, algorithm `RS256`, the
    /// canonical URL as audience, default [`AccessTokenValidationOptions`].
    #[must_use]
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            authorization_server_url: None,
            issuer: issuer.into(),
            jwks_uri: None,
            algorithms: vec![Algorithm::RS256],
            expected_audiences: Vec::new(),
            validation_options: AccessTokenValidationOptions::default(),
            initial_jwks: None,
            scope_prefix: None,
            introspection: None,
            tenants: Vec::new(),
            tenant_claim: None,
            max_tenants: pattern::DEFAULT_MAX_TENANTS,
            dpop: DpopPolicy::Allowed,
            dpop_algorithms: default_dpop_algorithms(),
        }
    }

    /// Where this server publishes its public keys (a JWK set). Without it, the location is
    /// discovered from the issuer's metadata.
    #[must_use]
    pub fn jwks_uri(mut self, jwks_uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(jwks_uri.into());
        self
    }

    /// The URL advertised to clients in the metadata's `authorization_servers` (default: the
    /// issuer). Clients read its RFC 8414 metadata to find where to log in.
    #[must_use]
    pub fn authorization_server_url(mut self, url: impl Into<String>) -> Self {
        self.authorization_server_url = Some(url.into());
        self
    }

    /// Allows exactly this one algorithm (the model's `algorithm=`).
    #[must_use]
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithms = vec![algorithm];
        self
    }

    /// Allows exactly these algorithms. An empty list is a configuration error.
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Accepts tokens whose `aud` contains any of these instead of the canonical URL (for
    /// providers that put a client id in `aud`). Empty means the canonical URL.
    #[must_use]
    pub fn expected_audiences<S: Into<String>>(
        mut self,
        audiences: impl IntoIterator<Item = S>,
    ) -> Self {
        self.expected_audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the claim checks for this entry.
    #[must_use]
    pub fn validation_options(mut self, options: AccessTokenValidationOptions) -> Self {
        self.validation_options = options;
        self
    }

    /// A JWK set (the JSON document, as the server publishes it) to verify tokens with before
    /// the server's own key set has been fetched: the process starts and is ready without the
    /// network. Fetching starts with the first request (or `warm_up`), and a fetch that fails
    /// keeps these keys in use, retried with the usual backoff; the first successful fetch
    /// replaces them for good, so that a key the server has since withdrawn never comes back.
    /// Checked by `build()`: it must parse and hold at least one usable public key. Entries
    /// sharing a `jwks_uri` share their keys, so only one of them may give it.
    ///
    /// ```
    /// use protected_resource::AuthorizationServerEntry;
    ///
    /// let jwks = r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
    ///     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    /// let entry = AuthorizationServerEntry::new("https://auth.example.com")
    ///     .jwks_uri("https://auth.example.com/jwks")
    ///     .initial_jwks(jwks);
    /// assert!(entry.get_initial_jwks().is_some());
    /// ```
    #[must_use]
    pub fn initial_jwks(mut self, jwks: impl Into<String>) -> Self {
        self.initial_jwks = Some(jwks.into());
        self
    }

    /// The key set given with [`initial_jwks`](Self::initial_jwks), if any.
    #[must_use]
    pub fn get_initial_jwks(&self) -> Option<&str> {
        self.initial_jwks.as_deref()
    }

    /// Reads this server's granted scopes in the form the resource advertises, challenges and
    /// checks: each scope of a token without this prefix gets it. Microsoft Entra ID tokens
    /// name the scopes of an API in short form (`scp: "files.read"`), while clients must
    /// request, and the metadata and challenges must name, the full form
    /// (`api://<app-id>/files.read`): with `scope_prefix("api://<app-id>/")`, configure
    /// `scopes_supported`, challenges and tool rules in the full form, and a token with
    /// `scp: "files.read"` has the scope `api://<app-id>/files.read`
    /// ([`ResourceOwner::scopes`](crate::ResourceOwner::scopes) lists that form). A scope that
    /// already carries the prefix is kept as is. The prefix must be made of scope-token
    /// characters (checked by `build()`).
    ///
    /// ```
    /// use protected_resource::AuthorizationServerEntry;
    ///
    /// let tenant = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0";
    /// let entry = AuthorizationServerEntry::new(tenant)
    ///     .expected_audiences(["11111111-1111-1111-1111-111111111111"])
    ///     .scope_prefix("api://11111111-1111-1111-1111-111111111111/");
    /// assert_eq!(entry.get_scope_prefix(), Some("api://11111111-1111-1111-1111-111111111111/"));
    /// ```
    #[must_use]
    pub fn scope_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.scope_prefix = Some(prefix.into());
        self
    }

    /// The prefix given with [`scope_prefix`](Self::scope_prefix), if any.
    #[must_use]
    pub fn get_scope_prefix(&self) -> Option<&str> {
        self.scope_prefix.as_deref()
    }

    /// Checks the tokens of this server that are not JWTs (opaque tokens) with RFC 7662
    /// introspection; see [`Introspection`]. With a [`jwks_uri`](Self::jwks_uri) too, JWTs
    /// are still verified locally (a mixed issuer); without one, the entry accepts introspected
    /// tokens only, and its keys are never fetched.
    #[must_use]
    pub fn introspection(mut self, introspection: Introspection) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Whether this entry verifies JWTs with keys: all but the entries that introspect and
    /// name no `jwks_uri`, which accept introspected tokens only.
    pub(crate) fn verifies_jwts(&self) -> bool {
        self.introspection.is_none() || self.jwks_uri.is_some()
    }

    /// The introspection settings, if any.
    #[must_use]
    pub fn get_introspection(&self) -> Option<&Introspection> {
        self.introspection.as_ref()
    }

    /// The exact `iss` value of this server's tokens.
    #[must_use]
    pub fn get_issuer(&self) -> &str {
        &self.issuer
    }

    /// The URL advertised to clients in `authorization_servers` (the issuer unless set).
    #[must_use]
    pub fn get_authorization_server_url(&self) -> &str {
        self.authorization_server_url
            .as_deref()
            .unwrap_or(&self.issuer)
    }

    /// Where this server's public keys are published (`None`: discovered from the issuer).
    #[must_use]
    pub fn get_jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }

    /// The allowed signature algorithms.
    #[must_use]
    pub fn get_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The audiences configured for this entry (empty: the canonical URL).
    #[must_use]
    pub fn get_expected_audiences(&self) -> &[String] {
        &self.expected_audiences
    }

    /// The claim checks for this entry.
    #[must_use]
    pub fn get_validation_options(&self) -> &AccessTokenValidationOptions {
        &self.validation_options
    }
}

/// Key-set fetching and caching settings (see the builder methods `jwks_*`).
#[derive(Debug, Clone)]
pub(crate) struct JwksOptions {
    /// Lifetime of a key set whose answer has no caching headers.
    pub(crate) ttl: Duration,
    /// Bounds for lifetimes given by `Cache-Control` / `Expires`.
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    /// How long past its lifetime a key set is still used while refreshes fail.
    pub(crate) stale_if_error: Duration,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) allow_insecure_http: bool,
}

/// The longest duration any setting may take (timers and caches hold far less).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Defaults, published as associated constants of `ResourceServerAuth`.
pub(crate) const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
pub(crate) const DEFAULT_JWKS_CACHE_TTL: Duration = Duration::from_secs(3600);
pub(crate) const DEFAULT_JWKS_CACHE_TTL_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(24 * 3600));
pub(crate) const DEFAULT_JWKS_STALE_IF_ERROR: Duration = Duration::from_secs(24 * 3600);
pub(crate) const DEFAULT_JWKS_REFETCH_COOLDOWN: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_JWKS_MAX_BACKOFF: Duration = Duration::from_secs(300);
pub(crate) const DEFAULT_JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_JWKS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const DEFAULT_JWKS_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_JWKS_CACHE_TTL,
            min_ttl: DEFAULT_JWKS_CACHE_TTL_BOUNDS.0,
            max_ttl: DEFAULT_JWKS_CACHE_TTL_BOUNDS.1,
            stale_if_error: DEFAULT_JWKS_STALE_IF_ERROR,
            refetch_cooldown: DEFAULT_JWKS_REFETCH_COOLDOWN,
            max_backoff: DEFAULT_JWKS_MAX_BACKOFF,
            fetch_timeout: DEFAULT_JWKS_FETCH_TIMEOUT,
            connect_timeout: DEFAULT_JWKS_CONNECT_TIMEOUT,
            max_response_bytes: DEFAULT_JWKS_MAX_RESPONSE_BYTES,
            allow_insecure_http: false,
        }
    }
}

impl JwksOptions {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, msg: &str| {
            Err(ConfigError::new(ConfigErrorKind::InvalidValue, field, msg))
        };
        if self.ttl.is_zero() {
            return invalid("jwks_cache_ttl", "must be greater than zero");
        }
        if self.min_ttl < Duration::from_secs(1) || self.min_ttl > self.max_ttl {
            return invalid(
                "jwks_cache_ttl_bounds",
                "the minimum must be at least 1 s and not above the maximum",
            );
        }
        if self.fetch_timeout.is_zero() {
            return invalid("jwks_fetch_timeout", "must be greater than zero");
        }
        if self.connect_timeout.is_zero() {
            return invalid("jwks_connect_timeout", "must be greater than zero");
        }
        if self.max_response_bytes == 0 {
            return invalid("jwks_max_response_bytes", "must be greater than zero");
        }
        if self.refetch_cooldown < Duration::from_secs(1) {
            return invalid(
                "jwks_refetch_cooldown",
                "must be at least 1 s: it bounds how often unknown key ids make the authorization server be called",
            );
        }
        if self.max_backoff < self.refetch_cooldown {
            return invalid(
                "jwks_max_backoff",
                "must not be shorter than jwks_refetch_cooldown",
            );
        }
        // Beyond these, timers and caches can not represent the durations.
        for (field, value) in [
            ("jwks_cache_ttl", self.ttl),
            ("jwks_cache_ttl_bounds", self.max_ttl),
            ("jwks_stale_if_error", self.stale_if_error),
            ("jwks_refetch_cooldown", self.refetch_cooldown),
            ("jwks_max_backoff", self.max_backoff),
            ("jwks_fetch_timeout", self.fetch_timeout),
            ("jwks_connect_timeout", self.connect_timeout),
        ] {
            if value > MAX_DURATION {
                return invalid(field, "must be at most 365 days");
            }
        }
        Ok(())
    }
}

/// Session-binding settings (see the builder's `bind_mcp_sessions` and `session_key`).
#[derive(Debug, Clone)]
pub(crate) struct SessionOptions {
    pub(crate) enabled: bool,
    /// `None`: from the environment, else random per process.
    pub(crate) key: Option<SealingKey>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            key: None,
        }
    }
}
