//! The development authorization server's JSON answers: `Cache-Control: no-store` on every
//! one, and RFC 6749 §5.2 error answers of the token endpoint.

use axum::Json;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Token and registration answers are never cached (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

/// A refusal (RFC 6749 §5.2): 400, or 401 `invalid_client` with a `Basic` challenge when the
/// client tried Basic.
pub(crate) struct Refused {
    code: &'static str,
    description: &'static str,
    unauthorized: bool,
    basic: bool,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = if self.unauthorized {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut response = (
            status,
            no_store(),
            Json(json!({"error": self.code, "error_description": self.description})),
        )
            .into_response();
        if self.basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"dev-auth\""),
            );
        }
        response
    }
}

pub(crate) fn error(code: &'static str, description: &'static str) -> Refused {
    Refused {
        code,
        description,
        unauthorized: false,
        basic: false,
    }
}

pub(crate) fn unauthorized(basic: bool, description: &'static str) -> Refused {
    Refused {
        code: "invalid_client",
        description,
        unauthorized: true,
        basic,
    }
}

pub(crate) fn server_error() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        no_store(),
        Json(json!({"error": "temporarily_unavailable", "error_description": "try again"})),
    )
        .into_response()
}
