//! The mock authorization server: JWKS and metadata over real HTTP, behaviours, key rotation.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::signing_key::SigningKey;
use crate::{Algorithm, AuthorizationServerEntry};

/// What the mock server's JWKS endpoint does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JwksBehavior {
    /// Serve the current keys.
    #[default]
    Normal,
    /// Answer with this HTTP status and an empty body.
    Status(u16),
    /// Never answer (until the server is dropped).
    Hang,
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Answer 200 with exactly these bytes.
    Body(Vec<u8>),
    /// Answer 302 to this location.
    Redirect(String),
    /// Serve the current keys after this delay (a slow authorization server).
    Delay(std::time::Duration),
}

struct ServerState {
    issuer: String,
    keys: RwLock<Vec<Arc<SigningKey>>>,
    jwks_requests: AtomicUsize,
    jwks_not_modified: AtomicUsize,
    metadata_requests: AtomicUsize,
    behavior: Mutex<JwksBehavior>,
    cache_control: Mutex<Option<String>>,
    metadata_issuer: Mutex<Option<String>>,
    serve_rfc8414: AtomicBool,
    next_kid: AtomicUsize,
    shutdown: watch::Receiver<bool>,
}

/// A mock OAuth authorization server on `127.0.0.1`; see the [module docs](crate::testkit).
///
/// Dropping it stops the server.
pub struct MockAuthorizationServer {
    state: Arc<ServerState>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MockAuthorizationServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockAuthorizationServer")
            .field("issuer", &self.state.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for MockAuthorizationServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

async fn jwks(State(state): State<Arc<ServerState>>, request: http::request::Parts) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let behavior = state.behavior.lock().map(|b| b.clone()).unwrap_or_default();
    match behavior {
        JwksBehavior::Normal => serve_keys(&state, &request),
        JwksBehavior::Delay(d) => {
            tokio::time::sleep(d).await;
            serve_keys(&state, &request)
        }
        JwksBehavior::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        JwksBehavior::Hang => {
            let mut shutdown = state.shutdown.clone();
            let _ = shutdown.wait_for(|stop| *stop).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        JwksBehavior::Garbage => (
            [(http::header::CONTENT_TYPE, "application/json")],
            "<html>this is not a key set</html>",
        )
            .into_response(),
        JwksBehavior::Body(bytes) => (
            [(http::header::CONTENT_TYPE, "application/json")],
            Body::from(bytes),
        )
            .into_response(),
        JwksBehavior::Redirect(to) => {
            (StatusCode::FOUND, [(http::header::LOCATION, to)]).into_response()
        }
    }
}

/// The current public keys as a JWK set document.
fn jwks_json(state: &ServerState) -> String {
    let keys: Vec<Value> = state
        .keys
        .read()
        .map(|k| k.iter().map(|k| k.jwk.clone()).collect())
        .unwrap_or_default();
    json!({ "keys": keys }).to_string()
}

/// The current key set, with an `ETag` (honouring `If-None-Match`) and the configured
/// `Cache-Control`.
fn serve_keys(state: &ServerState, request: &http::request::Parts) -> Response {
    let body = jwks_json(state);
    let etag = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        format!("\"{:016x}\"", h.finish())
    };
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&etag) {
        headers.insert(http::header::ETAG, v);
    }
    if let Some(cc) = state.cache_control.lock().ok().and_then(|c| c.clone())
        && let Ok(v) = http::HeaderValue::from_str(&cc)
    {
        headers.insert(http::header::CACHE_CONTROL, v);
    }
    let matches = request
        .headers
        .get(http::header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    if matches {
        state.jwks_not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    (headers, body).into_response()
}

async fn rfc8414_metadata(State(state): State<Arc<ServerState>>) -> Response {
    if !state.serve_rfc8414.load(Ordering::SeqCst) {
        state.metadata_requests.fetch_add(1, Ordering::SeqCst);
        return StatusCode::NOT_FOUND.into_response();
    }
    as_metadata(State(state)).await
}

async fn as_metadata(State(state): State<Arc<ServerState>>) -> Response {
    state.metadata_requests.fetch_add(1, Ordering::SeqCst);
    let issuer = &state.issuer;
    let named = state
        .metadata_issuer
        .lock()
        .ok()
        .and_then(|i| i.clone())
        .unwrap_or_else(|| issuer.clone());
    axum::Json(json!({
        "issuer": named,
        "jwks_uri": format!("{issuer}/jwks"),
        "token_endpoint": format!("{issuer}/token"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["none"],
    }))
    .into_response()
}

impl MockAuthorizationServer {
    /// Starts a server with one RS256 key.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(&[Algorithm::RS256]).await
    }

    /// Starts a server with one key per algorithm given, in that order.
    pub async fn start_with(algorithms: &[Algorithm]) -> std::io::Result<Self> {
        Self::start_at(algorithms, "").await
    }

    /// Starts a server whose issuer has a path (`http://127.0.0.1:PORT{path}`, for example
    /// `/tenant/a`), like multi-tenant providers. It serves its JWKS at `{issuer}/jwks` and
    /// its metadata where RFC 8414 (path insertion) and OpenID Connect Discovery (path
    /// insertion and path appending) put it.
    pub async fn start_at(algorithms: &[Algorithm], path: &str) -> std::io::Result<Self> {
        let path = path.trim_end_matches('/');
        if !path.is_empty() && !path.starts_with('/') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the issuer path must start with `/`",
            ));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let state = Arc::new(ServerState {
            issuer: format!("http://{addr}{path}"),
            keys: RwLock::new(Vec::new()),
            jwks_requests: AtomicUsize::new(0),
            jwks_not_modified: AtomicUsize::new(0),
            metadata_requests: AtomicUsize::new(0),
            behavior: Mutex::new(JwksBehavior::Normal),
            cache_control: Mutex::new(None),
            metadata_issuer: Mutex::new(None),
            serve_rfc8414: AtomicBool::new(true),
            next_kid: AtomicUsize::new(1),
            shutdown: rx.clone(),
        });
        let mut app = Router::new()
            .route(&format!("{path}/jwks"), get(jwks))
            .route(
                &format!("/.well-known/oauth-authorization-server{path}"),
                get(rfc8414_metadata),
            )
            .route(
                &format!("/.well-known/openid-configuration{path}"),
                get(as_metadata),
            );
        if !path.is_empty() {
            app = app.route(
                &format!("{path}/.well-known/openid-configuration"),
                get(as_metadata),
            );
        }
        let app = app.with_state(state.clone());
        let mut stop = rx;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        });
        let server = Self {
            state,
            addr,
            shutdown: tx,
            task,
        };
        for alg in algorithms {
            server.add_key(*alg);
        }
        Ok(server)
    }

    /// The issuer (`http://127.0.0.1:PORT`), also the authorization-server URL.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The socket address the server listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JWKS URL (`{issuer}/jwks`).
    #[must_use]
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.state.issuer)
    }

    /// The JWK set this server publishes now (public keys only), for example to seed an entry
    /// with [`initial_jwks`](crate::AuthorizationServerEntry::initial_jwks).
    #[must_use]
    pub fn jwks_json(&self) -> String {
        jwks_json(&self.state)
    }

    /// An entry trusting this server, allowing the algorithms of its current keys.
    #[must_use]
    pub fn entry(&self) -> AuthorizationServerEntry {
        let mut algs: Vec<Algorithm> = self.keys().iter().map(|k| k.alg).collect();
        algs.sort();
        algs.dedup();
        if algs.is_empty() {
            algs.push(Algorithm::RS256);
        }
        AuthorizationServerEntry::new(self.issuer())
            .jwks_uri(self.jwks_uri())
            .algorithms(algs)
    }

    pub(crate) fn keys(&self) -> Vec<Arc<SigningKey>> {
        self.state
            .keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_default()
    }

    /// Adds a new key (published at once) and returns its `kid`.
    #[allow(clippy::must_use_candidate)] // the kid is often not needed
    pub fn add_key(&self, alg: Algorithm) -> String {
        let n = self.state.next_kid.fetch_add(1, Ordering::SeqCst);
        let kid = format!(
            "key-{}-{n}-{}",
            self.addr.port(),
            alg.as_str().to_ascii_lowercase()
        );
        self.add_signing_key(SigningKey::generate(alg, kid.clone()));
        kid
    }

    /// Publishes a key made elsewhere.
    pub fn add_signing_key(&self, key: SigningKey) {
        if let Ok(mut keys) = self.state.keys.write() {
            keys.push(Arc::new(key));
        }
    }

    /// Stops publishing the key `kid` (it can still sign tokens given [`TokenBuilder::key`](crate::testkit::TokenBuilder::key)
    /// is used before removal).
    pub fn remove_key(&self, kid: &str) {
        if let Ok(mut keys) = self.state.keys.write() {
            keys.retain(|k| k.kid != kid);
        }
    }

    /// Replaces every key by one new key for `alg`; returns its `kid`.
    #[allow(clippy::must_use_candidate)] // the kid is often not needed
    pub fn rotate(&self, alg: Algorithm) -> String {
        if let Ok(mut keys) = self.state.keys.write() {
            keys.clear();
        }
        self.add_key(alg)
    }

    /// The `kid`s currently published, in order.
    #[must_use]
    pub fn kids(&self) -> Vec<String> {
        self.keys().iter().map(|k| k.kid.clone()).collect()
    }

    /// How many JWKS requests the server has received (conditional ones included).
    #[must_use]
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many JWKS requests were answered `304 Not Modified` (the JWKS carries an `ETag`
    /// and honours `If-None-Match`).
    #[must_use]
    pub fn jwks_not_modified(&self) -> usize {
        self.state.jwks_not_modified.load(Ordering::SeqCst)
    }

    /// How many metadata (RFC 8414 / OpenID Connect discovery) requests the server received.
    #[must_use]
    pub fn metadata_requests(&self) -> usize {
        self.state.metadata_requests.load(Ordering::SeqCst)
    }

    /// Sends this `Cache-Control` value with the JWKS (`None`: no header, the default).
    pub fn set_jwks_cache_control(&self, value: Option<&str>) {
        if let Ok(mut c) = self.state.cache_control.lock() {
            *c = value.map(str::to_owned);
        }
    }

    /// Makes the metadata documents name this `issuer` instead of the real one (to test the
    /// RFC 8414 §3.3 issuer check); `None` restores the real one.
    pub fn set_metadata_issuer(&self, issuer: Option<&str>) {
        if let Ok(mut i) = self.state.metadata_issuer.lock() {
            *i = issuer.map(str::to_owned);
        }
    }

    /// Whether the RFC 8414 metadata endpoint answers (default) or says 404, leaving only
    /// OpenID Connect discovery.
    pub fn serve_rfc8414_metadata(&self, serve: bool) {
        self.state.serve_rfc8414.store(serve, Ordering::SeqCst);
    }

    /// An entry trusting this server that discovers its `jwks_uri` from the metadata.
    #[must_use]
    pub fn discovery_entry(&self) -> AuthorizationServerEntry {
        let algs = self.entry().get_algorithms().to_vec();
        AuthorizationServerEntry::new(self.issuer()).algorithms(algs)
    }

    /// Changes what the JWKS endpoint does.
    pub fn set_jwks_behavior(&self, behavior: JwksBehavior) {
        if let Ok(mut b) = self.state.behavior.lock() {
            *b = behavior;
        }
    }
}
