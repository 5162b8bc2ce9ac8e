//! The builders: [`ResourceServerAuthBuilder`] (here) and [`JwksTokenValidatorBuilder`]
//! (`validator.rs`), whose `build()` checks every setting and assembles the running
//! [`ResourceServerAuth`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

mod dpop;
mod keys;
mod validator;

pub use self::validator::JwksTokenValidatorBuilder;

use crate::algorithm::Algorithm;
use crate::algorithm::install_crypto_provider;
use crate::auth::{AuthInner, ResourceServerAuth};
use crate::challenge::Challenger;
use crate::config::{
    self, AuthorizationServerEntry, JwksOptions, SessionOptions, check_canonical_url, check_entry,
    clean_scopes, parse_absolute,
};
use crate::cors::{AllowedOrigins, cors_layer};
use crate::env::{self, EnvSource};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::introspection::Introspector;
use crate::issuer_labels::IssuerLabels;
use crate::jwt::Validator;
use crate::keys::KeyStore;
use crate::metadata::{Document, Metadata};
use crate::scope::{ScopeContext, ScopeHierarchy};
use crate::sealing_key::SealingKey;
use crate::session::SessionSeal;
use crate::tenants::Tenants;

impl ResourceServerAuth {
    /// Starts a configuration.
    pub fn builder() -> ResourceServerAuthBuilder {
        ResourceServerAuthBuilder::default()
    }

    /// The whole configuration from the process environment (see [`crate::env`] for the
    /// variables). Same as `ResourceServerAuth::builder().with_env().build()`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().with_env().build()
    }
}

/// Builds a [`ResourceServerAuth`]; see there for an example.
///
/// Values set here win over the environment when [`with_env`](Self::with_env) is also used,
/// whatever the order of the calls.
#[derive(Default, Clone)]
#[must_use]
pub struct ResourceServerAuthBuilder {
    canonical_url: Option<String>,
    authorization_servers: Option<Vec<AuthorizationServerEntry>>,
    scopes_supported: Option<Vec<String>>,
    default_challenge_scopes: Option<Vec<String>>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    resource_policy_uri: Option<String>,
    resource_tos_uri: Option<String>,
    resource_signing_alg_values_supported: Option<Vec<Algorithm>>,
    jwks: JwksOptions,
    /// The key-cache settings set in code (by their names in `JwksOptions::check`'s errors),
    /// which the environment does not override.
    jwks_in_code: Vec<&'static str>,
    /// From the environment: the variable each other key-cache setting came from.
    jwks_from_env: Vec<(&'static str, String)>,
    /// PEM documents of extra trust anchors, and where they came from.
    root_certificates: Vec<(String, Vec<u8>)>,
    max_token_bytes: Option<usize>,
    allowed_origins: AllowedOrigins,
    env: Option<EnvSource>,
    scope_rules: Vec<(String, Vec<String>)>,
    sessions: SessionOptions,
    dpop: dpop::DpopSettings,
    forward_bearer_token: bool,
    /// Inverted so that `Default` keeps them (the default is on).
    step_up_drops_granted: bool,
    /// `true` for [`JwksTokenValidator`]: no metadata is served or pointed to.
    pub(crate) without_metadata: bool,
}

/// Hand-written so that an environment given to [`with_env_vars`](Self::with_env_vars) (often
/// a whole process environment, secrets included) is never printed.
impl std::fmt::Debug for ResourceServerAuthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServerAuthBuilder")
            .field("canonical_url", &self.canonical_url)
            .field("authorization_servers", &self.authorization_servers)
            .field("scopes_supported", &self.scopes_supported)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
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
    /// [`McpScopesLayer`](crate::McpScopesLayer). They never change what a challenge
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

    /// Whether a 403 step-up challenge also names the caller's granted scopes that are in
    /// [`scopes_supported`](Self::scopes_supported) (default `true`). MCP 2025-11-25
    /// recommends it: a client re-authorizes for exactly the challenge's scopes, and would
    /// otherwise lose the ones it had (a token with `mcp:tools` calling an `mcp:admin` tool
    /// gets `scope="mcp:admin mcp:tools"`). Only advertised scopes are repeated, so a
    /// challenge never discloses scopes the resource does not publish.
    pub fn step_up_keeps_granted_scopes(mut self, keep: bool) -> Self {
        self.step_up_drops_granted = !keep;
        self
    }

