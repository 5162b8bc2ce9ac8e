//! The running resource server: [`ResourceServerAuth`] (one `Arc` holding everything the front
//! door needs) and the single-issuer [`JwksTokenValidator`]. Both are assembled by the
//! builders in `builder.rs`.

use std::sync::Arc;
use std::time::Duration;

use tower_http::cors::CorsLayer;

use crate::challenge::Challenger;
use crate::claim_rules::ProofBinding;
use crate::config::{self, AuthorizationServerEntry};
use crate::error::ValidationError;
use crate::jwt::Validator;
use crate::keys::{KeySetStats, WarmUpError};
use crate::metadata::Metadata;
use crate::owner::ResourceOwner;
use crate::sealing_key::SealingKey;
use crate::session::SessionSeal;

/// The configuration of a protected resource, validated and ready to serve. Mirrors the
/// model's `ResourceServerAuth`. Cheap to clone (one `Arc`).
///
/// Build it with [`ResourceServerAuth::builder`] or [`ResourceServerAuth::from_env`], then
/// hand it to [`ProtectedResourceLayer::new`](crate::ProtectedResourceLayer::new). It can also
/// validate tokens outside HTTP ([`validate`](Self::validate)).
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
///     .scopes_supported(["mcp:tools"])
///     .build()?;
/// assert_eq!(
///     auth.resource_metadata_url(),
///     Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
/// );
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ResourceServerAuth {
    pub(crate) inner: Arc<AuthInner>,
}

/// Everything a request needs, built once by `build()`.
pub(crate) struct AuthInner {
    pub(crate) canonical_url: String,
    pub(crate) validator: Validator,
    /// `None` for a [`JwksTokenValidator`]: no metadata is served or pointed to.
    pub(crate) metadata: Option<Metadata>,
    /// `None` when CORS is disabled.
    pub(crate) cors: Option<CorsLayer>,
    pub(crate) challenger: Challenger,
    pub(crate) entries: Vec<AuthorizationServerEntry>,
    /// The configured issuers (and issuer patterns) as metric and span label values.
    pub(crate) issuer_labels: crate::issuer_labels::IssuerLabels,
    pub(crate) scopes_supported: Vec<String>,
    /// `None` when session binding is off.
    pub(crate) sessions: Option<SessionSeal>,
    /// Binds sessions (and whatever else the application seals) to their users.
    pub(crate) sealing_key: SealingKey,
    /// The DPoP proof check; `None` when every entry has DPoP off.
    pub(crate) dpop: Option<crate::dpop::DpopGuard>,
    /// Whether the inner service still sees the `Authorization` header.
    pub(crate) forward_bearer_token: bool,
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
    /// Default cap on the size of a bearer token: 16 KiB
    /// ([`max_token_bytes`](crate::ResourceServerAuthBuilder::max_token_bytes)).
    pub const DEFAULT_MAX_TOKEN_BYTES: usize = config::DEFAULT_MAX_TOKEN_BYTES;
    /// Default key-set lifetime when the answer has no caching headers: 1 hour.
    pub const DEFAULT_JWKS_CACHE_TTL: Duration = config::DEFAULT_JWKS_CACHE_TTL;
    /// Default bounds of a server-given key-set lifetime: 1 minute to 24 hours.
    pub const DEFAULT_JWKS_CACHE_TTL_BOUNDS: (Duration, Duration) =
        config::DEFAULT_JWKS_CACHE_TTL_BOUNDS;
    /// Default time past expiry that keys are still used while refreshes fail: 24 hours.
    pub const DEFAULT_JWKS_STALE_IF_ERROR: Duration = config::DEFAULT_JWKS_STALE_IF_ERROR;
    /// Default least time between refetches for unknown key ids: 5 seconds.
    pub const DEFAULT_JWKS_REFETCH_COOLDOWN: Duration = config::DEFAULT_JWKS_REFETCH_COOLDOWN;
    /// Default longest wait between retries of a failing key-set fetch: 5 minutes.
    pub const DEFAULT_JWKS_MAX_BACKOFF: Duration = config::DEFAULT_JWKS_MAX_BACKOFF;
    /// Default total time for one key-set fetch: 5 seconds.
    pub const DEFAULT_JWKS_FETCH_TIMEOUT: Duration = config::DEFAULT_JWKS_FETCH_TIMEOUT;
    /// Default time to connect to a key-set host: 2 seconds.
    pub const DEFAULT_JWKS_CONNECT_TIMEOUT: Duration = config::DEFAULT_JWKS_CONNECT_TIMEOUT;
    /// Default largest key-set response: 1 MiB.
    pub const DEFAULT_JWKS_MAX_RESPONSE_BYTES: usize = config::DEFAULT_JWKS_MAX_RESPONSE_BYTES;

