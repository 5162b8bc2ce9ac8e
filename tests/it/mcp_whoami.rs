//! A real rmcp streamable-HTTP server behind the layer, over real HTTP: `whoami` returns the
//! token's `sub` and issuer; `admin_report` needs `mcp:admin` (403 step-up challenge before
//! rmcp runs); a second user can not use the first user's session.

use std::sync::Arc;

use axum::Router;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    McpScopesLayer, ProtectedResourceLayer, ResourceOwner, ResourceServerAuth, ScopeRequirement,
};
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, tool, tool_router};

#[derive(Clone, Default)]
struct Server;

#[tool_router(server_handler)]
impl Server {
    #[tool(description = "Who is calling")]
    async fn whoami(&self, owner: ResourceOwner) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "{}|{}",
            owner.user_id(),
            owner.issuer()
        ))]))
    }

    #[tool(description = "A report only administrators may read")]
    async fn admin_report(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(
            "secret report",
        )]))
    }
}

/// The JSON-RPC messages in an SSE or JSON response body.
fn messages(body: &str) -> Vec<serde_json::Value> {
    if let Ok(v) = serde_json::from_str(body) {
        return vec![v];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

#[tokio::test]
async fn whoami_over_streamable_http_returns_sub() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let canonical = format!("http://{addr}/mcp");
    let auth = ResourceServerAuth::builder()
        .canonical_url(&canonical)
        .authorization_server(idp.entry())
        .build()
        .unwrap();
    let mcp = StreamableHttpService::new(
        || Ok(Server),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = Router::new()
        .nest_service("/mcp", mcp)
        .layer(ProtectedResourceLayer::new(auth));
    let task = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    let token = idp.token().audience(&canonical).subject("carol").sign();
    let post = |body: serde_json::Value, session: Option<String>, token: Option<&str>| {
        let mut r = client
            .post(&canonical)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.send()
    };

    let init = serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}});
    let res = post(init.clone(), None, None).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("resource_metadata=")
    );

    let res = post(init, None, Some(&token)).await.unwrap();
    assert_eq!(res.status(), 200);
    let session = res
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let _ = res.text().await.unwrap();
    let res = post(
        serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        session.clone(),
        Some(&token),
    )
    .await
    .unwrap();
    assert!(res.status().is_success());
    let call = serde_json::json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}});
    let res = post(call, session, Some(&token)).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let reply = messages(&body)
        .into_iter()
        .find(|m| m["id"] == 2)
        .expect("a reply to the call");
    assert_eq!(
        reply["result"]["content"][0]["text"],
        format!("carol|{}", idp.issuer())
    );
    task.abort();
}

struct Harness {
    idp: MockAuthorizationServer,
    canonical: String,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Reply {
    status: u16,
    www: Option<String>,
    session: Option<String>,
    messages: Vec<serde_json::Value>,
    /// Every header but `date`, sorted, and the raw body: what a client can compare.
    headers: Vec<(String, String)>,
    body: String,
}

impl Harness {
    async fn start(bind_sessions: bool) -> Self {
        let idp = MockAuthorizationServer::start().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let canonical = format!("http://{addr}/mcp");
        let auth = ResourceServerAuth::builder()
            .canonical_url(&canonical)
            .authorization_server(idp.entry())
            .scopes_supported(["mcp:tools", "mcp:admin"])
            .scope_implies("mcp:admin", ["mcp:tools"])
            .bind_mcp_sessions(bind_sessions)
            .build()
            .unwrap();
        let mcp = StreamableHttpService::new(
            || Ok(Server),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default(),
        );
        let tools = McpScopesLayer::new().tool(
            "admin_report",
            ScopeRequirement::all(["mcp:admin"]).unwrap(),
        );
        let app = Router::new()
            .nest_service("/mcp", mcp)
            .layer(tools)
            .layer(ProtectedResourceLayer::new(auth));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            idp,
            canonical,
            client: reqwest::Client::new(),
            task,
        }
    }

    fn token(&self, sub: &str, scope: &str) -> String {
        self.idp
            .token()
            .audience(&self.canonical)
            .subject(sub)
            .scope(scope)
            .sign()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        body: Option<serde_json::Value>,
        session: Option<&str>,
        token: &str,
    ) -> Reply {
        let mut r = self
            .client
            .request(method, &self.canonical)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        let res = r.send().await.unwrap();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (status, www, session) = (
            res.status().as_u16(),
            header("www-authenticate"),
            header("mcp-session-id"),
        );
        let mut headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect();
        headers.sort();
        let text = res.text().await.unwrap();
        Reply {
            status,
            www,
            session,
            messages: messages(&text),
            headers,
            body: text,
        }
    }

