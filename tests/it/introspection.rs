//! RFC 7662 introspection of opaque tokens, against a local introspection endpoint over real
//! HTTP on 127.0.0.1: acceptance and every refusal with its exact challenge, the cache (never
//! past `exp`), shared and cancel-proof calls, the failure cooldown, the concurrency bound,
//! discovery, mixed issuers, client authentication, configuration from code and environment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use axum::extract::State;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    Algorithm, AuthorizationServerEntry, ConfigErrorKind, Introspection, ResourceServerAuth,
};
use serde_json::{Value, json};

/// A request as the endpoint saw it: the `Authorization` header and the form.
type Seen = (Option<String>, HashMap<String, String>);

/// A local authorization server answering introspection from a table.
#[derive(Clone, Default)]
struct Endpoint {
    answers: Arc<Mutex<HashMap<String, Value>>>,
    calls: Arc<AtomicUsize>,
    metadata_calls: Arc<AtomicUsize>,
    /// The status to answer with instead of 200.
    status: Arc<Mutex<Option<u16>>>,
    delay: Arc<Mutex<Duration>>,
    /// The last request's `Authorization` header and form.
    last: Arc<Mutex<Option<Seen>>>,
}

struct Running {
    endpoint: Endpoint,
    base: String,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self._task.abort();
    }
}

