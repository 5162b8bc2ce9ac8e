//! CORS through the front door (tower-http's `CorsLayer`): listed origins, `Vary`, refusals
//! and metadata carrying the headers, preflights answered without the inner service.

use axum::body::Body;
use http::{Method, Request, StatusCode};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{AllowedOrigins, ConfigErrorKind, ResourceServerAuth};
use tower::ServiceExt;

use crate::common::*;

const APP: &str = "https://app.example.com";

async fn listed() -> (MockAuthorizationServer, App, ResourceServerAuth) {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .allowed_origins(AllowedOrigins::List(vec![APP.into()]))
        .build()
        .unwrap();
    (server, App::new(auth.clone()), auth)
}

fn from(origin: &str, req: http::request::Builder) -> Request<Body> {
    req.header("origin", origin).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn listed_origins_are_echoed_and_answers_vary_by_origin() {
    let (server, app, _) = listed().await;
    let token = server.token().audience(CANON).sign();
    let ok = app
        .send(from(
            APP,
            Request::post("/mcp").header("authorization", format!("Bearer {token}")),
        ))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.headers["access-control-allow-origin"], APP);
    assert!(ok.headers["vary"].to_str().unwrap().contains("origin"));

    // A refusal carries the CORS headers too, so the browser can read WWW-Authenticate.
    let refused = app.send(from(APP, Request::post("/mcp"))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.www(),
        Some(format!("Bearer resource_metadata=\"{METADATA_URL}\"").as_str())
    );
    assert_eq!(refused.headers["access-control-allow-origin"], APP);
    let expose = refused.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(expose.contains("www-authenticate"), "{expose}");

    // Another origin gets no Access-Control-Allow-Origin, whatever the answer.
    for req in [
        from("https://evil.example", Request::post("/mcp")),
        from(
            "https://evil.example",
            Request::post("/mcp").header("authorization", format!("Bearer {token}")),
        ),
    ] {
        let a = app.send(req).await;
        assert!(a.headers.get("access-control-allow-origin").is_none());
        assert!(a.headers["vary"].to_str().unwrap().contains("origin"));
    }
    assert_eq!(
        app.calls(),
        2,
        "only the two requests with a valid token reach the service"
    );
}

#[tokio::test]
async fn preflights_from_any_origin_never_reach_the_inner_service() {
    let (_server, app, _) = listed().await;
    for origin in [APP, "https://evil.example"] {
        let a = app
            .send(from(
                origin,
                Request::builder()
                    .method(Method::OPTIONS)
                    .uri("/mcp")
                    .header("access-control-request-method", "POST"),
            ))
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(
            a.headers
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            (origin == APP).then_some(APP)
        );
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn the_metadata_router_answers_with_cors_headers() {
    let (_server, _app, auth) = listed().await;
    let router: axum::Router = auth.metadata_router();
    let res = router
        .clone()
        .oneshot(from(
            APP,
            Request::get("/.well-known/oauth-protected-resource/mcp"),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    assert_eq!(res.headers()["content-type"], "application/json");
    let res = router
        .oneshot(from(
            APP,
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/.well-known/oauth-protected-resource/mcp")
                .header("access-control-request-method", "GET"),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
}

#[test]
fn a_wildcard_or_empty_origin_in_the_list_is_a_configuration_error() {
    for bad in ["*", "", "https://a.example\n"] {
        let err = ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(protected_resource::AuthorizationServerEntry::new(
                "https://as.example.com",
            ))
            .allowed_origins(AllowedOrigins::List(vec![bad.into()]))
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::InvalidValue);
        assert_eq!(err.field(), "allowed_origins");
    }
}
