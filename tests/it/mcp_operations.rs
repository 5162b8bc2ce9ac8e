//! `McpScopesLayer` in front of a real rmcp server over real HTTP: requirements per tool,
//! prompt and resource (fixed and argument-aware), MCP 2025-11-25 sessions and 2026-07-28
//! stateless requests, the `Mcp-Method` / `Mcp-Name` agreement (`-32020`), and deciding from
//! the headers alone.

use protected_resource::{McpRequirement, McpScopesLayer, ScopeRequirement};
use serde_json::json;

use crate::mcp_app::{Running, call_2025, call_2026, meta_2026, post, session_2025};

fn admin() -> ScopeRequirement {
    ScopeRequirement::all(["mcp:admin"]).unwrap()
}

/// The policy of the example: everything privileged needs `mcp:admin`; `write_file` needs it
/// only for paths under `/etc`.
fn policy() -> McpScopesLayer {
    let etc = admin();
    McpScopesLayer::new()
        .tool("admin_report", admin())
        .tool(
            "write_file",
            McpRequirement::from_fn(move |op| {
                let path = op.arguments()?.get("path")?.as_str()?;
                path.starts_with("/etc").then(|| etc.clone())
            }),
        )
        .prompt("admin_brief", admin())
        .resource("admin://report", admin())
        .resource_template("admin://reports/{id}", admin())
        .unwrap()
}

fn step_up(app: &Running) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", scope=\"mcp:admin mcp:tools\", resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\"",
        app.addr
    )
}

#[tokio::test]
async fn prompts_and_resources_have_requirements_in_a_2025_session() {
    let app = Running::start(policy()).await;
    let user = app.token("alice", "mcp:tools");
    let root = app.token("root", "mcp:tools mcp:admin");
    let session = session_2025(&app.url, &user).await;

    let refused = [
        ("prompts/get", json!({"name": "admin_brief"})),
        ("resources/read", json!({"uri": "admin://report"})),
        // Spellings the server reads as the same resource meet the same rule.
        ("resources/read", json!({"uri": "ADMIN://%72eport"})),
        ("resources/read", json!({"uri": "admin://reports/7"})),
        ("resources/subscribe", json!({"uri": "admin://report"})),
        (
            "tools/call",
            json!({"name": "admin_report", "arguments": {}}),
        ),
        (
            "tools/call",
            json!({"name": "write_file", "arguments": {"path": "/etc/passwd"}}),
        ),
    ];
    for (method, params) in &refused {
        let reply = call_2025(&app.url, &user, &session, method, params.clone()).await;
        assert_eq!(reply.status, 403, "{method} {params}: {}", reply.body);
        assert_eq!(
            reply.www(),
            Some(step_up(&app).as_str()),
            "{method} {params}"
        );
    }
    assert_eq!(app.privileged_runs(), 0, "the MCP server never ran them");

    // What the rules allow reaches the server.
    let reply = call_2025(
        &app.url,
        &user,
        &session,
        "prompts/get",
        json!({"name": "greeting"}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.result()["messages"].is_array(), "{}", reply.body);
    let reply = call_2025(
        &app.url,
        &user,
        &session,
        "resources/read",
        json!({"uri": "public://readme"}),
    )
    .await;
    assert_eq!(reply.result()["contents"][0]["text"], "read me");
    let reply = call_2025(
        &app.url,
        &user,
        &session,
        "tools/call",
        json!({"name": "write_file", "arguments": {"path": "/tmp/x"}}),
    )
    .await;
    assert_eq!(reply.result()["content"][0]["text"], "wrote /tmp/x");
    assert_eq!(app.privileged_runs(), 0);

    // An administrator gets all of it.
    let session = session_2025(&app.url, &root).await;
    for (method, params) in &refused[..2] {
        let reply = call_2025(&app.url, &root, &session, method, params.clone()).await;
        assert_eq!(reply.status, 200, "{method}: {}", reply.body);
        assert!(reply.result().is_object(), "{}", reply.body);
    }
    assert_eq!(app.privileged_runs(), 2);
}

#[tokio::test]
async fn stateless_2026_requests_are_decided_and_served() {
    let app = Running::start(policy()).await;
    let user = app.token("alice", "mcp:tools");

    let discover = call_2026(&app.url, &user, "server/discover", json!({})).await;
    assert_eq!(discover.status, 200, "{}", discover.body);
    assert!(
        discover.result()["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28")),
        "{}",
        discover.body
    );
    let whoami = call_2026(
        &app.url,
        &user,
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
    )
    .await;
    assert_eq!(whoami.status, 200, "{}", whoami.body);
    let text = whoami.result()["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["user_id"],
        "alice"
    );

    for (method, params) in [
        (
            "tools/call",
            json!({"name": "admin_report", "arguments": {}}),
        ),
        ("prompts/get", json!({"name": "admin_brief"})),
        ("resources/read", json!({"uri": "admin://report"})),
    ] {
        let reply = call_2026(&app.url, &user, method, params).await;
        assert_eq!(reply.status, 403, "{method}: {}", reply.body);
        assert_eq!(reply.www(), Some(step_up(&app).as_str()));
    }
    assert_eq!(app.privileged_runs(), 0);
}

