//! The front door's refusals (RFC 6750 §3, RFC 9728 §5.1, MCP): `Bearer` challenges, the 503
//! for unobtainable keys. The table of answers is on
//! [`ProtectedResourceLayer`](crate::ProtectedResourceLayer); `error_description` is a fixed
//! text per reason and never echoes any part of the token.

use axum::body::Body;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::error::{ValidationError, ValidationErrorKind};

/// Why the layer answers instead of the inner service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    NoCredentials,
    InvalidRequest(&'static str),
    InvalidToken(ValidationError),
}

/// Keeps only RFC 6750 error-chars (%x20-21 / %x23-5B / %x5D-7E) for `error_description`.
pub(crate) fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        .collect()
}

/// A `Bearer` challenge with these auth-params, comma-separated and quoted, values sanitized.
pub(crate) fn bearer(params: &[(&str, &str)]) -> HeaderValue {
    let mut out = String::from("Bearer");
    for (i, (name, value)) in params.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(&sanitize(value));
        out.push('"');
    }
    HeaderValue::from_str(&out).unwrap_or(HeaderValue::from_static("Bearer"))
}

/// Builds the challenge for one resource.
#[derive(Debug, Clone)]
pub(crate) struct Challenger {
    /// `resource_metadata="…"`, or `None` for a validator without metadata.
    pub(crate) resource_metadata: Option<String>,
    /// Default scopes for the 401 without credentials.
    pub(crate) scope: Option<String>,
    pub(crate) retry_after_secs: u64,
}

impl Challenger {
    /// `Bearer` with `before` params, then `resource_metadata` (when there is metadata),
    /// then `after` params.
    fn header(&self, before: &[(&str, &str)], after: &[(&str, &str)]) -> HeaderValue {
        let metadata = self
            .resource_metadata
            .as_deref()
            .map(|m| ("resource_metadata", m));
        let params: Vec<(&str, &str)> = before
            .iter()
            .copied()
            .chain(metadata)
            .chain(after.iter().copied())
            .collect();
        bearer(&params)
    }

    pub(crate) fn respond(&self, rejection: &Rejection) -> Response<Body> {
        let (status, header, body) = match rejection {
            Rejection::NoCredentials => {
                // resource_metadata first (RFC 9728 §5.1 example), then scope.
                let scope: Vec<(&str, &str)> = self
                    .scope
                    .as_deref()
                    .map(|s| ("scope", s))
                    .into_iter()
                    .collect();
                (
                    StatusCode::UNAUTHORIZED,
                    self.header(&[], &scope),
                    "Unauthorized: a bearer access token is required".to_owned(),
                )
            }
            Rejection::InvalidRequest(why) => (
                StatusCode::BAD_REQUEST,
                self.header(&[("error", "invalid_request")], &[]),
                format!("invalid_request: {why}"),
            ),
            Rejection::InvalidToken(e) if e.kind().is_unavailable() => {
                let mut res = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    if e.kind() == ValidationErrorKind::KeysUnavailable {
                        "Service Unavailable: the authorization server's keys can not be obtained; retry later"
                    } else {
                        "Service Unavailable: the authorization server can not check the token now; retry later"
                    },
                );
                let secs = e
                    .retry_after()
                    .map_or(self.retry_after_secs, |d| d.as_secs_f64().ceil() as u64);
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
                return res;
            }
            Rejection::InvalidToken(e)
                if matches!(
                    e.kind(),
                    ValidationErrorKind::ClientNotAllowed | ValidationErrorKind::ClaimsNotAllowed
                ) =>
            {
                // RFC 6750 §3.1: a valid token without the privileges this resource needs.
                let description = e.kind().description();
                (
                    StatusCode::FORBIDDEN,
                    self.header(
                        &[
                            ("error", "insufficient_scope"),
                            ("error_description", description),
                        ],
                        &[],
                    ),
                    format!("insufficient_scope: {description}"),
                )
            }
            Rejection::InvalidToken(e) => {
                let description = e.kind().description();
                (
                    StatusCode::UNAUTHORIZED,
                    self.header(
                        &[
                            ("error", "invalid_token"),
                            ("error_description", description),
                        ],
                        &[],
                    ),
                    format!("invalid_token: {description}"),
                )
            }
        };
        let mut res = text(status, body);
        res.headers_mut().insert(WWW_AUTHENTICATE, header);
        res
    }
}

/// A `text/plain` answer with this status: every refusal of the crate that is not JSON-RPC.
pub(crate) fn text(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenger(scope: Option<&str>) -> Challenger {
        Challenger {
            resource_metadata: Some(
                "https://r.example/.well-known/oauth-protected-resource/mcp".into(),
            ),
            scope: scope.map(Into::into),
            retry_after_secs: 5,
        }
    }

    fn www(res: &Response<Body>) -> &str {
        res.headers()[WWW_AUTHENTICATE].to_str().unwrap()
    }

    #[test]
    fn challenges_have_the_exact_rfc_shape() {
        let c = challenger(None);
        assert_eq!(
            www(&c.respond(&Rejection::NoCredentials)),
            r#"Bearer resource_metadata="https://r.example/.well-known/oauth-protected-resource/mcp""#
        );
        let c = challenger(Some("mcp:tools mcp:read"));
        assert_eq!(
            www(&c.respond(&Rejection::NoCredentials)),
            r#"Bearer resource_metadata="https://r.example/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:read""#
        );
        let r = c.respond(&Rejection::InvalidRequest("dup"));
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            www(&r),
            r#"Bearer error="invalid_request", resource_metadata="https://r.example/.well-known/oauth-protected-resource/mcp""#
        );
        let r = c.respond(&Rejection::InvalidToken(ValidationError::new(
            ValidationErrorKind::Expired,
            "",
        )));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            www(&r),
            r#"Bearer error="invalid_token", error_description="The access token expired", resource_metadata="https://r.example/.well-known/oauth-protected-resource/mcp""#
        );
        let r = c.respond(&Rejection::InvalidToken(ValidationError::new(
            ValidationErrorKind::KeysUnavailable,
            "",
        )));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(r.headers()[RETRY_AFTER], "5");
    }

    #[test]
    fn descriptions_are_error_chars_only() {
        assert_eq!(sanitize("a\"b\\c\u{7f}\n\u{e9}d"), "abcd");
    }
}
