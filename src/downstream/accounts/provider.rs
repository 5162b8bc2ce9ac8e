//! [`OAuthProvider`]: a third-party API's OAuth 2 authorization server, of which the MCP
//! server is a client (authorization code with PKCE, refresh, RFC 7009 revocation).

use std::time::Duration;

use serde::Deserialize;

use super::super::http::{self, FormAnswer};
use super::Denial;
use crate::client_auth::ClientAuth;
use crate::error::{ConfigError, ConfigErrorKind};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A provider (GitHub, Google, Slack, your own…) whose users connect their accounts: its
/// authorization and token endpoints and this server's client there. Build it with
/// [`OAuthProvider::builder`] or a vendor constructor.
///
/// ```
/// use protected_resource::downstream::OAuthProvider;
///
/// let github = OAuthProvider::github("Iv1.client-id", "client-secret").build()?;
/// assert_eq!(github.name(), "github");
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct OAuthProvider {
    pub(super) name: String,
    pub(super) authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    auth: ClientAuth,
    pub(super) authorize_params: Vec<(String, String)>,
    /// Each call's time limit.
    pub(super) timeout: Duration,
    http: reqwest::Client,
}

/// Builds an [`OAuthProvider`].
#[derive(Debug, Clone)]
#[must_use]
pub struct OAuthProviderBuilder {
    name: String,
    authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    auth: Option<ClientAuth>,
    authorize_params: Vec<(String, String)>,
    timeout: Duration,
}

impl OAuthProvider {
    /// A provider called `name` (the [`TokenNeed`](super::TokenNeed) provider) with these
    /// endpoints (`https`, or `http` on a loopback host).
    pub fn builder(
        name: impl Into<String>,
        authorization_endpoint: impl Into<String>,
        token_endpoint: impl Into<String>,
    ) -> OAuthProviderBuilder {
        OAuthProviderBuilder {
            name: name.into(),
            authorization_endpoint: authorization_endpoint.into(),
            token_endpoint: token_endpoint.into(),
            revocation_endpoint: None,
            auth: None,
            authorize_params: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// GitHub (an OAuth app or a GitHub app's user tokens), named `github`: the client
    /// secret in the body, as GitHub documents. GitHub has no RFC 7009 revocation endpoint:
    /// disconnecting deletes the stored tokens only.
    pub fn github(client_id: impl Into<String>, secret: impl Into<String>) -> OAuthProviderBuilder {
        Self::builder(
            "github",
            "https://github.com/login/oauth/authorize",
            "https://github.com/login/oauth/access_token",
        )
        .client_secret_post(client_id, secret)
    }

    /// Google, named `google`: offline access (a refresh token) and the consent prompt, so
    /// that a reconnection gets a refresh token again; RFC 7009 revocation.
    pub fn google(client_id: impl Into<String>, secret: impl Into<String>) -> OAuthProviderBuilder {
        Self::builder(
            "google",
            "https://accounts.google.com/o/oauth2/v2/auth",
            "https://oauth2.googleapis.com/token",
        )
        .client_secret_post(client_id, secret)
        .revocation_endpoint("https://oauth2.googleapis.com/revoke")
        .authorize_param("access_type", "offline")
        .authorize_param("prompt", "consent")
    }

    /// The provider's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This server's client id at the provider.
    #[must_use]
    pub fn client_id(&self) -> &str {
        self.auth.client_id()
    }

    /// Trades an authorization code (with its PKCE verifier) for tokens; `resource` (RFC
    /// 8707) when the authorization request named one.
    pub(super) async fn redeem(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        resource: Option<&str>,
    ) -> Result<Issued, Denial> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("code_verifier", verifier.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
        ];
        if let Some(r) = resource {
            form.push(("resource", r.to_owned()));
        }
        self.call(&self.token_endpoint, form)
            .await
            .map_err(|(_, d)| d)
    }

    /// Refreshes; [`Refresh::InvalidGrant`] only when the provider says the refresh token
    /// is no longer good (any other failure leaves the account alone).
    pub(super) async fn refresh(&self, refresh_token: &str) -> Result<Issued, Refresh> {
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.to_owned()),
        ];
        self.call(&self.token_endpoint, form)
            .await
            .map_err(|(code, denial)| {
                if code.as_deref() == Some("invalid_grant") {
                    Refresh::InvalidGrant
                } else if denial.kind() == super::DenialKind::ReauthorizationRequired {
                    // consent_required and the like: not the grant's end; try later.
                    Refresh::Failed(Denial::unavailable(None, denial.message().to_owned()))
                } else {
                    Refresh::Failed(denial)
                }
            })
    }

    /// RFC 7009: revokes `token` (`hint` `refresh_token` or `access_token`). `Ok(false)`
    /// when the provider has no revocation endpoint.
    pub(super) async fn revoke(&self, token: &str, hint: &str) -> Result<bool, Denial> {
        let Some(endpoint) = &self.revocation_endpoint else {
            return Ok(false);
        };
        let form = vec![
            ("token", token.to_owned()),
            ("token_type_hint", hint.to_owned()),
        ];
        let answer = http::post_form(
            &self.http,
            endpoint,
            &self.auth,
            form,
            "the revocation endpoint",
        )
        .await?;
        if (200..300).contains(&answer.status) {
            Ok(true)
        } else {
            Err(Denial::unavailable(
                answer.retry_after,
                format!("the revocation endpoint answered HTTP {}", answer.status),
            ))
        }
    }

    /// The token endpoint's tokens, or its error code (when it gave one) and the denial.
    async fn call(
        &self,
        endpoint: &str,
        form: Vec<(&'static str, String)>,
    ) -> Result<Issued, (Option<String>, Denial)> {
        let FormAnswer {
            status,
            retry_after,
            body,
        } = http::post_form(&self.http, endpoint, &self.auth, form, "the provider")
            .await
            .map_err(|d| (None, d))?;
        let answer: Answer = serde_json::from_slice(&body).unwrap_or_default();
        // GitHub answers errors with 200 and an `error` member.
        if let Some(code) = answer.error {
            let status = if (200..300).contains(&status) {
                400
            } else {
                status
            };
            let denial = super::super::exchange::denial(status, Some(&code), retry_after);
            return Err((Some(code), denial));
        }
        if !(200..300).contains(&status) {
            return Err((
                None,
                super::super::exchange::denial(status, None, retry_after),
            ));
        }
        match answer.access_token {
            Some(access_token) if !access_token.is_empty() => Ok(Issued {
                access_token,
                token_type: answer.token_type,
                expires_in: answer.expires_in.and_then(|v| match v {
                    // Some servers send the number as a string.
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }),
                refresh_token: answer.refresh_token.filter(|r| !r.is_empty()),
                scope: answer.scope,
            }),
            _ => Err((
                None,
                Denial::unavailable(None, "the provider's answer is not a token response"),
            )),
        }
    }
}