/// A 2026-07-28 `tools/call` of `admin_report` whose headers say `whoami`, as a client
/// hoping an intermediary or the gate reads the headers and the server the body.
fn disguised_admin_report() -> (Vec<(&'static str, &'static str)>, serde_json::Value) {
    let body = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"admin_report","arguments":{},"_meta": meta_2026()}});
    let headers = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "whoami"),
    ];
    (headers, body)
}

#[tokio::test]
async fn headers_that_disagree_with_the_body_get_32020_before_any_scope_decision() {
    let app = Running::start(policy()).await;
    // Even a caller who may run admin_report: the disagreement alone is refused.
    let root = app.token("root", "mcp:tools mcp:admin");
    let (headers, body) = disguised_admin_report();
    let reply = post(&app.url, &root, &headers, &body).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.www(), None);
    assert_eq!(
        reply.body,
        r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32020,"message":"Header mismatch: Mcp-Name does not match the body"}}"#
    );

    type Case<'a> = (Vec<(&'a str, &'a str)>, serde_json::Value, &'a str);
    let cases: Vec<Case> = vec![
        // Method disagrees.
        (
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
            ],
            body.clone(),
            "Header mismatch: Mcp-Method does not match the body's method",
        ),
        // A 2026-07-28 request without the headers.
        (
            vec![("mcp-protocol-version", "2026-07-28")],
            body.clone(),
            "Header mismatch: missing required Mcp-Method header",
        ),
        // Base64 form naming another tool.
        (
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?d2hvYW1p?="),
            ],
            body.clone(),
            "Header mismatch: Mcp-Name does not match the body",
        ),
        // Two Mcp-Name headers.
        (
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "admin_report"),
                ("mcp-name", "whoami"),
            ],
            body.clone(),
            "Header mismatch: a standard MCP header is repeated",
        ),
    ];
    for (headers, body, message) in cases {
        let reply = post(&app.url, &root, &headers, &body).await;
        assert_eq!(reply.status, 400, "{headers:?}");
        let error = &reply.messages()[0]["error"];
        assert_eq!(error["code"], -32020, "{headers:?}");
        assert_eq!(error["message"], message, "{headers:?}");
    }
    assert_eq!(
        app.privileged_runs(),
        0,
        "the MCP server never ran admin_report"
    );

    // Agreeing headers, including the Base64 form, pass.
    let reply = post(
        &app.url,
        &root,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?YWRtaW5fcmVwb3J0?="),
        ],
        &body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(app.privileged_runs(), 1);
}

