//! Configuration: the resource server ([`ResourceServerAuth`]), the authorization servers it
//! trusts ([`AuthorizationServerEntry`]) and per-entry claim checks
//! ([`AccessTokenValidationOptions`]).
//!
//! Everything is checked by [`ResourceServerAuthBuilder::build`]; a bad value is a
//! [`ConfigError`] naming the field (or environment variable), never a failure at the first
//! request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::algorithm::Algorithm;
use crate::cors::CorsPolicy;
use crate::env::EnvSource;
use crate::error::{ConfigError, ConfigErrorKind, printable};
use crate::jwt::Validator;
use crate::keystore::{JwksOptions, KeySetStats, KeyStore, WarmUpError};
use crate::metadata::Metadata;
use crate::scope::{ScopeContext, ScopeHierarchy};
use crate::session::{SessionBindings, SessionOptions};

/// Default cap on the size of a bearer token (16 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

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
    /// Default `false`, because many providers do not set it.
    pub require_at_jwt_type: bool,
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
        }
    }
}

/// One trusted authorization server: where clients go to get tokens, who signs them and where
/// its keys are. Mirrors the model's `AuthorizationServerEntry`.
///
/// ```
/// use protected_resource::{Algorithm, AuthorizationServerEntry};
///
/// let entry = AuthorizationServerEntry::new(
///     "https://auth.example.com",
///     "https://auth.example.com",
///     "https://auth.example.com/jwks",
/// )
/// .algorithms([Algorithm::RS256, Algorithm::ES256])
/// .expected_audiences(["my-client-id"]);
/// assert_eq!(entry.issuer(), "https://auth.example.com");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationServerEntry {
    pub(crate) authorization_server_url: String,
    pub(crate) issuer: String,
    /// `None`: discovered from the issuer's metadata.
    pub(crate) jwks_uri: Option<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) expected_audiences: Vec<String>,
    pub(crate) validation_options: AccessTokenValidationOptions,
}

impl AuthorizationServerEntry {
    /// An entry with the default algorithm (`RS256`), the canonical URL as expected audience and
    /// default validation options.
    pub fn new(
        authorization_server_url: impl Into<String>,
        issuer: impl Into<String>,
        jwks_uri: impl Into<String>,
    ) -> Self {
        Self {
            authorization_server_url: authorization_server_url.into(),
            issuer: issuer.into(),
            jwks_uri: Some(jwks_uri.into()),
            algorithms: vec![Algorithm::RS256],
            expected_audiences: Vec::new(),
            validation_options: AccessTokenValidationOptions::default(),
        }
    }

    /// An entry for `issuer` whose `jwks_uri` is discovered from the issuer's metadata
    /// (RFC 8414 `/.well-known/oauth-authorization-server`, then OpenID Connect discovery),
    /// which must name exactly this issuer. The issuer is also the advertised
    /// authorization-server URL. Discovery happens with the first key fetch and is cached and
    /// refreshed like key sets (see the crate docs, "Key management").
    ///
    /// ```
    /// use protected_resource::{Algorithm, AuthorizationServerEntry};
    ///
    /// let entry = AuthorizationServerEntry::discover("https://tenant.eu.auth0.com/")
    ///     .algorithm(Algorithm::RS256);
    /// assert_eq!(entry.jwks_uri(), None);
    /// assert_eq!(entry.authorization_server_url(), "https://tenant.eu.auth0.com/");
    /// ```
    pub fn discover(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Self {
            authorization_server_url: issuer.clone(),
            issuer,
            jwks_uri: None,
            algorithms: vec![Algorithm::RS256],
            expected_audiences: Vec::new(),
            validation_options: AccessTokenValidationOptions::default(),
        }
    }

    /// Allows exactly this one algorithm (the model's `algorithm=`).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithms = vec![algorithm];
        self
    }

    /// Allows exactly these algorithms. An empty list is a configuration error.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Accepts tokens whose `aud` contains any of these instead of the canonical URL (for
    /// providers that put a client id in `aud`). Empty means the canonical URL.
    pub fn expected_audiences<S: Into<String>>(
        mut self,
        audiences: impl IntoIterator<Item = S>,
    ) -> Self {
        self.expected_audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the claim checks for this entry.
    pub fn validation_options(mut self, options: AccessTokenValidationOptions) -> Self {
        self.validation_options = options;
        self
    }

    /// The URL advertised to clients in `authorization_servers`.
    pub fn authorization_server_url(&self) -> &str {
        &self.authorization_server_url
    }

    /// The exact `iss` value of this server's tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Where this server's public keys are published (`None`: discovered, see
    /// [`discover`](Self::discover)).
    pub fn jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }

    /// The allowed signature algorithms.
    pub fn allowed_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The audiences configured for this entry (empty: the canonical URL).
    pub fn audiences(&self) -> &[String] {
        &self.expected_audiences
    }

    /// The claim checks for this entry.
    pub fn options(&self) -> &AccessTokenValidationOptions {
        &self.validation_options
    }
}

