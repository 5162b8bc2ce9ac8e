//! SPEC §5 (metadata), §6 (configuration and environment), §7 (extractor), CORS preflights,
//! and the single-issuer JwksTokenValidator.

use crate::common::*;
use axum::body::Body;
use axum::routing::get;
use http::{Method, Request, StatusCode};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    Algorithm, AllowedOrigins, AuthorizationServerEntry, ConfigErrorKind, JwksTokenValidator,
    ProtectedResourceLayer, ResourceOwner, ResourceServerAuth,
};
use serde_json::json;
use tower::ServiceExt;

fn entry() -> AuthorizationServerEntry {
    AuthorizationServerEntry::new("https://as.example.com").jwks_uri("https://as.example.com/jwks")
}

#[tokio::test]
async fn metadata_is_served_at_both_well_known_urls_without_token() {
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(entry())
        .authorization_server(entry())
        .scopes_supported(["mcp:tools", "mcp:read"])
        .resource_name("Test MCP")
        .build()
        .unwrap();
    let app = App::new(auth);
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
        "/mcp/.well-known/oauth-protected-resource",
    ] {
        let a = app
            .send(
                Request::get(path)
                    .header("origin", "https://x")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert_eq!(a.headers["content-type"], "application/json");
        assert!(a.headers.contains_key("cache-control"));
        assert_eq!(a.headers["access-control-allow-origin"], "*");
        assert_eq!(
            a.json(),
            json!({
                "resource": CANON,
                "authorization_servers": ["https://as.example.com"],
                "bearer_methods_supported": ["header"],
                "scopes_supported": ["mcp:tools", "mcp:read"],
                "resource_name": "Test MCP",
                "dpop_signing_alg_values_supported": [
                    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                    "ES256", "ES384", "ES512", "EdDSA"
                ],
                "dpop_bound_access_tokens_required": false
            })
        );
        let head = app
            .send(Request::head(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
        // Without `Origin`: no CORS headers, but the cacheable document says it varies by
        // origin, so that no cache hands it to a browser without them.
        assert!(!head.headers.contains_key("access-control-allow-origin"));
        assert_eq!(
            head.headers["vary"],
            "origin, access-control-request-method, access-control-request-headers"
        );
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn metadata_router_serves_next_to_route_layer() {
    let auth = ResourceServerAuth::builder()
        .canonical_url("https://mcp.example.com")
        .authorization_server(entry())
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route("/", get(|| async { "secret" }))
        .route_layer(ProtectedResourceLayer::new(auth.clone()))
        .merge(auth.metadata_router());
    let res = app
        .clone()
        .oneshot(
            Request::get("/.well-known/oauth-protected-resource")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource\""
    );
}

#[tokio::test]
async fn cors_preflight_passes_without_token() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_for(&server));
    let a = app
        .send(
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/mcp")
                .header("origin", "http://localhost:6274")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type, mcp-session-id, mcp-protocol-version, \
                     last-event-id, mcp-method, mcp-name, mcp-param-city",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.status);
    assert_eq!(a.headers["access-control-allow-origin"], "*");
    assert_eq!(a.headers["access-control-max-age"], "86400");
    let allow = a.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
        "mcp-method",
        "mcp-name",
        "mcp-param-city",
    ] {
        assert!(allow.contains(h), "{h}");
    }
    let methods = a.headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    assert!(a.body.is_empty());
    assert_eq!(
        app.calls(),
        0,
        "a preflight never reaches the inner service"
    );
    // A plain OPTIONS (no Access-Control-Request-Method) is not a preflight: it needs a token
    // like any other request.
    for origin in [None, Some("http://localhost:6274")] {
        let mut req = Request::builder().method(Method::OPTIONS).uri("/mcp");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let a = app.send(req.body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            a.www(),
            Some(format!("Bearer resource_metadata=\"{METADATA_URL}\"").as_str())
        );
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn preflights_never_reach_the_inner_service_when_cors_is_disabled() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .allowed_origins(AllowedOrigins::Disabled)
        .build()
        .unwrap();
    let app = App::new(auth);
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/mcp")
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let a = app.send(preflight).await;
    // Answered by the front door, without CORS headers (a layer outside handles CORS).
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.body.is_empty());
    assert!(a.headers.get("access-control-allow-origin").is_none());
    assert_eq!(app.calls(), 0);
    // Any other request still needs a token.
    let a = app
        .send(Request::post("/mcp").body(Body::empty()).unwrap())
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn extractor_without_layer_is_a_clear_500_and_optional_is_none() {
    let app = axum::Router::new()
        .route(
            "/strict",
            get(|o: ResourceOwner| async move { o.user_id().to_owned() }),
        )
        .route(
            "/optional",
            get(|o: Option<ResourceOwner>| async move { format!("{}", o.is_some()) }),
        );
    let res = app
        .clone()
        .oneshot(Request::get("/strict").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("ProtectedResourceLayer"));
    let res = app
        .oneshot(Request::get("/optional").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    assert_eq!(&body[..], b"false");
}

#[tokio::test]
async fn jwks_token_validator_validates_without_metadata() {
    let server = MockAuthorizationServer::start_with(&[Algorithm::ES256])
        .await
        .unwrap();
    let v = JwksTokenValidator::builder(server.issuer())
        .jwks_uri(server.jwks_uri())
        .audience("my-api")
        .algorithm(Algorithm::ES256)
        .build()
        .unwrap();
    let owner = v
        .validate(&server.token().audience("my-api").subject("bob").sign())
        .await
        .unwrap();
    assert_eq!(owner.user_id(), "bob");
    let err = v
        .validate(&server.token().audience("other").sign())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        protected_resource::ValidationErrorKind::InvalidAudience
    );

    let app = axum::Router::new()
        .route(
            "/",
            get(|o: ResourceOwner| async move { o.user_id().to_owned() }),
        )
        .layer(ProtectedResourceLayer::from_validator(v));
    let res = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = app
        .oneshot(
            Request::get("/.well-known/oauth-protected-resource")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "no metadata is served"
    );
}

#[test]
fn canonical_url_rules() {
    for (url, ok) in [
        ("https://mcp.example.com/mcp", true),
        ("https://mcp.example.com", true),
        ("https://mcp.example.com:8443/a?tenant=1", true),
        ("http://localhost:8000/mcp", true),
        ("http://127.0.0.1:8000/mcp", true),
        ("http://[::1]:8000/mcp", true),
        ("http://example.com/mcp", false),
        ("mcp.example.com", false),
        ("https://mcp.example.com/mcp#frag", false),
        ("https://mcp.example.com/m cp", false),
        (" https://mcp.example.com", false),
        ("ftp://mcp.example.com", false),
        ("", false),
    ] {
        let r = ResourceServerAuth::builder()
            .canonical_url(url)
            .authorization_server(entry())
            .build();
        assert_eq!(r.is_ok(), ok, "{url}: {r:?}");
        if let Err(e) = r {
            assert_eq!(e.kind(), ConfigErrorKind::InvalidCanonicalUrl);
            assert_eq!(e.field(), "canonical_url");
        }
    }
}

#[test]
fn configuration_errors_name_the_field() {
    let base = || ResourceServerAuth::builder().canonical_url(CANON);
    let e = base().build().unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (
            ConfigErrorKind::NoAuthorizationServers,
            "authorization_servers"
        )
    );
    let e = ResourceServerAuth::builder()
        .authorization_server(entry())
        .build()
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ConfigErrorKind::Missing, "canonical_url")
    );
    let e = base()
        .authorization_server(entry().algorithms([]))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "authorization_servers[0].algorithms");
    let e = base()
        .authorization_server(entry())
        .authorization_server(
            AuthorizationServerEntry::new("https://a").jwks_uri("http://a.example/jwks"),
        )
        .build()
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (
            ConfigErrorKind::InvalidUrl,
            "authorization_servers[1].jwks_uri"
        )
    );
    let e = base()
        .authorization_server(entry())
        .scopes_supported(["ok", "bad scope"])
        .build()
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ConfigErrorKind::InvalidScope, "scopes_supported")
    );
    let e = base()
        .authorization_server(entry())
        .default_challenge_scopes(["offline_access"])
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "default_challenge_scopes");
    let e = base()
        .authorization_server(entry().expected_audiences([""]))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ConfigErrorKind::InvalidAudience);
    let e = "HS256".parse::<Algorithm>().unwrap_err();
    assert!(e.to_string().contains("HMAC"));
}