    /// initialize + initialized; returns the session id.
    async fn open_session(&self, token: &str) -> String {
        let init = serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}});
        let r = self
            .send(reqwest::Method::POST, Some(init), None, token)
            .await;
        assert_eq!(r.status, 200);
        let session = r.session.expect("a session id");
        let r = self
            .send(
                reqwest::Method::POST,
                Some(serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
                Some(&session),
                token,
            )
            .await;
        assert!((200..300).contains(&r.status));
        session
    }

    async fn call(&self, session: &str, token: &str, tool: &str) -> Reply {
        let call = serde_json::json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":tool,"arguments":{}}});
        self.send(reqwest::Method::POST, Some(call), Some(session), token)
            .await
    }
}

fn text_of(reply: &Reply) -> String {
    reply
        .messages
        .iter()
        .find(|m| m["id"] == 7)
        .and_then(|m| m["result"]["content"][0]["text"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn admin_report_needs_mcp_admin_and_step_up_succeeds() {
    let h = Harness::start(true).await;
    let user = h.token("dana", "mcp:tools");
    let session = h.open_session(&user).await;
    let r = h.call(&session, &user, "admin_report").await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.www.as_deref(),
        Some(
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"mcp:admin mcp:tools\", resource_metadata=\"{}\"",
                h.canonical.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
            )
            .as_str()
        )
    );
    assert_eq!(
        text_of(&h.call(&session, &user, "whoami").await),
        format!("dana|{}", h.idp.issuer())
    );
    // Step-up: a new token for the same user with mcp:admin, same session.
    let stepped = h.token("dana", "mcp:tools mcp:admin");
    let r = h.call(&session, &stepped, "admin_report").await;
    assert_eq!(r.status, 200);
    assert_eq!(text_of(&r), "secret report");
}

#[tokio::test]
async fn another_user_can_not_use_a_session() {
    let h = Harness::start(true).await;
    let alice = h.token("alice", "mcp:admin");
    let mallory = h.token("mallory", "mcp:admin");
    let session = h.open_session(&alice).await;
    let r = h.call(&session, &mallory, "whoami").await;
    assert_eq!(r.status, 404);
    assert!(text_of(&r).is_empty());
    // Byte for byte the answer to a session that never existed (same shape: a UUID), so
    // mallory can not even learn that alice's session is live.
    let unknown = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    assert_ne!(session, unknown);
    let made_up = h.call(unknown, &mallory, "whoami").await;
    assert_eq!(
        (r.status, &r.headers, &r.body),
        (made_up.status, &made_up.headers, &made_up.body)
    );
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let live = h.send(method.clone(), None, Some(&session), &mallory).await;
        let never = h.send(method.clone(), None, Some(unknown), &mallory).await;
        assert_eq!(
            (live.status, &live.headers, &live.body),
            (never.status, &never.headers, &never.body),
            "{method}"
        );
    }
    // The owner goes on.
    assert_eq!(
        text_of(&h.call(&session, &alice, "whoami").await),
        format!("alice|{}", h.idp.issuer())
    );
    // The owner deletes the session; rmcp then answers 404 itself (tests/sessions.rs shows
    // the binding is forgotten).
    let r = h
        .send(reqwest::Method::DELETE, None, Some(&session), &alice)
        .await;
    assert!((200..300).contains(&r.status), "{}", r.status);
    let r = h.call(&session, &mallory, "whoami").await;
    assert_eq!(r.status, 404, "rmcp no longer knows the session");
    assert!(text_of(&r).is_empty());
}

#[tokio::test]
async fn session_binding_can_be_switched_off() {
    let h = Harness::start(false).await;
    let alice = h.token("alice", "mcp:tools");
    let bob = h.token("bob", "mcp:tools");
    let session = h.open_session(&alice).await;
    let r = h.call(&session, &bob, "whoami").await;
    assert_eq!(r.status, 200);
    assert_eq!(text_of(&r), format!("bob|{}", h.idp.issuer()));
}

#[tokio::test]
async fn a_tool_taking_the_owner_does_not_run_without_the_layer() {
    // The MCP service mounted without ProtectedResourceLayer (a server bug): the tool that
    // asks for the owner fails with an internal error instead of running for nobody.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let mcp = StreamableHttpService::new(
        || Ok(Server),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = Router::new().nest_service("/mcp", mcp);
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    let meta = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let body = serde_json::json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":meta}});
    let res = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let reply = messages(&text)
        .into_iter()
        .find(|m| m["id"] == 4)
        .unwrap_or_else(|| panic!("no reply in {text}"));
    assert_eq!(reply["error"]["code"], -32603, "{reply}");
    assert_eq!(reply["error"]["message"], "no authenticated caller");
    task.abort();
}