/// Where browsers may call the protected routes from (`Access-Control-Allow-Origin`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AllowedOrigins {
    /// `*` (the default; bearer tokens are not cookies, so this exposes nothing by itself).
    #[default]
    Any,
    /// Only these origins (for example `https://app.example.com`); others get no CORS headers.
    List(Vec<String>),
    /// Send no CORS headers at all (another layer handles CORS).
    Disabled,
}

/// The configuration of a protected resource, validated and ready to serve. Mirrors the
/// model's `ResourceServerAuth`. Cheap to clone (one `Arc`).
///
/// Build it with [`ResourceServerAuth::builder`] or [`ResourceServerAuth::from_env`], then
/// hand it to [`ProtectedResourceLayer::new`](crate::ProtectedResourceLayer::new).
///
/// ```
/// use protected_resource::{AuthorizationServerEntry, ResourceServerAuth};
///
/// let auth = ResourceServerAuth::builder()
///     .canonical_url("https://mcp.example.com/mcp")
///     .authorization_server(AuthorizationServerEntry::new(
///         "https://auth.example.com",
///         "https://auth.example.com",
///         "https://auth.example.com/jwks",
///     ))
///     .scopes_supported(["mcp:tools"])
///     .build()?;
/// assert_eq!(
///     auth.resource_metadata_url(),
///     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
/// );
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ResourceServerAuth {
    pub(crate) inner: Arc<AuthInner>,
}

pub(crate) struct AuthInner {
    pub(crate) canonical_url: String,
    pub(crate) validator: Validator,
    pub(crate) metadata: Option<Metadata>,
    pub(crate) cors: CorsPolicy,
    pub(crate) challenge_scopes: Option<String>,
    pub(crate) entries: Vec<AuthorizationServerEntry>,
    pub(crate) scopes_supported: Vec<String>,
    /// Seconds in `Retry-After` when keys can not be obtained (the refetch cooldown).
    pub(crate) retry_after_secs: u64,
    pub(crate) sessions: Option<SessionBindings>,
}

impl std::fmt::Debug for ResourceServerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServerAuth")
            .field("canonical_url", &self.inner.canonical_url)
            .field("authorization_servers", &self.inner.entries)
            .field("scopes_supported", &self.inner.scopes_supported)
            .finish_non_exhaustive()
    }
}

impl ResourceServerAuth {
    /// Starts a configuration.
    pub fn builder() -> ResourceServerAuthBuilder {
        ResourceServerAuthBuilder::default()
    }

