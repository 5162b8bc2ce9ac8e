//! The public API's promises beyond validation: nothing secret in `Debug`, the bearer token
//! marked sensitive for the inner service, `ValidationError::status`, service accessors.

use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use http::{HeaderMap, Request, StatusCode};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    AuthorizationServerEntry, ProtectedResource, ProtectedResourceLayer, ResourceOwner,
    ResourceServerAuth, ValidationErrorKind,
};
use tower::{Layer, ServiceExt};

use crate::common::*;

#[test]
fn builder_debug_never_prints_the_environment() {
    let builder = ResourceServerAuth::builder().with_env_vars([
        ("MCP_SERVER_AUTH_CANONICAL_URL", "http://127.0.0.1:8000/mcp"),
        (
            "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS",
            r#"[{"issuer":"https://as.example.com","client_secret":"s3cr3t-in-json"}]"#,
        ),
        ("DATABASE_PASSWORD", "hunter2-password"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret"),
    ]);
    let printed = format!("{builder:?} {builder:#?}");
    for secret in [
        "hunter2-password",
        "wJalrXUtnFEMI-secret",
        "s3cr3t-in-json",
        "DATABASE_PASSWORD",
        "http://127.0.0.1:8000/mcp",
    ] {
        assert!(!printed.contains(secret), "{secret} printed in {printed}");
    }
    assert!(printed.contains("redacted"), "{printed}");
    // Only the crate's own variables are kept: an unrelated one can not make `build` fail
    // or be held in memory.
    let auth = ResourceServerAuth::builder()
        .with_env_vars([
            ("MCP_SERVER_AUTH_CANONICAL_URL", CANON),
            (
                "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS",
                r#"[{"issuer":"https://as.example.com"}]"#,
            ),
            ("HOME", "/root"),
        ])
        .build()
        .unwrap();
    assert_eq!(auth.canonical_url(), CANON);
}

#[tokio::test]
async fn owner_and_auth_debug_print_no_claims_or_tokens() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = auth_for(&server);
    let token = server
        .token()
        .audience(CANON)
        .claim("email", "alice-private@example.com")
        .sign();
    let owner = auth.validate(&token).await.unwrap();
    let printed = format!(
        "{owner:?} {auth:?} {:?}",
        ProtectedResourceLayer::new(auth.clone())
    );
    assert!(!printed.contains("alice-private"), "{printed}");
    assert!(!printed.contains(&token), "{printed}");
    assert!(printed.contains("user-123"), "{printed}");
}

/// The inner service's view of one request: whether it had an `Authorization` header (and
/// whether marked sensitive, and how `Debug` prints it), and the owner's token.
async fn what_the_inner_service_sees(auth: ResourceServerAuth, authorization: &str) -> String {
    let app = axum::Router::new()
        .route(
            "/mcp",
            post(|headers: HeaderMap, owner: ResourceOwner| async move {
                let header = headers
                    .get(http::header::AUTHORIZATION)
                    .map(|v| format!("{} {v:?}", v.is_sensitive()));
                format!(
                    "{header:?}|{}|{owner:?}",
                    owner.bearer_token().unwrap_or("no token")
                )
            }),
        )
        .layer(ProtectedResourceLayer::new(auth));
    let res = app
        .oneshot(
            Request::post("/mcp")
                .header("authorization", authorization)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn the_inner_service_never_sees_the_token_unless_told_to() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let token = server.token().audience(CANON).sign();
    // The accessor gives the token alone, whatever the scheme's case and the spaces around.
    for authorization in [format!("Bearer {token}"), format!("bEARER    {token} \t ")] {
        let seen = what_the_inner_service_sees(auth_for(&server), &authorization).await;
        let (header, rest) = seen.split_once('|').unwrap();
        let (owner_token, owner_debug) = rest.split_once('|').unwrap();
        assert_eq!(header, "None", "the Authorization header is removed");
        assert_eq!(owner_token, token, "the deliberate accessor has it");
        assert!(!owner_debug.contains(&token), "{owner_debug}");
    }

    // The dangerous switch keeps the header, marked sensitive (Debug hides it).
    let forwarding = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .dangerous_forward_bearer_token(true)
        .build()
        .unwrap();
    let seen = what_the_inner_service_sees(forwarding, &format!("Bearer  {token}")).await;
    let (header, rest) = seen.split_once('|').unwrap();
    assert!(header.starts_with("Some(\"true "), "{header}");
    assert!(!header.contains(&token), "{header}");
    let (owner_token, _) = rest.split_once('|').unwrap();
    assert_eq!(
        owner_token, token,
        "the accessor has it when forwarding too"
    );
}

#[tokio::test]
async fn validation_error_status_is_401_or_503_for_unavailable_keys() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = auth_for(&server);
    let err = auth.validate("a.b.c").await.unwrap_err();
    assert_eq!(err.kind(), ValidationErrorKind::Malformed);
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    let expired = server.token().audience(CANON).expires_in(-60).sign();
    assert_eq!(
        auth.validate(&expired).await.unwrap_err().status(),
        StatusCode::UNAUTHORIZED
    );

    // Keys from a port where nothing listens: the token may be fine, so 503.
    let unreachable = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(
            AuthorizationServerEntry::new(server.issuer()).jwks_uri("http://127.0.0.1:1/jwks"),
        )
        .jwks_connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let token = server.token().audience(CANON).sign();
    let err = unreachable.validate(&token).await.unwrap_err();
    assert_eq!(err.kind(), ValidationErrorKind::KeysUnavailable);
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.retry_after().is_some());
}

