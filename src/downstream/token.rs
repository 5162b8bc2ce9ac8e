//! What a broker hands a tool: a downstream access token for one provider, its secret kept
//! out of `Debug`.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// An access token for a third-party API, obtained for one user. Cheap to clone; `Debug`
/// never shows the secret.
///
/// ```
/// use protected_resource::downstream::DownstreamToken;
///
/// let token = DownstreamToken::new("s3cret").with_scopes(["repo"]);
/// assert_eq!(token.secret(), "s3cret");
/// assert!(!format!("{token:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct DownstreamToken {
    secret: Arc<str>,
    token_type: String,
    expires_at: Option<SystemTime>,
    scopes: Vec<String>,
}

impl DownstreamToken {
    /// A bearer token with this secret, no known expiry and no scopes.
    pub fn new(secret: impl Into<Arc<str>>) -> Self {
        Self {
            secret: secret.into(),
            token_type: "Bearer".to_owned(),
            expires_at: None,
            scopes: Vec::new(),
        }
    }

    /// The token type the issuer named (`Bearer` unless it said otherwise).
    #[must_use]
    pub fn with_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.token_type = token_type.into();
        self
    }

    /// When the token expires.
    #[must_use]
    pub fn with_expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The scopes the token carries.
    #[must_use]
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The secret, for the `Authorization` header of a request to the provider, and to
    /// nobody else.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The token type (`Bearer`, `N_A`, …).
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When it expires, when known.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The scopes it carries (as the issuer reported them).
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

impl fmt::Debug for DownstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownstreamToken")
            .field("secret", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}
