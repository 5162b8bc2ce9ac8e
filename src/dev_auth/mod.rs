//! A development authorization server that real MCP clients log in to (feature `dev-auth`).
//!
//! [`DevAuthorizationServer`] is an in-memory OAuth 2.1 authorization server for local
//! development, mounted on the same axum app and port as the protected server, so that its
//! issuer (for example `http://127.0.0.1:8000/dev-auth`) stays the same across restarts.
//! MCP clients (the MCP Inspector, Claude Code, VS Code, the SDKs) discover it through the
//! protected server's RFC 9728 metadata, register (RFC 7591), send the user to its login and
//! consent page, and exchange the code (PKCE S256) for an RFC 9068 access token whose `aud`
//! is the protected resource. A client may instead name itself by the URL of its client ID
//! metadata document (`https`, or loopback `http` in development), fetched with the limits
//! key sets have.
//!
//! **Anyone can log in as anyone**: the page asks which user to be. It is for development
//! only: it answers CORS requests only from loopback origins (so a page of another site can
//! not read a token through the developer's browser) and only requests addressed to its
//! issuer's host or a loopback name (DNS rebinding); its issuer must be a loopback URL unless
//! [`dangerous_allow_non_loopback`](DevAuthorizationServerBuilder::dangerous_allow_non_loopback)
//! says otherwise.
//!
//! ```
//! use axum::{Router, routing::get};
//! use protected_resource::dev_auth::DevAuthorizationServer;
//! use protected_resource::{ProtectedResourceLayer, ResourceServerAuth};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dev = DevAuthorizationServer::builder("http://127.0.0.1:8000/dev-auth")
//!     .resource("http://127.0.0.1:8000/mcp")
//!     .scopes_supported(["mcp:tools", "mcp:admin"])
//!     .build()?;
//! let auth = ResourceServerAuth::builder()
//!     .canonical_url("http://127.0.0.1:8000/mcp")
//!     .authorization_server(dev.entry())
//!     .build()?;
//! let protected: Router = Router::new()
//!     .route("/mcp", get(|| async { "hello" }))
//!     .layer(ProtectedResourceLayer::new(auth));
//! // The authorization server's endpoints first (they take no token), then everything else,
//! // the protected-resource metadata the layer serves included.
//! let app: Router = dev.router().fallback_service(protected);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! Endpoints, under the issuer's path: RFC 8414 metadata at
//! `/.well-known/oauth-authorization-server{path}` and OpenID Connect discovery at
//! `/.well-known/openid-configuration{path}` and `{path}/.well-known/openid-configuration`;
//! `{path}/jwks`, `{path}/register`, `{path}/authorize` (the page; `GET` and its form's
//! `POST`) and `{path}/token` (authorization code, refresh token, client credentials).

mod answer;
mod authorize;
mod client_document;
mod guard;
mod metadata;
mod page;
mod params;
mod register;
mod revoke;
mod store;
mod token;
mod token_exchange;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use reqwest::Url;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use self::store::{Bounded, Client, Grant};
use crate::algorithm::Algorithm;
use crate::config::AuthorizationServerEntry;
use crate::config::{
    DEFAULT_JWKS_CONNECT_TIMEOUT, DEFAULT_JWKS_FETCH_TIMEOUT, DEFAULT_JWKS_MAX_RESPONSE_BYTES,
};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::keys::fetch::HttpFetcher;
use crate::signing_key::SigningKey;

/// The scope that lets a client get refresh tokens; always supported.
const OFFLINE_ACCESS: &str = "offline_access";
/// Access-token lifetime.
const ACCESS_TOKEN_SECONDS: u64 = 3600;
/// Client ID metadata documents fetched at the same time, at most (more: refused).
const MAX_DOCUMENT_FETCHES: usize = 4;

/// The development authorization server; see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct DevAuthorizationServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DevAuthorizationServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAuthorizationServer")
            .field("issuer", &self.inner.issuer)
            .field("resources", &self.inner.resources)
            .field("scopes_supported", &self.inner.scopes)
            .field("auto_approve", &self.inner.auto_approve)
            .finish_non_exhaustive()
    }
}

