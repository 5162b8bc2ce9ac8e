//! The future of the front door's token check ([`GateFuture`]): wait for the validation,
//! then call the inner service with the owner in the request, without the token and with
//! the session ids it issued (or answer the refusal), and seal the MCP session id its answer
//! names to the caller.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;

use crate::auth::ResourceServerAuth;
use crate::challenge::Rejection;
use crate::owner::ResourceOwner;
use crate::request_span::RequestSpan;
use crate::session::{MCP_SESSION_ID, SessionIds};

/// A request the token check admits.
pub(crate) struct Admitted {
    pub(crate) owner: ResourceOwner,
    /// The session ids the inner service sees, when the request names any and binding is on.
    pub(crate) sessions: Option<SessionIds>,
    /// A fresh DPoP nonce for the answer (the request's is past half its life).
    pub(crate) dpop_nonce: Option<HeaderValue>,
}

/// The token check of one request, run before the inner service is called.
pub(crate) type Validation = Pin<Box<dyn Future<Output = Result<Admitted, Rejection>> + Send>>;

/// What the answer of an admitted request gets: its session id sealed to the owner (when
/// sessions are bound), a fresh DPoP nonce.
pub(crate) struct SessionNote {
    owner: Option<ResourceOwner>,
    dpop_nonce: Option<HeaderValue>,
}

/// Calls `service` with an admitted request: the owner in its extensions, without the
/// token (unless forwarding is on) and with the session ids the server issued. Also says
/// whose session id the answer may carry, when sessions are bound.
pub(crate) fn forward<S, ReqBody>(
    service: &mut S,
    mut request: Request<ReqBody>,
    Admitted {
        owner,
        sessions,
        dpop_nonce,
    }: Admitted,
    auth: &ResourceServerAuth,
    trace: &RequestSpan,
) -> (S::Future, Option<SessionNote>)
where
    S: Service<Request<ReqBody>>,
{
    let headers = request.headers_mut();
    if !auth.inner.forward_bearer_token {
        // MCP: no token passthrough; tools see the whole request. The DPoP proof goes with
        // the token it is bound to.
        headers.remove(AUTHORIZATION);
        headers.remove(crate::dpop::DPOP);
    }
    // The ids the server issued, or decoys for another user's (it then answers as for any
    // session it does not know: see session.rs).
    if let Some(SessionIds::Opened(ids) | SessionIds::Foreign(ids)) = sessions {
        headers.remove(MCP_SESSION_ID);
        for id in ids {
            headers.append(MCP_SESSION_ID, id);
        }
    }
    #[cfg(feature = "metrics")]
    crate::metrics::accepted(auth, owner.issuer());
    trace.accepted(auth, owner.issuer());
    let sealed_for = auth.inner.sessions.is_some().then(|| owner.clone());
    let note = (sealed_for.is_some() || dpop_nonce.is_some()).then_some(SessionNote {
        owner: sealed_for,
        dpop_nonce,
    });
    request.extensions_mut().insert(owner);
    let future = {
        let _in_span = trace.span().enter();
        service.call(request)
    };
    (future, note)
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
        trace: RequestSpan,
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
        Self::answer(response, auth, RequestSpan::none())
    }

    fn answer(response: Response<Body>, auth: ResourceServerAuth, trace: RequestSpan) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
            auth,
            session: None,
            trace,
        }
    }

    /// The front door refuses.
    pub(crate) fn reject(
        rejection: &Rejection,
        auth: ResourceServerAuth,
        mut trace: RequestSpan,
    ) -> Self {
        log_rejection(rejection, &trace);
        let response = auth.inner.challenger.respond(rejection);
        trace.finish();
        Self::answer(response, auth, trace)
    }

    /// The inner service was called at once (the request was admitted without waiting).
    pub(crate) fn calling(
        future: S::Future,
        session: Option<SessionNote>,
        auth: ResourceServerAuth,
        trace: RequestSpan,
    ) -> Self {
        Self {
            state: State::Calling { future },
            auth,
            session,
            trace,
        }
    }

    /// The inner service answers once `validation` admits the request.
    pub(crate) fn validate(
        validation: Validation,
        service: S,
        request: Request<ReqBody>,
        auth: ResourceServerAuth,
        trace: RequestSpan,
    ) -> Self {
        Self {
            state: State::Validating {
                validation,
                service: Some(service),
                request: Some(request),
            },
            auth,
            session: None,
            trace,
        }
    }
}

