//! RFC 8693 token exchange: the caller's own access token (kept on the [`ResourceOwner`],
//! sent nowhere else) is exchanged at an authorization server for a token of another
//! audience; RFC 6749 / RFC 8693 errors become [`Denial`]s.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER};
use serde::Deserialize;

use super::{BrokerFuture, Denial, DownstreamToken, TokenBroker, TokenNeed};
use crate::ResourceOwner;
use crate::error::{ConfigError, ConfigErrorKind};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Largest token-endpoint answer read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the broker authenticates to the token endpoint. `Debug` never shows a secret.
#[derive(Clone)]
enum ClientAuth {
    Basic { id: String, secret: String },
    Post { id: String, secret: String },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { id, .. } => write!(f, "client_secret_basic({id}, [redacted])"),
            Self::Post { id, .. } => write!(f, "client_secret_post({id}, [redacted])"),
        }
    }
}

/// Exchanges the caller's access token for a downstream token (RFC 8693); see the module
/// docs. Build it with [`TokenExchangeBroker::builder`].
#[derive(Debug, Clone)]
pub struct TokenExchangeBroker {
    token_endpoint: String,
    auth: ClientAuth,
    http: reqwest::Client,
}

/// Builds a [`TokenExchangeBroker`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenExchangeBrokerBuilder {
    token_endpoint: String,
    auth: Option<ClientAuth>,
    timeout: Duration,
}

impl TokenExchangeBroker {
    /// A broker exchanging at `token_endpoint` (an `https` URL, or `http` on a loopback host).
    pub fn builder(token_endpoint: impl Into<String>) -> TokenExchangeBrokerBuilder {
        TokenExchangeBrokerBuilder {
            token_endpoint: token_endpoint.into(),
            auth: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl TokenExchangeBrokerBuilder {
    /// Authenticates with HTTP Basic (RFC 6749 §2.3.1: both parts form-urlencoded).
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

    /// The whole exchange's time limit (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// # Errors
    /// A [`ConfigError`] naming `token_endpoint` (not https, nor http on a loopback host),
    /// `client_auth` (none given, or an empty client id) or `timeout` (zero).
    pub fn build(self) -> Result<TokenExchangeBroker, ConfigError> {
        let url = reqwest::Url::parse(&self.token_endpoint).map_err(|e| {
            ConfigError::new(ConfigErrorKind::InvalidUrl, "token_endpoint", e.to_string())
        })?;
        let ok = match url.scheme() {
            "https" => url.host().is_some(),
            "http" => crate::config::check::is_loopback_host(&url),
            _ => false,
        };
        if !ok || url.fragment().is_some() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidUrl,
                "token_endpoint",
                "must be https (http only on a loopback host), without fragment",
            ));
        }
        let auth = self.auth.ok_or_else(|| {
            ConfigError::new(
                ConfigErrorKind::Missing,
                "client_auth",
                "give the client's credentials",
            )
        })?;
        let (ClientAuth::Basic { id, .. } | ClientAuth::Post { id, .. }) = &auth;
        if id.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::Missing,
                "client_auth",
                "empty client id",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "timeout",
                "must be greater than zero",
            ));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .build()
            .map_err(|e| {
                ConfigError::new(ConfigErrorKind::HttpClient, "token_endpoint", e.to_string())
            })?;
        Ok(TokenExchangeBroker {
            token_endpoint: self.token_endpoint,
            auth,
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
        let Some(subject) = owner.bearer_token() else {
            return Err(Denial::forbidden(
                "the caller's access token is not available for exchange",
            ));
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
        ];
        if let Some(a) = need.get_audience() {
            form.push(("audience", a));
        }
        if let Some(r) = need.get_resource() {
            form.push(("resource", r));
        }
        let scope = need.get_scopes().join(" ");
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let mut request = self
            .http
            .post(&self.token_endpoint)
            .header(ACCEPT, "application/json");
        match &self.auth {
            ClientAuth::Basic { id, secret } => {
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let credentials = STANDARD.encode(format!("{}:{}", enc(id), enc(secret)));
                request = request.header(AUTHORIZATION, format!("Basic {credentials}"));
            }
            ClientAuth::Post { id, secret } => {
                form.push(("client_id", id));
                form.push(("client_secret", secret));
            }
        }
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        let response = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| Denial::unavailable(None, transport(&e)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = read_capped(response).await?;
        if status.is_success() {
            let issued: Issued = serde_json::from_slice(&bytes).map_err(|_| {
                Denial::unavailable(None, "the token endpoint's answer is not a token response")
            })?;
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
        Err(denial(status.as_u16(), code.as_deref(), retry_after))
    }
}

/// RFC 6749 §5.2 / RFC 8693 §2.2.2 errors as denials (the server's description is not
/// passed on: it may echo the token).
fn denial(status: u16, code: Option<&str>, retry_after: Option<Duration>) -> Denial {
    match code {
        Some("invalid_grant") => Denial::reauthorization_required(
            None,
            "the authorization server no longer accepts the user's grant (invalid_grant)",
        ),
        Some(c @ ("consent_required" | "interaction_required" | "login_required")) => {
            Denial::reauthorization_required(None, format!("the user must authorize again ({c})"))
        }
        Some(c @ ("invalid_target" | "invalid_scope" | "access_denied" | "invalid_request")) => {
            Denial::forbidden(format!(
                "the authorization server refused the exchange ({c})"
            ))
        }
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
        _ => Denial::forbidden(format!(
            "the token endpoint refused the exchange (HTTP {status})"
        )),
    }
}

fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the token endpoint timed out".to_owned()
    } else {
        "the token endpoint could not be reached".to_owned()
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, Denial> {
    let too_large = || Denial::unavailable(None, "the token endpoint's answer is too large");
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Denial::unavailable(None, transport(&e)))?
    {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

impl TokenBroker for TokenExchangeBroker {
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a> {
        Box::pin(self.exchange(owner, need))
    }
}
