//! A real MCP server (rmcp, streamable HTTP) at `/mcp`, protected by `protected-resource`.
//!
//! ```sh
//! cargo run --example mcp_server
//! ```
//!
//! With no configuration it serves, on the same port, the crate's development authorization
//! server (`protected_resource::dev_auth`, issuer `http://127.0.0.1:<port>/dev-auth`), trusts
//! it, and prints how to connect MCP clients (they log in with their normal OAuth flow on its
//! page) and two ready tokens with a `curl` command. Its 401 challenges ask for `mcp:tools`;
//! `mcp:admin` is granted when a client steps up. When
//! `MCP_SERVER_AUTH_AUTHORIZATION_SERVERS` is set, the whole configuration comes from the
//! environment instead (see the `protected_resource::env` docs):
//!
//! | variable | default |
//! |---|---|
//! | `MCP_SERVER_BIND` | `127.0.0.1:8000` |
//! | `MCP_SERVER_AUTH_CANONICAL_URL` | `http://127.0.0.1:<port>/mcp` |
//! | `MCP_SERVER_AUTH_AUTHORIZATION_SERVERS` | the embedded development server |
//! | `MCP_SERVER_AUTH_SCOPES_SUPPORTED`, `MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES` | none; with the embedded server `mcp:tools mcp:admin` and `mcp:tools` |
//! | `MCP_SERVER_DEV_AUTO_APPROVE` | unset: the embedded server shows its login and consent page; a user name: every authorization request is approved at once for that user (headless clients, CI) |
//! | `MCP_SERVER_DEV_AUTH_DANGEROUS_ALLOW_NON_LOOPBACK` | `false`: with the embedded server, a `MCP_SERVER_BIND` that is not a loopback address stops the server (exit 2); `true` allows it |
//! | `MCP_SERVER_SESSION_KEY` (`_FILE`), `MCP_SERVER_SESSION_KEY_PREVIOUS` (`_FILE`) | a random key per process (warned): sessions and note handles then end with it |
//! | `MCP_SERVER_SESSION_STORE` | unset: sessions live in this process; `redis://host:port` shares them with every replica through Redis (rmcp's `SessionStore`) |
//! | `MCP_SERVER_METRICS_BIND` | unset: no metrics; `host:port`: Prometheus text at `/metrics` there (the crate's `metrics` feature) |
//! | `MCP_SERVER_TOOL_GATE` | `body`: the scope gate reads every `POST` body; `headers`: it decides MCP 2026-07-28 requests from their `Mcp-Method` / `Mcp-Name` headers without buffering the body (rmcp refuses a body that disagrees with them) |
//!
//! `GET /healthz` (200 while the process runs) and `GET /readyz` (200 when every issuer has
//! usable keys, else 503 naming those without) are served outside the token check; the key
//! sets are fetched at start without blocking.
//!
//! The MCP endpoint is served at the path of the canonical URL, for MCP 2025-06-18 and
//! 2025-11-25 clients (sessions) and 2026-07-28 clients (no sessions, `server/discover`)
//! alike. Tools, prompts and resources:
//!
//! - `whoami` (any valid token) answers a JSON object with the caller's `user_id` (the
//!   token's `sub`), `issuer`, `client_id` and `scopes`, read from the `ResourceOwner` the
//!   layer put in the request;
//! - `admin_report` requires the scope `mcp:admin`: a `tools/call` for it with a token
//!   lacking that scope is answered `403` with
//!   `WWW-Authenticate: Bearer error="insufficient_scope", scope="mcp:admin mcp:tools", resource_metadata="…"`
//!   (the required scope, then the granted scopes the server advertises)
//!   before the MCP server runs (so clients can step up), otherwise it answers a JSON object
//!   with `report` and `requested_by`;
//! - the prompt `admin_brief` and the resource `admin://report` require `mcp:admin` too, and
//!   are refused with the same 403 challenge; list answers show a caller only what its scopes
//!   allow (`admin_report`, `admin_brief` and `admin://report` only with `mcp:admin`).
//!
//! A 2026-07-28 request whose `Mcp-Method` or `Mcp-Name` header disagrees with its body is
//! refused with `400` and JSON-RPC error `-32020` before any scope decision.
//!
//! - `acme_profile` (tool-level authorization) answers `{"acme_user": <the sub Acme saw>,
//!   "audience": "acme-api"}`: it obtains a token for the caller by RFC 8693 token exchange at
//!   the embedded development authorization server (the example's own confidential client,
//!   registered at start) and calls the "Acme API" the example serves on the same port at
//!   `/acme/profile` (tokens with `aud` `acme-api` only: the MCP token gets 401 there); a
//!   denied exchange, or a configuration without the embedded server, answers a tool error
//!   naming the reason;
//! - `note_create {"text"}` answers `{"handle": …}` and `note_read {"handle"}` answers
//!   `{"text": …, "owner": <user id>}` to the user the handle was made for (the note is
//!   sealed into the handle); any other handle gets the tool error `no such note`.
//!
//! MCP sessions are bound to the user that opened them (the session id the client holds is
//! sealed with `MCP_SERVER_SESSION_KEY`, random per process when unset): another user's
//! request naming that `Mcp-Session-Id` gets 404 as for an unknown session. With the embedded server, two tokens are printed: one with
//! `mcp:tools` only and one that also has `mcp:admin`.
//!
//! A bad configuration stops the server at start with exit code 2 and a message naming the
//! variable.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt;
use protected_resource::dev_auth::DevAuthorizationServer;
use protected_resource::{
    JwksTokenValidator, McpScopesLayer, ProtectedResourceLayer, ResourceServerAuth,
    ScopeRequirement, StateSealer, env,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

mod acme;
mod metrics;
mod redis_store;
mod server;

use server::{ADMIN_REPORT_URI, ADMIN_SCOPE, Server};

const BIND: &str = "MCP_SERVER_BIND";
const TOOL_GATE: &str = "MCP_SERVER_TOOL_GATE";
const SESSION_STORE: &str = "MCP_SERVER_SESSION_STORE";
const AUTO_APPROVE: &str = "MCP_SERVER_DEV_AUTO_APPROVE";
const DEV_AUTH_NON_LOOPBACK: &str = "MCP_SERVER_DEV_AUTH_DANGEROUS_ALLOW_NON_LOOPBACK";

/// `MCP_SERVER_DEV_AUTO_APPROVE`: the user every authorization request is approved for.
fn dev_auto_approve() -> Result<Option<String>, String> {
    match std::env::var(AUTO_APPROVE) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) if v.trim().chars().count() <= 128 && !v.chars().any(char::is_control) => {
            Ok(Some(v.trim().to_owned()))
        }
        _ => Err(format!(
            "invalid {AUTO_APPROVE}: a user name is 1 to 128 characters, no control characters"
        )),
    }
}

