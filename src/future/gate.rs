//! The future of the front door's token check ([`GateFuture`]): wait for the validation,
//! then call the inner service with the owner in the request and without the token (or
//! answer the refusal), and bind or forget the MCP session its answer names.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;

use crate::auth::ResourceServerAuth;
use crate::challenge::Rejection;
use crate::owner::ResourceOwner;
use crate::session::{MCP_SESSION_ID, decoy};

/// A request the token check admits.
pub(crate) struct Admitted {
    pub(crate) owner: ResourceOwner,
    /// The request names an MCP session bound to another user.
    pub(crate) foreign_session: bool,
}

/// The token check of one request, run before the inner service is called.
pub(crate) type Validation = Pin<Box<dyn Future<Output = Result<Admitted, Rejection>> + Send>>;

/// What the answer of an admitted request means for session bindings.
struct SessionNote {
    owner: ResourceOwner,
    /// The session the request named, when it is a `DELETE` (ends the session).
    deleting: Option<HeaderValue>,
}

pin_project! {
    /// Resolves to the inner service's response, or to the front door's own answer (a
    /// refusal or the metadata document).
    pub(crate) struct GateFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
        auth: ResourceServerAuth,
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

impl<S, ReqBody> GateFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    /// The front door answers itself.
    pub(crate) fn ready(response: Response<Body>, auth: ResourceServerAuth) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
            auth,
            session: None,
        }
    }

    /// The front door refuses.
    pub(crate) fn reject(rejection: &Rejection, auth: ResourceServerAuth) -> Self {
        log_rejection(rejection);
        let response = auth.inner.challenger.respond(rejection);
        Self::ready(response, auth)
    }

    /// The inner service answers once `validation` admits the request.
    pub(crate) fn validate(
        validation: Validation,
        service: S,
        request: Request<ReqBody>,
        auth: ResourceServerAuth,
    ) -> Self {
        Self {
            state: State::Validating {
                validation,
                service: Some(service),
                request: Some(request),
            },
            auth,
            session: None,
        }
    }
}

fn log_rejection(rejection: &Rejection) {
    match rejection {
        Rejection::NoCredentials => tracing::debug!("request without bearer token refused"),
        Rejection::InvalidRequest(why) => {
            tracing::debug!(reason = why, "malformed request refused");
        }
        Rejection::InvalidToken(e) => {
            tracing::debug!(reason = ?e.kind(), detail = e.detail(), "access token refused");
        }
    }
}

impl<S, ReqBody, ResBody> Future for GateFuture<S, ReqBody>
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
                        return Poll::Ready(Ok(polled_after_completion()));
                    };
                    match outcome {
                        Ok(Admitted {
                            owner,
                            foreign_session,
                        }) => {
                            let headers = request.headers_mut();
                            if !this.auth.inner.forward_bearer_token {
                                // MCP: no token passthrough; tools see the whole request.
                                headers.remove(AUTHORIZATION);
                            }
                            if foreign_session {
                                // Another user's session: the server answers as for any
                                // session it does not know (see session.rs).
                                let bindings = this.auth.inner.sessions.as_ref();
                                let taken =
                                    |d: &HeaderValue| bindings.is_some_and(|b| b.is_bound(d));
                                let decoys: Vec<HeaderValue> = headers
                                    .get_all(MCP_SESSION_ID)
                                    .iter()
                                    .map(|id| decoy(id, taken))
                                    .collect();
                                headers.remove(MCP_SESSION_ID);
                                for d in decoys {
                                    headers.append(MCP_SESSION_ID, d);
                                }
                            } else if this.auth.inner.sessions.is_some() {
                                let deleting = (request.method() == Method::DELETE)
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
                            return Poll::Ready(Ok(this.auth.inner.challenger.respond(&rejection)));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let res = ready!(future.poll(cx))?;
                    if let (Some(note), Some(bindings)) =
                        (this.session.take(), &this.auth.inner.sessions)
                        && res.status().is_success()
                    {
                        if let Some(ended) = &note.deleting {
                            bindings.forget(ended);
                        } else if let Some(id) = res.headers().get(MCP_SESSION_ID) {
                            bindings.bind(id, &note.owner);
                        }
                    }
                    return Poll::Ready(Ok(res.map(Body::new)));
                }
                StateProj::Ready { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .unwrap_or_else(polled_after_completion)));
                }
            }
        }
    }
}

fn polled_after_completion() -> Response<Body> {
    let mut res = Response::new(Body::from("response future polled after completion"));
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res
}
