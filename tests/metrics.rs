//! The feature `metrics` with a real Prometheus recorder (its own test binary: one global
//! recorder per process): a known sequence of requests over real HTTP, then the exact counts
//! scraped from the rendered text. Metadata requests are not counted; no label holds a value
//! from a token.

use std::convert::Infallible;

use axum::body::Body;
use http::{Request, Response};
use metrics_exporter_prometheus::PrometheusBuilder;
use protected_resource::testkit::{DpopProof, MockAuthorizationServer, SigningKey};
use protected_resource::{
    Algorithm, McpScopesLayer, ProtectedResourceLayer, ResourceServerAuth, ScopeRequirement,
};
use tower::ServiceBuilder;

/// The value of the one line of `metric` carrying every label in `labels`.
fn value(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_follow_a_known_sequence_of_requests() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    protected_resource::metrics::describe_metrics();

    let a = MockAuthorizationServer::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let canonical = format!("{base}/mcp");
    let auth = ResourceServerAuth::builder()
        .canonical_url(&canonical)
        .authorization_server(a.entry())
        .scopes_supported(["mcp:tools", "mcp:admin"])
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(ProtectedResourceLayer::new(auth.clone()))
        .layer(McpScopesLayer::new().tool(
            "admin_report",
            ScopeRequirement::all(["mcp:admin"]).unwrap(),
        ))
        .service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::from("{}")))
        });
    let app = axum::Router::new().fallback_service(service);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let http = reqwest::Client::new();
    let call = |token: Option<String>, body: &'static str| {
        let mut req = http
            .post(&canonical)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let good = a
        .token()
        .audience(&canonical)
        .subject("alice")
        .scope("mcp:tools")
        .sign();
    let tool = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;
    let admin = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin_report","arguments":{}}}"#;
    assert_eq!(call(Some(good.clone()), tool).await, 200);
    assert_eq!(call(Some(good.clone()), tool).await, 200);
    assert_eq!(call(Some(good.clone()), admin).await, 403);
    assert_eq!(call(Some(good.clone()), "{not json").await, 400);
    assert_eq!(call(None, tool).await, 401);
    let expired = a
        .token()
        .audience(&canonical)
        .subject("bob")
        .expires_in(-600)
        .sign();
    assert_eq!(call(Some(expired), tool).await, 401);
    let elsewhere = a
        .token()
        .audience("https://other.example/mcp")
        .subject("carol")
        .sign();
    assert_eq!(call(Some(elsewhere), tool).await, 401);
    assert_eq!(call(Some("not-a-jwt".to_owned()), tool).await, 401);
    // DPoP: accepted once, then the same proof replayed, then no proof.
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let bound = a
        .token()
        .audience(&canonical)
        .subject("dora")
        .scope("mcp:tools")
        .dpop_bound(&key)
        .sign();
    let proof = DpopProof::new(&key, "POST", &canonical)
        .access_token(&bound)
        .sign();
    let dpop = |proof: Option<&str>| {
        let mut req = http
            .post(&canonical)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("DPoP {bound}"))
            .body(tool);
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(dpop(Some(&proof)).await, 200);
    assert_eq!(dpop(Some(&proof)).await, 401);
    assert_eq!(dpop(None).await, 401);
    let metadata = http
        .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);

    protected_resource::metrics::record_key_sets(&auth.key_set_stats());
    let text = handle.render();
    let requests = "protected_resource_requests_total";
    let iss = format!("issuer=\"{}\"", a.issuer());
    for (labels, expected) in [
        (
            vec!["outcome=\"accepted\"", "reason=\"none\"", iss.as_str()],
            5.0,
        ),
        (vec!["outcome=\"refused\"", "reason=\"dpop_replayed\""], 1.0),
        (vec!["outcome=\"refused\"", "reason=\"dpop_missing\""], 1.0),
        (
            vec![
                "outcome=\"refused\"",
                "reason=\"missing_token\"",
                "issuer=\"unknown\"",
            ],
            1.0,
        ),
        (
            vec![
                "outcome=\"refused\"",
                "reason=\"expired\"",
                "issuer=\"unknown\"",
            ],
            1.0,
        ),
        (
            vec!["outcome=\"refused\"", "reason=\"invalid_audience\""],
            1.0,
        ),
        (vec!["outcome=\"refused\"", "reason=\"malformed\""], 1.0),
    ] {
        assert_eq!(
            value(&text, requests, &labels),
            Some(expected),
            "{labels:?} in\n{text}"
        );
    }
    let decisions = "protected_resource_tool_decisions_total";
    assert_eq!(
        value(&text, decisions, &["decision=\"allowed\""]),
        // Two bearer calls and one DPoP call of whoami.
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&text, decisions, &["decision=\"insufficient_scope\""]),
        Some(1.0)
    );
    assert_eq!(
        value(&text, decisions, &["decision=\"refused_body\""]),
        Some(1.0)
    );
    // Key sets: one fetch, the keys held, their age.
    assert_eq!(
        value(
            &text,
            "protected_resource_key_fetches_total",
            &[&iss, "result=\"sent\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(value(&text, "protected_resource_keys", &[&iss]).is_some_and(|k| k >= 1.0));
    assert!(value(&text, "protected_resource_key_set_age_seconds", &[&iss]).is_some());
    assert!(text.contains("# HELP protected_resource_requests_total"));
    // Only the lines above: no token, no subject, no other audience in any label.
    for secret in [good.as_str(), "alice", "bob", "carol", "other.example"] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    server.abort();

    // Introspection: calls by result and cache hits, labelled with the configured issuer.
    let endpoint = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", endpoint.local_addr().unwrap());
    let answer = serde_json::json!({"active": true, "iss": issuer, "sub": "dave",
        "aud": canonical, "exp": 4_000_000_000u64});
    let introspect = axum::Router::new().route(
        "/introspect",
        axum::routing::post(move |body: String| {
            let answer = answer.clone();
            async move {
                if body.contains("token=opaque-good") {
                    axum::Json(answer)
                } else {
                    axum::Json(serde_json::json!({"active": false}))
                }
            }
        }),
    );
    let introspection_server = tokio::spawn(async move {
        let _ = axum::serve(endpoint, introspect).await;
    });
    let opaque_auth = ResourceServerAuth::builder()
        .canonical_url(&canonical)
        .authorization_server(
            protected_resource::AuthorizationServerEntry::new(&issuer).introspection(
                protected_resource::Introspection::client_secret_basic("rs", "secret")
                    .endpoint(format!("{issuer}/introspect")),
            ),
        )
        .build()
        .unwrap();
    for (token, expected) in [
        ("opaque-good", Ok(())),
        ("opaque-good", Ok(())),
        (
            "opaque-bad",
            Err(protected_resource::ValidationErrorKind::Inactive),
        ),
    ] {
        assert_eq!(
            opaque_auth
                .validate(token)
                .await
                .map(|_| ())
                .map_err(|e| e.kind()),
            expected
        );
    }
    let text = handle.render();
    let iss = format!("issuer=\"{issuer}\"");
    let calls = "protected_resource_introspection_calls_total";
    assert_eq!(
        value(&text, calls, &[&iss, "result=\"active\""]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, calls, &[&iss, "result=\"inactive\""]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "protected_resource_introspection_cache_hits_total",
            &[&iss]
        ),
        Some(1.0)
    );
    assert!(!text.contains("opaque-good") && !text.contains("dave"));
    introspection_server.abort();
}