    /// The whole configuration from the process environment (see [`crate::env`] for the
    /// variables). Same as `ResourceServerAuth::builder().from_env().build()`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().from_env().build()
    }

    /// The canonical URL of this resource (the metadata's `resource`, the default audience).
    pub fn canonical_url(&self) -> &str {
        &self.inner.canonical_url
    }

    /// The URL of the protected-resource metadata document, as sent in `resource_metadata`.
    pub fn resource_metadata_url(&self) -> &str {
        self.inner
            .metadata
            .as_ref()
            .map(|m| m.url.as_str())
            .unwrap_or_default()
    }

    /// The trusted authorization servers, in configuration order.
    pub fn authorization_servers(&self) -> &[AuthorizationServerEntry] {
        &self.inner.entries
    }

    /// The scopes advertised in the metadata.
    pub fn scopes_supported(&self) -> &[String] {
        &self.inner.scopes_supported
    }

    /// Validates a bearer token outside of HTTP (for example for a WebSocket handshake or a
    /// queue message). The layer does exactly this for every request.
    pub async fn validate(
        &self,
        token: &str,
    ) -> Result<crate::ResourceOwner, crate::ValidationError> {
        self.inner.validator.validate(token).await
    }

    /// Fetches every key set (and discovers every `jwks_uri`) now, waiting at most
    /// `deadline`, and reports the issuers whose keys could not be fetched.
    ///
    /// Optional: without it, keys are fetched by the first request that needs them (one fetch
    /// however many requests wait). Call it before serving to fail a deployment early or to
    /// spare the first users the fetch; a failure is not fatal, as later requests retry.
    ///
    /// ```no_run
    /// # use protected_resource::ResourceServerAuth;
    /// # use std::time::Duration;
    /// # async fn run(auth: ResourceServerAuth) {
    /// if let Err(e) = auth.warm_up(Duration::from_secs(10)).await {
    ///     tracing::warn!("starting without some keys: {e}");
    /// }
    /// # }
    /// ```
    pub async fn warm_up(&self, deadline: Duration) -> Result<(), WarmUpError> {
        let keys = self.inner.validator.keys();
        match WarmUpError::new(keys, keys.warm_up(deadline).await) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A statistics snapshot per key source (configured `jwks_uri`, or issuer with a
    /// discovered one), in configuration order: fetches, failures, hits, misses, unknown-kid
    /// refetches, keys held, age. Cheap (atomics and one small map); suitable for a metrics
    /// exporter's scrape callback.
    pub fn key_set_stats(&self) -> Vec<KeySetStats> {
        self.inner.validator.keys().stats()
    }
}

/// Builds a [`ResourceServerAuth`]; see there for an example.
///
/// Values set here win over the environment when [`from_env`](Self::from_env) is also used,
/// whatever the order of the calls.
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct ResourceServerAuthBuilder {
    pub(crate) canonical_url: Option<String>,
    pub(crate) authorization_servers: Option<Vec<AuthorizationServerEntry>>,
    pub(crate) scopes_supported: Option<Vec<String>>,
    pub(crate) default_challenge_scopes: Option<Vec<String>>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    resource_policy_uri: Option<String>,
    resource_tos_uri: Option<String>,
    resource_signing_alg_values_supported: Option<Vec<Algorithm>>,
    jwks: JwksOptions,
    max_token_bytes: Option<usize>,
    allowed_origins: AllowedOrigins,
    env: Option<EnvSource>,
    scope_rules: Vec<(String, Vec<String>)>,
    sessions: SessionOptions,
    /// `false` for [`JwksTokenValidator`]: no metadata is served or pointed to.
    without_metadata: bool,
}

impl ResourceServerAuthBuilder {
    /// The public URL of the protected resource, for example `https://mcp.example.com/mcp`.
    /// It must be absolute, `https` (or `http` on `localhost`, `127.0.0.1`, `[::1]`), and have
    /// no fragment. It is advertised byte for byte as `resource` and is the default audience.
    pub fn canonical_url(mut self, url: impl Into<String>) -> Self {
        self.canonical_url = Some(url.into());
        self
    }

    /// Adds a trusted authorization server.
    pub fn authorization_server(mut self, entry: AuthorizationServerEntry) -> Self {
        self.authorization_servers
            .get_or_insert_with(Vec::new)
            .push(entry);
        self
    }

    /// Sets the whole list of trusted authorization servers.
    pub fn authorization_servers(
        mut self,
        entries: impl IntoIterator<Item = AuthorizationServerEntry>,
    ) -> Self {
        self.authorization_servers = Some(entries.into_iter().collect());
        self
    }

    /// Scopes advertised in the metadata's `scopes_supported` (RFC 6750 scope tokens; duplicates
    /// are dropped, first-seen order kept; `offline_access` is refused).
    pub fn scopes_supported<S: Into<String>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.scopes_supported = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Scopes sent as `scope="…"` in the 401 challenge, which clients request first.
    pub fn default_challenge_scopes<S: Into<String>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.default_challenge_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The metadata's human-readable `resource_name`.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// The metadata's `resource_documentation` URL.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// The metadata's `resource_policy_uri`.
    pub fn resource_policy_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_policy_uri = Some(url.into());
        self
    }

    /// The metadata's `resource_tos_uri`.
    pub fn resource_tos_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_tos_uri = Some(url.into());
        self
    }

    /// The metadata's `resource_signing_alg_values_supported` (omitted unless set).
    pub fn resource_signing_alg_values_supported(
        mut self,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> Self {
        self.resource_signing_alg_values_supported = Some(algorithms.into_iter().collect());
        self
    }

    /// How long a fetched key set is used before it is fetched again, when the answer has no
    /// `Cache-Control: max-age` or `Expires`. Default 1 hour.
    pub fn jwks_cache_ttl(mut self, ttl: Duration) -> Self {
        self.jwks.ttl = ttl;
        self
    }

    /// Bounds for the lifetime an authorization server gives its key set with
    /// `Cache-Control: max-age` or `Expires` (`no-cache`/`no-store` count as zero, so as the
    /// minimum). Default 1 minute to 24 hours. The minimum must be at least 1 s.
    pub fn jwks_cache_ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.jwks.min_ttl = min;
        self.jwks.max_ttl = max;
        self
    }

    /// How long past its lifetime a key set is still used while refreshing it fails (the
    /// authorization server is down or answers garbage). Default 24 hours. Zero: expired keys
    /// are never used.
    pub fn jwks_stale_if_error(mut self, window: Duration) -> Self {
        self.jwks.stale_if_error = window;
        self
    }

    /// The longest wait between retries of a failing key-set fetch (the wait doubles from
    /// the refetch cooldown with each failure, with jitter). Default 5 minutes.
    pub fn jwks_max_backoff(mut self, max: Duration) -> Self {
        self.jwks.max_backoff = max;
        self
    }

    /// The least time between two fetches of one key set caused by unknown `kid`s.
    /// Default 5 s. Between refetches, tokens with an unknown `kid` fail without network.
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks.refetch_cooldown = cooldown;
        self
    }

    /// Total time allowed for one key-set fetch. Default 5 s.
    pub fn jwks_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.jwks.fetch_timeout = timeout;
        self
    }

    /// Time allowed to connect to a key-set host. Default 2 s.
    pub fn jwks_connect_timeout(mut self, timeout: Duration) -> Self {
        self.jwks.connect_timeout = timeout;
        self
    }

    /// The largest key-set response accepted. Default 1 MiB.
    pub fn jwks_max_response_bytes(mut self, bytes: usize) -> Self {
        self.jwks.max_response_bytes = bytes;
        self
    }

    /// **Dangerous**: allow `http` key-set URLs on hosts other than loopback. Keys fetched
    /// without TLS can be replaced by anyone on the path. Default `false`.
    pub fn dangerous_allow_insecure_jwks_uri(mut self, allow: bool) -> Self {
        self.jwks.allow_insecure_http = allow;
        self
    }

    /// Tokens longer than this are refused before any parsing. Default 16 KiB.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = Some(bytes);
        self
    }

    /// The CORS origins allowed on protected and metadata routes. Default `*`.
    pub fn allowed_origins(mut self, origins: AllowedOrigins) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// Declares that a granted `broad` scope implies each of `narrower` (for example
    /// `scope_implies("mcp:admin", ["mcp:write"])`). Rules chain (`admin` → `write` → `read`)
    /// and apply to every scope check: [`ResourceOwner::has_scope`](crate::ResourceOwner::has_scope),
    /// [`ResourceOwner::require`](crate::ResourceOwner::require),
    /// [`RequireScopesLayer`](crate::RequireScopesLayer) and
    /// [`McpToolScopesLayer`](crate::McpToolScopesLayer). They never change what a challenge
    /// asks for. Scopes must be RFC 6750 scope tokens (checked by `build`).
    pub fn scope_implies<S: Into<String>>(
        mut self,
        broad: impl Into<String>,
        narrower: impl IntoIterator<Item = S>,
    ) -> Self {
        self.scope_rules
            .push((broad.into(), narrower.into_iter().map(Into::into).collect()));
        self
    }

    /// Whether MCP sessions are bound to the user that created them (default `true`).
    ///
    /// When the inner service answers with an `Mcp-Session-Id`, the pair (`iss`, `sub`) of
    /// the token is remembered for that session; a later request carrying that session id
    /// with a token of another (`iss`, `sub`) is answered 404 (as for an unknown session) and
    /// never reaches the MCP server. Session ids are not authentication (MCP security best
    /// practices, "Session Hijacking"): this stops a leaked or guessed id from being used by
    /// another user. A successful `DELETE` forgets the binding.
    pub fn bind_mcp_sessions(mut self, on: bool) -> Self {
        self.sessions.enabled = on;
        self
    }

    /// How many session bindings are kept, and for how long after a session's last request
    /// (defaults 100,000 and 24 hours). A binding that was evicted is no longer enforced:
    /// size these above your MCP server's own session limits.
    pub fn mcp_session_binding_limits(mut self, capacity: u64, idle: Duration) -> Self {
        self.sessions.capacity = capacity;
        self.sessions.idle = idle;
        self
    }

    /// Fills every value not set in code from the process environment when `build()` runs
    /// (see [`crate::env`]).
    pub fn from_env(mut self) -> Self {
        self.env = Some(EnvSource::Process);
        self
    }

    /// Like [`from_env`](Self::from_env), but reads these variables instead of the process
    /// environment (for tests and for configuration loaded from elsewhere).
    pub fn from_env_vars<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.env = Some(EnvSource::Map(map));
        self
    }

    /// Checks everything and builds the shared state (key cache, HTTP client, metadata).
    pub fn build(mut self) -> Result<ResourceServerAuth, ConfigError> {
        if let Some(env) = self.env.take() {
            crate::env::apply(&mut self, &env)?;
        }
        let canonical = self.canonical_url.take().ok_or_else(|| {
            ConfigError::new(
                ConfigErrorKind::Missing,
                "canonical_url",
                "the canonical URL of the resource is required (or MCP_SERVER_AUTH_CANONICAL_URL)",
            )
        })?;
        let canonical_parsed = check_canonical_url(&canonical)?;
        let entries = self.authorization_servers.take().unwrap_or_default();
        if entries.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::NoAuthorizationServers,
                "authorization_servers",
                "at least one authorization server is required (or MCP_SERVER_AUTH_AUTHORIZATION_SERVERS)",
            ));
        }
        for (i, entry) in entries.iter().enumerate() {
            check_entry(entry, self.jwks.allow_insecure_http)
                .map_err(|e| e.within(&format!("authorization_servers[{i}]")))?;
        }
        let scopes_supported = clean_scopes(
            self.scopes_supported.take().unwrap_or_default(),
            "scopes_supported",
        )?;
        let challenge = clean_scopes(
            self.default_challenge_scopes.take().unwrap_or_default(),
            "default_challenge_scopes",
        )?;
        let max_token_bytes = self.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        if max_token_bytes == 0 {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "max_token_bytes",
                "must be greater than zero",
            ));
        }
        for (name, url) in [
            ("resource_documentation", &self.resource_documentation),
            ("resource_policy_uri", &self.resource_policy_uri),
            ("resource_tos_uri", &self.resource_tos_uri),
        ] {
            if let Some(url) = url {
                parse_absolute(url, name)?;
            }
        }
        let cors = CorsPolicy::new(&self.allowed_origins)?;
        crate::verify::install_crypto_provider();
        let retry_after_secs = self.jwks.refetch_cooldown.as_secs_f64().ceil().max(1.0) as u64;
        let keys = KeyStore::new(self.jwks.clone(), &entries)?;
        let hierarchy = ScopeHierarchy::new(&self.scope_rules)?;
        let sessions = SessionBindings::new(&self.sessions)?;

        let mut as_urls: Vec<String> = Vec::new();
        for e in &entries {
            if !as_urls.contains(&e.authorization_server_url) {
                as_urls.push(e.authorization_server_url.clone());
            }
        }
        let metadata = Metadata::new(
            &canonical,
            &canonical_parsed,
            crate::metadata::Document {
                resource: canonical.clone(),
                authorization_servers: as_urls.clone(),
                bearer_methods_supported: vec!["header"],
                scopes_supported: scopes_supported.clone(),
                resource_signing_alg_values_supported: self
                    .resource_signing_alg_values_supported
                    .unwrap_or_default()
                    .iter()
                    .map(|a| a.as_str())
                    .collect(),
                resource_name: self.resource_name.filter(|s| !s.is_empty()),
                resource_documentation: self.resource_documentation,
                resource_policy_uri: self.resource_policy_uri,
                resource_tos_uri: self.resource_tos_uri,
            },
        );
        let metadata = (!self.without_metadata).then_some(metadata);
        let scopes = Arc::new(ScopeContext {
            resource_metadata: metadata.as_ref().map(|m| m.url.clone()),
            hierarchy,
        });
        let validator = Validator::new(&entries, &canonical, keys, max_token_bytes, scopes);
        tracing::info!(
            canonical_url = %canonical,
            authorization_servers = ?as_urls,
            "Resource Server auth enabled: accepting tokens from {} authorization server(s)",
            as_urls.len()
        );
        Ok(ResourceServerAuth {
            inner: Arc::new(AuthInner {
                canonical_url: canonical,
                validator,
                metadata,
                sessions,
                cors,
                challenge_scopes: (!challenge.is_empty()).then(|| challenge.join(" ")),
                entries,
                scopes_supported,
                retry_after_secs,
            }),
        })
    }
}

