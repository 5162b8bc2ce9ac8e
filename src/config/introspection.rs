//! [`Introspection`]: the settings of RFC 7662 token introspection for one entry.

use std::time::Duration;

use crate::algorithm::Algorithm;

/// RFC 7662 token introspection for an authorization server that issues opaque access
/// tokens, set on its entry with
/// [`AuthorizationServerEntry::introspection`](crate::AuthorizationServerEntry::introspection).
///
/// A token that is not a JWT (not three dot-separated parts) is sent to the entry's
/// introspection endpoint; a JWT is still verified locally when the entry has a `jwks_uri`
/// (a *mixed* issuer), and refused when it has none. At most one entry may introspect: an
/// opaque token names no issuer, so every token that is not a JWT goes to that one server.
/// Configure introspection only where the other trusted servers issue JWTs.
///
/// The answer is checked like a JWT's claims: `active` must be `true`; `iss` (when given)
/// must be the entry's issuer; `exp`, `nbf`, `iat` (when given), the audience (`aud`, always
/// required), a non-empty `sub`, and the entry's
/// [`AccessTokenValidationOptions`](crate::AccessTokenValidationOptions) (allowed clients,
/// required claims, maximum age) apply; a `token_type` other than `Bearer`, a `token_use`
/// other than `access_token` (a refresh token) or a `cnf` is refused. `active: false` answers
/// 401 `invalid_token`. A server that can not be reached, times out or answers 5xx answers
/// 503 with `Retry-After`, and is not called again for 2 s; any other answer that is not a
/// JSON object with a boolean `active` answers 503 for that request only.
///
/// Answers are cached (under a keyed hash of the token, never the token itself) for at most
/// [`cache_ttl`](Self::cache_ttl) and never past the token's `exp`; concurrent requests with
/// one token share one call; at most [`max_concurrent`](Self::max_concurrent) calls run at
/// once (beyond that, 503). A revoked token is accepted until its cached answer expires: keep
/// `cache_ttl` short where revocation must take effect at once.
///
/// ```
/// use std::time::Duration;
/// use protected_resource::{AuthorizationServerEntry, Introspection};
///
/// let entry = AuthorizationServerEntry::new("https://auth.example.com")
///     .introspection(
///         Introspection::client_secret_basic("mcp-resource", "s3cret")
///             .endpoint("https://auth.example.com/oauth2/introspect")
///             .cache_ttl(Duration::from_secs(30)),
///     );
/// assert!(entry.get_introspection().is_some());
/// // Secrets are never printed.
/// assert!(!format!("{entry:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Introspection {
    pub(crate) endpoint: Option<String>,
    pub(crate) client_id: String,
    pub(crate) auth: IntrospectionAuth,
    pub(crate) cache_ttl: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_concurrent: usize,
}

/// How the resource authenticates to the introspection endpoint.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum IntrospectionAuth {
    Basic(String),
    Post(String),
    PrivateKeyJwt {
        pem: Vec<u8>,
        alg: Algorithm,
        kid: Option<String>,
    },
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match &self.auth {
            IntrospectionAuth::Basic(_) => "client_secret_basic",
            IntrospectionAuth::Post(_) => "client_secret_post",
            IntrospectionAuth::PrivateKeyJwt { .. } => "private_key_jwt",
        };
        f.debug_struct("Introspection")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("auth", &method)
            .field("cache_ttl", &self.cache_ttl)
            .field("timeout", &self.timeout)
            .field("max_concurrent", &self.max_concurrent)
            .finish()
    }
}

impl Introspection {
    /// How long an answer is cached at most (default). Never past the token's `exp`.
    pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
    /// The time allowed for one introspection call (default).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The most introspection calls running at once (default).
    pub const DEFAULT_MAX_CONCURRENT: usize = 64;

    fn new(client_id: impl Into<String>, auth: IntrospectionAuth) -> Self {
        Self {
            endpoint: None,
            client_id: client_id.into(),
            auth,
            cache_ttl: Self::DEFAULT_CACHE_TTL,
            timeout: Self::DEFAULT_TIMEOUT,
            max_concurrent: Self::DEFAULT_MAX_CONCURRENT,
        }
    }

    /// Authenticates with HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1).
    #[must_use]
    pub fn client_secret_basic(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::new(client_id, IntrospectionAuth::Basic(secret.into()))
    }

    /// Authenticates with the secret in the form body (`client_secret_post`).
    #[must_use]
    pub fn client_secret_post(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::new(client_id, IntrospectionAuth::Post(secret.into()))
    }

    /// Authenticates with a JWT signed by the client's private key (`private_key_jwt`, RFC
    /// 7523): a PKCS#8 PEM key fitting `alg`, checked by `build()`. The assertion's `aud` is
    /// the introspection endpoint.
    #[must_use]
    pub fn private_key_jwt(
        client_id: impl Into<String>,
        private_key_pem: impl Into<Vec<u8>>,
        alg: Algorithm,
    ) -> Self {
        Self::new(
            client_id,
            IntrospectionAuth::PrivateKeyJwt {
                pem: private_key_pem.into(),
                alg,
                kid: None,
            },
        )
    }

    /// The `kid` put in `private_key_jwt` assertions (ignored for the other methods).
    #[must_use]
    pub fn key_id(mut self, kid: impl Into<String>) -> Self {
        if let IntrospectionAuth::PrivateKeyJwt { kid: k, .. } = &mut self.auth {
            *k = Some(kid.into());
        }
        self
    }

    /// The introspection endpoint. Default: the `introspection_endpoint` of the issuer's
    /// metadata (RFC 8414 or OpenID Connect, the document naming exactly the issuer),
    /// discovered on the first opaque token and kept. Must be `https` (`http` only on a
    /// loopback host), even with `dangerous_allow_insecure_jwks_uri`: the token and the
    /// client's credentials go there.
    #[must_use]
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// How long an answer is cached at most (default 60 s; never past the token's `exp`;
    /// zero: not cached, every request calls the endpoint).
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// The time allowed for one call, connecting included (default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most calls running at once (default 64); a request needing one more is answered
    /// 503. Bounds what a flood of made-up tokens costs the authorization server.
    #[must_use]
    pub fn max_concurrent(mut self, calls: usize) -> Self {
        self.max_concurrent = calls;
        self
    }

    /// The client id the resource authenticates with.
    #[must_use]
    pub fn get_client_id(&self) -> &str {
        &self.client_id
    }

    /// The configured endpoint (`None`: discovered).
    #[must_use]
    pub fn get_endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }
}
