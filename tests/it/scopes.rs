//! Scope requirements behind the front door: RequireScopesLayer, ResourceOwner::require,
//! per-tool policies on MCP bodies (single, batch, oversized, malformed, repeated members,
//! compressed, broken), hierarchies, and the exact 403 challenges.

use std::sync::{Arc, Mutex};

use crate::common::*;
use axum::Router;
use axum::body::Body;
use axum::routing::{any, post};
use bytes::Bytes;
use http::{Request, StatusCode};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    InsufficientScope, McpRequirement, McpScopesLayer, ProtectedResourceLayer, RequireScopesLayer,
    ResourceOwner, ResourceServerAuth, ScopeRequirement,
};
use serde_json::json;
use tower::ServiceExt;

fn auth(server: &MockAuthorizationServer) -> ResourceServerAuth {
    ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .scopes_supported(["mcp:tools", "mcp:write", "mcp:admin"])
        .scope_implies("mcp:admin", ["mcp:write"])
        .scope_implies("mcp:write", ["mcp:tools"])
        .build()
        .unwrap()
}

fn insufficient(scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{METADATA_URL}\""
    )
}

/// What the inner service saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Bytes>>>);

impl Seen {
    fn bodies(&self) -> Vec<Bytes> {
        self.0.lock().unwrap().clone()
    }
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// `/mcp` echoes its body (as JSON, like an MCP server's answer); `/admin` needs `mcp:admin` (route layer); `/either` needs any of
/// `mcp:write`/`mcp:other`; `/handler` checks `mcp:write` in the handler.
fn router(auth: ResourceServerAuth, tools: Option<McpScopesLayer>, seen: &Seen) -> Router {
    let record = |seen: Seen| {
        move |body: Bytes| {
            let seen = seen.clone();
            async move {
                seen.0.lock().unwrap().push(body.clone());
                ([(http::header::CONTENT_TYPE, "application/json")], body)
            }
        }
    };
    let mcp = Router::new().route("/mcp", any(record(seen.clone())));
    let mcp = match tools {
        Some(t) => mcp.layer(t),
        None => mcp,
    };
    let seen2 = seen.clone();
    Router::new()
        .route("/admin", any(record(seen.clone())))
        .route_layer(RequireScopesLayer::all(["mcp:admin"]).unwrap())
        .merge(
            Router::new()
                .route("/either", any(record(seen.clone())))
                .route_layer(RequireScopesLayer::any(["mcp:write", "mcp:other"]).unwrap()),
        )
        .route(
            "/handler",
            post(move |owner: ResourceOwner| {
                let seen = seen2.clone();
                async move {
                    owner.require_scopes(["mcp:write"])?;
                    seen.0.lock().unwrap().push(Bytes::new());
                    Ok::<_, InsufficientScope>("written")
                }
            }),
        )
        .merge(mcp)
        .layer(ProtectedResourceLayer::new(auth))
}

struct Reply {
    status: StatusCode,
    www: Option<String>,
    body: String,
}

async fn send(app: &Router, path: &str, token: &str, body: impl Into<Body>) -> Reply {
    send_req(
        app,
        Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap(),
    )
    .await
}

async fn send_req(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        www,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn token(server: &MockAuthorizationServer, scope: &str) -> String {
    server.token().audience(CANON).scope(scope).sign()
}

#[tokio::test]
async fn route_requirements_answer_the_step_up_challenge() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let seen = Seen::default();
    let app = router(auth(&server), None, &seen);

    let r = send(&app, "/admin", &token(&server, "mcp:tools mcp:write"), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The required scope first, then the granted ones the resource advertises (kept so the
    // client does not lose them when it re-authorizes).
    assert_eq!(
        r.www.as_deref(),
        Some(insufficient("mcp:admin mcp:tools mcp:write").as_str())
    );
    assert_eq!(seen.count(), 0);
    assert_eq!(
        send(&app, "/admin", &token(&server, "mcp:admin"), "")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(seen.count(), 1);

    // Any-of: either scope, or one implied by a hierarchy; the challenge names the first.
    let r = send(&app, "/either", &token(&server, "mcp:tools"), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.www.as_deref(),
        Some(insufficient("mcp:write mcp:tools").as_str())
    );
    for granted in ["mcp:write", "mcp:other", "mcp:admin"] {
        let r = send(&app, "/either", &token(&server, granted), "").await;
        assert_eq!(r.status, StatusCode::OK, "{granted}");
    }
    assert_eq!(seen.count(), 4);

    // No token at all is still the 401 of the front door, not a 403.
    let r = send_req(&app, Request::post("/admin").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.count(), 4);
}

#[tokio::test]
async fn handlers_check_scopes_in_one_line() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let seen = Seen::default();
    let app = router(auth(&server), None, &seen);
    let r = send(&app, "/handler", &token(&server, "mcp:tools"), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.www.as_deref(),
        Some(insufficient("mcp:write mcp:tools").as_str())
    );
    assert!(r.body.contains("mcp:write"));
    assert_eq!(seen.count(), 0);
    // mcp:admin implies mcp:write.
    let r = send(&app, "/handler", &token(&server, "mcp:admin"), "").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "written"));
    // A token without any scope claim.
    let t = server.token().audience(CANON).sign();
    assert_eq!(
        send(&app, "/handler", &t, "").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn scp_arrays_and_hierarchies_feed_has_scope() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = auth(&server);
    let t = server
        .token()
        .audience(CANON)
        .claim("scp", json!(["mcp:admin"]))
        .sign();
    let owner = auth.validate(&t).await.unwrap();
    assert!(owner.has_scope("mcp:admin"));
    assert!(owner.has_scope("mcp:write"));
    assert!(owner.has_scope("mcp:tools"), "transitive");
    assert!(!owner.has_scope("mcp:other"));
    assert_eq!(
        owner.scopes(),
        ["mcp:admin"],
        "scopes() lists the token's own"
    );
    assert!(owner.satisfies(&ScopeRequirement::all(["mcp:tools", "mcp:write"]).unwrap()));
    let e = owner
        .require(&ScopeRequirement::all(["mcp:other", "mcp:tools"]).unwrap())
        .unwrap_err();
    assert_eq!(e.required_scopes(), ["mcp:other", "mcp:tools"]);
    assert_eq!(
        e.challenge_scopes(),
        ["mcp:other", "mcp:tools", "mcp:admin"]
    );
    assert_eq!(
        e.www_authenticate(),
        insufficient("mcp:other mcp:tools mcp:admin").as_str()
    );
}

fn call(id: u64, tool: &str) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": {}}})
}

fn tools_layer() -> McpScopesLayer {
    McpScopesLayer::new()
        .tool(
            "admin_report",
            ScopeRequirement::all(["mcp:admin"]).unwrap(),
        )
        .tool(
            "deploy",
            ScopeRequirement::all(["mcp:write", "deploy:prod"]).unwrap(),
        )
        .max_body_bytes(64 * 1024)
}

#[tokio::test]
async fn tool_calls_are_checked_before_the_mcp_server_runs() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let seen = Seen::default();
    let app = router(auth(&server), Some(tools_layer()), &seen);
    let user = token(&server, "mcp:tools");
    let admin = token(&server, "mcp:admin");

