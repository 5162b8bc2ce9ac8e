//! Connected accounts end to end on one port: an MCP server whose tool acts for its caller on
//! "Acme Cloud", a provider that does not federate with the MCP server's authorization server,
//! so each user connects their account once.
//!
//! ```sh
//! cargo run --example connected_accounts              # http://127.0.0.1:8001/mcp
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example connected_accounts   # accounts in Redis
//! ```
//!
//! On the one port:
//! - `/dev-auth`: the development authorization server where MCP users log in (the login page,
//!   or `CONNECTED_ACCOUNTS_AUTO_APPROVE=<user>`);
//! - `/cloud`: a second one playing the provider Acme Cloud (approves at once, as
//!   `cloud-user`; refresh tokens rotated; RFC 7009 revocation), and its API
//!   `/cloud-api/me` (Acme Cloud tokens only);
//! - `/connect/…`: the connect pages (`ConnectedAccounts::router`);
//! - `/mcp`: the protected MCP server with the tools `cloud_profile` (the caller's Acme Cloud
//!   profile; the first call asks the user, through MCP URL elicitation, to connect) and
//!   `cloud_disconnect`.
//!
//! Environment: `CONNECTED_ACCOUNTS_BIND` (default `127.0.0.1:8001`),
//! `CONNECTED_ACCOUNTS_KEY` (base64url, 32 bytes: the AES-256-GCM key of stored accounts;
//! default a random one per process), `REDIS_URL` (the Redis store; default in memory),
//! `CONNECTED_ACCOUNTS_AUTO_APPROVE`. A bad value exits 2 naming the variable.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use protected_resource::dev_auth::DevAuthorizationServer;
use protected_resource::downstream::{
    ConnectedAccounts, DownstreamClient, EncryptionKey, MemoryTokenStore, OAuthProvider,
    RedisTokenStore, TokenBroker, TokenNeed, TokenStore, denial_response,
};
use protected_resource::{
    JwksTokenValidator, ProtectedResourceLayer, ResourceOwner, ResourceServerAuth,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::InputResponses;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde_json::json;

const BIND: &str = "CONNECTED_ACCOUNTS_BIND";
const KEY: &str = "CONNECTED_ACCOUNTS_KEY";
const REDIS_URL: &str = "REDIS_URL";
const AUTO_APPROVE: &str = "CONNECTED_ACCOUNTS_AUTO_APPROVE";
const PROVIDER: &str = "cloud";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("connected_accounts: {message}");
            ExitCode::from(2)
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

async fn run() -> Result<(), String> {
    let bind: SocketAddr = env(BIND)
        .unwrap_or_else(|| "127.0.0.1:8001".to_owned())
        .parse()
        .map_err(|e| format!("invalid {BIND}: {e}"))?;
    if !bind.ip().is_loopback() {
        return Err(format!(
            "invalid {BIND}: this example listens on loopback only"
        ));
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("could not bind {BIND}={bind}: {e}"))?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let key = match env(KEY) {
        Some(text) => {
            EncryptionKey::from_base64url(&text).map_err(|e| format!("invalid {KEY}: {e}"))?
        }
        None => {
            tracing::warn!("{KEY} is unset: a random key, accounts do not outlive this process");
            EncryptionKey::random().map_err(|e| e.to_string())?
        }
    };
    let store: Arc<dyn TokenStore> = match env(REDIS_URL) {
        Some(url) => Arc::new(
            RedisTokenStore::connect(&url, "connected-accounts:")
                .await
                .map_err(|e| format!("invalid {REDIS_URL}: {e}"))?,
        ),
        None => Arc::new(MemoryTokenStore::new(100_000)),
    };

    // Where MCP users log in, and the provider (another development server, approving at once).
    let mut users = DevAuthorizationServer::builder(format!("{base}/dev-auth"))
        .resource(format!("{base}/mcp"))
        .scopes_supported(["mcp:tools"])
        .default_scopes(["mcp:tools"]);
    if let Some(user) = env(AUTO_APPROVE) {
        users = users.auto_approve(user);
    }
    let users = users.build().map_err(|e| e.to_string())?;
    let cloud = DevAuthorizationServer::builder(format!("{base}/cloud"))
        .resource(format!("{base}/cloud-api"))
        .scopes_supported(["profile"])
        .auto_approve("cloud-user")
        .build()
        .map_err(|e| e.to_string())?;
    let auth = ResourceServerAuth::builder()
        .canonical_url(format!("{base}/mcp"))
        .authorization_server(users.entry())
        .scopes_supported(["mcp:tools"])
        .default_challenge_scopes(["mcp:tools"])
        .build()
        .map_err(|e| e.to_string())?;

    // The MCP server is a client of both: of its own authorization server for the connect
    // page's login, of the provider for the users' tokens.
    let registered = |dev: &DevAuthorizationServer, name: &str, path: &str| {
        dev.register_web_client(name, &[&format!("{base}{path}")])
            .ok_or_else(|| format!("could not register at {}", dev.issuer()))
    };
    let (login_id, login_secret) = registered(&users, "connect pages", "/connect/login")?;
    let (cloud_id, cloud_secret) = registered(&cloud, "MCP server", "/connect/callback")?;
    let endpoints = |dev: &DevAuthorizationServer| {
        (
            format!("{}/authorize", dev.issuer()),
            format!("{}/token", dev.issuer()),
        )
    };
    let (cloud_authorize, cloud_token) = endpoints(&cloud);
    let (login_authorize, login_token) = endpoints(&users);
    let accounts = ConnectedAccounts::builder(format!("{base}/connect"), key, store, auth.clone())
        .provider(
            OAuthProvider::builder(PROVIDER, cloud_authorize, cloud_token)
                .client_secret_basic(cloud_id, cloud_secret)
                .revocation_endpoint(format!("{}/revoke", cloud.issuer()))
                .build()
                .map_err(|e| e.to_string())?,
        )
        .login(
            users.issuer(),
            OAuthProvider::builder("login", login_authorize, login_token)
                .client_secret_basic(login_id, login_secret)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .build()
        .map_err(|e| e.to_string())?;
    let host = base.trim_start_matches("http://").to_owned();
    let client = DownstreamClient::builder()
        .provider(PROVIDER, [host])
        .build()
        .map_err(|e| e.to_string())?;
    let cloud_api = JwksTokenValidator::builder(cloud.issuer())
        .jwks_uri(cloud.jwks_uri())
        .audience(format!("{base}/cloud-api"))
        .build()
        .map_err(|e| e.to_string())?;

    let tools = Tools {
        accounts: accounts.clone(),
        client,
        api: format!("{base}/cloud-api/me"),
        tool_router: Tools::tool_router(),
    };
    let mcp = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let protected = Router::new()
        .nest_service("/mcp", mcp)
        .layer(ProtectedResourceLayer::new(auth.clone()));
    let app = users
        .router()
        .merge(cloud.router())
        .merge(accounts.router())
        .merge(
            Router::new()
                .route("/cloud-api/me", get(cloud_me))
                .with_state(cloud_api),
        )
        .fallback_service(protected);

    println!("Connected-accounts MCP server on {base}/mcp");
    println!(
        "Users log in at {} (anyone can log in as anyone)",
        users.issuer()
    );
    println!(
        "Acme Cloud, the provider: {} and its API {base}/cloud-api/me",
        cloud.issuer()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

/// Acme Cloud's API: `GET /cloud-api/me` with an Acme Cloud token answers `{"sub"}`.
async fn cloud_me(State(validator): State<JwksTokenValidator>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(token) => match validator.validate(token).await {
            Ok(owner) => axum::Json(json!({"sub": owner.user_id()})).into_response(),
            Err(_) => StatusCode::UNAUTHORIZED.into_response(),
        },
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// The MCP tools.
#[derive(Clone)]
struct Tools {
    accounts: ConnectedAccounts,
    client: DownstreamClient,
    api: String,
    tool_router: ToolRouter<Self>,
}

fn text(value: serde_json::Value) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(value.to_string())]).into()
}

fn failed(message: String) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(message)]).into()
}