/// A single-issuer token validator without discovery metadata, for development and simple
/// setups. Mirrors the model's `JWKSTokenValidator`.
///
/// Use it on its own with [`validate`](Self::validate), or in front of a service with
/// [`ProtectedResourceLayer::from_validator`](crate::ProtectedResourceLayer::from_validator)
/// (whose 401 answers then carry no `resource_metadata`, as there is no metadata to point to).
///
/// ```
/// use protected_resource::{Algorithm, JwksTokenValidator};
///
/// let validator = JwksTokenValidator::builder(
///     "https://auth.example.com/jwks",
///     "https://auth.example.com",
///     "http://127.0.0.1:8000/mcp",
/// )
/// .algorithm(Algorithm::ES256)
/// .build()?;
/// # drop(validator);
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct JwksTokenValidator {
    pub(crate) auth: ResourceServerAuth,
}

impl std::fmt::Debug for JwksTokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksTokenValidator")
            .field("authorization_server", &self.auth.inner.entries)
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwksTokenValidator`].
#[derive(Debug, Clone)]
#[must_use]
pub struct JwksTokenValidatorBuilder {
    entry: AuthorizationServerEntry,
    audience: String,
    inner: ResourceServerAuthBuilder,
}

impl JwksTokenValidator {
    /// A validator for tokens from `issuer`, signed by keys at `jwks_uri`, whose `aud` contains
    /// `audience`.
    pub fn builder(
        jwks_uri: impl Into<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> JwksTokenValidatorBuilder {
        let issuer = issuer.into();
        JwksTokenValidatorBuilder {
            entry: AuthorizationServerEntry::new(issuer.clone(), issuer, jwks_uri),
            audience: audience.into(),
            inner: ResourceServerAuthBuilder::default(),
        }
    }

    /// Validates a bearer token (without the `Bearer ` prefix).
    pub async fn validate(
        &self,
        token: &str,
    ) -> Result<crate::ResourceOwner, crate::ValidationError> {
        self.auth.validate(token).await
    }

    /// Fetches the key set now; see [`ResourceServerAuth::warm_up`].
    pub async fn warm_up(&self, deadline: Duration) -> Result<(), WarmUpError> {
        self.auth.warm_up(deadline).await
    }

    /// Key-set statistics; see [`ResourceServerAuth::key_set_stats`].
    pub fn key_set_stats(&self) -> Vec<KeySetStats> {
        self.auth.key_set_stats()
    }
}

impl JwksTokenValidatorBuilder {
    /// Allows exactly this algorithm (default `RS256`).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.entry = self.entry.algorithm(algorithm);
        self
    }

    /// Allows exactly these algorithms.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.entry = self.entry.algorithms(algorithms);
        self
    }

    /// Sets the claim checks.
    pub fn validation_options(mut self, options: AccessTokenValidationOptions) -> Self {
        self.entry = self.entry.validation_options(options);
        self
    }

    /// Key-set cache lifetime (default 1 hour).
    pub fn jwks_cache_ttl(mut self, ttl: Duration) -> Self {
        self.inner = self.inner.jwks_cache_ttl(ttl);
        self
    }

    /// Least time between refetches caused by unknown `kid`s (default 5 s).
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.inner = self.inner.jwks_refetch_cooldown(cooldown);
        self
    }

    /// Checks everything and builds the validator.
    pub fn build(self) -> Result<JwksTokenValidator, ConfigError> {
        if self.audience.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidAudience,
                "audience",
                "the expected audience must not be empty",
            ));
        }
        let audience = self.audience.clone();
        // The audience doubles as canonical URL only when it is one; otherwise any valid
        // placeholder will do, as this validator serves no metadata.
        let canonical = if check_canonical_url(&audience).is_ok() {
            audience.clone()
        } else {
            "http://localhost".to_owned()
        };
        let mut inner = self.inner;
        inner.without_metadata = true;
        let auth = inner
            .canonical_url(canonical)
            .authorization_server(self.entry.expected_audiences([audience]))
            .build()?;
        Ok(JwksTokenValidator { auth })
    }
}

fn parse_absolute(value: &str, field: &str) -> Result<reqwest::Url, ConfigError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            field,
            format!("`{}` is empty or contains whitespace", printable(value)),
        ));
    }
    reqwest::Url::parse(value).map_err(|e| {
        ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            field,
            format!("`{}` is not an absolute URL: {e}", printable(value)),
        )
    })
}

pub(crate) fn is_loopback_host(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks the canonical URL rules (SPEC §6) and returns it parsed.
pub(crate) fn check_canonical_url(value: &str) -> Result<reqwest::Url, ConfigError> {
    let bad =
        |msg: String| ConfigError::new(ConfigErrorKind::InvalidCanonicalUrl, "canonical_url", msg);
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!(
            "`{}` is empty or contains whitespace",
            printable(value)
        )));
    }
    let url = reqwest::Url::parse(value).map_err(|e| {
        bad(format!(
            "`{}` is not an absolute URL: {e}",
            printable(value)
        ))
    })?;
    if value.contains('#') {
        return Err(bad(format!(
            "`{}` must not have a fragment",
            printable(value)
        )));
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad(format!(
            "`{}` must name a host and carry no user information",
            printable(value)
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(bad(format!(
                "`{}` uses http, which is allowed only for localhost, 127.0.0.1 and [::1]; use https",
                printable(value)
            )));
        }
        other => {
            return Err(bad(format!(
                "`{}` has scheme `{other}`; use https",
                printable(value)
            )));
        }
    }
    Ok(url)
}

fn check_entry(entry: &AuthorizationServerEntry, allow_insecure: bool) -> Result<(), ConfigError> {
    parse_absolute(&entry.authorization_server_url, "authorization_server_url")?;
    if entry.issuer.is_empty() {
        return Err(ConfigError::new(
            ConfigErrorKind::Missing,
            "issuer",
            "the issuer must not be empty",
        ));
    }
    match &entry.jwks_uri {
        Some(uri) => {
            let jwks = parse_absolute(uri, "jwks_uri")?;
            require_tls(&jwks, uri, "jwks_uri", allow_insecure)?;
        }
        None => {
            // Discovery: the metadata URLs are built from the issuer.
            let issuer = parse_absolute(&entry.issuer, "issuer")?;
            if issuer.query().is_some() || entry.issuer.contains('#') {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidUrl,
                    "issuer",
                    format!(
                        "`{}` has a query or fragment, so its metadata can not be discovered (RFC 8414 §2); give jwks_uri",
                        printable(&entry.issuer)
                    ),
                ));
            }
            require_tls(&issuer, &entry.issuer, "issuer", allow_insecure)?;
        }
    }
    if entry.algorithms.is_empty() {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidAlgorithm,
            "algorithms",
            "at least one algorithm must be allowed",
        ));
    }
    if let Some(alg) = entry.algorithms.iter().find(|a| !a.is_supported()) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidAlgorithm,
            "algorithms",
            format!("{alg} needs the `aws_lc_rs` feature of protected-resource"),
        ));
    }
    if entry.expected_audiences.iter().any(|a| a.is_empty()) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidAudience,
            "expected_audiences",
            "an expected audience must not be empty",
        ));
    }
    Ok(())
}

/// Key material must come over TLS, except from loopback hosts or when explicitly allowed.
fn require_tls(
    url: &reqwest::Url,
    raw: &str,
    field: &str,
    allow_insecure: bool,
) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure || is_loopback_host(url) => Ok(()),
        other => Err(ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            field,
            format!(
                "`{}` uses `{other}`; keys must be fetched over https (http only on loopback hosts)",
                printable(raw)
            ),
        )),
    }
}

/// Whether `s` is an RFC 6750 `scope-token`: 1*( %x21 / %x23-5B / %x5D-7E ).
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Validates scope tokens, drops duplicates (first-seen order kept) and refuses
/// `offline_access`, which a resource must not advertise.
pub(crate) fn clean_scopes(scopes: Vec<String>, field: &str) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for s in scopes {
        if !is_scope_token(&s) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidScope,
                field,
                format!(
                    "`{}` is not an RFC 6750 scope token (printable ASCII without space, `\"` or `\\`)",
                    printable(&s)
                ),
            ));
        }
        if s == "offline_access" {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidScope,
                field,
                "`offline_access` must not be advertised by a protected resource (refresh tokens are not a resource requirement)",
            ));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}