/// Tokens the provider issued.
pub(super) struct Issued {
    pub(super) access_token: String,
    pub(super) token_type: Option<String>,
    pub(super) expires_in: Option<u64>,
    pub(super) refresh_token: Option<String>,
    pub(super) scope: Option<String>,
}

#[derive(Deserialize, Default)]
struct Answer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Why a refresh gave no tokens.
pub(super) enum Refresh {
    /// The provider no longer accepts the refresh token (`invalid_grant`).
    InvalidGrant,
    /// Anything else: the account stays.
    Failed(Denial),
}

impl OAuthProviderBuilder {
    /// Authenticates with HTTP Basic.
    pub fn client_secret_basic(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.auth = Some(ClientAuth::Basic {
            id: client_id.into(),
            secret: secret.into(),
        });
        self
    }

    /// Authenticates with `client_id` and `client_secret` in the body.
    pub fn client_secret_post(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.auth = Some(ClientAuth::Post {
            id: client_id.into(),
            secret: secret.into(),
        });
        self
    }

    /// The RFC 7009 revocation endpoint, called when a user disconnects.
    pub fn revocation_endpoint(mut self, url: impl Into<String>) -> Self {
        self.revocation_endpoint = Some(url.into());
        self
    }

    /// A further parameter of the authorization request (`access_type=offline`, …); the
    /// flow's own parameters can not be replaced.
    pub fn authorize_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.authorize_params.push((name.into(), value.into()));
        self
    }

    /// Time limit of each call to the provider (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// # Errors
    /// A [`ConfigError`] naming `provider` (an empty name or one with characters other than
    /// letters, digits, `-`, `_` and `.`), `authorization_endpoint`, `token_endpoint`,
    /// `revocation_endpoint` (not https, nor http on a loopback host), `client_auth` (none)
    /// or `authorize_param` (one the flow sets itself).
    pub fn build(self) -> Result<OAuthProvider, ConfigError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "provider",
                "1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        http::check_endpoint(&self.authorization_endpoint, "authorization_endpoint")?;
        http::check_endpoint(&self.token_endpoint, "token_endpoint")?;
        if let Some(r) = &self.revocation_endpoint {
            http::check_endpoint(r, "revocation_endpoint")?;
        }
        const RESERVED: [&str; 8] = [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
            "resource",
        ];
        if self
            .authorize_params
            .iter()
            .any(|(n, _)| RESERVED.contains(&n.as_str()))
        {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "authorize_param",
                "the flow sets this parameter itself",
            ));
        }
        let auth = self.auth.ok_or_else(|| {
            ConfigError::new(
                ConfigErrorKind::Missing,
                "client_auth",
                "give this server's client credentials at the provider",
            )
        })?;
        if auth.client_id().is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::Missing,
                "client_auth",
                "empty client id",
            ));
        }
        Ok(OAuthProvider {
            name: self.name,
            authorization_endpoint: self.authorization_endpoint,
            token_endpoint: self.token_endpoint,
            revocation_endpoint: self.revocation_endpoint,
            auth,
            authorize_params: self.authorize_params,
            timeout: self.timeout,
            http: http::client(self.timeout, "token_endpoint")?,
        })
    }
}
