//! The `whoami` tool of an rmcp streamable-HTTP server behind the layer, over real HTTP,
//! returns the token's `sub` and issuer.

mod common;

use std::sync::Arc;

use axum::Router;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, tool, tool_router};

#[derive(Clone, Default)]
struct Server;

#[tool_router(server_handler)]
impl Server {
    #[tool(description = "Who is calling")]
    async fn whoami(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let owner = ResourceOwner::from_parts(&parts)
            .ok_or_else(|| ErrorData::internal_error("no owner", None))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "{}|{}",
            owner.user_id(),
            owner.issuer()
        ))]))
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
