//! The response future of [`ProtectedResource`](crate::ProtectedResource).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::challenge::Rejection;
use crate::layer::Shared;
use crate::owner::ResourceOwner;
use crate::session::MCP_SESSION_ID;

type Validation = Pin<Box<dyn Future<Output = Result<ResourceOwner, Rejection>> + Send>>;

/// What the answer of an admitted request means for session bindings.
struct SessionNote {
    owner: ResourceOwner,
    /// The session the request named, when it is a `DELETE` (ends the session).
    deleting: Option<HeaderValue>,
}

pin_project! {
    /// Resolves to the inner service's response, or to the layer's own answer (a challenge or
    /// the metadata document).
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
        shared: Arc<Shared>,
        origin: Option<HeaderValue>,
        preflight: bool,
        session: Option<SessionNote>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Validating {
            validation: Validation,
            service: Option<S>,
            request: Option<Request<ReqBody>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Ready {
            response: Option<Response<Body>>,
        },
    }
}

impl<S, ReqBody> std::fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn ready(
        response: Response<Body>,
        shared: Arc<Shared>,
        origin: Option<HeaderValue>,
        preflight: bool,
    ) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
            shared,
            origin,
            preflight,
            session: None,
        }
    }

    pub(crate) fn reject(
        rejection: &Rejection,
        shared: Arc<Shared>,
        origin: Option<HeaderValue>,
    ) -> Self {
        log_rejection(rejection);
        let response = shared.challenger.respond(rejection);
        Self::ready(response, shared, origin, false)
    }

    pub(crate) fn call(
        mut service: S,
        request: Request<ReqBody>,
        shared: Arc<Shared>,
        origin: Option<HeaderValue>,
        preflight: bool,
    ) -> Self {
        Self {
            state: State::Calling {
                future: service.call(request),
            },
            shared,
            origin,
            preflight,
            session: None,
        }
    }

    pub(crate) fn validate(
        validation: Validation,
        service: S,
        request: Request<ReqBody>,
        shared: Arc<Shared>,
        origin: Option<HeaderValue>,
    ) -> Self {
        Self {
            state: State::Validating {
                validation,
                service: Some(service),
                request: Some(request),
            },
            shared,
            origin,
            preflight: false,
            session: None,
        }
    }
}

fn log_rejection(rejection: &Rejection) {
    match rejection {
        Rejection::NoCredentials => tracing::debug!("request without bearer token refused"),
        Rejection::InvalidRequest(why) => {
            tracing::debug!(reason = why, "malformed request refused")
        }
        Rejection::InvalidToken(e) => {
            tracing::debug!(reason = ?e.kind(), detail = e.detail(), "access token refused")
        }
        Rejection::SessionNotFound => {
            tracing::debug!("request for another user's MCP session refused")
        }
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
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Validating {
                    validation,
                    service,
                    request,
                } => {
                    let outcome = ready!(validation.as_mut().poll(cx));
                    let (Some(mut service), Some(mut request)) = (service.take(), request.take())
                    else {
                        return Poll::Ready(Ok(internal_error()));
                    };
                    match outcome {
                        Ok(owner) => {
                            if this.shared.auth.inner.sessions.is_some() {
                                let deleting = (request.method() == http::Method::DELETE)
                                    .then(|| request.headers().get(MCP_SESSION_ID).cloned())
                                    .flatten();
                                *this.session = Some(SessionNote {
                                    owner: owner.clone(),
                                    deleting,
                                });
                            }
                            request.extensions_mut().insert(owner);
                            let future = service.call(request);
                            this.state.set(State::Calling { future });
                        }
                        Err(rejection) => {
                            log_rejection(&rejection);
                            let mut res = this.shared.challenger.respond(&rejection);
                            cors(this.shared, this.origin.as_ref(), &mut res, false);
                            return Poll::Ready(Ok(res));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let res = ready!(future.poll(cx))?;
                    if let (Some(note), Some(bindings)) =
                        (this.session.take(), &this.shared.auth.inner.sessions)
                        && res.status().is_success()
                    {
                        if let Some(ended) = &note.deleting {
                            bindings.forget(ended);
                        } else if let Some(id) = res.headers().get(MCP_SESSION_ID) {
                            bindings.bind(id, &note.owner);
                        }
                    }
                    let mut res = res.map(Body::new);
                    if *this.preflight && !res.status().is_success() {
                        // The inner service does not answer OPTIONS itself (no route, or a
                        // handler that needs an owner): answer the preflight here, so browsers
                        // can go on to send the real request with its token.
                        res = Response::new(Body::empty());
                        *res.status_mut() = StatusCode::NO_CONTENT;
                    }
                    cors(this.shared, this.origin.as_ref(), &mut res, *this.preflight);
                    return Poll::Ready(Ok(res));
                }
                StateProj::Ready { response } => {
                    let mut res = response.take().unwrap_or_else(internal_error);
                    cors(this.shared, this.origin.as_ref(), &mut res, *this.preflight);
                    return Poll::Ready(Ok(res));
                }
            }
        }
    }
}

fn cors(shared: &Shared, origin: Option<&HeaderValue>, res: &mut Response<Body>, preflight: bool) {
    shared
        .auth
        .inner
        .cors
        .apply(origin, res.headers_mut(), preflight);
}

fn internal_error() -> Response<Body> {
    let mut res = Response::new(Body::from("response future polled after completion"));
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res
}