    /// **Dangerous**: let the inner service see the `Authorization` header. Default `false`:
    /// the front door removes it before the inner service runs, because MCP servers must
    /// not pass the client's token on (MCP authorization specification, "Token Passthrough";
    /// the token was issued for this resource only) and tools receive the whole request.
    /// A handler that needs the token for a token exchange reads it deliberately with
    /// [`ResourceOwner::bearer_token`](crate::ResourceOwner::bearer_token) instead.
    pub fn dangerous_forward_bearer_token(mut self, forward: bool) -> Self {
        self.forward_bearer_token = forward;
        self
    }

    /// Whether MCP sessions are bound to the user that created them (default `true`).
    ///
    /// When the inner service answers with an `Mcp-Session-Id`, the client gets it sealed to
    /// the token's (`iss`, `sub`): `<id>.<HMAC tag>` under the [`session_key`](Self::session_key).
    /// A later request carrying it is checked against its own token, and the inner service
    /// sees the id it issued. A request naming another user's session, or any id that does
    /// not verify, reaches the MCP server with every session id replaced by a random decoy of
    /// the same shape, so the server answers it exactly as it answers any unknown session
    /// (404 from rmcp), byte for byte, and the real session is never touched: the caller can
    /// not even tell that the session is live. Session ids are not authentication (MCP
    /// security best practices, "Session Hijacking"). Nothing is stored: every replica with
    /// the same key enforces the binding, across restarts.
    pub fn bind_mcp_sessions(mut self, on: bool) -> Self {
        self.sessions.enabled = on;
        self
    }

    /// The key sealing MCP session ids (and available to the application through
    /// [`ResourceServerAuth::sealing_key`]). Every replica behind one load balancer needs the
    /// same key. Default: `MCP_SERVER_SESSION_KEY` when the environment is read, else a random
    /// key for this process, with a warning: then sessions end with the process and can not
    /// move between replicas.
    pub fn session_key(mut self, key: SealingKey) -> Self {
        self.sessions.key = Some(key);
        self
    }

