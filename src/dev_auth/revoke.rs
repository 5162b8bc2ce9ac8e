//! `POST {issuer}/revoke`: RFC 7009 token revocation. A client revokes its own refresh tokens
//! (access tokens are self-contained JWTs: revoking one is accepted and changes nothing; they
//! expire within the hour). Unknown tokens answer 200, as RFC 7009 §2.2 says.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::Inner;
use super::answer::{error, no_store};
use super::token::{authenticate, form_body};

pub(crate) async fn revoke(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match form_body(&headers, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let client = match authenticate(&inner, &headers, &form).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let Some(token) = form.get("token") else {
        return error("invalid_request", "token is required").into_response();
    };
    if let Some(grant) = inner.refresh_tokens.get(token) {
        // §2.1: only the client the token was issued to may revoke it.
        if grant.client_id != client.id {
            return error(
                "unauthorized_client",
                "the token was issued to another client",
            )
            .into_response();
        }
        inner.refresh_tokens.take(token);
    }
    (StatusCode::OK, no_store()).into_response()
}
