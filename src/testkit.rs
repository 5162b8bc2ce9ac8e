//! A real mock authorization server for tests (feature `test-util`).
//!
//! [`MockAuthorizationServer`] generates RSA, EC (P-256, P-384, P-521) and Ed25519 keys, serves
//! its JWKS (with an `ETag`, honouring `If-None-Match`, and an optional `Cache-Control`) and
//! RFC 8414 / OpenID Connect metadata over real HTTP on `127.0.0.1` with an OS-chosen port
//! (issuers with a path too, see [`MockAuthorizationServer::start_at`]), mints tokens with any
//! claims and headers, counts JWKS and metadata requests, can be told to fail (500, hang,
//! garbage, oversized, redirect, metadata naming another issuer) and rotates keys. It is the
//! way to test handlers behind [`ProtectedResourceLayer`](crate::ProtectedResourceLayer):
//!
//! ```
//! use axum::{Router, routing::get};
//! use protected_resource::testkit::MockAuthorizationServer;
//! use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
//! use tower::ServiceExt;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let as_ = MockAuthorizationServer::start().await?;
//! let auth = ResourceServerAuth::builder()
//!     .canonical_url("http://127.0.0.1:8000/mcp")
//!     .authorization_server(as_.entry())
//!     .build()?;
//! let app = Router::new()
//!     .route("/mcp", get(|o: ResourceOwner| async move { o.user_id().to_owned() }))
//!     .layer(ProtectedResourceLayer::new(auth));
//!
//! let token = as_.token().audience("http://127.0.0.1:8000/mcp").subject("alice").sign();
//! let res = app
//!     .oneshot(
//!         http::Request::get("/mcp")
//!             .header("authorization", format!("Bearer {token}"))
//!             .body(axum::body::Body::empty())?,
//!     )
//!     .await?;
//! assert_eq!(res.status(), 200);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::{Algorithm, AuthorizationServerEntry};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

enum Material {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key with its public JWK.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    material: Material,
    jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a key for `alg` (RSA keys are 2048 bits).
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        let (material, mut jwk) = match alg.family() {
            crate::algorithm::KeyFamily::Rsa => {
                let kp = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
                let public = kp.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                });
                (Material::Rsa(kp), jwk)
            }
            family @ (crate::algorithm::KeyFamily::P256
            | crate::algorithm::KeyFamily::P384
            | crate::algorithm::KeyFamily::P521) => {
                let (signing, crv, len) = match family {
                    crate::algorithm::KeyFamily::P256 => {
                        (&sig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                    }
                    crate::algorithm::KeyFamily::P384 => {
                        (&sig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                    }
                    _ => (&sig::ECDSA_P521_SHA512_FIXED_SIGNING, "P-521", 66),
                };
                let kp = EcdsaKeyPair::generate(signing).expect("EC key generation");
                let point = kp.public_key().as_ref();
                let jwk = json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": b64(&point[1..1 + len]),
                    "y": b64(&point[1 + len..]),
                });
                (Material::Ec(kp), jwk)
            }
            crate::algorithm::KeyFamily::Ed25519 => {
                let kp = Ed25519KeyPair::generate().expect("Ed25519 key generation");
                let jwk =
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())});
                (Material::Ed(kp), jwk)
            }
        };
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.as_str());
        jwk["use"] = json!("sig");
        Self {
            kid,
            alg,
            material,
            jwk,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK (with `kid`, `alg` and `use`).
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `message` with this key's algorithm and returns the base64url signature.
    pub fn sign(&self, message: &[u8]) -> String {
        let rng = SystemRandom::new();
        match &self.material {
            Material::Rsa(kp) => {
                let padding: &'static dyn sig::RsaEncoding = match self.alg {
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_SHA512,
                    _ => &sig::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &rng, message, &mut out)
                    .expect("RSA signing");
                b64(&out)
            }
            Material::Ec(kp) => b64(kp.sign(&rng, message).expect("EC signing").as_ref()),
            Material::Ed(kp) => b64(kp.sign(message).as_ref()),
        }
    }
}

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

