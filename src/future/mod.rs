//! The response futures of the crate's services, as tower keeps them
//! (`tower::timeout::future::ResponseFuture`): [`ResponseFuture`] of
//! [`ProtectedResource`](crate::ProtectedResource), [`RequireScopesFuture`] of
//! [`RequireScopes`](crate::RequireScopes) and [`McpScopesFuture`] of
//! [`McpScopes`](crate::McpScopes).

pub(crate) mod gate;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::Bytes;
use http::header::VARY;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower::Service;
use tower_http::cors;

use crate::future::gate::GateFuture;
use crate::missing_owner::MissingResourceOwner;

pin_project! {
    /// The response future of [`ProtectedResource`](crate::ProtectedResource): the inner
    /// service's response, or the front door's own answer (a refusal, a CORS preflight or
    /// the metadata document).
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        kind: Kind<S, ReqBody>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Cors { #[pin] future: cors::ResponseFuture<GateFuture<S, ReqBody>> },
        Plain { #[pin] future: GateFuture<S, ReqBody> },
        Vary { #[pin] future: GateFuture<S, ReqBody> },
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    /// The gate's answer with the CORS headers (or tower-http's preflight answer).
    pub(crate) fn cors(future: cors::ResponseFuture<GateFuture<S, ReqBody>>) -> Self {
        Self {
            kind: Kind::Cors { future },
        }
    }

    /// The gate's answer to a request without `Origin`: no CORS headers, but the `Vary`
    /// header the CORS layer would have added when a cache may keep the answer.
    pub(crate) fn vary(future: GateFuture<S, ReqBody>) -> Self {
        Self {
            kind: Kind::Vary { future },
        }
    }

    /// The gate's answer as it is.
    pub(crate) fn plain(future: GateFuture<S, ReqBody>) -> Self {
        Self {
            kind: Kind::Plain { future },
        }
    }
}

impl<S, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Cors { future } => future.poll(cx),
            KindProj::Plain { future } => future.poll(cx),
            KindProj::Vary { future } => {
                let mut res = ready!(future.poll(cx))?;
                if may_be_cached(res.headers()) {
                    res.headers_mut().append(VARY, CORS_VARY);
                }
                Poll::Ready(Ok(res))
            }
        }
    }
}

/// What tower-http's CORS layer sends in `Vary` (its default: the request headers a CORS
/// answer depends on).
const CORS_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// Whether a cache may keep an answer with these headers: explicit freshness or a
/// validator (`Cache-Control` without `no-store`, `Expires`, `Last-Modified`, `ETag`). Other
/// answers (refusals, MCP answers) are never reused, so they need no `Vary`.
fn may_be_cached(headers: &http::HeaderMap) -> bool {
    use http::header::{CACHE_CONTROL, ETAG, EXPIRES, LAST_MODIFIED};
    let stored = |v: &HeaderValue| {
        v.to_str()
            .map_or(true, |v| !v.to_ascii_lowercase().contains("no-store"))
    };
    headers.get_all(CACHE_CONTROL).iter().any(stored)
        || [EXPIRES, LAST_MODIFIED, ETAG]
            .iter()
            .any(|h| headers.contains_key(h))
}

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

/// The response future of [`McpScopes`](crate::McpScopes).
pub struct McpScopesFuture<E> {
    inner: BoxedResponse<E>,
}

impl<E> McpScopesFuture<E> {
    pub(crate) fn new(inner: BoxedResponse<E>) -> Self {
        Self { inner }
    }
}

impl<E> fmt::Debug for McpScopesFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpScopesFuture").finish_non_exhaustive()
    }
}

/// The former name of [`McpScopesFuture`].
#[deprecated(since = "0.2.0", note = "renamed to McpScopesFuture")]
pub type McpToolScopesFuture<E> = McpScopesFuture<E>;

impl<E> Future for McpScopesFuture<E> {
    type Output = Result<Response<Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

pin_project! {
    /// The response future of [`RequireScopes`](crate::RequireScopes).
    pub struct RequireScopesFuture<F> {
        #[pin]
        state: ScopesState<F>,
    }
}

impl<F> RequireScopesFuture<F> {
    /// The inner service answers.
    pub(crate) fn inner(future: F) -> Self {
        Self {
            state: ScopesState::Inner { future },
        }
    }

    /// The check refused: answer `response`.
    pub(crate) fn refused(response: Response<Body>) -> Self {
        Self {
            state: ScopesState::Refused {
                response: Some(response),
            },
        }
    }
}

pin_project! {
    #[project = ScopesStateProj]
    enum ScopesState<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<Body>> },
    }
}

impl<F> std::fmt::Debug for RequireScopesFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireScopesFuture")
            .finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for RequireScopesFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            ScopesStateProj::Inner { future } => {
                let res = ready!(future.poll(cx))?;
                Poll::Ready(Ok(res.map(Body::new)))
            }
            ScopesStateProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| MissingResourceOwner.response()))),
        }
    }
}