    // Listed tool without its scope: 403, MCP server not reached.
    let body = call(1, "admin_report").to_string();
    let r = send(&app, "/mcp", &user, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.www.as_deref(),
        Some(insufficient("mcp:admin mcp:tools").as_str())
    );
    assert_eq!(seen.count(), 0);

    // With it: the body reaches the server byte for byte.
    let r = send(&app, "/mcp", &admin, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(seen.bodies(), [Bytes::from(body.clone())]);

    // Unlisted tools and other methods are allowed by default.
    for msg in [
        call(2, "whoami"),
        json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    ] {
        let r = send(&app, "/mcp", &user, msg.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "{msg}");
    }
    assert_eq!(seen.count(), 4);

    // Every scope of the requirement is named, including the ones already granted.
    let r = send(
        &app,
        "/mcp",
        &token(&server, "mcp:write"),
        call(4, "deploy").to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.www.as_deref(),
        Some(insufficient("mcp:write deploy:prod").as_str())
    );
    // GET (the SSE stream) passes (its list-shaped answers filtered, if any).
    let r = send_req(
        &app,
        Request::get("/mcp")
            .header("authorization", format!("Bearer {user}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn batches_are_refused_whole_with_every_needed_scope() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let seen = Seen::default();
    let app = router(auth(&server), Some(tools_layer()), &seen);
    let batch = json!([
        call(1, "whoami"),
        call(2, "admin_report"),
        call(3, "deploy")
    ]);
    let r = send(
        &app,
        "/mcp",
        &token(&server, "mcp:tools"),
        batch.to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.www.as_deref(),
        Some(insufficient("mcp:admin mcp:write deploy:prod mcp:tools").as_str())
    );
    assert_eq!(seen.count(), 0);
    let t = token(&server, "mcp:admin deploy:prod");
    let r = send(&app, "/mcp", &t, batch.to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(seen.bodies(), [Bytes::from(batch.to_string())]);

    // A batch longer than 256 messages is refused as unreadable.
    let long: Vec<_> = (0..257).map(|i| call(i, "whoami")).collect();
    let r = send(&app, "/mcp", &t, json!(long).to_string()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.www, None);
    assert_eq!(
        r.body,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#
    );
    assert_eq!(seen.count(), 1, "the MCP server never saw it");
}

/// A batch is decided message by message as it is read; when a rule decides on arguments,
/// every message is decided again with them, so the challenge names the scopes in the order
/// the messages need them, wherever the rule's message sits.
#[tokio::test]
async fn batches_with_argument_rules_name_scopes_in_message_order() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let seen = Seen::default();
    let etc = ScopeRequirement::all(["files:etc"]).unwrap();
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let layer = tools_layer().tool(
        "write_file",
        McpRequirement::from_fn(move |op| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = op.arguments()?.get("path")?.as_str()?;
            path.starts_with("/etc").then(|| etc.clone())
        }),
    );
    let app = router(auth(&server), Some(layer), &seen);
    let write = |id: u64, path: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "write_file", "arguments": {"path": path}}})
    };
    let t = token(&server, "mcp:tools");
    for (batch, scopes) in [
        (
            json!([
                call(1, "admin_report"),
                write(2, "/etc/passwd"),
                call(3, "deploy")
            ]),
            "mcp:admin files:etc mcp:write deploy:prod mcp:tools",
        ),
        (
            json!([
                write(1, "/etc/passwd"),
                call(2, "deploy"),
                call(3, "admin_report")
            ]),
            "files:etc mcp:write deploy:prod mcp:admin mcp:tools",
        ),
        (
            json!([
                call(1, "deploy"),
                write(2, "/tmp/x"),
                call(3, "admin_report")
            ]),
            "mcp:write deploy:prod mcp:admin mcp:tools",
        ),
        // Elements that are not messages keep their places: the arguments are the third's.
        (
            json!([7, [write(9, "/etc/passwd")], write(3, "/etc/passwd")]),
            "files:etc mcp:tools",
        ),
        (
            json!([write(1, "/tmp/x"), write(2, "/etc/passwd")]),
            "files:etc mcp:tools",
        ),
    ] {
        let r = send(&app, "/mcp", &t, batch.to_string()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{batch}");
        assert_eq!(r.www.as_deref(), Some(insufficient(scopes).as_str()));
    }
    assert_eq!(seen.count(), 0);
    // The function ran once per `write_file` message: not while the body was being read.
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 6);
    // Nor for a body that turns out unreadable after the call (a case variant of `method`,
    // which a parser into a tree would read without complaint).
    for late in [
        format!("{} x", json!([write(1, "/etc/passwd")])),
        format!(
            r#"[{},{{"method":"ping","Method":"x"}}]"#,
            write(1, "/etc/passwd")
        ),
    ] {
        let r = send(&app, "/mcp", &t, late).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 6);
    // Allowed whole: the argument rule lets a path outside /etc through.
    let batch = json!([write(1, "/tmp/x"), call(2, "whoami")]);
    let r = send(&app, "/mcp", &t, batch.to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(seen.bodies(), [Bytes::from(batch.to_string())]);
    // Arguments with a repeated member, in any message, make the batch unreadable.
    let r = send(
        &app,
        "/mcp",
        &t,
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/tmp/x"}}},{"id":2,"method":"ping","params":{"x":{"a":1,"a":2}}}]"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.www, None);
    assert_eq!(
        r.body,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#
    );
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn unlisted_tools_can_require_a_default_scope() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let seen = Seen::default();
    let layer = tools_layer().unlisted_tools(ScopeRequirement::all(["mcp:tools"]).unwrap());
    let app = router(auth(&server), Some(layer), &seen);
    let r = send(
        &app,
        "/mcp",
        &token(&server, "profile"),
        call(1, "whoami").to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.www.as_deref(), Some(insufficient("mcp:tools").as_str()));
    // mcp:write implies mcp:tools.
    let r = send(
        &app,
        "/mcp",
        &token(&server, "mcp:write"),
        call(1, "whoami").to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // Listed tools keep their own requirement.
    let r = send(
        &app,
        "/mcp",
        &token(&server, "mcp:tools"),
        call(1, "admin_report").to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn odd_bodies_never_slip_past_and_never_arrive_half_read() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let seen = Seen::default();
    let app = router(auth(&server), Some(tools_layer()), &seen);
    let user = token(&server, "mcp:tools");

    // Over the cap, declared or streamed: 413.
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"whoami\",\"arguments\":{{\"pad\":\"{}\"}}}}}}",
        "x".repeat(70 * 1024)
    );
    let r = send(&app, "/mcp", &user, big.clone()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let chunks: Vec<Result<Bytes, std::io::Error>> = big
        .as_bytes()
        .chunks(8 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let r = send(
        &app,
        "/mcp",
        &user,
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // A body that breaks off: 400, the server never sees half of it.
    let broken: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"{\"jsonrpc\":\"2.0\",")),
        Err(std::io::Error::other("connection reset")),
    ];
    let r = send(
        &app,
        "/mcp",
        &user,
        Body::from_stream(futures_util::stream::iter(broken)),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Repeated member names (parsers disagree on which wins): 400 with a parse error.
    let dup = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_report","name":"whoami"}}"#;
    let r = send(&app, "/mcp", &user, dup).await;
    assert_parse_error(&r);

    // Compressed bodies can not be checked: 415.
    let r = send_req(
        &app,
        Request::post("/mcp")
            .header("authorization", format!("Bearer {user}"))
            .header("content-encoding", "gzip")
            .body(Body::from(vec![0x1f, 0x8b, 0, 0]))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A charset other than UTF-8 (a Node server decodes UTF-7 into another message), another
    // media type, or none: 415. UTF-8 spelled any way is fine.
    let admin_call = call(1, "admin_report").to_string();
    for content_type in [
        Some("application/json; charset=utf-7"),
        Some("application/json;charset=UTF-16"),
        Some("text/plain"),
        Some("application/json; boundary=x"),
        None,
    ] {
        let mut req = Request::post("/mcp").header("authorization", format!("Bearer {user}"));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = send_req(&app, req.body(Body::from(admin_call.clone())).unwrap()).await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
    }
    for content_type in [
        "application/json; charset=UTF-8",
        "Application/JSON;charset=\"utf-8\"",
    ] {
        let r = send_req(
            &app,
            Request::post("/mcp")
                .header("authorization", format!("Bearer {user}"))
                .header("content-type", content_type)
                .body(Body::from(admin_call.clone()))
                .unwrap(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{content_type}: read, and checked"
        );
    }

    // Transfer codings other than chunked can not be checked either: 501.
    let r = send_req(
        &app,
        Request::post("/mcp")
            .header("authorization", format!("Bearer {user}"))
            .header("transfer-encoding", "gzip, chunked")
            .body(Body::from(call(1, "admin_report").to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);

    // Whatever the gate can not read strictly is refused, never passed on: a tools/call
    // followed by garbage or a second message, a BOM, a lone surrogate in the tool name,
    // invalid UTF-8 in an ignored member, serde_json's private names, malformed JSON.
    let admin = call(1, "admin_report").to_string();
    let bodies: Vec<Vec<u8>> = vec![
        format!("{admin} trailing").into_bytes(),
        format!("{} {admin}", call(2, "whoami")).into_bytes(),
        format!("\u{feff}{admin}").into_bytes(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_report\ud800"}}"#.to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"admin_report\",\"x\":\"\xff\"}}".to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","$serde_json::private::RawValue":"x","params":{"name":"whoami"}}"#.to_vec(),
        b"{\"jsonrpc\": ".to_vec(),
        b"not json at all".to_vec(),
        Vec::new(),
    ];
    for body in bodies {
        let r = send(&app, "/mcp", &user, body.clone()).await;
        assert_parse_error(&r);
    }
    assert_eq!(seen.count(), 0, "nothing above reached the MCP server");
}

/// `400` with a JSON-RPC parse error, and no challenge.
fn assert_parse_error(r: &Reply) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#
    );
    assert!(r.www.is_none());
}

#[tokio::test]
async fn the_tool_layer_needs_the_front_door() {
    let seen = Seen::default();
    let s = seen.clone();
    let app = Router::new()
        .route(
            "/mcp",
            post(move |b: Bytes| {
                let s = s.clone();
                async move { s.0.lock().unwrap().push(b) }
            }),
        )
        .layer(tools_layer());
    let r = send_req(
        &app,
        Request::post("/mcp")
            .body(Body::from(call(1, "whoami").to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(seen.count(), 0);
}

#[test]
fn requirements_refuse_bad_scope_tokens_at_build_time() {
    let err = ScopeRequirement::all(["mcp admin"]).unwrap_err();
    assert!(err.to_string().contains("scope token"), "{err}");
    assert!(RequireScopesLayer::any(Vec::<String>::new()).is_err());
    let err = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(
            protected_resource::AuthorizationServerEntry::new("https://a.example")
                .jwks_uri("https://a.example/jwks"),
        )
        .scope_implies("mcp:admin", ["bad\"scope"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("scope_implies"), "{err}");
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_with_408() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let seen = Seen::default();
    let layer = tools_layer().body_read_timeout(std::time::Duration::from_millis(300));
    let app = router(auth(&server), Some(layer), &seen);
    let user = token(&server, "mcp:tools");
    // One chunk, then nothing more, ever.
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
        b"{\"jsonrpc\":\"2.0\",",
    ))]);
    let trickle = futures_util::StreamExt::chain(first, futures_util::stream::pending());
    let started = std::time::Instant::now();
    let r = send(&app, "/mcp", &user, Body::from_stream(trickle)).await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    assert!(r.www.is_none());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(seen.count(), 0);
    assert_eq!(
        McpScopesLayer::DEFAULT_BODY_READ_TIMEOUT,
        std::time::Duration::from_secs(30)
    );
}

#[tokio::test]
async fn a_client_stepping_up_twice_keeps_what_it_had() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .scopes_supported(["mcp:tools", "files:read", "files:write", "mcp:admin"])
        .build()
        .unwrap();
    let seen = Seen::default();
    let layer = McpScopesLayer::new()
        .tool(
            "write_file",
            ScopeRequirement::all(["files:write"]).unwrap(),
        )
        .tool(
            "admin_report",
            ScopeRequirement::all(["mcp:admin"]).unwrap(),
        );
    let app = router(auth, Some(layer), &seen);
    // A client that re-authorizes for exactly the challenge's scopes, as the SDKs do.
    let mut scopes = "mcp:tools files:read unadvertised:x".to_owned();
    for (tool, challenge) in [
        ("write_file", "files:write mcp:tools files:read"),
        ("admin_report", "mcp:admin files:write mcp:tools files:read"),
    ] {
        let body = call(1, tool).to_string();
        let r = send(&app, "/mcp", &token(&server, &scopes), body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{tool}");
        assert_eq!(r.www.as_deref(), Some(insufficient(challenge).as_str()));
        scopes = challenge.to_owned();
        let r = send(&app, "/mcp", &token(&server, &scopes), body).await;
        assert_eq!(r.status, StatusCode::OK, "{tool}");
    }
    // After two step-ups the client still has everything it started with (but the scope the
    // resource does not advertise, which it never repeats).
    let all = send(
        &app,
        "/mcp",
        &token(&server, &scopes),
        call(2, "write_file").to_string(),
    )
    .await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(seen.count(), 3);

    // Off: only the required scopes.
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .scopes_supported(["mcp:tools", "mcp:admin"])
        .step_up_keeps_granted_scopes(false)
        .build()
        .unwrap();
    let app = router(auth, Some(tools_layer()), &Seen::default());
    let r = send(
        &app,
        "/mcp",
        &token(&server, "mcp:tools"),
        call(1, "admin_report").to_string(),
    )
    .await;
    assert_eq!(r.www.as_deref(), Some(insufficient("mcp:admin").as_str()));
}
