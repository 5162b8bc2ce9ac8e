//! [`McpScopesLayer`]: scope requirements per MCP tool, prompt and resource, checked before
//! the MCP server runs (documented on the type). The checks themselves are in
//! `mcp_admit.rs`, the rules in `mcp_policy/`.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, Response};
use tower::Layer;
use tower::Service;

use crate::error::ConfigError;
use crate::future::McpScopesFuture;
use crate::mcp_admit::{Settings, admit};
use crate::mcp_lists::AwaitedLists;
use crate::mcp_policy::{McpRequirement, Policy, spellings};
use crate::mcp_response::{ListFilter, filter_response};
use crate::owner::ResourceOwner;

/// Scope requirements per MCP tool, prompt and resource, checked before the MCP server runs.
///
/// For each `POST`, the layer finds every JSON-RPC message (a single message or a batch of at
/// most 256; a longer batch is refused as unreadable) and,
/// for each `tools/call`, `prompts/get`, `resources/read`, `resources/subscribe`,
/// `subscriptions/listen` and `completion/complete`, checks
/// the [`McpRequirement`]s of what it names against the [`ResourceOwner`](crate::ResourceOwner)'s
/// scopes (hierarchies applied). If any operation is not allowed, the whole request is
/// answered `403` with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…", resource_metadata="…"`,
/// naming every scope the refused operations need, and the MCP server never sees it.
/// Otherwise the request goes on with its body unchanged. What no rule names follows the
/// `unlisted_*` requirement, by default allowed to any valid token.
///
/// | rule | applies to |
/// |---|---|
/// | [`tool`](Self::tool), [`unlisted_tools`](Self::unlisted_tools) | `tools/call` by `params.name` |
/// | [`prompt`](Self::prompt), [`unlisted_prompts`](Self::unlisted_prompts) | `prompts/get` by `params.name` |
/// | [`resource`](Self::resource) (exact URI), [`resource_template`](Self::resource_template) (RFC 6570), [`resource_prefix`](Self::resource_prefix), [`unlisted_resources`](Self::unlisted_resources) | `resources/read` and `resources/subscribe` by `params.uri`, `subscriptions/listen` (MCP 2026-07-28) by each of its `resourceSubscriptions`; every matching rule applies, and a URI is matched in every spelling a server may read as the same resource (percent-decoded, normalised, repeated slashes collapsed, without query and fragment, lower case: `ADMIN://%72eport` meets the rules of `admin://report`, `file:///a/../secret//key` those of `file:///secret/key`); a URI over 16 KiB meets every resource rule |
/// | the prompt and resource rules | `completion/complete` by its `ref` (`ref/prompt` name, `ref/resource` URI template) |
///
/// A requirement is a [`ScopeRequirement`](crate::ScopeRequirement) or a function of the
/// operation, its arguments and the caller ([`McpRequirement::from_fn`]).
///
/// **MCP 2026-07-28 headers.** When a request carries `Mcp-Method` (or claims protocol
/// version 2026-07-28 or later, which requires it), the layer checks `Mcp-Method` and
/// `Mcp-Name` (decoding the `=?base64?…?=` form) against the body's message and refuses a
/// disagreement, a missing required header or a repeated one with `400` and JSON-RPC error
/// `-32020` (`HeaderMismatch`) before any scope decision: an intermediary routing on the
/// headers and the server reading the body must see the same operation. With
/// [`decide_from_headers`](Self::decide_from_headers) the layer decides such requests from the
/// headers alone without reading the body.
///
/// Other methods pass through unread. The gate never admits what it can not read: because the
/// layer and the server must see the same message, a `POST` body that is not exactly one JSON
/// value in UTF-8 (a BOM, trailing data, an unfinished value, a bad escape in a member the
/// gate reads, a member name repeated in a message or its `params`, serde_json's
/// private member names) is refused with `400` and a JSON-RPC parse error (`-32700`);
/// a `Content-Type` other than `application/json` in UTF-8 (a server decoding UTF-7 or
/// UTF-16 would read another message) and compressed bodies (`Content-Encoding` other than
/// `identity`) get `415`, transfer codings other than `chunked` `501`, a body slower than
/// [`body_read_timeout`](Self::body_read_timeout) `408`, and one that fails to arrive
/// completely `400`. The MCP server never sees a partial body. Reading keeps only the bytes and
/// what the rules need, never a value tree of the body nor a list of a batch's messages: each
/// message is decided as it is read. Requirements that are functions
/// ([`McpRequirement::from_fn`]) run only for a body read whole whose headers agree with it:
/// when one applies, every message is decided again, in order, and when it applies to a
/// `tools/call` or `prompts/get` the body is read once more into a tree to give it its
/// arguments (the one case where the gate holds more than the body).
///
/// Put it inside [`ProtectedResourceLayer`](crate::ProtectedResourceLayer):
///
/// ```
/// use axum::{Router, routing::post};
/// use protected_resource::{
///     AuthorizationServerEntry, McpScopesLayer, ProtectedResourceLayer, ResourceServerAuth,
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
/// let admin = ScopeRequirement::all(["mcp:admin"])?;
/// let scopes = McpScopesLayer::new()
///     .tool("admin_report", admin.clone())
///     .prompt("admin_brief", admin.clone())
///     .resource("admin://report", admin.clone())
///     .resource_template("admin://reports/{id}", admin)?
///     .unlisted_tools(ScopeRequirement::all(["mcp:tools"])?);
/// # let mcp_service = post(|| async { "…" });
/// let app: Router = Router::new()
///     .route("/mcp", mcp_service)
///     .layer(scopes)
///     .layer(ProtectedResourceLayer::new(auth));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct McpScopesLayer {
    settings: Arc<Settings>,
}

