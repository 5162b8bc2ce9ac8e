//! The crate's two error types: [`ConfigError`] (everything `build()` can refuse) and
//! [`ValidationError`] (why a token was refused), each with a `kind()`.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

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
    /// An MCP policy rule can not be used (a malformed resource URI template).
    InvalidPolicy,
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
    #[must_use]
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The configuration field or environment variable at fault, for example `canonical_url`,
    /// `authorization_servers[1].jwks_uri` or `MCP_SERVER_AUTH_AUTHORIZATION_SERVERS`.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong, without the field name.
    #[must_use]
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

/// Why a token was refused. The kind is public; the detail is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationErrorKind {
    /// Not a compact JWS with a JSON header and JSON object claims (or a claim name repeats).
    Malformed,
    /// Longer than the configured cap.
    TooLarge,
    /// `alg` is `none`, symmetric, unknown, or not allowed for the issuer.
    AlgorithmNotAllowed,
    /// The header has a `crit` parameter naming extensions this crate does not implement.
    CriticalHeader,
    /// `typ` is not `at+jwt` while the entry requires it, or names another kind of token
    /// (`dpop+jwt`, `logout+jwt`, …: anything but `at+jwt`, `application/at+jwt`, `JWT`,
    /// `application/jwt`).
    InvalidType,
    /// The token carries ID-token-only claims (`nonce`, `at_hash`, `c_hash`) and the entry
    /// refuses them ([`AccessTokenValidationOptions::reject_id_token_claims`](crate::AccessTokenValidationOptions::reject_id_token_claims)).
    IdToken,
    /// The token is sender-constrained (`cnf` claim: DPoP or mutual-TLS bound, RFC 9449
    /// §7.2, RFC 8705) and can not be used as a bearer token.
    SenderConstrained,
    /// `iss` is missing or not a trusted issuer.
    UnknownIssuer,
    /// No key of the issuer has the token's `kid` (checked again after one refetch).
    UnknownKey,
    /// The key named by `kid` does not fit the token's `alg`.
    KeyAlgorithmMismatch,
    /// The token has no `kid` and several keys fit.
    AmbiguousKey,
    /// The signature does not verify.
    InvalidSignature,
    /// `exp` is in the past.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInFuture,
    /// A required claim is missing (`exp`, `aud`).
    MissingClaim,
    /// A claim has the wrong type (for example a string `exp`).
    InvalidClaim,
    /// `aud` does not contain an expected audience.
    InvalidAudience,
    /// `sub` is missing or empty.
    MissingSubject,
    /// The issuer's keys could not be obtained and no cached key fits (answered 503).
    KeysUnavailable,
    /// The token's client (`client_id`, `azp`, `cid` or `appid`) is not one the entry allows
    /// ([`AccessTokenValidationOptions::allowed_clients`](crate::AccessTokenValidationOptions::allowed_clients)).
    /// Answered 403: the token is valid, but not for this resource.
    ClientNotAllowed,
    /// A claim value the entry requires is missing
    /// ([`AccessTokenValidationOptions::required_claims`](crate::AccessTokenValidationOptions::required_claims)).
    /// Answered 403, like [`ClientNotAllowed`](Self::ClientNotAllowed), with the same text.
    ClaimsNotAllowed,
    /// The token was issued longer ago than the entry accepts
    /// ([`AccessTokenValidationOptions::max_token_age`](crate::AccessTokenValidationOptions::max_token_age)),
    /// or has no `iat` while a maximum age is set.
    TooOld,
    /// Token introspection (RFC 7662) answered that the token is not active (unknown,
    /// expired, revoked), or that it is not a bearer access token.
    Inactive,
    /// The introspection endpoint could not be reached or gave no usable answer (answered
    /// 503, like [`KeysUnavailable`](Self::KeysUnavailable)).
    IntrospectionUnavailable,
    /// The token is not DPoP-bound and its entry requires DPoP
    /// ([`DpopPolicy::Required`](crate::DpopPolicy::Required)).
    DpopRequired,
    /// The request uses the `DPoP` scheme, but the token is not bound to a key (no
    /// `cnf.jkt`), or its entry has DPoP [off](crate::DpopPolicy::Off).
    NotDpopBound,
    /// The DPoP proof's key is not the one the token is bound to (`cnf.jkt`, RFC 9449 §7.1).
    /// Answered `invalid_dpop_proof`.
    DpopKeyMismatch,
    /// The DPoP proof is signed with an algorithm the token's entry does not allow for proofs
    /// ([`AuthorizationServerEntry::dpop_algorithms`](crate::AuthorizationServerEntry::dpop_algorithms)).
    /// Answered `invalid_dpop_proof`.
    DpopAlgorithmNotAllowed,
}

