//! [`McpToolScopesLayer`]: per-tool scope requirements for MCP `tools/call` requests (documented on the type).

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::Layer;
use tower::Service;

use crate::challenge::text;
use crate::future::McpToolScopesFuture;
use crate::mcp_body::tool_calls;
use crate::owner::{MissingResourceOwner, ResourceOwner};
use crate::scope::ScopeRequirement;

#[derive(Debug, Clone)]
struct ToolPolicy {
    tools: HashMap<String, ScopeRequirement>,
    unlisted: Option<ScopeRequirement>,
    max_body_bytes: usize,
    read_timeout: Duration,
}

/// Per-tool scope requirements for MCP `tools/call` requests.
///
/// For each `POST`, the layer reads the body (up to a cap; past it `413`), looks at every
/// JSON-RPC message in it (a single message or a batch), and for each `tools/call` checks the
/// named tool's [`ScopeRequirement`] against the [`ResourceOwner`]'s scopes (hierarchies
/// applied). If any call is not allowed, the whole request is answered `403` with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…", resource_metadata="…"`,
/// naming every scope the refused calls need, and the MCP server never sees it. Otherwise the
/// request goes on with its body unchanged. Tools not listed follow the default: allowed, or
/// the requirement given to [`unlisted_tools`](McpToolScopesLayer::unlisted_tools).
///
/// Other methods pass through unread. The gate never admits what it can not read: because the
/// layer and the server must see the same message, a `POST` body that is not exactly one JSON
/// value in UTF-8 (a BOM, trailing data, an unfinished value, a bad escape in a member the
/// gate reads, a member name repeated in a message or its `params`, serde_json's
/// private member names) is refused with `400` and a JSON-RPC parse error (`-32700`);
/// a `Content-Type` other than `application/json` in UTF-8 (a server decoding UTF-7 or
/// UTF-16 would read another message) and compressed bodies (`Content-Encoding` other than
/// `identity`) get `415`, transfer codings
/// other than `chunked` `501`, a body slower than
/// [`body_read_timeout`](McpToolScopesLayer::body_read_timeout) `408`, and one that fails to
/// arrive completely `400`. The MCP server never sees a partial body. Reading keeps only the
/// bytes and the tool names, never a value tree of the body.
///
/// Put it inside [`ProtectedResourceLayer`](crate::ProtectedResourceLayer):
///
/// ```
/// use axum::{Router, routing::post};
/// use protected_resource::{
///     AuthorizationServerEntry, McpToolScopesLayer, ProtectedResourceLayer, ResourceServerAuth,
///     ScopeRequirement,
/// };
///
/// # fn main() -> Result<(), protected_resource::ConfigError> {
/// let auth = ResourceServerAuth::builder()
///     .canonical_url("https://mcp.example.com/mcp")
///     .authorization_server(AuthorizationServerEntry::new("https://auth.example.com"))
///     .scopes_supported(["mcp:tools", "mcp:admin"])
///     .scope_implies("mcp:admin", ["mcp:tools"])
///     .build()?;
/// let tools = McpToolScopesLayer::new()
///     .tool("admin_report", ScopeRequirement::all(["mcp:admin"])?)
///     .unlisted_tools(ScopeRequirement::all(["mcp:tools"])?);
/// # let mcp_service = post(|| async { "…" });
/// let app: Router = Router::new()
///     .route("/mcp", mcp_service)
///     .layer(tools)
///     .layer(ProtectedResourceLayer::new(auth));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct McpToolScopesLayer {
    policy: Arc<ToolPolicy>,
}

impl Default for McpToolScopesLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl McpToolScopesLayer {
    /// Default cap on an inspected request body: 4 MiB. MCP messages carrying documents or
    /// base64 images in tool arguments fit; the gate holds at most this per request (it reads
    /// without building a value tree, so a request costs about its own size).
    pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
    /// Default time allowed for a `POST` body to arrive: 30 seconds (then `408`).
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

    /// No tool requirements yet; unlisted tools allowed; bodies up to
    /// [`DEFAULT_MAX_BODY_BYTES`](Self::DEFAULT_MAX_BODY_BYTES).
    pub fn new() -> Self {
        Self {
            policy: Arc::new(ToolPolicy {
                tools: HashMap::new(),
                unlisted: None,
                max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
                read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
            }),
        }
    }

    /// Calls of tool `name` require `requirement` (replacing an earlier one for `name`).
    pub fn tool(mut self, name: impl Into<String>, requirement: ScopeRequirement) -> Self {
        Arc::make_mut(&mut self.policy)
            .tools
            .insert(name.into(), requirement);
        self
    }

    /// Calls of tools not listed with [`tool`](Self::tool) require `requirement` (by default
    /// they are allowed to any valid token).
    pub fn unlisted_tools(mut self, requirement: ScopeRequirement) -> Self {
        Arc::make_mut(&mut self.policy).unlisted = Some(requirement);
        self
    }

    /// How long a `POST` body may take to arrive; slower ones get `408` (a client trickling
    /// its body would otherwise hold the request open). Default 30 s.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.policy).read_timeout = timeout;
        self
    }

    /// The largest `POST` body read for inspection; larger ones get `413`. Default 4 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.policy).max_body_bytes = bytes;
        self
    }
}

