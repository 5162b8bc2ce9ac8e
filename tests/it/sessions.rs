//! MCP session binding in the front door, with a minimal MCP-like inner service that hands
//! out session ids and answers 404 for ids it did not issue.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::*;
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::{HeaderMap, Method, Request, StatusCode};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
use tower::ServiceExt;

/// What the inner service saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    user: String,
    session: Option<String>,
    authorization: bool,
}

/// A tiny MCP-like server: a POST without a session opens `s-N`; a request naming a session
/// it issued is answered 200, any other session 404 (as rmcp answers); DELETE ends one.
fn app(auth: ResourceServerAuth, calls: Arc<AtomicUsize>) -> (Router, Arc<Mutex<Vec<Seen>>>) {
    let live: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let router = Router::new()
        .route(
            "/mcp",
            any(
                move |method: Method, headers: HeaderMap, owner: ResourceOwner| {
                    let (calls, live, log) = (calls.clone(), live.clone(), log.clone());
                    async move {
                        let n = calls.fetch_add(1, Ordering::SeqCst);
                        let session = headers
                            .get("mcp-session-id")
                            .map(|v| v.to_str().unwrap().to_owned());
                        log.lock().unwrap().push(Seen {
                            user: owner.user_id().to_owned(),
                            session: session.clone(),
                            authorization: headers.contains_key("authorization"),
                        });
                        let mut live = live.lock().unwrap();
                        let known = session.as_ref().is_some_and(|s| live.contains(s));
                        match (session, known) {
                            (Some(_), false) => http::Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Body::from("Not Found: Session not found"))
                                .unwrap(),
                            (Some(s), true) if method == Method::DELETE => {
                                live.remove(&s);
                                http::Response::new(Body::from("ok"))
                            }
                            (Some(_), true) => http::Response::new(Body::from("ok")),
                            (None, _) => {
                                let id = format!("s-{n}");
                                live.insert(id.clone());
                                let mut res = http::Response::new(Body::from("ok"));
                                res.headers_mut()
                                    .insert("mcp-session-id", id.parse().unwrap());
                                res
                            }
                        }
                    }
                },
            ),
        )
        .layer(ProtectedResourceLayer::new(auth));
    (router, seen)
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
    let (app, seen) = app(auth, calls.clone());
    let alice = a.token().audience(CANON).subject("alice").sign();
    let (status, session, _) = send(&app, Method::POST, &alice, None).await;
    assert_eq!(status, StatusCode::OK);
    let session = session.unwrap();

    // Another subject, and the same subject at another issuer: exactly the server's answer
    // for a session id of the same shape that it never issued.
    let mallory = a.token().audience(CANON).subject("mallory").sign();
    let alice_elsewhere = b.token().audience(CANON).subject("alice").sign();
    for intruder in [&mallory, &alice_elsewhere] {
        for method in [Method::POST, Method::GET, Method::DELETE] {
            let live = send(&app, method.clone(), intruder, Some(&session)).await;
            let never = send(&app, method.clone(), intruder, Some("s-9")).await;
            assert_eq!(live.0, StatusCode::NOT_FOUND, "{method}");
            assert_eq!(live, never, "{method}");
        }
    }
    // The server never saw alice's session id from anyone but alice, nor any token.
    for s in seen.lock().unwrap().iter() {
        assert!(!s.authorization, "the inner service saw the token: {s:?}");
        if s.session.as_deref() == Some(session.as_str()) {
            assert_eq!(s.user, "alice", "{s:?}");
        }
    }

    // The owner, with a fresh token, goes on (mallory's DELETE did not end the session);
    // sessions the layer never saw pass through.
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
    let (_, mallorys, _) = send(&app, Method::POST, &mallory, None).await;
    assert_eq!(
        send(&app, Method::POST, &mallory, mallorys.as_deref())
            .await
            .0,
        StatusCode::OK
    );

    // Deleting the session forgets the binding (the server now says 404 itself).
    assert_eq!(
        send(&app, Method::DELETE, &alice, Some(&session)).await.0,
        StatusCode::OK
    );
    let after = send(&app, Method::POST, &mallory, Some(&session)).await;
    assert_eq!(after.0, StatusCode::NOT_FOUND);
    assert_eq!(
        seen.lock().unwrap().last().unwrap().session.as_deref(),
        Some(session.as_str()),
        "an unbound session id goes to the server as it is"
    );
}

#[tokio::test]
async fn a_second_session_header_naming_another_users_session_is_replaced_too() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = auth_for(&server);
    let calls = Arc::new(AtomicUsize::new(0));
    let (app, seen) = app(auth, calls.clone());
    let alice = server.token().audience(CANON).subject("alice").sign();
    let mallory = server.token().audience(CANON).subject("mallory").sign();
    let (_, session, _) = send(&app, Method::POST, &alice, None).await;
    let session = session.unwrap();
    let (_, mallorys, _) = send(&app, Method::POST, &mallory, None).await;
    let mallorys = mallorys.unwrap();
    let res = app
        .clone()
        .oneshot(
            Request::post("/mcp")
                .header("authorization", format!("Bearer {mallory}"))
                .header("mcp-session-id", &mallorys)
                .header("mcp-session-id", &session)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.user, "mallory");
    assert_ne!(last.session.as_deref(), Some(session.as_str()));
    assert_ne!(last.session.as_deref(), Some(mallorys.as_str()));
    // Alice's session is untouched.
    assert_eq!(
        send(&app, Method::POST, &alice, Some(&session)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn session_limits_are_checked() {
    let server = MockAuthorizationServer::start().await.unwrap();
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
