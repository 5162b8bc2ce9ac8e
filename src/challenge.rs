//! The front door's refusals (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1, MCP): `Bearer` and
//! `DPoP` challenges, the 503 for unobtainable keys.
//!
//! A 401 carries two `WWW-Authenticate` fields when DPoP is on: the challenge of the scheme
//! the request used first (with the `error`), the other one after it (`Bearer
//! resource_metadata="…"`, or `DPoP algs="…", resource_metadata="…"`). A client reading one
//! field sees the one about its own request. The table of answers is on
//! [`ProtectedResourceLayer`](crate::ProtectedResourceLayer); `error_description` is a fixed
//! text per reason and never echoes any part of the token.

use axum::body::Body;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::dpop::{DpopErrorKind, Nonces};
use crate::error::{ValidationError, ValidationErrorKind};

/// Why the layer answers instead of the inner service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    NoCredentials,
    InvalidRequest(&'static str),
    /// The token of a `Bearer` request.
    InvalidToken(ValidationError),
    /// The token of a `DPoP` request (or its binding to the proof).
    DpopToken(ValidationError),
    /// The proof of a `DPoP` request.
    DpopProof(DpopErrorKind),
    /// The DPoP replay check is full or out of reach (the reason's metric label): a proof it
    /// can not remember is not accepted (503).
    ReplayUnavailable(&'static str),
}

impl Rejection {
    /// The refusal of a token sent with the `DPoP` scheme (`dpop`) or as a bearer token.
    pub(crate) fn token(error: ValidationError, dpop: bool) -> Self {
        if dpop {
            Self::DpopToken(error)
        } else {
            Self::InvalidToken(error)
        }
    }
}

/// Keeps only RFC 6750 error-chars (%x20-21 / %x23-5B / %x5D-7E) for `error_description`.
pub(crate) fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        .collect()
}

/// A challenge of `scheme` with these auth-params, comma-separated and quoted, values
/// sanitized.
pub(crate) fn challenge(scheme: &'static str, params: &[(&str, &str)]) -> HeaderValue {
    let mut out = String::from(scheme);
    for (i, (name, value)) in params.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(&sanitize(value));
        out.push('"');
    }
    HeaderValue::from_str(&out).unwrap_or(HeaderValue::from_static(scheme))
}

/// What the `DPoP` challenge says (present when some entry allows DPoP).
#[derive(Debug, Clone)]
pub(crate) struct DpopChallenge {
    /// `algs="…"`: the proof algorithms accepted, space-separated.
    pub(crate) algs: String,
    /// Makes the `DPoP-Nonce` of `use_dpop_nonce` answers, when nonces are on.
    pub(crate) nonces: Option<Nonces>,
}

/// Builds the challenge for one resource.
#[derive(Debug, Clone)]
pub(crate) struct Challenger {
    /// `resource_metadata="…"`, or `None` for a validator without metadata.
    pub(crate) resource_metadata: Option<String>,
    /// Default scopes for the 401 without credentials.
    pub(crate) scope: Option<String>,
    pub(crate) retry_after_secs: u64,
    /// `None` when every entry has DPoP off: no `DPoP` challenge.
    pub(crate) dpop: Option<DpopChallenge>,
}

impl Challenger {
    /// `Bearer` with `before` params, then `resource_metadata` (when there is metadata),
    /// then `after` params.
    fn header(&self, before: &[(&str, &str)], after: &[(&str, &str)]) -> HeaderValue {
        self.header_of("Bearer", before, after)
    }

    /// [`header`](Self::header) for `scheme`.
    fn header_of(
        &self,
        scheme: &'static str,
        before: &[(&str, &str)],
        after: &[(&str, &str)],
    ) -> HeaderValue {
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
        challenge(scheme, &params)
    }

    /// The `DPoP` challenge with `before` params (an error), then `algs` and
    /// `resource_metadata`; `None` when DPoP is off.
    fn dpop_header(&self, before: &[(&str, &str)]) -> Option<HeaderValue> {
        let dpop = self.dpop.as_ref()?;
        let params: Vec<(&str, &str)> = before
            .iter()
            .copied()
            .chain([("algs", dpop.algs.as_str())])
            .collect();
        Some(self.header_of("DPoP", &params, &[]))
    }

    /// The 401 of a `DPoP` request: the `DPoP` challenge with `error` first, then `Bearer`.
    fn dpop_refusal(&self, error: &str, description: &str) -> Response<Body> {
        let mut res = text(StatusCode::UNAUTHORIZED, format!("{error}: {description}"));
        let headers = res.headers_mut();
        if let Some(dpop) =
            self.dpop_header(&[("error", error), ("error_description", description)])
        {
            headers.append(WWW_AUTHENTICATE, dpop);
        }
        headers.append(WWW_AUTHENTICATE, self.header(&[], &[]));
        if error == "use_dpop_nonce"
            && let Some(nonce) = self
                .dpop
                .as_ref()
                .and_then(|d| d.nonces.as_ref())
                .map(Nonces::issue)
        {
            headers.insert(crate::dpop::DPOP_NONCE, nonce);
        }
        res
    }

    pub(crate) fn respond(&self, rejection: &Rejection) -> Response<Body> {
        let dpop_request = matches!(rejection, Rejection::DpopToken(_));
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
            Rejection::ReplayUnavailable(_) => {
                let mut res = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable: the DPoP proof can not be checked for replay now; retry later",
                );
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(self.retry_after_secs.max(1)));
                return res;
            }
            Rejection::DpopProof(kind) => {
                let error = if *kind == DpopErrorKind::NonceRequired {
                    "use_dpop_nonce"
                } else {
                    "invalid_dpop_proof"
                };
                return self.dpop_refusal(error, kind.description());
            }
            Rejection::InvalidToken(e) | Rejection::DpopToken(e) if e.kind().is_unavailable() => {
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
            Rejection::InvalidToken(e) | Rejection::DpopToken(e)
                if matches!(
                    e.kind(),
                    ValidationErrorKind::ClientNotAllowed | ValidationErrorKind::ClaimsNotAllowed
                ) =>
            {
                // RFC 6750 §3.1: a valid token without the privileges this resource needs,
                // in the scheme the request used (RFC 9449 §7.1).
                let description = e.kind().description();
                let params = [
                    ("error", "insufficient_scope"),
                    ("error_description", description),
                ];
                let header = match self.dpop_header(&params) {
                    Some(dpop) if dpop_request => dpop,
                    _ => self.header(&params, &[]),
                };
                (
                    StatusCode::FORBIDDEN,
                    header,
                    format!("insufficient_scope: {description}"),
                )
            }
            Rejection::DpopToken(e) => {
                let error = if e.kind().is_dpop_proof() {
                    "invalid_dpop_proof"
                } else {
                    "invalid_token"
                };
                return self.dpop_refusal(error, e.kind().description());
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
        // Beside the `Bearer` challenge of a 401: the `DPoP` one, without error.
        if status == StatusCode::UNAUTHORIZED
            && let Some(dpop) = self.dpop_header(&[])
        {
            res.headers_mut().append(WWW_AUTHENTICATE, dpop);
        }
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
            dpop: None,
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