#[tokio::test]
async fn deciding_from_headers_relies_on_rmcp_checking_agreement() {
    let app = Running::start(policy().decide_from_headers(true)).await;
    let user = app.token("alice", "mcp:tools");

    // Decided from the headers alone: refused without reading the body.
    let reply = call_2026(
        &app.url,
        &user,
        "tools/call",
        json!({"name": "admin_report", "arguments": {}}),
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.www(), Some(step_up(&app).as_str()));

    // Headers saying whoami over a body calling admin_report: the gate allows whoami, and
    // rmcp (3.9 and later) refuses the disagreement itself with -32020.
    let (headers, body) = disguised_admin_report();
    let reply = post(&app.url, &user, &headers, &body).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(
        reply.messages()[0]["error"]["code"],
        -32020,
        "{}",
        reply.body
    );
    // A batch behind 2026-07-28 headers: rmcp does not run it either.
    let batch = json!([body]);
    let reply = post(&app.url, &user, &headers, &batch).await;
    assert!(reply.status >= 400, "{}: {}", reply.status, reply.body);
    // Headers of an older revision are not trusted: the gate reads the body.
    let reply = post(
        &app.url,
        &user,
        &[
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "whoami"),
        ],
        &body,
    )
    .await;
    assert_eq!(
        reply.status, 400,
        "the gate's own agreement check: {}",
        reply.body
    );
    // What only the body names is read from the body in this mode.
    let reply = call_2026(
        &app.url,
        &user,
        "subscriptions/listen",
        json!({"notifications": {"resourceSubscriptions": ["admin://report"]}}),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    // An argument-aware rule is decided from the body even in this mode.
    let reply = call_2026(
        &app.url,
        &user,
        "tools/call",
        json!({"name": "write_file", "arguments": {"path": "/etc/shadow"}}),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(app.privileged_runs(), 0, "admin work never ran");

    // Allowed operations work, and the body reaches the server untouched.
    let reply = call_2026(
        &app.url,
        &user,
        "tools/call",
        json!({"name": "write_file", "arguments": {"path": "/tmp/y"}}),
    )
    .await;
    assert_eq!(
        reply.result()["content"][0]["text"],
        "wrote /tmp/y",
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn the_principal_binds_rmcp_request_state_to_the_caller() {
    use protected_resource::testkit::MockAuthorizationServer;
    use protected_resource::{ResourceServerAuth, StateSealer};
    use rmcp::model::{RequestStateCodec, SealOptions};

    let a = MockAuthorizationServer::start().await.unwrap();
    let b = MockAuthorizationServer::start().await.unwrap();
    let url = "http://127.0.0.1:8000/mcp";
    let auth = ResourceServerAuth::builder()
        .canonical_url(url)
        .authorization_servers([a.entry(), b.entry()])
        .build()
        .unwrap();
    let owner = |idp: &MockAuthorizationServer, sub: &str| {
        let token = idp.token().audience(url).subject(sub).sign();
        let auth = auth.clone();
        async move { auth.validate(&token).await.unwrap() }
    };
    let alice = owner(&a, "alice").await;
    let alice_at_b = owner(&b, "alice").await;
    let bob = owner(&a, "bob").await;

    // rmcp's MRTR requestState codec with the principal as associated data.
    let codec = RequestStateCodec::try_new(vec![7u8; 32]).unwrap();
    let sealed = codec.seal_with(
        b"step 2",
        &SealOptions::new().associated_data(&alice.principal()),
    );
    assert_eq!(
        codec.open_with(&sealed, &alice.principal()).unwrap(),
        b"step 2"
    );
    assert!(codec.open_with(&sealed, &bob.principal()).is_err());
    assert!(codec.open_with(&sealed, &alice_at_b.principal()).is_err());
    // The same `sub` at two issuers are two principals, and so are two subjects.
    assert_ne!(alice.principal(), alice_at_b.principal());
    // The crate's own sealer, keyed from the layer's sealing key.
    let sealer = StateSealer::new(auth.sealing_key().clone());
    let handle = sealer.seal(&alice, b"h");
    assert_eq!(sealer.open(&alice, &handle), Some(b"h".to_vec()));
    assert_eq!(sealer.open(&alice_at_b, &handle), None);
    assert_eq!(sealer.open(&bob, &handle), None);
}
