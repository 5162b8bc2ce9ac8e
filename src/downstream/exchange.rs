//! Token exchange: the caller's own access token (kept on the [`ResourceOwner`], sent nowhere
//! else) is exchanged at an authorization server for a token of another audience, in the
//! shape of an [`ExchangeProfile`] (RFC 8693, Auth0 Token Vault, Entra on-behalf-of); RFC
//! 6749 / RFC 8693 errors become [`Denial`]s.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::{BrokerFuture, Denial, DownstreamToken, ExchangeProfile, TokenBroker, TokenNeed};
use crate::client_auth::ClientAuth;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::{Algorithm, ResourceOwner};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Exchanges the caller's access token for a downstream token (RFC 8693); see the module
/// docs. Build it with [`TokenExchangeBroker::builder`].
#[derive(Debug, Clone)]
pub struct TokenExchangeBroker {
    token_endpoint: String,
    /// Only tokens of this issuer are exchanged (compared without trailing `/`).
    issuer: String,
    auth: ClientAuth,
    profile: ExchangeProfile,
    http: reqwest::Client,
}

/// Builds a [`TokenExchangeBroker`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenExchangeBrokerBuilder {
    token_endpoint: String,
    issuer: Option<String>,
    auth: Option<Result<ClientAuth, ConfigError>>,
    profile: ExchangeProfile,
    timeout: Duration,
}

impl TokenExchangeBroker {
    /// A broker exchanging at `token_endpoint` (an `https` URL, or `http` on a loopback host)
    /// the tokens of one issuer, named with
    /// [`issuer`](TokenExchangeBrokerBuilder::issuer) (required: a caller's token is never
    /// sent to an authorization server other than the one that issued it). The vendor
    /// constructors below set both.
    pub fn builder(token_endpoint: impl Into<String>) -> TokenExchangeBrokerBuilder {
        TokenExchangeBrokerBuilder {
            token_endpoint: token_endpoint.into(),
            issuer: None,
            auth: None,
            profile: ExchangeProfile::Rfc8693,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Keycloak's standard token exchange (26.2+) in the realm at `realm_url` (for example
    /// `https://kc.example.com/realms/acme`): its token endpoint, RFC 8693 as written. Name the
    /// target client with [`TokenNeed::audience`].
    pub fn keycloak(realm_url: &str) -> TokenExchangeBrokerBuilder {
        Self::builder(format!(
            "{}/protocol/openid-connect/token",
            realm_url.trim_end_matches('/')
        ))
        .issuer(realm_url)
    }

    /// Okta's token exchange at the custom authorization server `issuer` (for example
    /// `https://acme.okta.com/oauth2/default`): RFC 8693; Okta requires a `scope`.
    pub fn okta(issuer: &str) -> TokenExchangeBrokerBuilder {
        Self::builder(format!("{}/v1/token", issuer.trim_end_matches('/'))).issuer(issuer)
    }

    /// Auth0 Token Vault at the tenant `domain_url` (for example `https://acme.us.auth0.com`):
    /// the user's token for the federated `connection` (a confidential client is required).
    pub fn auth0_token_vault(
        domain_url: &str,
        connection: impl Into<String>,
    ) -> TokenExchangeBrokerBuilder {
        Self::builder(format!("{}/oauth/token", domain_url.trim_end_matches('/')))
            .issuer(domain_url)
            .profile(ExchangeProfile::Auth0TokenVault {
                connection: connection.into(),
                login_hint: None,
            })
    }

    /// Microsoft Entra ID on-behalf-of at `authority` (for example
    /// `https://login.microsoftonline.com/<tenant id>`): the v2.0 token endpoint, the
    /// JWT-bearer grant, for v2.0 tokens (issuer `<authority>/v2.0`; set
    /// [`issuer`](TokenExchangeBrokerBuilder::issuer) for another); name the downstream
    /// API's scopes in the [`TokenNeed`].
    pub fn entra_on_behalf_of(authority: &str) -> TokenExchangeBrokerBuilder {
        Self::builder(format!(
            "{}/oauth2/v2.0/token",
            authority.trim_end_matches('/')
        ))
        .profile(ExchangeProfile::EntraOnBehalfOf)
    }
}

impl TokenExchangeBrokerBuilder {
    /// Authenticates with HTTP Basic (RFC 6749 §2.3.1: both parts form-urlencoded).
    pub fn client_secret_basic(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.auth = Some(Ok(ClientAuth::Basic {
            id: client_id.into(),
            secret: secret.into(),
        }));
        self
    }

    /// Authenticates with `client_id` and `client_secret` in the body.
    pub fn client_secret_post(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.auth = Some(Ok(ClientAuth::Post {
            id: client_id.into(),
            secret: secret.into(),
        }));
        self
    }

    /// Authenticates with a client assertion (RFC 7523, `private_key_jwt`) signed with the
    /// PEM private key `pem` (PKCS#8) using `algorithm`, with `kid` in its header when given.
    pub fn private_key_jwt(
        mut self,
        client_id: impl Into<String>,
        pem: &[u8],
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Self {
        self.auth = Some(ClientAuth::private_key_jwt(
            client_id.into(),
            pem,
            algorithm,
            kid.map(str::to_owned),
        ));
        self
    }

    /// The request shape (default [`ExchangeProfile::Rfc8693`]).
    pub fn profile(mut self, profile: ExchangeProfile) -> Self {
        self.profile = profile;
        self
    }

    /// The issuer whose tokens this broker exchanges (a caller from any other trusted issuer
    /// gets a [`Denial`] before anything is sent).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The whole exchange's time limit (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// # Errors
    /// A [`ConfigError`] naming `token_endpoint` (not https, nor http on a loopback host),
    /// `issuer` (not given), `client_auth` (none given, or an empty client id) or `timeout`
    /// (zero).
    pub fn build(self) -> Result<TokenExchangeBroker, ConfigError> {
        super::http::check_endpoint(&self.token_endpoint, "token_endpoint")?;
        let issuer = self
            .issuer
            .map(|i| i.trim_end_matches('/').to_owned())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    ConfigErrorKind::Missing,
                    "issuer",
                    "name the issuer whose tokens are exchanged",
                )
            })?;
        let auth = self.auth.ok_or_else(|| {
            ConfigError::new(
                ConfigErrorKind::Missing,
                "client_auth",
                "give the client's credentials",
            )
        })??;
        if auth.client_id().is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::Missing,
                "client_auth",
                "empty client id",
            ));
        }
        let http = super::http::client(self.timeout, "token_endpoint")?;
        Ok(TokenExchangeBroker {
            token_endpoint: self.token_endpoint,
            issuer,
            auth,
            profile: self.profile,
            http,
        })
    }
}