/// A mock OAuth authorization server on `127.0.0.1`; see the [module docs](self).
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
        JwksBehavior::Normal => {
            let keys: Vec<Value> = state
                .keys
                .read()
                .map(|k| k.iter().map(|k| k.jwk.clone()).collect())
                .unwrap_or_default();
            let body = json!({ "keys": keys }).to_string();
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
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JWKS URL (`{issuer}/jwks`).
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.state.issuer)
    }

    /// An entry trusting this server, allowing the algorithms of its current keys.
    pub fn entry(&self) -> AuthorizationServerEntry {
        let mut algs: Vec<Algorithm> = self.keys().iter().map(|k| k.alg).collect();
        algs.sort();
        algs.dedup();
        if algs.is_empty() {
            algs.push(Algorithm::RS256);
        }
        AuthorizationServerEntry::new(self.issuer(), self.issuer(), self.jwks_uri())
            .algorithms(algs)
    }

    fn keys(&self) -> Vec<Arc<SigningKey>> {
        self.state
            .keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_default()
    }

    /// Adds a new key (published at once) and returns its `kid`.
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

    /// Stops publishing the key `kid` (it can still sign tokens given [`TokenBuilder::key`]
    /// is used before removal).
    pub fn remove_key(&self, kid: &str) {
        if let Ok(mut keys) = self.state.keys.write() {
            keys.retain(|k| k.kid != kid);
        }
    }

    /// Replaces every key by one new key for `alg`; returns its `kid`.
    pub fn rotate(&self, alg: Algorithm) -> String {
        if let Ok(mut keys) = self.state.keys.write() {
            keys.clear();
        }
        self.add_key(alg)
    }

    /// The `kid`s currently published, in order.
    pub fn kids(&self) -> Vec<String> {
        self.keys().iter().map(|k| k.kid.clone()).collect()
    }

    /// How many JWKS requests the server has received (conditional ones included).
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many JWKS requests were answered `304 Not Modified` (the JWKS carries an `ETag`
    /// and honours `If-None-Match`).
    pub fn jwks_not_modified(&self) -> usize {
        self.state.jwks_not_modified.load(Ordering::SeqCst)
    }

    /// How many metadata (RFC 8414 / OpenID Connect discovery) requests the server received.
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
    pub fn discovery_entry(&self) -> AuthorizationServerEntry {
        let algs = self.entry().allowed_algorithms().to_vec();
        AuthorizationServerEntry::discover(self.issuer()).algorithms(algs)
    }

    /// Changes what the JWKS endpoint does.
    pub fn set_jwks_behavior(&self, behavior: JwksBehavior) {
        if let Ok(mut b) = self.state.behavior.lock() {
            *b = behavior;
        }
    }

    /// Starts a token signed with the first published key: `iss` this server, `sub`
    /// `user-123`, `iat` now, `exp` in 5 minutes, no `aud` (set one with
    /// [`TokenBuilder::audience`]).
    pub fn token(&self) -> TokenBuilder {
        let now = now_secs();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.state.issuer));
        claims.insert("sub".into(), json!("user-123"));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + 300));
        TokenBuilder {
            key: self.keys().first().cloned(),
            header: Map::new(),
            claims,
            with_kid: true,
        }
    }
}

/// Builds and signs one token; see [`MockAuthorizationServer::token`].
#[derive(Debug)]
#[must_use]
pub struct TokenBuilder {
    key: Option<Arc<SigningKey>>,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    with_kid: bool,
}

impl TokenBuilder {
    /// Sets (or replaces) a claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets `sub`.
    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", sub)
    }

    /// Sets `aud` to one string.
    pub fn audience(self, aud: &str) -> Self {
        self.claim("aud", aud)
    }

    /// Sets `scope` (space-separated).
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// Sets `exp` relative to now (negative: already expired).
    pub fn expires_in(self, seconds: i64) -> Self {
        self.claim("exp", now_secs() + seconds)
    }

    /// Sets a JOSE header member (for example `typ`, `crit`, `jku`, or a lying `alg`).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Signs with the published key `kid`.
    pub fn key_id(mut self, server: &MockAuthorizationServer, kid: &str) -> Self {
        self.key = server.keys().into_iter().find(|k| k.kid == kid);
        self
    }

    /// Signs with this key (which need not be published).
    pub fn key(mut self, key: Arc<SigningKey>) -> Self {
        self.key = Some(key);
        self
    }

    /// Leaves `kid` out of the header.
    pub fn without_kid(mut self) -> Self {
        self.with_kid = false;
        self
    }

    /// Encodes and signs. Panics if the server has no key (a test setup error).
    pub fn sign(self) -> String {
        let key = self
            .key
            .expect("the mock authorization server has no signing key");
        let mut header = Map::new();
        header.insert("alg".into(), json!(key.alg.as_str()));
        header.insert("typ".into(), json!("JWT"));
        if self.with_kid {
            header.insert("kid".into(), json!(key.kid));
        }
        for (k, v) in self.header {
            header.insert(k, v);
        }
        let signing_input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header).unwrap_or_default()),
            b64(&serde_json::to_vec(&self.claims).unwrap_or_default())
        );
        let signature = key.sign(signing_input.as_bytes());
        format!("{signing_input}.{signature}")
    }
}

