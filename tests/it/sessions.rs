//! MCP session binding in the front door, with a minimal inner service that hands out and
//! accepts any session id (so every refusal seen here is the layer's).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::{HeaderMap, Method, Request, StatusCode};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceServerAuth};
use tower::ServiceExt;

/// Answers every request; without a session header it opens session `s-N`.
fn app(auth: ResourceServerAuth, calls: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route(
            "/mcp",
            any(move |method: Method, headers: HeaderMap| {
                let calls = calls.clone();
                async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    let mut res = http::Response::new(Body::from("ok"));
                    if method == Method::POST && !headers.contains_key("mcp-session-id") {
                        res.headers_mut()
                            .insert("mcp-session-id", format!("s-{n}").parse().unwrap());
                    }
                    res
                }
            }),
        )
        .layer(ProtectedResourceLayer::new(auth))
}

async fn send(
    app: &Router,
    method: Method,
    token: &str,
    session: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder()
        .method(method)
        .uri("/mcp")
        .header("authorization", format!("Bearer {token}"));
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let session = res
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, session, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn sessions_belong_to_the_issuer_and_subject_that_opened_them() {
    let a = MockAuthorizationServer::start().await.unwrap();
    let b = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_servers([a.entry(), b.entry()])
        .build()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(auth, calls.clone());
    let alice = a.token().audience(CANON).subject("alice").sign();
    let (status, session, _) = send(&app, Method::POST, &alice, None).await;
    assert_eq!(status, StatusCode::OK);
    let session = session.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Another subject, and the same subject at another issuer: 404, handler not called.
    let mallory = a.token().audience(CANON).subject("mallory").sign();
    let alice_elsewhere = b.token().audience(CANON).subject("alice").sign();
    for intruder in [&mallory, &alice_elsewhere] {
        for method in [Method::POST, Method::GET, Method::DELETE] {
            let (status, _, body) = send(&app, method.clone(), intruder, Some(&session)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"]["message"], "Session not found");
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The owner, with a fresh token, goes on; sessions the layer never saw pass through.
    let alice2 = a
        .token()
        .audience(CANON)
        .subject("alice")
        .expires_in(600)
        .sign();
    assert_eq!(
        send(&app, Method::POST, &alice2, Some(&session)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::POST, &mallory, Some("never-issued"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Deleting the session forgets the binding.
    assert_eq!(
        send(&app, Method::DELETE, &alice, Some(&session)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::POST, &mallory, Some(&session)).await.0,
        StatusCode::OK
    );
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_failed_delete_keeps_the_binding_and_limits_are_checked() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = auth_for(&server);
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(auth, calls.clone());
    let alice = server.token().audience(CANON).subject("alice").sign();
    let mallory = server.token().audience(CANON).subject("mallory").sign();
    let (_, session, _) = send(&app, Method::POST, &alice, None).await;
    let session = session.unwrap();
    // Naming alice's session in a second header is refused as well.
    let (_, mallorys, _) = send(&app, Method::POST, &mallory, None).await;
    let res = app
        .clone()
        .oneshot(
            Request::post("/mcp")
                .header("authorization", format!("Bearer {mallory}"))
                .header("mcp-session-id", mallorys.unwrap())
                .header("mcp-session-id", &session)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let before = calls.load(Ordering::SeqCst);
    // Mallory's DELETE is refused, so it can not unbind alice's session.
    assert_eq!(
        send(&app, Method::DELETE, &mallory, Some(&session)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, Method::POST, &mallory, Some(&session)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "refused requests never reach it"
    );

    let err = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .mcp_session_binding_limits(0, std::time::Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("mcp_session_binding_limits"),
        "{err}"
    );
}
