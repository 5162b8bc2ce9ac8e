//! What the binaries share: the token every variant is given, and each layer configured
//! once, against the same in-process mock authorization server, so the in-process table
//! (`table`), the gates' instruction counts (`gate_work`) and the HTTP servers (`serve`)
//! measure the same configurations.
//!
//! Every layer checks at least the signature (keys from the mock server's `jwks_uri`),
//! `iss`, `aud` and `exp`:
//!
//! - ours: `ResourceServerAuth` with the canonical URL as audience and the mock server as
//!   the one trusted issuer (its algorithms only); `nbf` when present;
//! - `tower-oauth2-resource-server`: `ClaimsValidationSpec::recommended` (iss, aud, exp, nbf:
//!   without it the crate checks no `iss` for a JWKS URL);
//! - `oauth-resource-server`: `OAuthConfig` with issuer, jwks_uri, audience, resource; it
//!   always checks iss, aud, exp and nbf (when present), refuses `crit` and `cnf`, and checks
//!   `typ` leniently. `allow_unscoped_tokens`, because our front door requires no scope
//!   either (the tool gates in table B do);
//! - `jwt-authorizer`: `Validation::new().iss(..).aud(..).nbf(true)`: by default it checks
//!   neither `iss` nor `aud` nor `nbf`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::Request;
use protected_resource::Algorithm;
use protected_resource::ResourceServerAuth;
use protected_resource::testkit::MockAuthorizationServer;
use tower::{Service, ServiceExt};

/// `exp` 24 h ahead, `nbf` a minute back (tower-oauth2-resource-server's recommended
/// validation requires `nbf`), `scope` `mcp:tools`, audience `canon`.
#[must_use]
pub fn token(server: &MockAuthorizationServer, canon: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    server
        .token()
        .audience(canon)
        .expires_in(86_400)
        .scope("mcp:tools")
        .claim("nbf", now - 60)
        .sign()
}

/// Our configuration: the canonical URL (the audience) and one trusted issuer.
///
/// # Panics
/// On a configuration error (a bug in the benchmark).
#[must_use]
pub fn ours(server: &MockAuthorizationServer, canon: &str) -> ResourceServerAuth {
    ResourceServerAuth::builder()
        .canonical_url(canon)
        .authorization_server(server.entry())
        .build()
        .expect("our configuration")
}

/// tower-oauth2-resource-server with iss, aud, exp and nbf checked.
///
/// # Panics
/// On a configuration error.
pub async fn tower_oauth2(
    server: &MockAuthorizationServer,
    canon: &str,
) -> tower_oauth2_resource_server::server::OAuth2ResourceServer {
    use tower_oauth2_resource_server::server::OAuth2ResourceServer;
    use tower_oauth2_resource_server::tenant::TenantConfiguration;
    use tower_oauth2_resource_server::validation::ClaimsValidationSpec;
    let tenant = TenantConfiguration::builder(server.issuer())
        .jwks_url(server.jwks_uri())
        .audiences(&[canon])
        .claims_validation(ClaimsValidationSpec::recommended(
            server.issuer(),
            &vec![canon.to_owned()],
        ))
        .build()
        .await
        .expect("tower-oauth2-resource-server tenant");
    <OAuth2ResourceServer>::builder()
        .add_tenant(tenant)
        .build()
        .await
        .expect("tower-oauth2-resource-server")
}

/// oauth-resource-server's validator with its keys loaded, and its axum `AuthLayer` (the
/// layer its README puts on an axum app; `HttpAuthLayer` is the same check for other
/// stacks).
///
/// # Panics
/// On a configuration error or when the keys can not be fetched.
pub async fn oauth_resource_server(
    server: &MockAuthorizationServer,
    canon: &str,
) -> (
    Arc<oauth_resource_server::OAuthValidator>,
    oauth_resource_server::axum::AuthLayer,
) {
    use oauth_resource_server::{KeyNaming, OAuthConfig, OAuthValidator};
    let resolved = OAuthConfig {
        enabled: true,
        issuer: server.issuer().to_owned(),
        jwks_uri: Some(server.jwks_uri()),
        audience: canon.to_owned(),
        resource: canon.to_owned(),
        allow_unscoped_tokens: true,
        ..OAuthConfig::default()
    }
    .resolve(KeyNaming::Dotted("oauth"))
    .expect("oauth-resource-server configuration")
    .expect("enabled");
    let validator = Arc::new(OAuthValidator::new(&resolved).expect("validator"));
    validator.refresh_now().await.expect("its keys");
    let layer = oauth_resource_server::axum::AuthLayer::builder()
        .oauth(Arc::clone(&validator))
        .build()
        .expect("oauth-resource-server AuthLayer");
    (validator, layer)
}

/// jwt-authorizer with iss, aud, exp and nbf checked; it fetches the key set at the first
/// token whose `kid` it does not hold.
///
/// # Panics
/// On a configuration error.
pub async fn jwt_authorizer(
    server: &MockAuthorizationServer,
    canon: &str,
) -> jwt_authorizer::layer::AuthorizationLayer<jwt_authorizer::RegisteredClaims> {
    use jwt_authorizer::{IntoLayer, JwtAuthorizer, RegisteredClaims, Validation};
    let validation = Validation::new()
        .iss(&[server.issuer()])
        .aud(&[canon])
        .nbf(true);
    JwtAuthorizer::<RegisteredClaims>::from_jwks_url(&server.jwks_uri())
        .validation(validation)
        .build()
        .await
        .expect("jwt-authorizer")
        .into_layer()
}