/// The former name of [`McpScopesLayer`], which now covers prompts and resources too.
#[deprecated(since = "0.2.0", note = "renamed to McpScopesLayer")]
pub type McpToolScopesLayer = McpScopesLayer;

/// The former name of [`McpScopes`].
#[deprecated(since = "0.2.0", note = "renamed to McpScopes")]
pub type McpToolScopes<S> = McpScopes<S>;

impl Default for McpScopesLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl McpScopesLayer {
    /// Default cap on an inspected request body: 4 MiB. MCP messages carrying documents or
    /// base64 images in tool arguments fit; the gate holds at most this per request (it reads
    /// without building a value tree, so a request costs about its own size: see
    /// BENCHMARKS.md, "Memory per request").
    pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
    /// Default time allowed for a `POST` body to arrive: 30 seconds (then `408`).
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

    /// No requirements yet (everything allowed to any valid token); bodies up to
    /// [`DEFAULT_MAX_BODY_BYTES`](Self::DEFAULT_MAX_BODY_BYTES), read within
    /// [`DEFAULT_BODY_READ_TIMEOUT`](Self::DEFAULT_BODY_READ_TIMEOUT); decisions from the body.
    pub fn new() -> Self {
        Self {
            settings: Arc::new(Settings {
                policy: Policy::default(),
                max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
                read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
                from_headers: false,
                filter_lists: true,
            }),
        }
    }

    fn policy(&mut self) -> &mut Policy {
        &mut Arc::make_mut(&mut self.settings).policy
    }

    /// Calls of tool `name` require `requirement` (replacing an earlier one for `name`).
    pub fn tool(mut self, name: impl Into<String>, requirement: impl Into<McpRequirement>) -> Self {
        self.policy().tools.insert(name.into(), requirement.into());
        self
    }

    /// Calls of tools not named with [`tool`](Self::tool) require `requirement` (by default
    /// they are allowed to any valid token).
    pub fn unlisted_tools(mut self, requirement: impl Into<McpRequirement>) -> Self {
        self.policy().unlisted_tools = Some(requirement.into());
        self
    }

