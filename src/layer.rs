//! [`ProtectedResourceLayer`] and its service [`ProtectedResource`]: the front door.
//!
//! For every request:
//! 1. a request for the protected-resource metadata is answered at once (no token needed);
//! 2. a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) goes to the inner
//!    service without a token;
//! 3. the bearer token is taken from `Authorization` (missing: 401 challenge; malformed
//!    request: 400);
//! 4. the token is validated (invalid: 401 `invalid_token`; keys unobtainable: 503);
//! 5. a request naming an MCP session bound to another user is answered 404 (see
//!    [`bind_mcp_sessions`](crate::ResourceServerAuthBuilder::bind_mcp_sessions));
//! 6. the [`ResourceOwner`](crate::ResourceOwner) is inserted into the request extensions
//!    and the inner service is called; an `Mcp-Session-Id` in its answer is bound to the
//!    owner.
//!
//! Every answer carries CORS headers. The inner service is called only in steps 2 and 6.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{Method, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::bearer::{self, Bearer, ExtractError};
use crate::challenge::{Challenger, Rejection};
use crate::config::{JwksTokenValidator, ResourceServerAuth};
use crate::future::ResponseFuture;
use crate::session::MCP_SESSION_ID;

pub(crate) struct Shared {
    pub(crate) auth: ResourceServerAuth,
    pub(crate) challenger: Challenger,
}

/// Makes the wrapped service an OAuth 2.1 protected resource. Cheap to clone (one `Arc`).
///
/// ```
/// use axum::{Router, routing::post};
/// use protected_resource::{
///     AuthorizationServerEntry, ProtectedResourceLayer, ResourceOwner, ResourceServerAuth,
/// };
///
/// async fn mcp(owner: ResourceOwner) -> String {
///     format!("hello {}", owner.user_id())
/// }
///
/// # fn main() -> Result<(), protected_resource::ConfigError> {
/// let auth = ResourceServerAuth::builder()
///     .canonical_url("http://127.0.0.1:8000/mcp")
///     .authorization_server(AuthorizationServerEntry::new(
///         "https://auth.example.com",
///         "https://auth.example.com",
///         "https://auth.example.com/jwks",
///     ))
///     .build()?;
/// let app: Router = Router::new()
///     .route("/mcp", post(mcp))
///     .layer(ProtectedResourceLayer::new(auth));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ProtectedResourceLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ProtectedResourceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectedResourceLayer")
            .field("auth", &self.shared.auth)
            .finish()
    }
}

impl ProtectedResourceLayer {
    /// The layer for a configured resource server.
    pub fn new(auth: ResourceServerAuth) -> Self {
        let challenger = Challenger {
            resource_metadata: auth.inner.metadata.as_ref().map(|m| m.url.clone()),
            scope: auth.inner.challenge_scopes.clone(),
            retry_after_secs: auth.inner.retry_after_secs,
        };
        Self {
            shared: Arc::new(Shared { auth, challenger }),
        }
    }

    /// The layer for a single-issuer [`JwksTokenValidator`]: same checks, but no metadata is
    /// served and challenges carry no `resource_metadata`.
    pub fn from_validator(validator: JwksTokenValidator) -> Self {
        Self::new(validator.auth)
    }
}

impl<S> Layer<S> for ProtectedResourceLayer {
    type Service = ProtectedResource<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProtectedResource {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`ProtectedResourceLayer`].
#[derive(Clone)]
pub struct ProtectedResource<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ProtectedResource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectedResource")
            .field("inner", &self.inner)
            .field("auth", &self.shared.auth)
            .finish()
    }
}

impl<S> ProtectedResource<S> {
    /// Wraps `inner` directly (same as `ProtectedResourceLayer::new(auth).layer(inner)`).
    pub fn new(inner: S, auth: ResourceServerAuth) -> Self {
        ProtectedResourceLayer::new(auth).layer(inner)
    }

    /// A layer making this service.
    pub fn layer(auth: ResourceServerAuth) -> ProtectedResourceLayer {
        ProtectedResourceLayer::new(auth)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ProtectedResource<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = self.shared.clone();
        let origin = req.headers().get(ORIGIN).cloned();
        let auth = &shared.auth.inner;

        if let Some(meta) = &auth.metadata
            && meta.serves(req.uri().path())
        {
            let res = meta.respond(req.method());
            let preflight = req.method() == Method::OPTIONS;
            return ResponseFuture::ready(res, shared, origin, preflight);
        }

        // Use the service that poll_ready made ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);

        if req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return ResponseFuture::call(inner, req, shared, origin, true);
        }

        let max = auth.validator.max_token_bytes();
        let rejection = match bearer::extract(req.headers(), req.uri().query(), max) {
            Ok(Bearer::Token(token)) => {
                let token = token.to_owned();
                // Every value: a request must not name another user's session in a second
                // header that the MCP server might read instead of the first.
                let sessions: Vec<_> = req
                    .headers()
                    .get_all(MCP_SESSION_ID)
                    .iter()
                    .cloned()
                    .collect();
                let validating = shared.clone();
                let fut = Box::pin(async move {
                    let owner = validating
                        .auth
                        .validate(&token)
                        .await
                        .map_err(Rejection::InvalidToken)?;
                    if let Some(bindings) = &validating.auth.inner.sessions
                        && sessions.iter().any(|id| !bindings.allows(id, &owner))
                    {
                        return Err(Rejection::SessionNotFound);
                    }
                    Ok(owner)
                });
                return ResponseFuture::validate(fut, inner, req, shared, origin);
            }
            Ok(Bearer::None) => Rejection::NoCredentials,
            Err(ExtractError::InvalidRequest(why)) => Rejection::InvalidRequest(why),
            Err(ExtractError::InvalidToken(e)) => Rejection::InvalidToken(e),
        };
        ResponseFuture::reject(&rejection, shared, origin)
    }
}