/// Shared by the endpoints.
pub(crate) struct Inner {
    issuer: String,
    /// The issuer's path (`/dev-auth`), empty for an issuer without one.
    path: String,
    resources: Vec<String>,
    /// Audiences a token exchange may name besides the resources (logical names).
    exchange_audiences: Vec<String>,
    /// Supported scopes, `offline_access` included.
    scopes: Vec<String>,
    /// Granted when an authorization request names no scope.
    default_scopes: Vec<String>,
    auto_approve: Option<String>,
    /// The issuer URL's host, for the host check (`guard.rs`).
    issuer_host: String,
    key: SigningKey,
    /// Client ID metadata documents being fetched at once, at most.
    document_fetches: tokio::sync::Semaphore,
    clients: Bounded<Arc<Client>>,
    /// Clients described by client ID metadata documents, by URL, for a few minutes.
    documents: Bounded<Arc<Client>>,
    fetcher: HttpFetcher,
    /// Authorization requests waiting for the user's answer on the page.
    pending: Bounded<Grant>,
    codes: Bounded<Grant>,
    refresh_tokens: Bounded<Grant>,
}

/// Builds a [`DevAuthorizationServer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DevAuthorizationServerBuilder {
    issuer: String,
    resources: Vec<String>,
    exchange_audiences: Vec<String>,
    scopes: Vec<String>,
    default_scopes: Option<Vec<String>>,
    auto_approve: Option<String>,
    allow_non_loopback: bool,
}

impl DevAuthorizationServer {
    /// Starts building a server whose issuer (and base URL) is `issuer`, for example
    /// `http://127.0.0.1:8000/dev-auth`.
    pub fn builder(issuer: impl Into<String>) -> DevAuthorizationServerBuilder {
        DevAuthorizationServerBuilder {
            issuer: issuer.into(),
            resources: Vec::new(),
            exchange_audiences: Vec::new(),
            scopes: Vec::new(),
            default_scopes: None,
            auto_approve: None,
            allow_non_loopback: false,
        }
    }

    /// The issuer URL.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The protected resources tokens may be issued for.
    #[must_use]
    pub fn resources(&self) -> &[String] {
        &self.inner.resources
    }

