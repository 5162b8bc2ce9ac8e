//! Configuration errors: everything that can be wrong is found by `build()`, never at the first
//! request.

use std::fmt;

/// What kind of configuration problem a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A required value was not given (in code or in the environment).
    Missing,
    /// The canonical URL breaks the rules (absolute, `https` or loopback `http`, no fragment).
    InvalidCanonicalUrl,
    /// An authorization-server URL, issuer or `jwks_uri` is not an acceptable URL.
    InvalidUrl,
    /// An algorithm is unknown, symmetric (`HS*`), `none`, or not supported by the crypto backend.
    InvalidAlgorithm,
    /// A scope does not follow RFC 6750 `scope-token` grammar, or may not be advertised.
    InvalidScope,
    /// An audience is empty or not a string.
    InvalidAudience,
    /// No authorization server was configured.
    NoAuthorizationServers,
    /// An environment variable holds a value that can not be used (bad JSON, unknown keys, …).
    InvalidEnvironment,
    /// A numeric or duration setting is out of range.
    InvalidValue,
    /// The HTTP client for fetching keys could not be built.
    HttpClient,
}

/// A configuration value that can not be used. The message names the field or environment
/// variable and says what is wrong.
///
/// ```
/// use protected_resource::{ConfigErrorKind, ResourceServerAuth};
///
/// let err = ResourceServerAuth::builder()
///     .canonical_url("ftp://example.com/mcp")
///     .build()
///     .unwrap_err();
/// assert_eq!(err.kind(), ConfigErrorKind::InvalidCanonicalUrl);
/// assert!(err.to_string().contains("canonical_url"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    field: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(
        kind: ConfigErrorKind,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The kind of problem.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The configuration field or environment variable at fault, for example `canonical_url`,
    /// `authorization_servers[1].jwks_uri` or `MCP_SERVER_AUTH_AUTHORIZATION_SERVERS`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong, without the field name.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the field with the place it came from (an environment variable or a list index).
    pub(crate) fn within(mut self, outer: &str) -> Self {
        self.field = if self.field.is_empty() {
            outer.to_owned()
        } else if self.field.starts_with('[') {
            format!("{outer}{}", self.field)
        } else {
            format!("{outer}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration `{}`: {}",
            self.field, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Shortens and escapes a user-supplied value for an error message.
pub(crate) fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(200).flat_map(char::escape_debug).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}
