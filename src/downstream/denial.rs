//! Why a broker gave no token: typed, so that a tool (or the MCP glue) can tell the user the
//! right thing: go and authorize, authorize again, you may not, or try later.

use std::fmt;
use std::time::Duration;

/// The kind of a [`Denial`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenialKind {
    /// The user has not authorized this access yet; [`Denial::url`] is where to do it when
    /// the broker knows one.
    AuthorizationRequired,
    /// An earlier authorization no longer works (revoked, expired, consent withdrawn): the
    /// user must authorize again.
    ReauthorizationRequired,
    /// The user (or this server) may not have this token: asking again will not help.
    Forbidden,
    /// The token could not be obtained now (the authorization server failed, timed out or is
    /// misconfigured); [`Denial::retry_after`] when it said when to try again.
    Unavailable,
}

/// A broker's refusal to hand out a token, with what the user can do about it.
///
/// ```
/// use protected_resource::downstream::{Denial, DenialKind};
///
/// let d = Denial::authorization_required("https://mcp.example.com/connect/github?h=…");
/// assert_eq!(d.kind(), DenialKind::AuthorizationRequired);
/// assert!(d.url().is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    kind: DenialKind,
    message: String,
    url: Option<String>,
    retry_after: Option<Duration>,
}

impl Denial {
    /// The user must authorize at `url` first.
    pub fn authorization_required(url: impl Into<String>) -> Self {
        Self {
            kind: DenialKind::AuthorizationRequired,
            message: "authorization required".to_owned(),
            url: Some(url.into()),
            retry_after: None,
        }
    }

    /// The user must authorize again (at `url` when the broker knows where).
    pub fn reauthorization_required(url: Option<String>, message: impl Into<String>) -> Self {
        Self {
            kind: DenialKind::ReauthorizationRequired,
            message: message.into(),
            url,
            retry_after: None,
        }
    }

    /// Not allowed; `message` says why (never a secret).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            kind: DenialKind::Forbidden,
            message: message.into(),
            url: None,
            retry_after: None,
        }
    }

    /// Not obtainable now; try again after `retry_after` when given.
    pub fn unavailable(retry_after: Option<Duration>, message: impl Into<String>) -> Self {
        Self {
            kind: DenialKind::Unavailable,
            message: message.into(),
            url: None,
            retry_after,
        }
    }

    /// The same denial saying `message` (what to tell the user; never a secret).
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The kind of denial.
    #[must_use]
    pub fn kind(&self) -> DenialKind {
        self.kind
    }

    /// What happened, for the user or a log (never a token).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the user goes to authorize, when known.
    #[must_use]
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// When to try again, when the server said.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DenialKind::AuthorizationRequired => "authorization required",
            DenialKind::ReauthorizationRequired => "authorization required again",
            DenialKind::Forbidden => "forbidden",
            DenialKind::Unavailable => "temporarily unavailable",
        };
        // The URL is not printed: a per-user authorization link in a log could be completed
        // by whoever reads it (account injection). `url()` gives it to the user.
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for Denial {}