const SERVERS: &str = "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS";

#[test]
fn environment_configuration_and_aliases() {
    let json = r#"[{"authorization_server_url":"https://a.example","issuer":"https://a.example","jwks_uri":"https://a.example/jwks",
        "algorithms":["RS256","ES256"],"expected_audiences":["aud-1"],
        "validation_options":{"verify_iat":false,"leeway":30}}]"#;
    let auth = ResourceServerAuth::builder()
        .with_env_vars([
            (
                "MCP_RESOURCE_SERVER_CANONICAL_URL",
                "https://mcp.example.com/mcp",
            ),
            (SERVERS, json),
            ("MCP_SERVER_AUTH_SCOPES_SUPPORTED", "mcp:tools  mcp:read"),
            ("MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES", "mcp:tools"),
        ])
        .build()
        .unwrap();
    assert_eq!(auth.canonical_url(), "https://mcp.example.com/mcp");
    let e = &auth.authorization_servers()[0];
    assert_eq!(e.get_algorithms(), [Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(e.get_expected_audiences(), ["aud-1"]);
    assert!(!e.get_validation_options().verify_iat && e.get_validation_options().verify_exp);
    assert_eq!(
        e.get_validation_options().leeway,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(auth.scopes_supported(), ["mcp:tools", "mcp:read"]);

    // Explicit values win over the environment, whatever the order.
    let auth = ResourceServerAuth::builder()
        .with_env_vars([
            (
                "MCP_SERVER_AUTH_CANONICAL_URL",
                "https://env.example.com/mcp",
            ),
            (SERVERS, json),
        ])
        .canonical_url("https://code.example.com/mcp")
        .build()
        .unwrap();
    assert_eq!(auth.canonical_url(), "https://code.example.com/mcp");
}

#[test]
fn bad_environment_values_name_the_variable() {
    let cases = [
        (vec![(SERVERS, "not json")], SERVERS),
        (vec![(SERVERS, "[]")], SERVERS),
        (
            vec![(
                SERVERS,
                r#"[{"authorization_server_url":"https://a","issuer":"https://a","jwks_uri":"https://a/j","surprise":1}]"#,
            )],
            "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS[0]",
        ),
        (
            vec![(
                SERVERS,
                r#"[{"authorization_server_url":"https://a","issuer":"https://a","jwks_uri":"https://a/j","algorithm":"none"}]"#,
            )],
            "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS[0].algorithm",
        ),
        (
            vec![(
                SERVERS,
                r#"[{"authorization_server_url":"https://a","issuer":"https://a","jwks_uri":"https://a/j","algorithm":"RS256","algorithms":["RS256"]}]"#,
            )],
            "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS[0]",
        ),
        (
            vec![(
                SERVERS,
                r#"[{"authorization_server_url":"https://a","issuer":"https://a","jwks_uri":"https://a/j","validation_options":{"verify_sig":false}}]"#,
            )],
            "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS[0]",
        ),
        (
            vec![("MCP_SERVER_AUTH_CANONICAL_URL", "http://example.com/mcp")],
            "MCP_SERVER_AUTH_CANONICAL_URL",
        ),
        (
            vec![("MCP_RESOURCE_SERVER_SCOPES_SUPPORTED", "a \"b\"")],
            "MCP_RESOURCE_SERVER_SCOPES_SUPPORTED",
        ),
    ];
    for (vars, field) in cases {
        let mut builder = ResourceServerAuth::builder().with_env_vars(vars.clone());
        if field.contains("CANONICAL_URL") || field.contains("SCOPES") {
            builder = builder.authorization_server(entry());
        }
        if !field.contains("CANONICAL_URL") {
            builder = builder.canonical_url(CANON);
        }
        let e = builder.build().unwrap_err();
        assert_eq!(e.field(), field, "{vars:?}: {e}");
        assert!(e.to_string().contains(field));
    }
}