async fn introspect(
    State(e): State<Endpoint>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    e.calls.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    *e.last.lock().unwrap() = Some((auth, form.clone()));
    let delay = *e.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = *e.status.lock().unwrap() {
        return StatusCode::from_u16(code).unwrap().into_response();
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let answer = e
        .answers
        .lock()
        .unwrap()
        .get(&token)
        .cloned()
        .unwrap_or(json!({"active": false}));
    axum::Json(answer).into_response()
}

impl Running {
    async fn start() -> Self {
        let endpoint = Endpoint::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = base.clone();
        let app = axum::Router::new()
            .route("/introspect", post(introspect))
            .route(
                "/.well-known/oauth-authorization-server",
                get(move |State(e): State<Endpoint>| {
                    let issuer = issuer.clone();
                    async move {
                        e.metadata_calls.fetch_add(1, Ordering::SeqCst);
                        axum::Json(json!({
                            "issuer": issuer,
                            "introspection_endpoint": format!("{issuer}/introspect"),
                        }))
                    }
                }),
            )
            .with_state(endpoint.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            endpoint,
            base,
            _task: task,
        }
    }

    fn url(&self) -> String {
        format!("{}/introspect", self.base)
    }

    fn answer(&self, token: &str, answer: Value) {
        self.endpoint
            .answers
            .lock()
            .unwrap()
            .insert(token.to_owned(), answer);
    }

    fn calls(&self) -> usize {
        self.endpoint.calls.load(Ordering::SeqCst)
    }

    fn entry(&self, settings: Introspection) -> AuthorizationServerEntry {
        AuthorizationServerEntry::new(&self.base).introspection(settings.endpoint(self.url()))
    }

    fn auth(&self, settings: Introspection) -> ResourceServerAuth {
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(self.entry(settings))
            .build()
            .unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn active(issuer: &str) -> Value {
    json!({"active": true, "iss": issuer, "sub": "alice", "aud": CANON,
           "client_id": "mcp-client", "scope": "mcp:tools files:read",
           "exp": now() + 600, "iat": now(), "token_type": "Bearer"})
}

fn basic() -> Introspection {
    Introspection::client_secret_basic("resource", "s3cret")
}

#[tokio::test]
async fn an_active_opaque_token_is_accepted_and_its_answer_cached() {
    let as_ = Running::start().await;
    as_.answer("opaque-1", active(&as_.base));
    let app = App::new(as_.auth(basic()));
    let a = app.with_token("opaque-1").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.json(),
        json!({"user_id": "alice", "issuer": as_.base, "client_id": "mcp-client",
               "scopes": ["mcp:tools", "files:read"]})
    );
    // client_secret_basic, the token and the hint in the form.
    let (auth, form) = as_.endpoint.last.lock().unwrap().clone().unwrap();
    assert_eq!(auth.as_deref(), Some("Basic cmVzb3VyY2U6czNjcmV0"));
    assert_eq!(form["token"], "opaque-1");
    assert_eq!(form["token_type_hint"], "access_token");
    assert!(!form.contains_key("client_secret"));

    // The next requests are answered from the cache.
    for _ in 0..3 {
        assert_eq!(app.with_token("opaque-1").await.status, StatusCode::OK);
    }
    assert_eq!(as_.calls(), 1);
    assert_eq!(app.calls(), 4);
}

#[tokio::test]
async fn every_refusal_has_its_challenge_and_never_reaches_the_service() {
    let as_ = Running::start().await;
    let base = active(&as_.base);
    let with = |patch: Value| {
        let mut v = base.clone();
        for (k, val) in patch.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        v
    };
    let cases = [
        (
            "inactive",
            json!({"active": false}),
            "The access token is not active",
        ),
        ("unknown", Value::Null, "The access token is not active"),
        (
            "other-aud",
            with(json!({"aud": "https://other.example/mcp"})),
            "The access token audience does not include this resource",
        ),
        (
            "no-aud",
            with(json!({"aud": null})),
            "The access token lacks a required claim",
        ),
        (
            "no-sub",
            with(json!({"sub": null})),
            "The access token has no subject",
        ),
        (
            "expired",
            with(json!({"exp": now() - 10})),
            "The access token expired",
        ),
        (
            "other-iss",
            with(json!({"iss": "https://evil.example"})),
            "The access token issuer is not trusted",
        ),
        (
            "dpop",
            with(json!({"token_type": "DPoP"})),
            "The access token is sender-constrained and can not be used as a bearer token",
        ),
        (
            "cnf",
            with(json!({"cnf": {"jkt": "abc"}})),
            "The access token is sender-constrained and can not be used as a bearer token",
        ),
        (
            "refresh",
            with(json!({"token_type": "refresh_token"})),
            "The access token is not active",
        ),
        (
            "hydra-refresh",
            with(json!({"token_use": "refresh_token"})),
            "The access token is not active",
        ),
        (
            "numeric-iss",
            with(json!({"iss": 7})),
            "The access token issuer is not trusted",
        ),
        (
            "future-iat",
            with(json!({"iat": now() + 3600})),
            "The access token was issued in the future",
        ),
    ];
    // Opaque-looking tokens (the check that no token is echoed must not trip on plain words).
    let token = |name: &str| format!("opq-{name}-7c1d9e");
    for (name, answer, _) in &cases {
        if !answer.is_null() {
            as_.answer(&token(name), answer.clone());
        }
    }
    let app = App::new(as_.auth(basic()));
    for (name, _, description) in &cases {
        app.assert_invalid_token(&token(name), description).await;
    }
    assert_eq!(app.calls(), 0);
    // Not a `b64token` (RFC 6750 §2.1): refused before anyone is asked, even with an answer
    // waiting for exactly that string.
    let calls = as_.calls();
    for odd in ["opq-x y", "opq,x", "opq\"x\"", "opq-x!", "opq=x"] {
        as_.answer(odd, base.clone());
        app.assert_invalid_token(odd, "The access token is malformed")
            .await;
    }
    assert_eq!(
        as_.calls(),
        calls,
        "the introspection endpoint was not asked"
    );
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn answers_are_cached_no_longer_than_the_token_lives() {
    let as_ = Running::start().await;
    let mut short = active(&as_.base);
    short["exp"] = json!(now() + 5);
    as_.answer("short", short);
    let app = App::new(as_.auth(basic().cache_ttl(Duration::from_secs(60))));
    assert_eq!(app.with_token("short").await.status, StatusCode::OK);
    skip(Duration::from_secs(3)).await;
    assert_eq!(app.with_token("short").await.status, StatusCode::OK);
    assert_eq!(as_.calls(), 1);
    // Past the token's exp the cached answer is not used: the server is asked again.
    skip(Duration::from_secs(4)).await;
    assert_eq!(app.with_token("short").await.status, StatusCode::OK);
    assert_eq!(as_.calls(), 2);

    // cache_ttl zero: every request asks.
    as_.answer("long", active(&as_.base));
    let app = App::new(as_.auth(basic().cache_ttl(Duration::ZERO)));
    for _ in 0..3 {
        assert_eq!(app.with_token("long").await.status, StatusCode::OK);
    }
    assert_eq!(as_.calls(), 5);
}

#[tokio::test]
async fn concurrent_and_cancelled_requests_share_one_call() {
    let as_ = Running::start().await;
    as_.answer("slow", active(&as_.base));
    *as_.endpoint.delay.lock().unwrap() = Duration::from_millis(300);
    let app = Arc::new(App::new(as_.auth(basic())));

    // A client that gives up does not cancel the call, and its answer is kept.
    let gave_up = tokio::time::timeout(Duration::from_millis(50), app.with_token("slow")).await;
    assert!(gave_up.is_err());
    let all = (0..10).map(|_| {
        let app = app.clone();
        async move { app.with_token("slow").await.status }
    });
    let statuses = futures_util::future::join_all(all).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(as_.calls(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_answers_503_and_is_not_hammered() {
    let as_ = Running::start().await;
    as_.answer("t1", active(&as_.base));
    *as_.endpoint.status.lock().unwrap() = Some(500);
    let app = App::new(as_.auth(basic()));
    for token in ["t1", "t2", "t3"] {
        let a = app.with_token(token).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
        assert!(a.www().is_none());
        let secs: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&secs), "{secs}");
    }
    // One failed call; the others waited out the cooldown without calling.
    assert_eq!(as_.calls(), 1);
    assert_eq!(app.calls(), 0);

    // The endpoint recovers: after the cooldown, the token is accepted.
    *as_.endpoint.status.lock().unwrap() = None;
    skip(Duration::from_secs(3)).await;
    assert_eq!(app.with_token("t1").await.status, StatusCode::OK);

    // A malformed answer is no answer either (503, not 401), but concerns that request only:
    // no token can make the endpoint look down for the others.
    as_.answer("weird", json!({"active": "yes", "sub": "x"}));
    as_.answer("array", json!([true]));
    as_.answer("t4", active(&as_.base));
    for token in ["weird", "array"] {
        let a = app.with_token(token).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(app.with_token("t4").await.status, StatusCode::OK);
}

#[tokio::test]
async fn at_most_max_concurrent_calls_run_at_once() {
    let as_ = Running::start().await;
    *as_.endpoint.delay.lock().unwrap() = Duration::from_millis(300);
    let app = Arc::new(App::new(as_.auth(basic().max_concurrent(1))));
    let first = tokio::spawn({
        let app = app.clone();
        async move { app.with_token("first").await.status }
    });
    eventually("the first call", || as_.calls() == 1).await;
    let a = app.with_token("second").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(first.await.unwrap(), StatusCode::UNAUTHORIZED);
    assert_eq!(as_.calls(), 1);
}

#[tokio::test]
async fn the_endpoint_is_discovered_once_and_jwts_of_a_mixed_issuer_stay_local() {
    let as_ = Running::start().await;
    as_.answer("opaque", active(&as_.base));
    // Discovered from the issuer's metadata.
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(AuthorizationServerEntry::new(&as_.base).introspection(basic()))
        .build()
        .unwrap();
    let app = App::new(auth.clone());
    assert_eq!(app.with_token("opaque").await.status, StatusCode::OK);
    as_.answer("opaque-2", active(&as_.base));
    assert_eq!(app.with_token("opaque-2").await.status, StatusCode::OK);
    assert_eq!(as_.endpoint.metadata_calls.load(Ordering::SeqCst), 1);
    // Introspection only: no key set to fetch, ready at once.
    assert!(auth.key_set_stats().is_empty());
    assert!(auth.readiness().is_ready());

    // A mixed issuer: its JWTs are verified with its keys, never introspected.
    let idp = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(idp.entry().introspection(basic().endpoint(as_.url())))
        .build()
        .unwrap();
    let app = App::new(auth);
    let calls = as_.calls();
    let jwt = idp.token().audience(CANON).sign();
    assert_eq!(app.with_token(&jwt).await.status, StatusCode::OK);
    assert_eq!(as_.calls(), calls);
    let mut opaque = active(&as_.base);
    opaque["iss"] = json!(idp.issuer());
    as_.answer("opaque-3", opaque);
    assert_eq!(app.with_token("opaque-3").await.status, StatusCode::OK);
    assert_eq!(as_.calls(), calls + 1);
}

#[tokio::test]
async fn client_secret_post_and_private_key_jwt() {
    let as_ = Running::start().await;
    as_.answer("t", active(&as_.base));
    let app = App::new(as_.auth(Introspection::client_secret_post("resource", "s3cret")));
    assert_eq!(app.with_token("t").await.status, StatusCode::OK);
    let (auth, form) = as_.endpoint.last.lock().unwrap().clone().unwrap();
    assert_eq!(auth, None);
    assert_eq!(
        (form["client_id"].as_str(), form["client_secret"].as_str()),
        ("resource", "s3cret")
    );

    // A P-256 key as PKCS#8 PEM.
    let pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let settings = Introspection::private_key_jwt("resource", pem, Algorithm::ES256).key_id("k1");
    let app = App::new(as_.auth(settings));
    assert_eq!(app.with_token("t").await.status, StatusCode::OK);
    let (_, form) = as_.endpoint.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let claims = form["client_assertion"].split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "resource");
    assert_eq!(claims["sub"], "resource");
    assert_eq!(claims["aud"], as_.url());
}

#[tokio::test]
async fn introspection_settings_are_checked_at_build() {
    let err = |entries: Vec<AuthorizationServerEntry>| {
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_servers(entries)
            .build()
            .unwrap_err()
    };
    let e = err(vec![
        AuthorizationServerEntry::new("https://a.example").introspection(basic()),
        AuthorizationServerEntry::new("https://b.example").introspection(basic()),
    ]);
    assert_eq!(e.field(), "authorization_servers[1].introspection");
    let e = err(vec![
        AuthorizationServerEntry::new("https://a.example")
            .introspection(basic().endpoint("http://a.example/introspect")),
    ]);
    assert_eq!(e.field(), "authorization_servers[0].introspection.endpoint");
    let e = err(vec![
        AuthorizationServerEntry::new("https://a.example")
            .introspection(Introspection::client_secret_basic("", "x")),
    ]);
    assert_eq!(
        e.field(),
        "authorization_servers[0].introspection.client_id"
    );
    let e = err(vec![
        AuthorizationServerEntry::new("https://a.example").introspection(
            Introspection::private_key_jwt("r", "not a key", Algorithm::RS256),
        ),
    ]);
    assert_eq!(
        e.field(),
        "authorization_servers[0].introspection.private_key_jwt"
    );
    assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
    let e = err(vec![
        AuthorizationServerEntry::new("https://a.example").introspection(basic().max_concurrent(0)),
    ]);
    assert_eq!(
        e.field(),
        "authorization_servers[0].introspection.max_concurrent"
    );
}

#[tokio::test]
async fn introspection_from_the_environment() {
    let as_ = Running::start().await;
    as_.answer("t", active(&as_.base));
    let secret = std::env::temp_dir().join(format!("pr-introspect-{}", std::process::id()));
    std::fs::write(&secret, "s3cret\n").unwrap();
    let servers = json!([{
        "issuer": as_.base,
        "introspection": {"client_id": "resource", "client_secret_file": secret.display().to_string(),
                          "endpoint": as_.url(), "cache_ttl": 30, "timeout": 2}
    }])
    .to_string();
    let auth = ResourceServerAuth::builder()
        .with_env_vars([
            ("MCP_SERVER_AUTH_CANONICAL_URL", CANON),
            ("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS", servers.as_str()),
        ])
        .build()
        .unwrap();
    assert!(!format!("{auth:?}").contains("s3cret"));
    let app = App::new(auth);
    assert_eq!(app.with_token("t").await.status, StatusCode::OK);
    let (header, _) = as_.endpoint.last.lock().unwrap().clone().unwrap();
    assert_eq!(header.as_deref(), Some("Basic cmVzb3VyY2U6czNjcmV0"));
    let _ = std::fs::remove_file(&secret);

    for (introspection, field) in [
        (json!({"client_id": "r"}), "introspection.client_secret"),
        (
            json!({"client_id": "r", "client_secret": "x", "auth_method": "tls"}),
            "introspection.auth_method",
        ),
        (
            json!({"client_id": "r", "client_secret": "x", "cache_ttl": -1}),
            "introspection.cache_ttl",
        ),
    ] {
        let servers =
            json!([{"issuer": "https://a.example", "introspection": introspection}]).to_string();
        let e = ResourceServerAuth::builder()
            .with_env_vars([
                ("MCP_SERVER_AUTH_CANONICAL_URL", CANON),
                ("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS", servers.as_str()),
            ])
            .build()
            .unwrap_err();
        assert_eq!(
            e.field(),
            format!("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS[0].{field}")
        );
    }
}

#[tokio::test]
async fn a_dpop_bound_opaque_token_needs_its_proof() {
    use axum::body::Body;
    use protected_resource::testkit::{DpopProof, SigningKey};
    let as_ = Running::start().await;
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let mut answer = active(&as_.base);
    answer["token_type"] = json!("DPoP");
    answer["cnf"] = json!({ "jkt": DpopProof::thumbprint(&key) });
    as_.answer("opaque-dpop", answer);
    let app = App::new(as_.auth(basic()));
    let with_proof = |key: &SigningKey| {
        let proof = DpopProof::new(key, "POST", CANON)
            .access_token("opaque-dpop")
            .sign();
        http::Request::post("/mcp")
            .header("authorization", "DPoP opaque-dpop")
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    };
    let a = app.send(with_proof(&key)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(app.calls(), 1);
    // As a bearer token: refused (from the cached answer).
    app.assert_invalid_token(
        "opaque-dpop",
        "The access token is sender-constrained and can not be used as a bearer token",
    )
    .await;
    // With another key's proof: refused.
    let a = app
        .send(with_proof(&SigningKey::generate(Algorithm::ES256, "other")))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let algs: Vec<&str> = Algorithm::supported().map(|a| a.as_str()).collect();
    assert_eq!(
        a.www(),
        Some(
            format!(
                r#"DPoP error="invalid_dpop_proof", error_description="The DPoP proof key is not the key the access token is bound to", algs="{}", resource_metadata="{METADATA_URL}""#,
                algs.join(" ")
            )
            .as_str()
        )
    );
    assert_eq!(
        app.calls(),
        1,
        "the inner service ran only for the good request"
    );
    assert_eq!(as_.calls(), 1, "one introspection call for all of them");
}