    /// The `jwks_uri` (`{issuer}/jwks`).
    #[must_use]
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.inner.issuer)
    }

    /// The authorization endpoint, the page a user logs in on.
    #[must_use]
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/authorize", self.inner.issuer)
    }

    /// An entry for [`ResourceServerAuthBuilder::authorization_server`](crate::ResourceServerAuthBuilder::authorization_server)
    /// trusting this server (its keys fetched from [`jwks_uri`](Self::jwks_uri)).
    #[must_use]
    pub fn entry(&self) -> AuthorizationServerEntry {
        AuthorizationServerEntry::new(self.inner.issuer.clone())
            .jwks_uri(self.jwks_uri())
            .algorithm(self.inner.key.algorithm())
    }

    /// The server's endpoints, to put in front of the protected application (outside the
    /// [`ProtectedResourceLayer`](crate::ProtectedResourceLayer): they take no token), for
    /// example `dev.router().fallback_service(protected_app)`: a `merge` after the layer would
    /// leave paths without a route, such as the protected-resource metadata the layer
    /// answers, outside it.
    pub fn router<S>(&self) -> Router<S> {
        let p = &self.inner.path;
        // Browser clients on this machine (the MCP Inspector) may read the answers; pages of
        // other sites may not.
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(|origin, _| {
                guard::loopback_origin(origin)
            }))
            .allow_methods(Any)
            .allow_headers(Any)
            .max_age(Duration::from_secs(600));
        let mut api = Router::new()
            .route(
                &format!("/.well-known/oauth-authorization-server{p}"),
                get(metadata::metadata),
            )
            .route(
                &format!("/.well-known/openid-configuration{p}"),
                get(metadata::metadata),
            )
            .route(&format!("{p}/jwks"), get(metadata::jwks))
            .route(&format!("{p}/register"), post(register::register))
            .route(&format!("{p}/token"), post(token::token))
            .route(&format!("{p}/revoke"), post(revoke::revoke));
        if !p.is_empty() {
            api = api.route(
                &format!("{p}/.well-known/openid-configuration"),
                get(metadata::metadata),
            );
        }
        let page = Router::new().route(
            &format!("{p}/authorize"),
            get(authorize::show).post(authorize::answer),
        );
        api.layer(cors)
            .merge(page)
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
            .layer(axum::middleware::from_fn_with_state(
                self.inner.clone(),
                guard::check_host,
            ))
            .with_state(self.inner.clone())
    }

    /// Registers a confidential client in process (as `POST /register` would) with these
    /// grant types (`client_credentials`, `urn:ietf:params:oauth:grant-type:token-exchange`,
    /// …) and no redirect URIs: for the application's own client, say one that exchanges its
    /// users' tokens. Answers the client id and secret; `None` when a grant type is unknown
    /// or no randomness is available.
    #[must_use]
    pub fn register_confidential_client(
        &self,
        name: &str,
        grant_types: &[&str],
    ) -> Option<(String, String)> {
        if !grant_types
            .iter()
            .all(|g| register::GRANT_TYPES.contains(g))
        {
            return None;
        }
        self.register_in_process(name, grant_types, &[])
    }

    /// Registers a confidential web client in process (as `POST /register` would) for the
    /// authorization-code and refresh-token grants with these exact `redirect_uris`: for the
    /// application's own login, say the connect pages of
    /// [`ConnectedAccounts`](crate::downstream::ConnectedAccounts). Answers the client id and
    /// secret; `None` when no randomness is available.
    #[must_use]
    pub fn register_web_client(
        &self,
        name: &str,
        redirect_uris: &[&str],
    ) -> Option<(String, String)> {
        self.register_in_process(
            name,
            &["authorization_code", "refresh_token"],
            redirect_uris,
        )
    }

    /// A confidential `client_secret_basic` client, registered in process.
    fn register_in_process(
        &self,
        name: &str,
        grant_types: &[&str],
        redirect_uris: &[&str],
    ) -> Option<(String, String)> {
        let (id, secret) = (store::random_handle()?, store::random_handle()?);
        let client = store::Client {
            id: id.clone(),
            secret: Some(secret.clone()),
            name: Some(name.to_owned()),
            redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
            grant_types: grant_types.iter().map(|g| (*g).to_owned()).collect(),
            auth_method: store::AuthMethod::ClientSecretBasic,
        };
        self.inner
            .clients
            .insert_as(id.clone(), Arc::new(client))
            .then_some((id, secret))
    }

    /// Mints an access token for `user` with `scope` (space-separated) for the first
    /// resource, as if client `dev-client` had obtained it: for printing ready-made tokens.
    ///
    /// # Panics
    /// When the crypto library fails to sign (it never does on a working system).
    #[must_use]
    #[allow(clippy::expect_used)] // documented: a start-up helper, no request reaches it
    pub fn access_token(&self, user: &str, scope: &str) -> String {
        let resource = self.inner.resources.first().map_or("", String::as_str);
        let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
        self.inner
            .mint(user, "dev-client", &scopes, resource, None)
            .expect("signing")
    }
}

impl DevAuthorizationServerBuilder {
    /// A protected resource (its canonical URL) tokens may be issued for: the `resource`
    /// parameter (RFC 8707) must name one, and becomes the token's `aud`. At least one.
    pub fn resource(mut self, url: impl Into<String>) -> Self {
        self.resources.push(url.into());
        self
    }

    /// An audience that token exchange (RFC 8693 `audience`) may issue tokens for besides the
    /// resources: a logical name of a downstream API such as `acme-api`.
    pub fn exchange_audience(mut self, audience: impl Into<String>) -> Self {
        self.exchange_audiences.push(audience.into());
        self
    }

