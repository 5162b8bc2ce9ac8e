//! The front door's own service ([`Gate`]): answers metadata requests, checks the access
//! token (bearer, or DPoP with its proof) and the MCP session, and calls the inner service
//! only for admitted requests (and CORS preflights when CORS is handled elsewhere). It marks
//! the `Authorization` header sensitive first; CORS is composed around it in `layer.rs`.

use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::header::{ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, Entry};
use http::{HeaderValue, Method, Request, Response};
use tower::Service;

use crate::auth::ResourceServerAuth;
use crate::bearer::{self, Bearer, ExtractError};
use crate::challenge::Rejection;
use crate::claim_rules::ProofBinding;
use crate::dpop::{CheckedProof, DpopErrorKind, FirstUse};
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

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The token never shows in the `Debug` output or logs of what runs inside (what
        // tower-http's `SetSensitiveRequestHeaders` does, here: one layer less per request).
        if let Entry::Occupied(mut values) = req.headers_mut().entry(AUTHORIZATION) {
            for value in values.iter_mut() {
                value.set_sensitive(true);
            }
        }
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
        let (token, dpop) = match bearer::extract(req.headers(), req.uri().query(), max) {
            Ok(Bearer::Token(token)) => (token, None),
            // With DPoP off everywhere, the scheme is as unknown as any other.
            Ok(Bearer::Dpop(token)) => match &inner_auth.dpop {
                Some(guard) => (token, Some(guard)),
                None => return GateFuture::reject(&Rejection::NoCredentials, auth, trace),
            },
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
        // A DPoP request: its proof first (no I/O), against the path the client addressed.
        let proof = match dpop {
            None => None,
            Some(guard) => {
                let path = req
                    .extensions()
                    .get::<axum::extract::OriginalUri>()
                    .map_or(req.uri().path(), |u| u.0.path());
                match guard.check(req.headers(), req.method(), path, token) {
                    Ok(proof) => Some(proof),
                    Err(kind) => {
                        return GateFuture::reject(&Rejection::DpopProof(kind), auth, trace);
                    }
                }
            }
        };
        let is_dpop = proof.is_some();

        // Every value: a request must not name another user's session in a second header
        // that the MCP server might read instead of the first. (No allocation without one;
        // no lookup at all when sessions are not bound to their users.)
        let sent: Vec<HeaderValue> = match &inner_auth.sessions {
            Some(_) => req
                .headers()
                .get_all(MCP_SESSION_ID)
                .iter()
                .cloned()
                .collect(),
            None => Vec::new(),
        };

        // Most requests are decided here, without waiting: no boxed future, and the inner
        // service (made ready by `poll_ready`) is called at once. (Not with a shared DPoP
        // replay store, which is awaited.)
        let replay_now = dpop.is_none_or(|guard| !guard.replay_is_shared());
        if replay_now
            && let Some(outcome) = inner_auth.validator.validate_now(token, binding(&proof))
        {
            let owner = match outcome
                .map_err(|e| Rejection::token(e, is_dpop))
                .and_then(|owner| {
                    let first_use = match (&proof, &inner_auth.dpop) {
                        (Some(p), Some(guard)) => guard.first_use_now(&p.proof),
                        _ => None,
                    };
                    with_proof(owner, proof.as_ref(), first_use)
                }) {
                // A copy: the header value may share hyper's buffer of the whole request
                // head, which an owner kept by the application would keep alive.
                Ok(owner) => owner.with_bearer_token(token.to_owned()),
                Err(rejection) => return GateFuture::reject(&rejection, auth, trace),
            };
            let sessions = inbound_sessions(&auth, &sent, &owner);
            let admitted = Admitted {
                owner,
                sessions,
                dpop_nonce: fresh_nonce(&auth, proof.as_ref()),
            };
            let (future, note) = forward(&mut self.inner, req, admitted, &auth, &trace);
            return GateFuture::calling(future, note, auth, trace);
        }

        // The keys must be fetched or refreshed first.
        let token = token.to_owned();
        let validating = auth.clone();
        let validation = Box::pin(async move {
            let owner = validating
                .validate_owned(token, binding(&proof))
                .await
                .map_err(|e| Rejection::token(e, is_dpop))?;
            let first_use = match (&proof, &validating.inner.dpop) {
                (Some(p), Some(guard)) => Some(guard.first_use(&p.proof).await),
                _ => None,
            };
            let owner = with_proof(owner, proof.as_ref(), first_use)?;
            let sessions = inbound_sessions(&validating, &sent, &owner);
            let dpop_nonce = fresh_nonce(&validating, proof.as_ref());
            Ok(Admitted {
                owner,
                sessions,
                dpop_nonce,
            })
        });
        // Use the service that poll_ready made ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        GateFuture::validate(validation, inner, req, auth, trace)
    }
}

/// What the token check needs of a checked proof.
fn binding(proof: &Option<CheckedProof>) -> Option<ProofBinding<'_>> {
    proof.as_ref().map(|p| ProofBinding {
        jkt: &p.proof.jkt,
        alg: p.proof.alg,
    })
}

/// After the token is accepted, the proof's replay check (made only now, so that only
/// holders of a valid token fill the replay store) decides, and the owner gets the key.
fn with_proof(
    owner: ResourceOwner,
    proof: Option<&CheckedProof>,
    first_use: Option<FirstUse>,
) -> Result<ResourceOwner, Rejection> {
    let Some(proof) = proof else {
        return Ok(owner);
    };
    match first_use {
        Some(FirstUse::Yes) => Ok(owner.with_dpop_thumbprint(&proof.proof.jkt)),
        Some(FirstUse::Replayed) => Err(Rejection::DpopProof(DpopErrorKind::Replayed)),
        // A proof that can not be remembered (or checked) could be replayed: not accepted.
        Some(FirstUse::Full) => Err(Rejection::ReplayUnavailable("dpop_replay_cache_full")),
        Some(FirstUse::Unavailable) | None => Err(Rejection::ReplayUnavailable(
            "dpop_replay_store_unavailable",
        )),
    }
}

/// A fresh nonce for the answer, when the proof's is past half its life.
fn fresh_nonce(auth: &ResourceServerAuth, proof: Option<&CheckedProof>) -> Option<HeaderValue> {
    proof
        .filter(|p| p.renew_nonce)
        .and_then(|_| auth.inner.dpop.as_ref()?.fresh_nonce())
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