    /// `prompts/get` of prompt `name` requires `requirement` (replacing an earlier one).
    pub fn prompt(
        mut self,
        name: impl Into<String>,
        requirement: impl Into<McpRequirement>,
    ) -> Self {
        self.policy()
            .prompts
            .insert(name.into(), requirement.into());
        self
    }

    /// Prompts not named with [`prompt`](Self::prompt) require `requirement` (by default
    /// allowed).
    pub fn unlisted_prompts(mut self, requirement: impl Into<McpRequirement>) -> Self {
        self.policy().unlisted_prompts = Some(requirement.into());
        self
    }

    /// Reading or subscribing to the resource `uri` requires `requirement` (replacing an
    /// earlier one for `uri`). The URI is matched as sent, percent-decoded and normalised.
    pub fn resource(
        mut self,
        uri: impl Into<String>,
        requirement: impl Into<McpRequirement>,
    ) -> Self {
        let uri = uri.into();
        let requirement = requirement.into();
        for spelling in spellings(&uri) {
            self.policy()
                .resources
                .insert(spelling, requirement.clone());
        }
        self
    }

    /// Resources whose URI is an expansion of the RFC 6570 `template` require `requirement`.
    /// `{var}` stands for one path segment (no `/`, `?` or `#`); `{+var}`, `{#var}` and the
    /// other operators for any text, so a rule never covers less than the server would
    /// expand. A malformed template is a [`ConfigError`].
    pub fn resource_template(
        mut self,
        template: &str,
        requirement: impl Into<McpRequirement>,
    ) -> Result<Self, ConfigError> {
        self.policy().add_template(template, requirement.into())?;
        Ok(self)
    }

    /// Resources whose URI starts with `prefix` require `requirement`.
    pub fn resource_prefix(
        mut self,
        prefix: impl Into<String>,
        requirement: impl Into<McpRequirement>,
    ) -> Self {
        self.policy()
            .prefixes
            .push((prefix.into(), requirement.into()));
        self
    }

    /// Resources no resource rule matches require `requirement` (by default allowed).
    pub fn unlisted_resources(mut self, requirement: impl Into<McpRequirement>) -> Self {
        self.policy().unlisted_resources = Some(requirement.into());
        self
    }

    /// Decide MCP 2026-07-28 requests from their `Mcp-Method` and `Mcp-Name` headers alone,
    /// without buffering the body (default `false`: read the body).
    ///
    /// Only for inner servers that check the headers against the body themselves, as MCP
    /// 2026-07-28 requires of servers (rmcp does, tested with 3.11: a disagreement gets `400`
    /// and `-32020` there). Headers are trusted only when the request carries exactly one
    /// `MCP-Protocol-Version: 2026-07-28` (servers of older revisions ignore the headers),
    /// `Mcp-Method`, and `Mcp-Name` where the method names something; other requests, and
    /// operations whose requirement is a function of their arguments, are still decided
    /// from the body.
    pub fn decide_from_headers(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.settings).from_headers = enabled;
        self
    }

    /// Whether `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list`
    /// answers leave out what the caller's scopes do not allow (default `true`; it takes
    /// effect once any rule is configured).
    ///
    /// A tool, prompt or resource is left out when its rule would refuse the caller
    /// (requirement functions are asked with no arguments); a resource template when a
    /// [`resource_template`](Self::resource_template) rule of the same text or a
    /// [`resource_prefix`](Self::resource_prefix) rule it starts with would; an entry without
    /// its `name` (`uri`, `uriTemplate`) is left out. For MCP 2026-07-28 requests every list
    /// result that passes through is marked `cacheScope: "private"`, also when nothing was
    /// left out: it depends on the caller. JSON and SSE answers alike; an answer that can not
    /// be read (not JSON, over 16 MiB) is not passed on (`502`, or the SSE stream ends). The
    /// list is a convenience: a hidden tool called anyway is still refused.
    pub fn filter_lists(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.settings).filter_lists = enabled;
        self
    }

    /// How long a `POST` body may take to arrive; slower ones get `408` (a client trickling
    /// its body would otherwise hold the request open). Default 30 s.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.settings).read_timeout = timeout;
        self
    }

    /// The largest `POST` body read for inspection; larger ones get `413`. Default 4 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.settings).max_body_bytes = bytes;
        self
    }
}