impl<S> Layer<S> for McpToolScopesLayer {
    type Service = McpToolScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpToolScopes {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service made by [`McpToolScopesLayer`]. It hands the inner service an
/// [`axum::body::Body`] whatever body type it receives.
#[derive(Debug, Clone)]
pub struct McpToolScopes<S> {
    inner: S,
    policy: Arc<ToolPolicy>,
}

impl<S> McpToolScopes<S> {
    /// Wraps `inner` with the requirements of `layer` (same as `layer.layer(inner)`).
    pub fn new(inner: S, layer: McpToolScopesLayer) -> Self {
        Self {
            inner,
            policy: layer.policy,
        }
    }

    /// A layer making this service, with no tool requirements yet.
    pub fn layer() -> McpToolScopesLayer {
        McpToolScopesLayer::new()
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for McpToolScopes<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<axum::BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = McpToolScopesFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Use the service that poll_ready made ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        let mut inner_call = move |req: Request<Body>| {
            let future = inner.call(req);
            async move { future.await.map(|res| res.map(Body::new)) }
        };
        if req.method() != Method::POST {
            return McpToolScopesFuture::new(Box::pin(inner_call(req.map(Body::new))));
        }
        McpToolScopesFuture::new(Box::pin(async move {
            let (parts, body) = req.into_parts();
            match policy.admit(&parts, body).await {
                Ok(body) => inner_call(Request::from_parts(parts, body)).await,
                Err(refusal) => Ok(refusal),
            }
        }))
    }
}

impl ToolPolicy {
    /// Reads and checks a `POST` body: the body to pass on, or the answer.
    async fn admit<B>(&self, parts: &http::request::Parts, body: B) -> Result<Body, Response<Body>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let Some(owner) = ResourceOwner::from_parts(parts) else {
            return Err(MissingResourceOwner.response());
        };
        // RFC 9112 §6.1: 501 for a transfer coding the recipient does not apply itself.
        if parts.headers.get_all(TRANSFER_ENCODING).iter().any(|v| {
            v.to_str().map_or(true, |v| {
                v.split(',')
                    .any(|c| !c.trim().eq_ignore_ascii_case("chunked"))
            })
        }) {
            return Err(text(
                StatusCode::NOT_IMPLEMENTED,
                "Not Implemented: transfer codings other than chunked are not accepted",
            ));
        }
        if parts
            .headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .any(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            return Err(text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type: compressed MCP requests are not accepted",
            ));
        }
        // The gate reads UTF-8; a server told another charset (UTF-7, UTF-16, …) would decode
        // other bytes into another message. MCP clients send `application/json`.
        if !is_json_utf8(&parts.headers) {
            return Err(text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type: MCP requests are application/json in UTF-8",
            ));
        }
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            return Err(self.too_large());
        }
        let read = Limited::new(body, self.max_body_bytes).collect();
        let bytes = match tokio::time::timeout(self.read_timeout, read).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<LengthLimitError>() => return Err(self.too_large()),
            Ok(Err(_)) => {
                return Err(text(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: the request body could not be read",
                ));
            }
            // A client trickling its body holds a task and a buffer: not longer than this.
            Err(_) => {
                return Err(text(
                    StatusCode::REQUEST_TIMEOUT,
                    "Request Timeout: the request body did not arrive in time",
                ));
            }
        };
        let Ok(tools) = tool_calls(&bytes) else {
            tracing::debug!("MCP request refused: its body can not be read strictly");
            return Err(parse_error());
        };
        match self.refused_scopes(&tools, owner) {
            None => Ok(Body::from(bytes)),
            Some(required) => {
                tracing::info!(
                    issuer = owner.issuer(),
                    user_id = owner.user_id(),
                    required = %required.join(" "),
                    "MCP tool call refused: insufficient scope"
                );
                Err(owner.insufficient(required).response())
            }
        }
    }

    fn too_large(&self) -> Response<Body> {
        // The answer is text, not JSON-RPC: the message was never read.
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Payload Too Large: MCP requests are limited to {} bytes",
                self.max_body_bytes
            ),
        )
    }

    /// The scopes every refused call in `tools` needs, or `None` when all are allowed.
    fn refused_scopes(&self, tools: &[String], owner: &ResourceOwner) -> Option<Vec<String>> {
        let mut required: Vec<String> = Vec::new();
        let mut refused = false;
        for name in tools {
            let Some(requirement) = self.tools.get(name).or(self.unlisted.as_ref()) else {
                continue;
            };
            if !owner.satisfies(requirement) {
                refused = true;
                for s in requirement.challenge_scopes() {
                    if !required.contains(s) {
                        required.push(s.clone());
                    }
                }
            }
        }
        refused.then_some(required)
    }
}

/// `400` with a JSON-RPC parse error (`-32700`): the answer for a body the gate can not read.
fn parse_error() -> Response<Body> {
    let mut res = Response::new(Body::from(
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
    ));
    *res.status_mut() = StatusCode::BAD_REQUEST;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// Whether the request says exactly one `Content-Type`, `application/json`, with no parameter
/// but `charset=utf-8` (any case, quoted or not).
fn is_json_utf8(headers: &http::HeaderMap) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json")
        && parts.all(|p| {
            let Some((name, v)) = p.split_once('=') else {
                return p.trim().is_empty();
            };
            name.trim().eq_ignore_ascii_case("charset")
                && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
}