    /// The scopes clients may ask for (`offline_access` is always added).
    pub fn scopes_supported<S: Into<String>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The scopes granted when an authorization request names none (default: every
    /// supported scope but `offline_access`).
    pub fn default_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.default_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Skips the page: every valid authorization request is approved at once for `user`
    /// (for headless clients and CI).
    pub fn auto_approve(mut self, user: impl Into<String>) -> Self {
        self.auto_approve = Some(user.into());
        self
    }

    /// Allows an issuer whose host is not a loopback address. Anyone who can reach it can
    /// log in as anyone: never on a network others share.
    pub fn dangerous_allow_non_loopback(mut self) -> Self {
        self.allow_non_loopback = true;
        self
    }

    /// Checks the configuration and generates the signing key (RSA 2048, RS256).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field: `issuer` (not an absolute `http(s)` URL without
    /// query or fragment, or not loopback), `resource` (none, or not an absolute URL),
    /// `scopes_supported` / `default_scopes` (a scope breaking RFC 6749 §3.3, or a default
    /// that is not supported), `auto_approve` (an unusable user name).
    pub fn build(self) -> Result<DevAuthorizationServer, ConfigError> {
        let issuer = self.issuer.trim_end_matches('/').to_owned();
        let url = Url::parse(&issuer).map_err(|e| {
            ConfigError::new(
                ConfigErrorKind::InvalidUrl,
                "issuer",
                format!("`{issuer}`: {e}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || url.query().is_some()
            || url.fragment().is_some()
            || url.host().is_none()
        {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidUrl,
                "issuer",
                format!("`{issuer}` must be an http(s) URL without query or fragment"),
            ));
        }
        if !self.allow_non_loopback && !guard::strict_loopback(&url) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidUrl,
                "issuer",
                format!(
                    "`{issuer}` is not a loopback URL (localhost, 127.0.0.0/8, [::1]): a development authorization server lets anyone log in as anyone (dangerous_allow_non_loopback to force)"
                ),
            ));
        }
        if self.resources.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::Missing,
                "resource",
                "name at least one protected resource",
            ));
        }
        for r in &self.resources {
            if Url::parse(r).map_or(true, |u| u.fragment().is_some()) {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidUrl,
                    "resource",
                    format!("`{r}` is not an absolute URL without fragment"),
                ));
            }
        }
        let mut scopes = check_scopes("scopes_supported", &self.scopes)?;
        let default_scopes = match &self.default_scopes {
            Some(d) => check_scopes("default_scopes", d)?,
            None => scopes.clone(),
        };
        if let Some(s) = default_scopes.iter().find(|s| !scopes.contains(s)) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidScope,
                "default_scopes",
                format!("`{s}` is not in scopes_supported"),
            ));
        }
        if !scopes.iter().any(|s| s == OFFLINE_ACCESS) {
            scopes.push(OFFLINE_ACCESS.to_owned());
        }
        let default_scopes = default_scopes
            .into_iter()
            .filter(|s| s != OFFLINE_ACCESS)
            .collect();
        if let Some(user) = &self.auto_approve
            && !page::acceptable_user(user)
        {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "auto_approve",
                "a user name is 1 to 128 characters, no control characters",
            ));
        }
        let path = url.path().trim_end_matches('/').to_owned();
        let issuer_host = url.host_str().unwrap_or_default().to_owned();
        let key = SigningKey::try_generate(Algorithm::RS256, "dev-auth-1").ok_or_else(|| {
            ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "signing key",
                "the crypto library could not generate an RSA key",
            )
        })?;
        // Client ID metadata documents are fetched with the limits key sets have.
        let fetcher = HttpFetcher::new(
            DEFAULT_JWKS_CONNECT_TIMEOUT,
            DEFAULT_JWKS_FETCH_TIMEOUT,
            DEFAULT_JWKS_MAX_RESPONSE_BYTES,
            &[],
        )?;
        Ok(DevAuthorizationServer {
            inner: Arc::new(Inner {
                issuer,
                path,
                resources: self.resources,
                exchange_audiences: self.exchange_audiences,
                scopes,
                default_scopes,
                auto_approve: self.auto_approve,
                issuer_host,
                key,
                document_fetches: tokio::sync::Semaphore::new(MAX_DOCUMENT_FETCHES),
                clients: Bounded::new(10_000, Duration::from_secs(30 * 24 * 3600)),
                documents: Bounded::new(1_000, Duration::from_secs(300)),
                fetcher,
                pending: Bounded::new(10_000, Duration::from_secs(600)),
                codes: Bounded::new(10_000, Duration::from_secs(60)),
                refresh_tokens: Bounded::new(100_000, Duration::from_secs(30 * 24 * 3600)),
            }),
        })
    }
}

fn check_scopes(field: &str, scopes: &[String]) -> Result<Vec<String>, ConfigError> {
    params::scopes(&scopes.join(" "))
        .filter(|s| s.len() == scopes.len())
        .ok_or_else(|| {
            ConfigError::new(
                ConfigErrorKind::InvalidScope,
                field,
                "each scope is one non-empty RFC 6749 scope-token, named once",
            )
        })
}