    /// The key that binds MCP sessions to their users: the one given to
    /// [`session_key`](crate::ResourceServerAuthBuilder::session_key) or by
    /// `MCP_SERVER_SESSION_KEY`, else a random one drawn for this process. An application can
    /// seal its own state with it, for example with a [`StateSealer`](crate::StateSealer)
    /// (session ids and state handles have their own domain labels, and each sealer its
    /// purpose, so nothing sealed for one use opens for another).
    #[must_use]
    pub fn sealing_key(&self) -> &SealingKey {
        &self.inner.sealing_key
    }

    /// The canonical URL of this resource (the metadata's `resource`, the default audience).
    #[must_use]
    pub fn canonical_url(&self) -> &str {
        &self.inner.canonical_url
    }

    /// The URL of the protected-resource metadata document, as sent in `resource_metadata`
    /// (`None` for a [`JwksTokenValidator`], which serves no metadata).
    #[must_use]
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.inner.metadata.as_ref().map(|m| m.url.as_str())
    }

    /// The trusted authorization servers, in configuration order.
    #[must_use]
    pub fn authorization_servers(&self) -> &[AuthorizationServerEntry] {
        &self.inner.entries
    }

    /// The scopes advertised in the metadata.
    #[must_use]
    pub fn scopes_supported(&self) -> &[String] {
        &self.inner.scopes_supported
    }

    /// Validates a bearer token (without the `Bearer ` prefix) outside of HTTP, for example
    /// for a WebSocket handshake or a queue message. The layer does exactly this for every
    /// request; [`ValidationError::status`] says whether to refuse (401) or retry (503).
    pub async fn validate(&self, token: &str) -> Result<ResourceOwner, ValidationError> {
        let owner = match self.inner.validator.validate_now(token, None) {
            Some(decided) => decided?,
            None => self.inner.validator.validate(token, None).await?,
        };
        Ok(owner.with_bearer_token(token.to_owned()))
    }

    /// [`validate`](Self::validate) for a token the caller owns (no copy), sent with the
    /// DPoP `proof` (checked against the request) or as a bearer token, when `validate_now`
    /// could not decide.
    pub(crate) async fn validate_owned(
        &self,
        token: String,
        proof: Option<ProofBinding<'_>>,
    ) -> Result<ResourceOwner, ValidationError> {
        let owner = self.inner.validator.validate(&token, proof).await?;
        Ok(owner.with_bearer_token(token))
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
        let failed = self.inner.validator.keys().warm_up(deadline).await;
        WarmUpError::new(failed).map_or(Ok(()), Err)
    }

    /// A statistics snapshot per key source (configured `jwks_uri`, or issuer with a
    /// discovered one), in configuration order: fetches, failures, hits, misses, unknown-kid
    /// refetches, keys held, age. Cheap (atomics and one small map); suitable for a metrics
    /// exporter's scrape callback.
    #[must_use]
    pub fn key_set_stats(&self) -> Vec<KeySetStats> {
        self.inner.validator.keys().stats()
    }
}

/// A single-issuer token validator that serves no protected-resource metadata, for
/// development and simple setups. Mirrors the model's `JWKSTokenValidator`.
///
/// Use it on its own with [`validate`](Self::validate), or in front of a service with
/// [`ProtectedResourceLayer::from_validator`](crate::ProtectedResourceLayer::from_validator)
/// (whose 401 answers then carry no `resource_metadata`, as there is no metadata to point to).
///
/// ```
/// use protected_resource::{Algorithm, JwksTokenValidator};
///
/// let validator = JwksTokenValidator::builder("https://auth.example.com")
///     .jwks_uri("https://auth.example.com/jwks")
///     .audience("http://127.0.0.1:8000/mcp")
///     .algorithm(Algorithm::ES256)
///     .build()?;
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

impl JwksTokenValidator {
    /// Validates a bearer token (without the `Bearer ` prefix).
    pub async fn validate(&self, token: &str) -> Result<ResourceOwner, ValidationError> {
        self.auth.validate(token).await
    }

    /// Fetches the key set now; see [`ResourceServerAuth::warm_up`].
    pub async fn warm_up(&self, deadline: Duration) -> Result<(), WarmUpError> {
        self.auth.warm_up(deadline).await
    }

    /// Key-set statistics; see [`ResourceServerAuth::key_set_stats`].
    #[must_use]
    pub fn key_set_stats(&self) -> Vec<KeySetStats> {
        self.auth.key_set_stats()
    }
}