#[tool_router]
impl Tools {
    #[tool(
        description = "The caller's profile at Acme Cloud: {\"cloud_user\", \"mcp_user\"}. The first call asks the user to connect their Acme Cloud account (a link to open); call again when done."
    )]
    async fn cloud_profile(
        &self,
        owner: ResourceOwner,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let need = TokenNeed::new(PROVIDER).scopes(["profile", "offline_access"]);
        let token = match self.accounts.token(&owner, &need).await {
            Ok(token) => token,
            Err(denial) => return denial_response(&ctx, &denial, responses.as_ref()),
        };
        let request = self
            .client
            .request(reqwest::Method::GET, &self.api)
            .build()
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let response = match self.client.send(&owner, PROVIDER, &token, request).await {
            Ok(r) => r,
            Err(e) => return Ok(failed(format!("Acme Cloud could not be reached: {e}"))),
        };
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            // Revoked at the provider, say: refresh (or reconnect) next time.
            let _ = self.accounts.token_rejected(&owner, PROVIDER, &token).await;
            return Ok(failed(
                "Acme Cloud refused the token; call again".to_owned(),
            ));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|_| ErrorData::internal_error("Acme Cloud's answer is not JSON", None))?;
        Ok(text(
            json!({"cloud_user": body["sub"], "mcp_user": owner.user_id()}),
        ))
    }

    #[tool(
        description = "Disconnects the caller's Acme Cloud account (revoked at Acme Cloud and deleted here)"
    )]
    async fn cloud_disconnect(&self, owner: ResourceOwner) -> Result<CallToolResponse, ErrorData> {
        Ok(match self.accounts.disconnect(&owner, PROVIDER).await {
            Ok(done) => text(json!({"disconnection": format!("{done:?}")})),
            Err(denial) => failed(denial.to_string()),
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}
