//! [`McpToolScopesLayer`]: per-tool scope requirements for MCP `tools/call` requests (documented on the type).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use serde_json::{Map, Value};
use tower::Layer;
use tower::Service;

use crate::challenge::text;
use crate::future::McpToolScopesFuture;
use crate::owner::{MissingResourceOwner, ResourceOwner};
use crate::scope::ScopeRequirement;

#[derive(Debug, Clone)]
struct ToolPolicy {
    tools: HashMap<String, ScopeRequirement>,
    unlisted: Option<ScopeRequirement>,
    max_body_bytes: usize,
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
/// Other methods pass through unread. Bodies that are not JSON go to the MCP server untouched,
/// so it answers its own parse error. Because the layer and the server must see the same
/// message, bodies whose JSON objects repeat a member name (parsers disagree on which one
/// wins) are refused with `400`, and compressed bodies (`Content-Encoding` other than
/// `identity`) with `415`; a body that fails to arrive completely gets `400`. The MCP server
/// never sees a partial body.
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
    /// Default cap on an inspected request body: 4 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

    /// No tool requirements yet; unlisted tools allowed; bodies up to
    /// [`DEFAULT_MAX_BODY_BYTES`](Self::DEFAULT_MAX_BODY_BYTES).
    pub fn new() -> Self {
        Self {
            policy: Arc::new(ToolPolicy {
                tools: HashMap::new(),
                unlisted: None,
                max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
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
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            return Err(self.too_large());
        }
        let bytes = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => return Err(self.too_large()),
            Err(_) => {
                return Err(text(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: the request body could not be read",
                ));
            }
        };
        match self.refused_scopes(&bytes, owner) {
            Ok(None) => Ok(Body::from(bytes)),
            Ok(Some(required)) => {
                tracing::info!(
                    issuer = owner.issuer(),
                    user_id = owner.user_id(),
                    required = %required.join(" "),
                    "MCP tool call refused: insufficient scope"
                );
                Err(owner.insufficient(required).response())
            }
            Err(()) => Err(text(
                StatusCode::BAD_REQUEST,
                "Bad Request: a JSON object in the request repeats a member name",
            )),
        }
    }

    fn too_large(&self) -> Response<Body> {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Payload Too Large: MCP requests are limited to {} bytes",
                self.max_body_bytes
            ),
        )
    }

    /// `Ok(Some(scopes))` when a `tools/call` in `body` is not allowed (the scopes every
    /// refused call needs), `Ok(None)` when all are (or the body is not JSON), `Err` when an
    /// object repeats a member name.
    fn refused_scopes(
        &self,
        body: &[u8],
        owner: &ResourceOwner,
    ) -> Result<Option<Vec<String>>, ()> {
        let mut required: Vec<String> = Vec::new();
        let mut refused = false;
        // Every JSON value the body starts with (a lenient server might read the first value
        // of a body with trailing garbage).
        for value in serde_json::Deserializer::from_slice(body).into_iter::<Strict>() {
            let value = match value {
                Ok(Strict(v)) => v,
                Err(e) if e.classify() == serde_json::error::Category::Data => return Err(()),
                Err(_) => break,
            };
            let messages = match &value {
                Value::Array(batch) => batch.iter().collect(),
                single => vec![single],
            };
            for message in messages {
                if message.get("method").and_then(Value::as_str) != Some("tools/call") {
                    continue;
                }
                let Some(name) = message
                    .get("params")
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                else {
                    continue;
                };
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
        }
        Ok(refused.then_some(required))
    }
}

/// A JSON value whose objects (at any depth) never repeat a member name.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Strict;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
                Ok(Strict(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
                Ok(Strict(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
                Ok(Strict(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
                Ok(Strict(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
                Ok(Strict(Value::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Strict, E> {
                Ok(Strict(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<Strict, E> {
                Ok(Strict(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Strict, E> {
                Ok(Strict(Value::Null))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Strict, D::Error> {
                Strict::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                let mut out = Vec::new();
                while let Some(Strict(v)) = a.next_element()? {
                    out.push(v);
                }
                Ok(Strict(Value::Array(out)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                let mut out = Map::new();
                while let Some((k, Strict(v))) = a.next_entry::<String, Strict>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom("repeated member name"));
                    }
                    out.insert(k, v);
                }
                Ok(Strict(Value::Object(out)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<Value>, bool> {
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_str(s).into_iter::<Strict>() {
            match v {
                Ok(Strict(v)) => out.push(v),
                Err(e) => return Err(e.classify() == serde_json::error::Category::Data),
            }
        }
        Ok(out)
    }

    #[test]
    fn strict_json_refuses_repeated_members_at_any_depth() {
        assert_eq!(
            parse(r#"{"a":[1,2.5,-3,"x",null,true,{"b":{}}]}"#).unwrap(),
            vec![serde_json::json!({"a":[1,2.5,-3,"x",null,true,{"b":{}}]})]
        );
        assert_eq!(parse(r#"{"a":1,"a":2}"#), Err(true));
        assert_eq!(parse(r#"[{"p":{"name":"x","name":"y"}}]"#), Err(true));
        assert_eq!(parse(r#"{"a":"#), Err(false));
        assert_eq!(parse("not json"), Err(false));
    }
}