/// `MCP_SERVER_DEV_AUTH_DANGEROUS_ALLOW_NON_LOOPBACK`: `true` lets the embedded server listen
/// beyond loopback.
fn dev_auth_non_loopback() -> Result<bool, String> {
    match std::env::var(DEV_AUTH_NON_LOOPBACK) {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Ok(v) if v.trim().is_empty() || v.trim() == "false" => Ok(false),
        Ok(v) if v.trim() == "true" => Ok(true),
        _ => Err(format!(
            "invalid {DEV_AUTH_NON_LOOPBACK}: expected `true` or `false`"
        )),
    }
}

/// `MCP_SERVER_TOOL_GATE`: `body` (default) or `headers`.
fn tool_gate_from_headers() -> Result<bool, String> {
    match std::env::var(TOOL_GATE) {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Ok(v) if v.trim().is_empty() || v.trim() == "body" => Ok(false),
        Ok(v) if v.trim() == "headers" => Ok(true),
        Ok(v) => Err(format!(
            "invalid {TOOL_GATE} `{}`: expected `body` or `headers`",
            v.escape_debug()
        )),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("invalid {TOOL_GATE}: not valid UTF-8"))
        }
    }
}

/// The value of an environment variable, else of its `MCP_RESOURCE_SERVER_*` alias; empty
/// counts as unset: the rules of `protected_resource::env` (keep the two in step), used here
/// to decide which defaults the example fills in.
fn var(name: &str) -> Option<String> {
    let alias = name.replacen("MCP_SERVER_AUTH_", "MCP_RESOURCE_SERVER_", 1);
    [name, alias.as_str()]
        .into_iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // rmcp logs three lines at `info` for every stateless (2026-07-28) request,
                // about a tenth of such a request's CPU here: warnings only, unless RUST_LOG
                // says otherwise.
                .unwrap_or_else(|_| "info,rmcp=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let bind_text = var(BIND).unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let bind: SocketAddr = bind_text.trim().parse().map_err(|e| {
        format!("invalid {BIND} `{bind_text}`: {e} (expected host:port, e.g. 127.0.0.1:8000)")
    })?;
    let embedded = var(env::AUTHORIZATION_SERVERS).is_none();
    let force_non_loopback = embedded && dev_auth_non_loopback()?;
    if embedded && !bind.ip().is_loopback() && !force_non_loopback {
        return Err(format!(
            "invalid {BIND} `{bind_text}`: the embedded development authorization server lets anyone log in as anyone, so it listens on loopback addresses only (set {DEV_AUTH_NON_LOOPBACK}=true to force, or {} to use real authorization servers)",
            env::AUTHORIZATION_SERVERS
        ));
    }
    let auto_approve = dev_auto_approve()?;
    let metrics_bind = metrics::bind()?;
    // Bound first, so that the port (also an OS-chosen one, `:0`) is known to the URLs.
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("could not bind {BIND}={bind}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let reachable = if local.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    };
    let default_canonical = format!("http://{reachable}/mcp");

    let mut builder = ResourceServerAuth::builder().with_env();
    let canonical_text = match var(env::CANONICAL_URL) {
        Some(url) => url.trim().to_owned(),
        None => {
            builder = builder.canonical_url(default_canonical.clone());
            default_canonical
        }
    };
    // The embedded development authorization server, unless the environment names real ones.
    let dev = if embedded {
        let mut dev = DevAuthorizationServer::builder(format!("http://{reachable}/dev-auth"))
            .resource(canonical_text)
            .exchange_audience(acme::ACME_AUDIENCE)
            .scopes_supported(["mcp:tools", ADMIN_SCOPE])
            .default_scopes(["mcp:tools"]);
        if !local.ip().is_loopback() {
            dev = dev.dangerous_allow_non_loopback();
        }
        if let Some(user) = &auto_approve {
            dev = dev.auto_approve(user.clone());
        }
        let dev = dev.build().map_err(|e| match e.field() {
            "resource" => format!("invalid {}: {e}", env::CANONICAL_URL),
            _ => format!("the embedded authorization server: {e}"),
        })?;
        builder = builder.authorization_server(dev.entry());
        if var(env::SCOPES_SUPPORTED).is_none() {
            builder = builder.scopes_supported(["mcp:tools", ADMIN_SCOPE]);
        }
        if var(env::DEFAULT_CHALLENGE_SCOPES).is_none() {
            // Clients start with `mcp:tools` and step up to `mcp:admin` on a 403.
            builder = builder.default_challenge_scopes(["mcp:tools"]);
        }
        Some(dev)
    } else {
        None
    };
    let auth = builder.build().map_err(|e| e.to_string())?;

    let canonical = reqwest::Url::parse(auth.canonical_url()).map_err(|e| e.to_string())?;
    let mcp_path = canonical.path().trim_end_matches('/').to_owned();
    if mcp_path.contains(['{', '}', '*']) {
        return Err(format!(
            "invalid {}: the path `{mcp_path}` can not be routed",
            env::CANONICAL_URL
        ));
    }

    let mut allowed_hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = canonical.host_str() {
        allowed_hosts.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        );
    }
    allowed_hosts.push(bind.ip().to_string());
    let notes = StateSealer::new(auth.sealing_key().clone()).purpose("notes");
    // Tool-level authorization: the Acme API and the acme_profile tool's way to it.
    let acme = match &dev {
        Some(dev) => {
            let acme = acme::Acme::new(dev, &format!("http://{reachable}")).and_then(|acme| {
                let validator = JwksTokenValidator::builder(dev.issuer())
                    .jwks_uri(dev.jwks_uri())
                    .audience(acme::ACME_AUDIENCE)
                    .build()
                    .map_err(|e| e.to_string())?;
                Ok((Arc::new(acme), acme::router(validator)))
            });
            // The demo tool is not worth refusing to start for (a forced non-loopback bind
            // makes the token endpoint plain http off loopback, which the broker refuses).
            acme.inspect_err(|e| tracing::warn!("acme_profile is unavailable: {e}"))
                .ok()
        }
        None => None,
    };
    let acme_tool = acme.as_ref().map(|(a, _)| a.clone());
    let mut config = StreamableHttpServerConfig::default().with_allowed_hosts(allowed_hosts);
    if let Some(url) = std::env::var(SESSION_STORE)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        let store = redis_store::RedisSessionStore::connect(url.trim())
            .await
            .map_err(|e| format!("invalid {SESSION_STORE}: {e}"))?;
        config.session_store = Some(Arc::new(store));
    }
    let mcp = StreamableHttpService::new(
        move || Ok(Server::new(notes.clone(), acme_tool.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = if mcp_path.is_empty() {
        Router::new().fallback_service(mcp)
    } else {
        Router::new().nest_service(&mcp_path, mcp)
    };
    let admin = ScopeRequirement::all([ADMIN_SCOPE]).map_err(|e| e.to_string())?;
    let scopes = McpScopesLayer::new()
        .tool("admin_report", admin.clone())
        .prompt("admin_brief", admin.clone())
        .resource(ADMIN_REPORT_URI, admin)
        .decide_from_headers(tool_gate_from_headers()?);
    let mut app = router
        .layer(scopes)
        .layer(ProtectedResourceLayer::new(auth.clone()));
    if let Some(dev) = &dev {
        // The authorization server's endpoints and the Acme API first, outside the layer
        // (they take no MCP token); everything else, the protected-resource metadata
        // included, goes on to it.
        let mut front = dev.router();
        if let Some((_, acme_api)) = &acme {
            front = front.merge(acme_api.clone());
        }
        app = front.fallback_service(app);
    }

    // Probes, outside the token check: /healthz while the process runs, /readyz when every
    // issuer has usable keys (no I/O: the key sets' state). The key sets are fetched at
    // start without holding up the listener.
    let app = probes(auth.clone()).fallback_service(app);
    if let Some(bind) = metrics_bind {
        let local = metrics::serve(bind, auth.clone()).await?;
        println!("Metrics (Prometheus text): http://{local}/metrics");
    }
    let warm = auth.clone();
    tokio::spawn(async move {
        if let Err(e) = warm.warm_up(std::time::Duration::from_secs(10)).await {
            tracing::warn!("starting without some keys (they are fetched on demand): {e}");
        }
    });

    // Answers (SSE especially) go out in several small writes: without TCP_NODELAY each
    // waits for the client's delayed ACK (Nagle), about 40 ms per request on a keep-alive
    // connection.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {e}");
        }
    });
    println!(
        "Protected MCP server on {} (listening on {local})",
        auth.canonical_url()
    );
    if let Some(url) = auth.resource_metadata_url() {
        println!("Protected-resource metadata: {url}");
    }
    if let Some(dev) = &dev {
        print_instructions(dev, &auth, auto_approve.as_deref());
    }
    if let Some((acme, _)) = &acme {
        println!(
            "Acme API (a third-party API for the acme_profile tool; tokens with aud {}): {}",
            acme::ACME_AUDIENCE,
            acme.url()
        );
        println!();
    }

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// `GET /healthz` (200 while the process runs) and `GET /readyz` (200 when every issuer has
/// usable keys, else 503 naming those without), never cached.
fn probes(auth: ResourceServerAuth) -> Router {
    use axum::http::{StatusCode, header};
    let no_store = || [(header::CACHE_CONTROL, "no-store")];
    Router::new()
        .route(
            "/healthz",
            axum::routing::get(move || async move { (no_store(), "ok") }),
        )
        .route(
            "/readyz",
            axum::routing::get(move || {
                let readiness = auth.readiness();
                async move {
                    let status = if readiness.is_ready() {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (status, no_store(), axum::Json(readiness.to_json()))
                }
            }),
        )
}

fn print_instructions(dev: &DevAuthorizationServer, auth: &ResourceServerAuth, auto: Option<&str>) {
    let url = auth.canonical_url();
    let token = dev.access_token("dev-user", "mcp:tools");
    let admin = dev.access_token("dev-user", "mcp:tools mcp:admin");
    let headers =
        "-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'";
    println!();
    println!(
        "Embedded DEVELOPMENT authorization server: {} (not for production: anyone can log in as anyone)",
        dev.issuer()
    );
    match auto {
        Some(user) => println!(
            "Every authorization request is approved at once for `{user}` ({AUTO_APPROVE})."
        ),
        None => println!(
            "MCP clients log in with their normal OAuth flow: they register, open {} in a browser, you pick a user (default dev-user) and approve.",
            dev.authorization_endpoint()
        ),
    }
    println!();
    println!("Connect a client:");
    println!(
        "  MCP Inspector: npx @modelcontextprotocol/inspector, transport \"Streamable HTTP\", URL {url}, then Connect (OAuth); call `whoami`."
    );
    println!("  Claude Code:   claude mcp add --transport http protected-example {url}");
    println!(
        "  VS Code:       .vscode/mcp.json {{\"servers\": {{\"protected-example\": {{\"type\": \"http\", \"url\": \"{url}\"}}}}}}"
    );
    println!("  SDKs:          point the streamable-HTTP client with an OAuth provider at {url}");
    println!(
        "Clients get `mcp:tools`; calling admin_report answers 403 and a client that steps up asks for `mcp:admin` on the same page."
    );
    println!();
    println!("Tokens for user `dev-user`, valid for 1 hour:");
    println!("  TOKEN (scope mcp:tools):             {token}");
    println!("  ADMIN_TOKEN (scope mcp:tools mcp:admin): {admin}");
    println!();
    println!("Initialize a session:");
    println!(
        "curl -i -X POST '{url}' -H 'Authorization: Bearer {token}' {headers} -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'"
    );
    println!();
    println!("The same request without the token gets the 401 challenge:");
    println!("curl -i -X POST '{url}' -H 'Content-Type: application/json' -d '{{}}'");
    println!();
    println!("Calling admin_report without mcp:admin gets the 403 step-up challenge:");
    println!(
        "curl -i -X POST '{url}' -H 'Authorization: Bearer {token}' {headers} -d '{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{{\"name\":\"admin_report\",\"arguments\":{{}}}}}}'"
    );
    println!();
}