/// Encodes a token from raw header and claims JSON with the given signature part, for
/// tests of malformed or unsigned tokens (`alg: none`).
pub fn unsigned_token(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(&serde_json::to_vec(header).unwrap_or_default()),
        b64(&serde_json::to_vec(claims).unwrap_or_default())
    )
}

/// Access-token shapes of identity providers people put in front of MCP servers, as their
/// documentation describes them: which claim carries the scopes and the client id, and the
/// extra claims they add. See `docs/identity-providers.md` for the matching configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderShape {
    /// WorkOS AuthKit: `scope` string, `client_id`, `sid`, `org_id`.
    WorkOsAuthKit,
    /// Auth0: `scope` string, `azp`, `gty`, `permissions` array, `aud` as an array that also
    /// names the tenant's userinfo endpoint.
    Auth0,
    /// Keycloak: `scope` string, `azp`, a `typ: "Bearer"` claim, `realm_access.roles`,
    /// `preferred_username`.
    Keycloak,
    /// Okta (custom authorization server): `scp` array, `cid`, `uid`, `ver: 1`.
    Okta,
    /// Microsoft Entra ID v2 tokens: `scp` space-separated string, `azp`, `oid`, `tid`,
    /// `ver: "2.0"`, `roles` for application permissions.
    EntraId,
    /// Microsoft Entra ID v1 tokens: `scp` string, `appid` for the client, `ver: "1.0"`.
    EntraIdV1,
    /// Descope: `scope` string, `azp`, `dct` (tenant), `roles`.
    Descope,
}

impl TokenBuilder {
    /// Shapes the token like `shape`'s access tokens, for client `client_id` and `scopes`,
    /// keeping the `iss`, `sub`, `aud`, `exp` already set.
    pub fn shaped_like(self, shape: ProviderShape, client_id: &str, scopes: &[&str]) -> Self {
        let joined = scopes.join(" ");
        match shape {
            ProviderShape::WorkOsAuthKit => self
                .claim("scope", joined)
                .claim("client_id", client_id)
                .claim("sid", "session_01HZY")
                .claim("org_id", "org_01HZY"),
            ProviderShape::Auth0 => {
                let aud = self.claims.get("aud").cloned().unwrap_or(Value::Null);
                let issuer = self
                    .claims
                    .get("iss")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                self.claim("scope", joined)
                    .claim("azp", client_id)
                    .claim("gty", "client-credentials")
                    .claim("permissions", json!(scopes))
                    .claim("aud", json!([aud, format!("{issuer}userinfo")]))
            }
            ProviderShape::Keycloak => self
                .claim("scope", format!("openid profile {joined}"))
                .claim("azp", client_id)
                .claim("typ", "Bearer")
                .claim("realm_access", json!({"roles": ["default-roles-mcp"]}))
                .claim("preferred_username", format!("service-account-{client_id}")),
            ProviderShape::Okta => self
                .claim("scp", json!(scopes))
                .claim("cid", client_id)
                .claim("uid", "00u1abcd")
                .claim("ver", 1),
            ProviderShape::EntraId => self
                .claim("scp", joined)
                .claim("azp", client_id)
                .claim("oid", "6f3c-object-id")
                .claim("tid", "72f9-tenant-id")
                .claim("ver", "2.0"),
            ProviderShape::EntraIdV1 => self
                .claim("scp", joined)
                .claim("appid", client_id)
                .claim("ver", "1.0"),
            ProviderShape::Descope => self
                .claim("scope", joined)
                .claim("azp", client_id)
                .claim("dct", "tenant-1")
                .claim("roles", json!(["member"])),
        }
    }
}