impl<S> Layer<S> for McpScopesLayer {
    type Service = McpScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpScopes {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// The service made by [`McpScopesLayer`]. It hands the inner service an
/// [`axum::body::Body`] whatever body type it receives.
#[derive(Debug, Clone)]
pub struct McpScopes<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> McpScopes<S> {
    /// Wraps `inner` with the requirements of `layer` (same as `layer.layer(inner)`).
    pub fn new(inner: S, layer: McpScopesLayer) -> Self {
        Self {
            inner,
            settings: layer.settings,
        }
    }

    /// A layer making this service, with no requirements yet.
    pub fn layer() -> McpScopesLayer {
        McpScopesLayer::new()
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for McpScopes<S>
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
    type Future = McpScopesFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Use the service that poll_ready made ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        let mut inner_call = move |req: Request<Body>| {
            let future = inner.call(req);
            async move { future.await.map(|res| res.map(Body::new)) }
        };
        if req.method() == Method::GET && self.settings.filters_lists() {
            // A GET stream may replay earlier answers (resumption with `Last-Event-ID`):
            // every list-shaped answer on it is filtered too.
            let owner = ResourceOwner::from_extensions(req.extensions()).cloned();
            return McpScopesFuture::new(Box::pin(async move {
                let res = inner_call(req.map(Body::new)).await?;
                Ok(match owner {
                    Some(owner) => {
                        let filter = ListFilter {
                            settings,
                            owner,
                            awaited: AwaitedLists::any_list(),
                        };
                        // Boxed (for every such GET): the filter's state stays out of
                        // the future every other request allocates.
                        Box::pin(filter_response(res, filter)).await
                    }
                    None => res,
                })
            }));
        }
        if req.method() != Method::POST {
            return McpScopesFuture::new(Box::pin(inner_call(req.map(Body::new))));
        }
        McpScopesFuture::new(Box::pin(async move {
            let (parts, body) = req.into_parts();
            let admitted = match admit(&settings, &parts, body).await {
                Ok(admitted) => {
                    #[cfg(feature = "metrics")]
                    crate::metrics::tool_decision(crate::metrics::ToolDecision::Allowed);
                    admitted
                }
                Err(refusal) => {
                    #[cfg(feature = "metrics")]
                    crate::metrics::tool_decision(
                        if refusal
                            .extensions()
                            .get::<crate::mcp_admit::CallerRefused>()
                            .is_some()
                        {
                            crate::metrics::ToolDecision::NotAllowed
                        } else if refusal.status() == http::StatusCode::FORBIDDEN {
                            crate::metrics::ToolDecision::InsufficientScope
                        } else {
                            crate::metrics::ToolDecision::RefusedBody
                        },
                    );
                    return Ok(refusal);
                }
            };
            // The owner is kept only for filtering list answers.
            let owner = admitted
                .lists
                .is_some()
                .then(|| ResourceOwner::from_parts(&parts).cloned())
                .flatten();
            let res = inner_call(Request::from_parts(parts, admitted.body)).await?;
            match (admitted.lists, owner) {
                (Some(awaited), Some(owner)) => {
                    let filter = ListFilter {
                        settings,
                        owner,
                        awaited,
                    };
                    // Boxed: only list answers are filtered, and the filter's state
                    // (~830 bytes) would otherwise be part of every request's future,
                    // pushing its allocation into glibc's large bins.
                    Ok(Box::pin(filter_response(res, filter)).await)
                }
                _ => Ok(res),
            }
        }))
    }
}