    /// No longer has any effect: session bindings are sealed into the session id, not stored.
    #[deprecated(
        since = "0.2.0",
        note = "session bindings are no longer stored; nothing to size"
    )]
    pub fn mcp_session_binding_limits(self, _capacity: u64, _idle: Duration) -> Self {
        self
    }

    /// Fills every value not set in code from the process environment when `build()` runs
    /// (see [`crate::env`]).
    pub fn with_env(mut self) -> Self {
        self.env = Some(EnvSource::Process);
        self
    }

    /// Like [`with_env`](Self::with_env), but reads these variables instead of the process
    /// environment (for tests and for configuration loaded from elsewhere). Only the
    /// variables of [`crate::env`] are kept; the builder's `Debug` never prints their values.
    pub fn with_env_vars<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| env::is_ours(k))
            .collect();
        self.env = Some(EnvSource::Map(map));
        self
    }

    /// Checks everything and builds the shared state (key cache, HTTP client, metadata).
    /// Fetches nothing: keys are fetched by the first request that needs them, or by
    /// [`ResourceServerAuth::warm_up`].
    pub fn build(mut self) -> Result<ResourceServerAuth, ConfigError> {
        if let Some(source) = self.env.take() {
            self.fill_from(&source)?;
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
        let max_token_bytes = self
            .max_token_bytes
            .unwrap_or(config::DEFAULT_MAX_TOKEN_BYTES);
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
        let cors = cors_layer(&self.allowed_origins)?;
        install_crypto_provider();
        let retry_after_secs = self.jwks.refetch_cooldown.as_secs_f64().ceil().max(1.0) as u64;
        let roots = self
            .root_certificates
            .iter()
            .map(|(field, pem)| {
                keys::parse_root_certificates(pem)
                    .map_err(|m| ConfigError::new(ConfigErrorKind::InvalidValue, field.as_str(), m))
            })
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        let keys = KeyStore::new(self.jwks.clone(), &entries, &roots).map_err(|e| {
            // A range error in a setting the environment gave names its variable.
            match self
                .jwks_from_env
                .iter()
                .find(|(field, _)| *field == e.field())
            {
                Some((_, var)) => ConfigError::new(e.kind(), var.as_str(), e.message().to_owned()),
                None => e,
            }
        })?;
        let hierarchy = ScopeHierarchy::new(&self.scope_rules)?;
        let sealing_key = match self.sessions.key.clone() {
            Some(key) => key,
            None => {
                if self.sessions.enabled {
                    tracing::warn!(
                        "MCP sessions are bound with a random key of this process: they end when it \
                         stops and can not move to another replica (set MCP_SERVER_SESSION_KEY)"
                    );
                }
                SealingKey::random()?
            }
        };
        let sessions = self
            .sessions
            .enabled
            .then(|| SessionSeal::new(sealing_key.clone()));

        let mut as_urls: Vec<String> = Vec::new();
        for e in &entries {
            let url = e.get_authorization_server_url();
            if !as_urls.iter().any(|u| u == url) {
                as_urls.push(url.to_owned());
            }
        }
        let dpop = dpop::assemble(
            &self.dpop,
            &entries,
            &canonical_parsed.origin().ascii_serialization(),
        )?;
        let metadata = Metadata::new(
            &canonical,
            &canonical_parsed,
            &Document {
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
                dpop_signing_alg_values_supported: dpop.algs,
                dpop_bound_access_tokens_required: dpop.required,
            },
        );
        let metadata = (!self.without_metadata).then_some(metadata);
        let scopes = Arc::new(ScopeContext {
            resource_metadata: metadata.as_ref().map(|m| m.url.clone()),
            hierarchy,
            keep_in_step_up: if self.step_up_drops_granted {
                Vec::new()
            } else {
                scopes_supported.clone()
            },
            dpop: dpop.challenge.clone(),
        });
        let introspector =
            Introspector::for_entries(&entries, &canonical, &roots, &self.jwks, scopes.clone())?;
        let tenants = Tenants::for_entries(&entries, &canonical, &self.jwks, &roots)?;
        let validator = Validator::new(
            &entries,
            &canonical,
            keys,
            max_token_bytes,
            scopes,
            introspector,
            tenants,
        );
        tracing::info!(
            canonical_url = %canonical,
            authorization_servers = ?as_urls,
            "Resource Server auth enabled: accepting tokens from {} authorization server(s)",
            as_urls.len()
        );
        let challenger = Challenger {
            resource_metadata: metadata.as_ref().map(|m| m.url.clone()),
            scope: (!challenge.is_empty()).then(|| challenge.join(" ")),
            retry_after_secs,
            dpop: dpop.challenge,
        };
        Ok(ResourceServerAuth {
            inner: Arc::new(AuthInner {
                canonical_url: canonical,
                validator,
                metadata,
                sessions,
                sealing_key,
                cors,
                challenger,
                issuer_labels: IssuerLabels::new(&entries),
                entries,
                scopes_supported,
                dpop: dpop.guard,
                forward_bearer_token: self.forward_bearer_token,
            }),
        })
    }

    /// Fills every value not set in code from the environment.
    fn fill_from(&mut self, source: &EnvSource) -> Result<(), ConfigError> {
        if self.canonical_url.is_none() {
            self.canonical_url = env::canonical_url(source)?;
        }
        if self.authorization_servers.is_none() {
            self.authorization_servers = env::authorization_servers(source)?;
        }
        if self.scopes_supported.is_none() {
            self.scopes_supported = env::scopes(source, env::SCOPES_SUPPORTED)?;
        }
        if self.default_challenge_scopes.is_none() {
            self.default_challenge_scopes = env::scopes(source, env::DEFAULT_CHALLENGE_SCOPES)?;
        }
        if self.sessions.key.is_none() {
            self.sessions.key = env::session_key(source)?;
        }
        if self.max_token_bytes.is_none() {
            self.max_token_bytes = env::max_token_bytes(source)?;
        }
        if self.dpop.nonce_key.is_none() {
            self.dpop.nonce_key = env::dpop_nonce_key(source)?;
        }
        if self.dpop.replay_redis.is_none() {
            self.dpop.replay_redis = env::dpop_replay_store(source)?;
        }
        if self.root_certificates.is_empty()
            && let Some(pem) = env::ca_certs(source)?
        {
            self.root_certificates.push(pem);
        }
        self.jwks_from_env = env::jwks_settings(source, &mut self.jwks, &self.jwks_in_code)?;
        Ok(())
    }
}
