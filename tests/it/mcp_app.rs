//! A real rmcp server with tools, prompts and resources, behind the layer and an
//! `McpScopesLayer`, served over real HTTP on 127.0.0.1; a client speaking MCP 2025-11-25
//! (sessions) or 2026-07-28 (headers and `_meta`, no sessions). Every privileged tool, prompt
//! and resource counts its runs, so a test can prove the MCP server never ran it.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    McpScopesLayer, ProtectedResourceLayer, ResourceOwner, ResourceServerAuth,
};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CacheScope, CallToolResult, ContentBlock, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, prompt, prompt_handler, prompt_router, tool,
    tool_handler, tool_router,
};

/// The MCP server; `privileged` counts runs of everything that needs `mcp:admin`.
#[derive(Clone)]
pub struct McpApp {
    privileged: Arc<AtomicUsize>,
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    path: String,
}

#[tool_router]
impl McpApp {
    #[tool(description = "Who is calling")]
    async fn whoami(&self, owner: ResourceOwner) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(
            serde_json::json!({"user_id": owner.user_id(), "scopes": owner.scopes()}).to_string(),
        )]))
    }

    #[tool(description = "A report only administrators may read")]
    async fn admin_report(&self) -> Result<CallToolResult, ErrorData> {
        self.privileged.fetch_add(1, Ordering::SeqCst);
        Ok(CallToolResult::success(vec![ContentBlock::text(
            "secret report",
        )]))
    }

    #[tool(description = "Writes a file; under /etc only administrators")]
    async fn write_file(
        &self,
        rmcp::handler::server::wrapper::Parameters(args): rmcp::handler::server::wrapper::Parameters<WriteArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if args.path.starts_with("/etc") {
            self.privileged.fetch_add(1, Ordering::SeqCst);
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "wrote {}",
            args.path
        ))]))
    }
}

#[prompt_router]
impl McpApp {
    #[prompt(name = "admin_brief", description = "A briefing for administrators")]
    async fn admin_brief(&self) -> Vec<PromptMessage> {
        self.privileged.fetch_add(1, Ordering::SeqCst);
        vec![PromptMessage::new_text(
            Role::User,
            "Brief the administrator.",
        )]
    }

    #[prompt(name = "greeting", description = "A greeting for anyone")]
    async fn greeting(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(Role::User, "Hello.")]
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for McpApp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        // Marked public by a server that does not know its lists are filtered per caller.
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new("admin://report", "report"),
            Resource::new("public://readme", "readme"),
        ])
        .with_cache_scope(CacheScope::Public))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("admin://reports/{id}", "reports"),
            ResourceTemplate::new("public://notes/{id}", "notes"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        // Like many servers, this one decodes and normalises the URI before looking it up.
        let uri = request.uri.to_ascii_lowercase().replace("%72", "r");
        let text = match uri.as_str() {
            "admin://report" => {
                self.privileged.fetch_add(1, Ordering::SeqCst);
                "secret report"
            }
            "public://readme" => "read me",
            _ => return Err(ErrorData::resource_not_found("no such resource", None)),
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }
}

/// A running app: its MCP URL, the authorization server, and the privileged-run counter.
pub struct Running {
    pub url: String,
    pub addr: SocketAddr,
    pub idp: MockAuthorizationServer,
    pub privileged: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    /// Starts the app behind `ProtectedResourceLayer` and `scopes`.
    pub async fn start(scopes: McpScopesLayer) -> Self {
        Self::start_with(scopes, false).await
    }

    /// As `start`; with `json_response`, rmcp answers 2026-07-28 requests with JSON bodies
    /// instead of SSE.
    pub async fn start_with(scopes: McpScopesLayer, json_response: bool) -> Self {
        let idp = MockAuthorizationServer::start().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}/mcp");
        let auth = ResourceServerAuth::builder()
            .canonical_url(&url)
            .authorization_server(idp.entry())
            .scopes_supported(["mcp:tools", "mcp:admin"])
            .build()
            .unwrap();
        let privileged = Arc::new(AtomicUsize::new(0));
        let app = McpApp {
            privileged: privileged.clone(),
            tool_router: McpApp::tool_router(),
            prompt_router: McpApp::prompt_router(),
        };
        let mut config = StreamableHttpServerConfig::default();
        config.json_response = json_response;
        let mcp = StreamableHttpService::new(
            move || Ok(app.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let router = Router::new()
            .nest_service("/mcp", mcp)
            .layer(scopes)
            .layer(ProtectedResourceLayer::new(auth));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url,
            addr,
            idp,
            privileged,
            task,
        }
    }

    /// A token for `sub` with `scope`.
    pub fn token(&self, sub: &str, scope: &str) -> String {
        self.idp
            .token()
            .audience(&self.url)
            .subject(sub)
            .scope(scope)
            .sign()
    }

    pub fn privileged_runs(&self) -> usize {
        self.privileged.load(Ordering::SeqCst)
    }
}

/// One HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn www(&self) -> Option<&str> {
        self.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
    }

    /// The JSON-RPC messages of a JSON or SSE body.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        if let Ok(v) = serde_json::from_str(&self.body) {
            return vec![v];
        }
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    }

    /// The `result` of the first answer.
    pub fn result(&self) -> serde_json::Value {
        self.messages()
            .into_iter()
            .find_map(|m| m.get("result").cloned())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// `POST`s `body` with `token` and extra `headers`.
pub async fn post(
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> Reply {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

/// The `_meta` a 2026-07-28 client puts in every request's `params`.
pub fn meta_2026() -> serde_json::Value {
    serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A 2026-07-28 request: body with `_meta`, and the headers a conforming client sends
/// (`Mcp-Name` from `params.name` or `params.uri`).
pub async fn call_2026(
    url: &str,
    token: &str,
    method: &str,
    mut params: serde_json::Value,
) -> Reply {
    params["_meta"] = meta_2026();
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let mut headers = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(name) = &name {
        headers.push(("mcp-name", name.as_str()));
    }
    post(url, token, &headers, &body).await
}

/// Opens a 2025-11-25 session: its `Mcp-Session-Id`.
pub async fn session_2025(url: &str, token: &str) -> String {
    let init = serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}});
    let reply = post(url, token, &[], &init).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let session = reply.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let done = serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    let reply = post(
        url,
        token,
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        &done,
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    session
}

/// A request in a 2025-11-25 session.
pub async fn call_2025(
    url: &str,
    token: &str,
    session: &str,
    method: &str,
    params: serde_json::Value,
) -> Reply {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params});
    post(
        url,
        token,
        &[
            ("mcp-session-id", session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        &body,
    )
    .await
}