impl ValidationErrorKind {
    /// The fixed, token-free text sent as `error_description`.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "The access token is malformed",
            Self::TooLarge => "The access token is too large",
            Self::AlgorithmNotAllowed => "The access token signing algorithm is not allowed",
            Self::CriticalHeader => "The access token has unsupported critical header parameters",
            Self::InvalidType => "The access token type is not at+jwt",
            Self::IdToken => "The token is an ID token, not an access token",
            Self::SenderConstrained => {
                "The access token is sender-constrained and can not be used as a bearer token"
            }
            Self::UnknownIssuer => "The access token issuer is not trusted",
            Self::UnknownKey => "The access token signing key is unknown",
            Self::KeyAlgorithmMismatch => "The access token algorithm does not match its key",
            Self::AmbiguousKey => "The access token has no key id and several keys match",
            Self::InvalidSignature => "The access token signature is invalid",
            Self::Expired => "The access token expired",
            Self::NotYetValid => "The access token is not yet valid",
            Self::IssuedInFuture => "The access token was issued in the future",
            Self::MissingClaim => "The access token lacks a required claim",
            Self::InvalidClaim => "The access token has a claim of the wrong type",
            Self::InvalidAudience => "The access token audience does not include this resource",
            Self::MissingSubject => "The access token has no subject",
            Self::KeysUnavailable => "The authorization server keys are unavailable",
            Self::ClientNotAllowed | Self::ClaimsNotAllowed => {
                "The access token is not allowed for this resource"
            }
            Self::TooOld => "The access token is too old",
            Self::Inactive => "The access token is not active",
            Self::IntrospectionUnavailable => "The authorization server can not check the token",
            Self::DpopRequired => "This resource requires a DPoP-bound access token",
            Self::NotDpopBound => "The access token is not bound to a DPoP key",
            Self::DpopKeyMismatch => {
                "The DPoP proof key is not the key the access token is bound to"
            }
            Self::DpopAlgorithmNotAllowed => "The DPoP proof signing algorithm is not allowed",
        }
    }

    /// Whether the refusal is about the DPoP proof rather than the token: answered with the
    /// `DPoP` challenge's `error="invalid_dpop_proof"` (RFC 9449 §7.1).
    #[must_use]
    pub fn is_dpop_proof(self) -> bool {
        matches!(self, Self::DpopKeyMismatch | Self::DpopAlgorithmNotAllowed)
    }

    /// Whether the token could not be judged at all (the authorization server's keys or its
    /// introspection endpoint are out of reach): answered 503 with `Retry-After`.
    #[must_use]
    pub fn is_unavailable(self) -> bool {
        matches!(self, Self::KeysUnavailable | Self::IntrospectionUnavailable)
    }
}

/// A refused token: its [`kind`](Self::kind), and a detail for logs (never token content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    kind: ValidationErrorKind,
    detail: &'static str,
    retry_after: Option<Duration>,
}

impl ValidationError {
    pub(crate) const fn new(kind: ValidationErrorKind, detail: &'static str) -> Self {
        Self {
            kind,
            detail,
            retry_after: None,
        }
    }

    pub(crate) const fn of(kind: ValidationErrorKind) -> Self {
        Self::new(kind, "")
    }

    /// The issuer's keys can not be obtained; they are fetched again in `retry_after`.
    pub(crate) const fn keys_unavailable(retry_after: Duration) -> Self {
        Self {
            kind: ValidationErrorKind::KeysUnavailable,
            detail: "key set unavailable",
            retry_after: Some(retry_after),
        }
    }

    /// Introspection can not answer now; it is tried again in `retry_after`.
    pub(crate) const fn introspection_unavailable(retry_after: Duration) -> Self {
        Self {
            kind: ValidationErrorKind::IntrospectionUnavailable,
            detail: "introspection unavailable",
            retry_after: Some(retry_after),
        }
    }

    /// For [`KeysUnavailable`](ValidationErrorKind::KeysUnavailable) and
    /// [`IntrospectionUnavailable`](ValidationErrorKind::IntrospectionUnavailable): how long
    /// until the server is asked again (sent as `Retry-After`, at least one second).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The reason class.
    #[must_use]
    pub fn kind(&self) -> ValidationErrorKind {
        self.kind
    }

    /// The HTTP status this refusal is answered with: `503 Service Unavailable` when the
    /// issuer's keys or introspection endpoint are out of reach (the token may well be fine: retry after
    /// [`retry_after`](Self::retry_after)), else `401 Unauthorized`. For validation outside
    /// HTTP (a WebSocket handshake, a queue), this is the retry-or-reject decision.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let idp = protected_resource::testkit::MockAuthorizationServer::start().await?;
    /// # let auth = protected_resource::ResourceServerAuth::builder()
    /// #     .canonical_url("http://127.0.0.1:8000/mcp")
    /// #     .authorization_server(idp.entry())
    /// #     .build()?;
    /// let err = auth.validate("not-a-jwt").await.unwrap_err();
    /// assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn status(&self) -> StatusCode {
        if self.kind.is_unavailable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        }
    }

    /// Extra detail for logs, such as the claim name (may be empty).
    #[must_use]
    pub fn detail(&self) -> &'static str {
        self.detail
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.description())?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}
