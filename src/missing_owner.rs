//! [`MissingResourceOwner`]: the answer when a route asks for the owner but the front door
//! is not in front of it.

use std::fmt;

use axum::body::Body;
use http::{Response, StatusCode};

/// Rejection of the [`ResourceOwner`](crate::ResourceOwner) extractor when no owner is in the
/// request: the route is not behind
/// [`ProtectedResourceLayer`](crate::ProtectedResourceLayer). This is a server bug, so the
/// answer is 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingResourceOwner;

impl MissingResourceOwner {
    /// 500 Internal Server Error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// What was forgotten.
    #[must_use]
    pub fn body_text(&self) -> &'static str {
        "Missing request extension: ResourceOwner. Is ProtectedResourceLayer applied to this route?"
    }
}

impl fmt::Display for MissingResourceOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.body_text())
    }
}

impl std::error::Error for MissingResourceOwner {}

impl MissingResourceOwner {
    /// The 500 answer (axum's `IntoResponse` calls this).
    pub(crate) fn response(self) -> Response<Body> {
        tracing::error!("{}", self.body_text());
        crate::challenge::text(self.status(), self.body_text())
    }
}