#[tokio::test]
async fn services_give_access_to_the_inner_service() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = auth_for(&server);
    let inner = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
    });
    let mut svc = ProtectedResourceLayer::new(auth.clone()).layer(inner);
    let _: &_ = svc.get_ref();
    let _: &mut _ = svc.get_mut();
    let _ = svc.into_inner();
    let svc = ProtectedResource::new(inner, auth);
    let res = svc
        .oneshot(Request::post("/mcp").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn the_advertised_authorization_server_must_be_a_url_even_when_it_is_the_issuer() {
    // The issuer is advertised when no authorization_server_url is set: a non-URL issuer
    // would leave clients nowhere to log in, so build() refuses it.
    let entry = AuthorizationServerEntry::new("my-tenant").jwks_uri("https://as.example.com/jwks");
    let err = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(entry.clone())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), protected_resource::ConfigErrorKind::InvalidUrl);
    assert_eq!(
        err.field(),
        "authorization_servers[0].authorization_server_url"
    );
    // With an advertised URL of its own, an issuer that is not a URL is accepted (it is only
    // compared with the tokens' `iss`).
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(entry.authorization_server_url("https://as.example.com"))
        .build()
        .unwrap();
    assert_eq!(
        auth.authorization_servers()[0].get_authorization_server_url(),
        "https://as.example.com"
    );
    let err = ResourceServerAuth::builder()
        .with_env_vars([
            ("MCP_SERVER_AUTH_CANONICAL_URL", CANON),
            (
                "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS",
                r#"[{"issuer":"my-tenant","jwks_uri":"https://as.example.com/jwks"}]"#,
            ),
        ])
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), protected_resource::ConfigErrorKind::InvalidUrl);
}

#[tokio::test]
async fn scope_services_are_built_directly_and_give_access_to_the_inner_service() {
    use protected_resource::{
        McpScopes, McpScopesLayer, RequireScopes, RequireScopesLayer, ScopeRequirement,
    };
    let inner = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
    });
    let requirement = ScopeRequirement::all(["files:read"]).unwrap();

    let mut scopes = RequireScopes::new(inner, requirement.clone());
    let _: &mut _ = scopes.get_mut();
    let _: &_ = scopes.get_ref();
    // No ResourceOwner in the request: the layer is outside the front door, a server bug.
    let res = scopes
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let _ = scopes.into_inner();
    let _: RequireScopesLayer = RequireScopes::<()>::layer(requirement.clone());

    let layer = McpScopesLayer::new().tool("admin_report", requirement);
    let mut tools = McpScopes::new(inner, layer);
    let _: &mut _ = tools.get_mut();
    let _: &_ = tools.get_ref();
    let res = tools
        .clone()
        .oneshot(Request::post("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let _ = tools.into_inner();
    assert_eq!(
        McpScopesLayer::DEFAULT_MAX_BODY_BYTES,
        4 * 1024 * 1024,
        "the documented default"
    );
    let _: McpScopesLayer = McpScopes::<()>::layer();
    // The 0.2 names still compile, deprecated.
    #[allow(deprecated)]
    let _: protected_resource::McpToolScopesLayer = McpScopesLayer::new();
}