fn log_rejection(rejection: &Rejection, trace: &RequestSpan) {
    #[cfg(feature = "metrics")]
    crate::metrics::refused(rejection);
    trace.refused(rejection);
    let _in_span = trace.span().enter();
    match rejection {
        Rejection::NoCredentials => tracing::debug!("request without bearer token refused"),
        Rejection::InvalidRequest(why) => {
            tracing::debug!(reason = why, "malformed request refused");
        }
        Rejection::InvalidToken(e) | Rejection::DpopToken(e) => {
            tracing::debug!(reason = ?e.kind(), detail = e.detail(), "access token refused");
        }
        Rejection::DpopProof(kind) => tracing::debug!(reason = ?kind, "DPoP proof refused"),
        Rejection::ReplayUnavailable(reason) => {
            // Full: raise dpop_replay_cache_capacity; unavailable: the Redis store is down.
            tracing::warn!(
                reason,
                "DPoP proof refused: its replay check can not be made"
            );
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
        let answer = {
            let _in_span = this.trace.span().enter();
            ready!(poll_state(
                this.state.as_mut(),
                this.auth,
                this.session,
                this.trace,
                cx
            ))
        };
        this.trace.finish();
        Poll::Ready(answer)
    }
}

fn poll_state<S, ReqBody, ResBody>(
    mut state: Pin<&mut State<S, ReqBody>>,
    auth: &ResourceServerAuth,
    session: &mut Option<SessionNote>,
    trace: &RequestSpan,
    cx: &mut Context<'_>,
) -> Poll<Result<Response<Body>, S::Error>>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    loop {
        match state.as_mut().project() {
            StateProj::Validating {
                validation,
                service,
                request,
            } => {
                let outcome = ready!(validation.as_mut().poll(cx));
                let (Some(mut service), Some(request)) = (service.take(), request.take()) else {
                    return Poll::Ready(Ok(polled_after_completion()));
                };
                match outcome {
                    Ok(admitted) => {
                        let (future, note) = forward(&mut service, request, admitted, auth, trace);
                        *session = note;
                        state.set(State::Calling { future });
                    }
                    Err(rejection) => {
                        log_rejection(&rejection, trace);
                        return Poll::Ready(Ok(auth.inner.challenger.respond(&rejection)));
                    }
                }
            }
            StateProj::Calling { future } => {
                let mut res = ready!(future.poll(cx))?;
                let note = session.take();
                let (owner, nonce) = note.map_or((None, None), |n| (n.owner, n.dpop_nonce));
                if let Some(nonce) = nonce {
                    res.headers_mut().insert(crate::dpop::DPOP_NONCE, nonce);
                }
                if let (Some(owner), Some(seal)) = (owner, &auth.inner.sessions)
                    && res.headers().contains_key(MCP_SESSION_ID)
                {
                    // The client gets the session id sealed to this caller; an id that
                    // can not be sealed is not passed on.
                    let sealed: Vec<HeaderValue> = res
                        .headers()
                        .get_all(MCP_SESSION_ID)
                        .iter()
                        .filter_map(|id| seal.seal(id, &owner))
                        .collect();
                    res.headers_mut().remove(MCP_SESSION_ID);
                    for id in sealed {
                        res.headers_mut().append(MCP_SESSION_ID, id);
                    }
                }
                return Poll::Ready(Ok(res.map(Body::new)));
            }
            StateProj::Ready { response } => {
                return Poll::Ready(Ok(response.take().unwrap_or_else(polled_after_completion)));
            }
        }
    }
}

fn polled_after_completion() -> Response<Body> {
    let mut res = Response::new(Body::from("response future polled after completion"));
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res
}