/// Sends requests made by `request` through `svc` until one is answered 200 (peers fetch
/// their keys in the background or at the first request).
///
/// # Panics
/// When none is within 10 s: a layer that refuses the token is a setup bug.
pub async fn wait_until_accepted<S, B, RB>(
    name: &str,
    svc: &mut S,
    request: impl Fn() -> Request<B>,
) where
    S: Service<Request<B>, Response = http::Response<RB>, Error = Infallible>,
{
    let started = Instant::now();
    loop {
        let res = svc
            .ready()
            .await
            .expect("infallible")
            .call(request())
            .await
            .expect("infallible");
        if res.status() == 200 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} never accepted the token (last status {})",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn b64(s: &serde_json::Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s.as_str().expect("a base64url member"))
        .expect("base64url")
}

/// The JWK as an aws-lc-rs key, parsed once (as benches/validation.rs does).
///
/// # Panics
/// On a JWK that is not a key of `alg`.
#[must_use]
pub fn raw_key(alg: Algorithm, jwk: &serde_json::Value) -> ParsedPublicKey {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => {
            let (n, e) = (b64(&jwk["n"]), b64(&jwk["e"]));
            let params = if alg == Algorithm::RS256 {
                &sig::RSA_PKCS1_2048_8192_SHA256
            } else {
                &sig::RSA_PSS_2048_8192_SHA256
            };
            RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(params)
                .expect("an RSA key")
        }
        Algorithm::EdDSA => ParsedPublicKey::new(&sig::ED25519, b64(&jwk["x"])).expect("Ed25519"),
        _ => {
            let mut point = vec![4];
            point.extend(b64(&jwk["x"]));
            point.extend(b64(&jwk["y"]));
            let a = if alg == Algorithm::ES256 {
                &sig::ECDSA_P256_SHA256_FIXED
            } else {
                &sig::ECDSA_P384_SHA384_FIXED
            };
            ParsedPublicKey::new(a, point).expect("an EC key")
        }
    }
}

/// The first key of the mock server's JWKS, as JSON.
///
/// # Panics
/// When the JWKS can not be fetched or read.
pub async fn fetch_jwk(server: &MockAuthorizationServer) -> serde_json::Value {
    let body = reqwest::get(server.jwks_uri())
        .await
        .expect("the JWKS")
        .bytes()
        .await
        .expect("the JWKS body");
    let jwks: serde_json::Value = serde_json::from_slice(&body).expect("JWKS JSON");
    jwks["keys"][0].clone()
}

/// The bare signature check of a compact JWS with a parsed key: the signature part decoded
/// (base64url) and verified over the signing input, nothing else. The floor of any layer.
#[must_use]
pub fn raw_verify(key: &ParsedPublicKey, token: &str) -> bool {
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(signature)
        .is_ok_and(|sig| key.verify_sig(signing_input.as_bytes(), &sig).is_ok())
}

// ---------------------------------------------------------------------------------------------
// MCP bodies (table B, gate_work)

/// A `tools/call` of `echo` whose `arguments` member is `{"v": value}` (raw JSON text), as
/// benches/memory.rs builds them.
#[must_use]
pub fn tools_call(value: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"v":{value}}}}}}}"#
    )
    .into_bytes()
}

/// `[0,0,…,0]` of about `bytes` bytes (benches/memory.rs).
#[must_use]
pub fn zeros(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 2);
    s.push('[');
    while s.len() + 2 < bytes {
        s.push_str("0,");
    }
    s.push_str("0]");
    s
}

/// `n` POSTs of `body` (one chunk each, sharing the buffer), with the headers an MCP client
/// sends and the `Content-Length` any HTTP/1.1 client puts on a body.
///
/// # Panics
/// Never: the request's parts are valid.
#[must_use]
pub fn mcp_requests(token: &str, body: &Bytes, n: usize) -> Vec<Request<Body>> {
    (0..n)
        .map(|_| {
            Request::post("/mcp")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("content-length", body.len())
                .body(Body::from(body.clone()))
                .expect("a request")
        })
        .collect()
}

/// Table B's setup (`table`, `gate_work`): the mock server (keep it alive), its token, our
/// configuration with its key set fetched, and oauth-resource-server's validator and layer.
///
/// # Panics
/// When the mock server does not start or a configuration is refused (a benchmark bug).
pub async fn gate_setup(
    canon: &str,
) -> (
    MockAuthorizationServer,
    String,
    ResourceServerAuth,
    oauth_resource_server::axum::AuthLayer,
) {
    let server = MockAuthorizationServer::start()
        .await
        .expect("mock authorization server");
    let token = token(&server, canon);
    let auth = ours(&server, canon);
    auth.validate(&token).await.expect("our key cache warmed");
    let (_validator, ors) = oauth_resource_server(&server, canon).await;
    (server, token, auth, ors)
}

/// The MCP server stand-in of table B: reads the whole body, answers 200.
///
/// # Errors
/// Never.
///
/// # Panics
/// When the body can not be read (the layers pass it on whole).
pub async fn consume(req: Request<Body>) -> Result<http::Response<Body>, Infallible> {
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .expect("the body");
    std::hint::black_box(body);
    Ok(http::Response::new(Body::empty()))
}
