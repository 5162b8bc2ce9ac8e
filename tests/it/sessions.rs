//! MCP session binding in the front door, with a minimal MCP-like inner service that hands
//! out session ids and answers 404 for ids it did not issue: ids sealed to their owner, any
//! replica with the key enforcing it, rotation, and the key from the environment.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::*;
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::{HeaderMap, Method, Request, StatusCode};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth, SealingKey};
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
    let (router, seen) = inner(calls);
    (router.layer(ProtectedResourceLayer::new(auth)), seen)
}

/// The MCP-like server alone, to put behind several layers ("replicas" sharing its state).
fn inner(calls: Arc<AtomicUsize>) -> (Router, Arc<Mutex<Vec<Seen>>>) {
    let live: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let router = Router::new().route(
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
    );
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
    // The client holds the server's id sealed to alice.
    let (inner_id, tag) = session.rsplit_once('.').unwrap();
    assert_eq!(inner_id, "s-0");
    assert_eq!(tag.len(), 43, "a base64url HMAC-SHA-256 tag: {session}");

    // Another subject, and the same subject at another issuer, naming alice's session, the
    // server's own id unsealed, or a forged one: exactly the server's answer for a session
    // of the same shape that it never issued.
    let mallory = a.token().audience(CANON).subject("mallory").sign();
    let alice_elsewhere = b.token().audience(CANON).subject("alice").sign();
    let forged = format!("s-1.{tag}");
    for intruder in [&mallory, &alice_elsewhere] {
        for method in [Method::POST, Method::GET, Method::DELETE] {
            let live = send(&app, method.clone(), intruder, Some(&session)).await;
            assert_eq!(live.0, StatusCode::NOT_FOUND, "{method}");
            for other in ["s-9", inner_id, forged.as_str()] {
                let never = send(&app, method.clone(), intruder, Some(other)).await;
                assert_eq!(live, never, "{method} {other}");
            }
        }
    }
    // alice herself with the unsealed id gets the same: only the sealed id is hers.
    assert_eq!(
        send(&app, Method::POST, &alice, Some(inner_id)).await.0,
        StatusCode::NOT_FOUND
    );
    // The server never saw alice's session id from anyone but alice, nor any token.
    for s in seen.lock().unwrap().iter() {
        assert!(!s.authorization, "the inner service saw the token: {s:?}");
        if s.session.as_deref() == Some(inner_id) {
            assert_eq!(s.user, "alice", "{s:?}");
        }
    }

    // The owner, with a fresh token, goes on (mallory's DELETE did not end the session); the
    // server sees its own id.
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
        seen.lock().unwrap().last().unwrap().session.as_deref(),
        Some(inner_id)
    );
    let (_, mallorys, _) = send(&app, Method::POST, &mallory, None).await;
    assert_eq!(
        send(&app, Method::POST, &mallory, mallorys.as_deref())
            .await
            .0,
        StatusCode::OK
    );

    // Deleting the session ends it at the server; its sealed id then gets the server's 404.
    assert_eq!(
        send(&app, Method::DELETE, &alice, Some(&session)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::POST, &alice, Some(&session)).await.0,
        StatusCode::NOT_FOUND
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

/// A layer in front of the shared server, sealing with `key`.
fn replica(server: &MockAuthorizationServer, key: Option<SealingKey>, inner: &Router) -> Router {
    let mut builder = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry());
    if let Some(key) = key {
        builder = builder.session_key(key);
    }
    inner
        .clone()
        .layer(ProtectedResourceLayer::new(builder.build().unwrap()))
}

fn key(byte: u8) -> SealingKey {
    SealingKey::from_bytes(&[byte; 32]).unwrap()
}

