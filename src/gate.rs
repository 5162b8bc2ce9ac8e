//! The front door's own service ([`Gate`]): answers metadata requests, checks the bearer
//! token and the MCP session, and calls the inner service only for admitted requests (and
//! CORS preflights when CORS is handled elsewhere). CORS and header marking are composed
//! around it in `layer.rs`.

use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::header::ACCESS_CONTROL_REQUEST_METHOD;
use http::{HeaderValue, Method, Request, Response};
use tower::Service;

use crate::auth::ResourceServerAuth;
use crate::bearer::{self, Bearer, ExtractError};
use crate::challenge::Rejection;
use crate::future::gate::{Admitted, GateFuture, forward};
use crate::owner::ResourceOwner;
use crate::request_span::RequestSpan;
use crate::session::{MCP_SESSION_ID, SessionIds};

/// The token check in front of `S`.
#[derive(Clone, Debug)]
pub(crate) struct Gate<S> {
    pub(crate) inner: S,
    pub(crate) auth: ResourceServerAuth,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Gate<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = GateFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let auth = self.auth.clone();
        let inner_auth = &self.auth.inner;

        if let Some(meta) = &inner_auth.metadata
            && meta.serves(req.uri().path())
        {
            return GateFuture::ready(meta.respond(req.method()), auth);
        }

        // Reached only when CORS is disabled: with CORS on, the CORS layer around the gate
        // answers every preflight. A preflight never reaches the inner service without a
        // token; answered without CORS headers, it tells the browser "no".
        if req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            let mut res = Response::new(Body::empty());
            *res.status_mut() = http::StatusCode::NO_CONTENT;
            return GateFuture::ready(res, auth);
        }

        let trace = RequestSpan::start();
        let max = inner_auth.validator.max_token_bytes();
        let token = match bearer::extract(req.headers(), req.uri().query(), max) {
            Ok(Bearer::Token(token)) => token,
            Ok(Bearer::None) => {
                return GateFuture::reject(&Rejection::NoCredentials, auth, trace);
            }
            Err(ExtractError::InvalidRequest(why)) => {
                return GateFuture::reject(&Rejection::InvalidRequest(why), auth, trace);
            }
            Err(ExtractError::InvalidToken(e)) => {
                return GateFuture::reject(&Rejection::InvalidToken(e), auth, trace);
            }
        };

        // Every value: a request must not name another user's session in a second header
        // that the MCP server might read instead of the first. (No allocation without one.)
        let sent: Vec<HeaderValue> = req
            .headers()
            .get_all(MCP_SESSION_ID)
            .iter()
            .cloned()
            .collect();

        // Most requests are decided here, without waiting: no boxed future, and the inner
        // service (made ready by `poll_ready`) is called at once.
        if let Some(outcome) = inner_auth.validator.validate_now(token) {
            let owner = match outcome {
                Ok(owner) => owner.with_bearer_token(token.to_owned()),
                Err(e) => return GateFuture::reject(&Rejection::InvalidToken(e), auth, trace),
            };
            let sessions = inbound_sessions(&auth, &sent, &owner);
            let admitted = Admitted { owner, sessions };
            let (future, note) = forward(&mut self.inner, req, admitted, &auth, &trace);
            return GateFuture::calling(future, note, auth, trace);
        }

        // The keys must be fetched or refreshed first.
        let token = token.to_owned();
        let validating = auth.clone();
        let validation = Box::pin(async move {
            let owner = validating
                .validate_owned(token)
                .await
                .map_err(Rejection::InvalidToken)?;
            let sessions = inbound_sessions(&validating, &sent, &owner);
            Ok(Admitted { owner, sessions })
        });
        // Use the service that poll_ready made ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        GateFuture::validate(validation, inner, req, auth, trace)
    }
}

/// The session ids the inner service sees for the ids the request `sent`: `None` when it
/// sent none or sessions are not bound.
fn inbound_sessions(
    auth: &ResourceServerAuth,
    sent: &[HeaderValue],
    owner: &ResourceOwner,
) -> Option<SessionIds> {
    match &auth.inner.sessions {
        Some(seal) if !sent.is_empty() => Some(seal.inbound(sent, owner)),
        _ => None,
    }
}
