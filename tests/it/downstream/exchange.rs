//! RFC 8693 exchange: against the development authorization server (a real exchange, the
//! token checked), and against a local token endpoint answering each shape the broker must
//! map (what it sent checked too).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use protected_resource::dev_auth::DevAuthorizationServer;
use protected_resource::downstream::{TokenBroker, TokenExchangeBroker, TokenNeed};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ConfigErrorKind, ResourceServerAuth};
use serde_json::{Value, json};

use super::{CANONICAL, call, kind, serve, tool_app};

fn claims(token: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_development_server_exchanges_the_users_token_for_another_resource() {
    let dev_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tool_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/dev-auth", dev_listener.local_addr().unwrap());
    let tool = format!("http://{}", tool_listener.local_addr().unwrap());
    let acme = "http://127.0.0.1:1/acme".to_owned();
    let dev = DevAuthorizationServer::builder(&issuer)
        .resource(format!("{tool}/tool"))
        .resource(&acme)
        .scopes_supported(["mcp:tools", "acme:read"])
        .build()
        .unwrap();
    let dev_app = dev.router();
    let dev_task = tokio::spawn(async move {
        let _ = axum::serve(dev_listener, dev_app).await;
    });
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for method in ["client_secret_basic", "client_secret_post"] {
        let reg: Value = http
            .post(format!("{issuer}/register"))
            .json(&json!({"grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"], "token_endpoint_auth_method": method}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (id, secret) = (
            reg["client_id"].as_str().unwrap().to_owned(),
            reg["client_secret"].as_str().unwrap().to_owned(),
        );
        let builder = TokenExchangeBroker::builder(format!("{issuer}/token")).issuer(&issuer);
        let broker = if method == "client_secret_basic" {
            builder.client_secret_basic(&id, &secret)
        } else {
            builder.client_secret_post(&id, &secret)
        }
        .build()
        .unwrap();
        clients.push((id, broker));
    }
    let auth = ResourceServerAuth::builder()
        .canonical_url(format!("{tool}/tool"))
        .authorization_server(dev.entry())
        .build()
        .unwrap();
    let user_token = dev.access_token("alice", "mcp:tools");
    for (id, broker) in clients {
        let broker = Arc::new(broker);
        let cases = [
            (
                TokenNeed::new("acme").resource(&acme).scopes(["mcp:tools"]),
                None,
            ),
            (
                TokenNeed::new("acme").resource(&acme).scopes(["acme:read"]),
                Some("Forbidden"),
            ),
            (
                TokenNeed::new("acme").resource("http://127.0.0.1:2/unknown"),
                Some("Forbidden"),
            ),
        ];
        for (need, denied) in cases {
            // Served on a port of its own: the front door checks the token's audience (the
            // canonical URL), not the port the request came in on.
            let app = tool_app(auth.clone(), broker.clone(), need.clone());
            let served = serve(|_| app).await;
            let answer = call(&served.base, &user_token).await;
            match denied {
                None => {
                    let c = claims(
                        answer["secret"]
                            .as_str()
                            .unwrap_or_else(|| panic!("{answer}")),
                    );
                    assert_eq!(
                        (c["sub"].as_str(), c["aud"].as_str()),
                        (Some("alice"), Some(acme.as_str()))
                    );
                    assert_eq!(
                        c["client_id"].as_str(),
                        Some(id.as_str()),
                        "issued to this server's client"
                    );
                    assert_eq!(answer["scopes"], json!(["mcp:tools"]));
                    assert_eq!(answer["expires"], true);
                }
                Some(k) => assert_eq!(kind(&answer), Some(k), "{need:?}: {answer}"),
            }
        }
    }
    drop(tool_listener);
    dev_task.abort();
}

/// What the fake token endpoint answers, and what it was sent.
#[derive(Default)]
struct Fake {
    status: u16,
    body: String,
    retry_after: Option<&'static str>,
    delay: Duration,
    seen_form: Vec<(String, String)>,
    seen_authorization: Option<String>,
}

#[tokio::test]
async fn token_endpoint_answers_become_typed_denials() {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let state = fake.clone();
    let endpoint = serve(move |_| {
        Router::new().route(
            "/token",
            post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let (status, body, retry, delay) = {
                        let mut f = state.lock().unwrap();
                        f.seen_form = form_urlencoded::parse(body.as_bytes())
                            .into_owned()
                            .collect();
                        f.seen_authorization = headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned());
                        (f.status, f.body.clone(), f.retry_after, f.delay)
                    };
                    tokio::time::sleep(delay).await;
                    let mut res = axum::response::IntoResponse::into_response((
                        StatusCode::from_u16(status).unwrap(),
                        body,
                    ));
                    if let Some(r) = retry {
                        res.headers_mut().insert("retry-after", r.parse().unwrap());
                    }
                    res
                }
            }),
        )
    })
    .await;
    let inbound = MockAuthorizationServer::start().await.unwrap();
    let tool_listener_base = serve(|_| Router::new()).await;
    let canonical = format!("{}/tool", tool_listener_base.base);
    drop(tool_listener_base);
    let auth = ResourceServerAuth::builder()
        .canonical_url(&canonical)
        .authorization_server(inbound.entry())
        .build()
        .unwrap();
    let broker = Arc::new(
        TokenExchangeBroker::builder(format!("{}/token", endpoint.base))
            .issuer(inbound.issuer())
            .client_secret_basic("svc", "s p&c")
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    let need = TokenNeed::new("acme")
        .audience("acme-api")
        .scopes(["b", "a"]);
    let app = tool_app(auth, broker.clone(), need.clone());
    let served = serve(|_| app).await;
    let token = inbound.token().audience(&canonical).subject("alice").sign();

    let set = |status: u16, body: &str, retry: Option<&'static str>, delay: u64| {
        let mut f = fake.lock().unwrap();
        (f.status, f.body, f.retry_after, f.delay) =
            (status, body.to_owned(), retry, Duration::from_millis(delay));
    };
    set(
        200,
        r#"{"access_token":"down","token_type":"Bearer","expires_in":300,"scope":"a b","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#,
        None,
        0,
    );
    let answer = call(&served.base, &token).await;
    assert_eq!(
        (answer["secret"].as_str(), answer["expires"].as_bool()),
        (Some("down"), Some(true))
    );
    assert_eq!(answer["scopes"], json!(["a", "b"]));
    {
        let f = fake.lock().unwrap();
        let get = |k: &str| {
            f.seen_form
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("grant_type"),
            Some("urn:ietf:params:oauth:grant-type:token-exchange")
        );
        assert_eq!(
            get("subject_token"),
            Some(token.as_str()),
            "the caller's own token, to the authorization server only"
        );
        assert_eq!(
            get("subject_token_type"),
            Some("urn:ietf:params:oauth:token-type:access_token")
        );
        assert_eq!(
            get("requested_token_type"),
            Some("urn:ietf:params:oauth:token-type:access_token")
        );
        assert_eq!(
            (get("audience"), get("scope"), get("client_secret")),
            (Some("acme-api"), Some("a b"), None)
        );
        let basic = f
            .seen_authorization
            .as_deref()
            .unwrap()
            .strip_prefix("Basic ")
            .unwrap();
        assert_eq!(
            String::from_utf8(STANDARD.decode(basic).unwrap()).unwrap(),
            "svc:s+p%26c",
            "RFC 6749 §2.3.1 encoding"
        );
    }

    let echo = format!(r#"{{"error":"invalid_grant","error_description":"bad token {token}"}}"#);
    for (status, body, retry, delay, expected, secs) in [
        (400, echo.as_str(), None, 0, "ReauthorizationRequired", None),
        (
            400,
            r#"{"error":"interaction_required"}"#,
            None,
            0,
            "ReauthorizationRequired",
            None,
        ),
        (
            400,
            r#"{"error":"invalid_target"}"#,
            None,
            0,
            "Forbidden",
            None,
        ),
        (
            400,
            r#"{"error":"invalid_scope"}"#,
            None,
            0,
            "Forbidden",
            None,
        ),
        (
            401,
            r#"{"error":"invalid_client"}"#,
            None,
            0,
            "Unavailable",
            None,
        ),
        (503, "busy", Some("7"), 0, "Unavailable", Some(7)),
        (
            400,
            r#"{"error":"temporarily_unavailable"}"#,
            Some("3"),
            0,
            "Unavailable",
            Some(3),
        ),
        (200, "not json", None, 0, "Unavailable", None),
        (200, &"x".repeat(100 * 1024), None, 0, "Unavailable", None),
        (
            200,
            r#"{"access_token":"late"}"#,
            None,
            3000,
            "Unavailable",
            None,
        ),
        (403, "", None, 0, "Forbidden", None),
        (
            400,
            r#"{"error":"invalid_request"}"#,
            None,
            0,
            "ReauthorizationRequired",
            None,
        ),
        (404, "", None, 0, "Unavailable", None),
        (302, "", None, 0, "Unavailable", None),
        (401, "", None, 0, "Unavailable", None),
        (200, r#"{"access_token":""}"#, None, 0, "Unavailable", None),
    ] {
        set(status, body, retry, delay);
        let answer = call(&served.base, &token).await;
        assert_eq!(
            kind(&answer),
            Some(expected),
            "{status} {}: {answer}",
            &body[..body.len().min(60)]
        );
        assert_eq!(answer["retry_after"].as_u64(), secs, "{status} {body}");
        assert!(
            !answer.to_string().contains(&token),
            "the server's description is not passed on"
        );
    }

    // A caller of another trusted issuer: its token is not sent to this broker's token
    // endpoint at all.
    let other = MockAuthorizationServer::start().await.unwrap();
    let both = ResourceServerAuth::builder()
        .canonical_url(&canonical)
        .authorization_server(inbound.entry())
        .authorization_server(other.entry())
        .build()
        .unwrap();
    let app = tool_app(both, broker, need);
    let two = serve(|_| app).await;
    fake.lock().unwrap().seen_form.clear();
    let elsewhere = other.token().audience(&canonical).subject("alice").sign();
    assert_eq!(kind(&call(&two.base, &elsewhere).await), Some("Forbidden"));
    assert!(
        fake.lock().unwrap().seen_form.is_empty(),
        "nothing was sent"
    );
}

#[tokio::test]
async fn an_endless_answer_is_cut_off_early() {
    // A token endpoint that streams without end (no Content-Length): the broker stops reading
    // at its cap and answers unavailable; it does not wait for the end or hold the whole body.
    let endpoint = serve(|_| {
        Router::new().route(
            "/token",
            post(|| async {
                let chunk = bytes::Bytes::from(vec![b'x'; 8192]);
                let endless = futures_util::stream::repeat_with(move || {
                    Ok::<_, std::convert::Infallible>(chunk.clone())
                });
                axum::body::Body::from_stream(endless)
            }),
        )
    })
    .await;
    let inbound = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANONICAL)
        .authorization_server(inbound.entry())
        .build()
        .unwrap();
    let broker = TokenExchangeBroker::builder(format!("{}/token", endpoint.base))
        .issuer(inbound.issuer())
        .client_secret_basic("svc", "secret")
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let token = inbound.token().audience(CANONICAL).subject("alice").sign();
    let owner = auth.validate(&token).await.unwrap();
    let started = std::time::Instant::now();
    let denial = broker
        .token(&owner, &TokenNeed::new("acme").audience("acme-api"))
        .await
        .unwrap_err();
    assert_eq!(
        denial.kind(),
        protected_resource::downstream::DenialKind::Unavailable
    );
    assert!(denial.message().contains("too large"), "{denial}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not read to a time limit"
    );
}

#[tokio::test]
async fn configuration_errors_name_the_field_and_debug_hides_the_secret() {
    for (endpoint, field) in [
        ("http://auth.example/token", "token_endpoint"),
        ("ftp://auth.example/token", "token_endpoint"),
        ("not a url", "token_endpoint"),
    ] {
        let err = TokenExchangeBroker::builder(endpoint)
            .issuer("https://auth.example")
            .client_secret_basic("a", "b")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), field, "{endpoint}");
    }
    let err = TokenExchangeBroker::builder("https://auth.example/token")
        .client_secret_basic("a", "b")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ConfigErrorKind::Missing, "issuer")
    );
    let err = TokenExchangeBroker::builder("https://auth.example/token")
        .issuer("https://auth.example")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ConfigErrorKind::Missing, "client_auth")
    );
    let err = TokenExchangeBroker::builder("https://auth.example/token")
        .issuer("https://auth.example")
        .client_secret_post("a", "b")
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "timeout");
    let broker = TokenExchangeBroker::builder("https://auth.example/token")
        .issuer("https://auth.example")
        .client_secret_post("a", "very-secret")
        .build()
        .unwrap();
    assert!(!format!("{broker:?}").contains("very-secret"));
}