/// A successful answer (RFC 8693 §2.2.1).
#[derive(Deserialize)]
struct Issued {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
}

/// An error answer (RFC 6749 §5.2).
#[derive(Deserialize)]
struct Refusal {
    error: String,
}

impl TokenExchangeBroker {
    async fn exchange(
        &self,
        owner: &ResourceOwner,
        need: &TokenNeed,
    ) -> Result<DownstreamToken, Denial> {
        if owner.issuer().trim_end_matches('/') != self.issuer {
            return Err(Denial::forbidden(
                "the caller's token is from an issuer this broker does not exchange for",
            ));
        }
        let Some(subject) = owner.bearer_token() else {
            return Err(Denial::forbidden(
                "the caller's access token is not available for exchange",
            ));
        };
        let form = self.profile.params(subject, need);
        let answer = super::http::post_form(
            &self.http,
            &self.token_endpoint,
            &self.auth,
            form,
            "the token endpoint",
        )
        .await?;
        let (status, retry_after, bytes) = (answer.status, answer.retry_after, answer.body);
        if (200..300).contains(&status) {
            let issued: Issued = serde_json::from_slice(&bytes).map_err(|_| {
                Denial::unavailable(None, "the token endpoint's answer is not a token response")
            })?;
            if issued.access_token.is_empty() {
                return Err(Denial::unavailable(
                    None,
                    "the token endpoint issued an empty token",
                ));
            }
            let mut token = DownstreamToken::new(issued.access_token)
                .with_token_type(issued.token_type.unwrap_or_else(|| "Bearer".to_owned()));
            if let Some(secs) = issued.expires_in {
                token = token.with_expires_at(
                    SystemTime::now() + Duration::from_secs(secs.min(u64::from(u32::MAX))),
                );
            }
            let scopes = issued.scope.map_or_else(
                || need.get_scopes().to_vec(),
                |s| s.split_ascii_whitespace().map(str::to_owned).collect(),
            );
            return Ok(token.with_scopes(scopes));
        }
        let code = serde_json::from_slice::<Refusal>(&bytes)
            .map(|r| r.error)
            .ok();
        Err(denial(status, code.as_deref(), retry_after))
    }
}

/// RFC 6749 §5.2 / RFC 8693 §2.2.2 errors as denials (the server's description is not
/// passed on: it may echo the token).
pub(super) fn denial(status: u16, code: Option<&str>, retry_after: Option<Duration>) -> Denial {
    match code {
        Some("invalid_grant") => Denial::reauthorization_required(
            None,
            "the authorization server no longer accepts the user's grant (invalid_grant)",
        ),
        Some(c @ ("consent_required" | "interaction_required" | "login_required")) => {
            Denial::reauthorization_required(None, format!("the user must authorize again ({c})"))
        }
        // RFC 8693 §2.2.2: the subject token is invalid or unacceptable (expired, say).
        Some("invalid_request") => Denial::reauthorization_required(
            None,
            "the authorization server did not accept the user's token (invalid_request)",
        ),
        Some(c @ ("invalid_target" | "invalid_scope" | "access_denied")) => Denial::forbidden(
            format!("the authorization server refused the exchange ({c})"),
        ),
        Some(c @ ("invalid_client" | "unauthorized_client" | "unsupported_grant_type")) => {
            Denial::unavailable(
                None,
                format!("this server's client is not allowed to exchange tokens there ({c})"),
            )
        }
        Some("temporarily_unavailable") => Denial::unavailable(
            retry_after,
            "the authorization server is temporarily unavailable",
        ),
        _ if status >= 500 || status == 429 => Denial::unavailable(
            retry_after,
            format!("the token endpoint answered HTTP {status}"),
        ),
        // A bare 403 (or an unknown error code with 400 or 403): a refusal.
        Some(_) | None if matches!(status, 400 | 403) => Denial::forbidden(format!(
            "the token endpoint refused the exchange (HTTP {status})"
        )),
        // 3xx (never followed), 401 without an error code, 404, 405…: a misconfiguration.
        _ => Denial::unavailable(
            None,
            format!("the token endpoint answered HTTP {status}: check its URL"),
        ),
    }
}

impl TokenBroker for TokenExchangeBroker {
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a> {
        Box::pin(self.exchange(owner, need))
    }
}