#[tokio::test]
async fn every_replica_with_the_key_continues_a_session_and_enforces_its_owner() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let (inner, seen) = inner(Arc::new(AtomicUsize::new(0)));
    let a = replica(&server, Some(key(1)), &inner);
    // Another process with the same key (a replica, or this one after a restart).
    let b = replica(&server, Some(key(1)), &inner);
    // Rotated: a new key that still accepts the old one.
    let rotated = replica(&server, Some(key(2).with_previous(&key(1))), &inner);
    let stranger = replica(&server, Some(key(3)), &inner);
    let random = replica(&server, None, &inner);
    let alice = server.token().audience(CANON).subject("alice").sign();
    let bob = server.token().audience(CANON).subject("bob").sign();

    let (_, session, _) = send(&a, Method::POST, &alice, None).await;
    let session = session.unwrap();
    for r in [&b, &rotated] {
        assert_eq!(
            send(r, Method::POST, &alice, Some(&session)).await.0,
            StatusCode::OK
        );
        assert_eq!(
            seen.lock().unwrap().last().unwrap().session.as_deref(),
            Some("s-0")
        );
        // bob gets the unknown-session answer on every replica.
        let refused = send(r, Method::POST, &bob, Some(&session)).await;
        assert_eq!(refused.0, StatusCode::NOT_FOUND);
        assert_ne!(
            seen.lock().unwrap().last().unwrap().session.as_deref(),
            Some("s-0")
        );
    }
    // Without the key, a session is nobody's.
    for r in [&stranger, &random] {
        assert_eq!(
            send(r, Method::POST, &alice, Some(&session)).await.0,
            StatusCode::NOT_FOUND
        );
    }
    // What the rotated key seals, only keys that know it open.
    let (_, newer, _) = send(&rotated, Method::POST, &alice, None).await;
    let newer = newer.unwrap();
    assert_eq!(
        send(&rotated, Method::POST, &alice, Some(&newer)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&a, Method::POST, &alice, Some(&newer)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_session_key_comes_from_the_environment_and_is_never_shown() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let base = || {
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(server.entry())
    };
    let good = "c2l4dHktZm91ci1ieXRlcy1vZi1rZXktbWF0ZXJpYWwtZm9yLXRlc3Rpbmch";
    let short = "dG9vIHNob3J0";
    let dir = std::env::temp_dir().join(format!("pr-session-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("key");
    std::fs::write(&file, format!("{good}\n")).unwrap();
    let file = file.to_str().unwrap().to_owned();

    let from = |vars: &[(&str, &str)]| base().with_env_vars(vars.iter().copied()).build();
    let a = from(&[("MCP_SERVER_SESSION_KEY", good)]).unwrap();
    let b = from(&[("MCP_SERVER_SESSION_KEY_FILE", file.as_str())]).unwrap();
    // The same key from a file: what one seals the other opens.
    let (inner_app, _) = inner(Arc::new(AtomicUsize::new(0)));
    let ra = inner_app.clone().layer(ProtectedResourceLayer::new(a));
    let rb = inner_app.layer(ProtectedResourceLayer::new(b));
    let alice = server.token().audience(CANON).subject("alice").sign();
    let (_, session, _) = send(&ra, Method::POST, &alice, None).await;
    assert_eq!(
        send(&rb, Method::POST, &alice, session.as_deref()).await.0,
        StatusCode::OK
    );

    for (vars, field) in [
        (
            vec![("MCP_SERVER_SESSION_KEY", short)],
            "MCP_SERVER_SESSION_KEY",
        ),
        (
            vec![("MCP_SERVER_SESSION_KEY", "not*base64url")],
            "MCP_SERVER_SESSION_KEY",
        ),
        (
            vec![
                ("MCP_SERVER_SESSION_KEY", good),
                ("MCP_SERVER_SESSION_KEY_FILE", file.as_str()),
            ],
            "MCP_SERVER_SESSION_KEY",
        ),
        (
            vec![("MCP_SERVER_SESSION_KEY_FILE", "/nonexistent/key")],
            "MCP_SERVER_SESSION_KEY_FILE",
        ),
        (
            vec![("MCP_SERVER_SESSION_KEY_PREVIOUS", good)],
            "MCP_SERVER_SESSION_KEY_PREVIOUS",
        ),
        (
            vec![
                ("MCP_SERVER_SESSION_KEY", good),
                ("MCP_SERVER_SESSION_KEY_PREVIOUS", short),
            ],
            "MCP_SERVER_SESSION_KEY_PREVIOUS",
        ),
    ] {
        let err = from(&vars).unwrap_err();
        assert_eq!(err.field(), field, "{vars:?}: {err}");
        for (_, value) in &vars {
            assert!(!err.to_string().contains(value), "{err} shows a value");
        }
    }
    let with_previous = from(&[
        ("MCP_SERVER_SESSION_KEY", good),
        (
            "MCP_SERVER_SESSION_KEY_PREVIOUS",
            &format!("{good}, {good}"),
        ),
    ])
    .unwrap();
    assert!(!format!("{with_previous:?}").contains(good));
    assert!(!format!("{:?}", with_previous.sealing_key()).contains(good));
    std::fs::remove_dir_all(&dir).unwrap();
}
