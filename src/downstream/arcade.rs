//! Arcade as a token source: the platform the model (`arcade_mcp_server`) relies on manages
//! tool authorization itself. [`ArcadeBroker`] asks Arcade's authorization API (as its public
//! clients do: `POST /v1/auth/authorize` with the auth requirement and the `user_id`) and
//! answers the token of a completed authorization, or "authorization required" with the URL
//! of a pending one.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;
use serde_json::json;

use super::{BrokerFuture, Denial, DownstreamToken, TokenBroker, TokenNeed};
use crate::ResourceOwner;
use crate::error::{ConfigError, ConfigErrorKind};

const DEFAULT_BASE_URL: &str = "https://api.arcade.dev";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Which Arcade `user_id` a caller is. Arcade knows users by that id alone, so two people
/// with the same `sub` at two issuers must not share one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArcadeUserId {
    /// The caller's subject (`sub`), as the model does, for callers of this one issuer only
    /// (a caller of any other issuer is refused before Arcade is asked).
    SubjectAt(String),
    /// `<percent-encoded issuer> <subject>`: any issuer; the same `sub` at two issuers are two
    /// Arcade users (the encoded issuer holds no space, so the pair reads back one way).
    IssuerAndSubject,
}

/// Tokens from Arcade's authorization API; see the module docs.
#[derive(Clone)]
pub struct ArcadeBroker {
    base_url: String,
    api_key: String,
    user_id: ArcadeUserId,
    http: reqwest::Client,
}

impl std::fmt::Debug for ArcadeBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArcadeBroker")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// Builds an [`ArcadeBroker`].
#[derive(Clone)]
#[must_use]
pub struct ArcadeBrokerBuilder {
    api_key: String,
    base_url: String,
    user_id: Option<ArcadeUserId>,
    timeout: Duration,
}

impl std::fmt::Debug for ArcadeBrokerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArcadeBrokerBuilder")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ArcadeBroker {
    /// A broker using the Arcade API key `api_key` (for example from `ARCADE_API_KEY`).
    ///
    /// ```
    /// use protected_resource::downstream::{ArcadeBroker, ArcadeUserId};
    ///
    /// # fn main() -> Result<(), protected_resource::ConfigError> {
    /// let broker = ArcadeBroker::builder("arc_…")
    ///     .user_id(ArcadeUserId::SubjectAt("https://auth.example.com".into()))
    ///     .build()?;
    /// # drop(broker);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(api_key: impl Into<String>) -> ArcadeBrokerBuilder {
        ArcadeBrokerBuilder {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            user_id: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl ArcadeBrokerBuilder {
    /// Arcade's API (default `https://api.arcade.dev`, as `ARCADE_BASE_URL` sets it for its
    /// clients).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Which Arcade user a caller is (required: see [`ArcadeUserId`]).
    pub fn user_id(mut self, user_id: ArcadeUserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// Time limit of each call (default 15 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// # Errors
    /// A [`ConfigError`] naming `api_key` (empty), `user_id` (not chosen), `base_url` (not
    /// https, nor http on a loopback host) or `timeout` (zero).
    pub fn build(self) -> Result<ArcadeBroker, ConfigError> {
        if self.api_key.trim().is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::Missing,
                "api_key",
                "the Arcade API key is empty",
            ));
        }
        let user_id = self.user_id.ok_or_else(|| {
            ConfigError::new(
                ConfigErrorKind::Missing,
                "user_id",
                "choose ArcadeUserId::SubjectAt(issuer) or ArcadeUserId::IssuerAndSubject",
            )
        })?;
        let base = self.base_url.trim_end_matches('/').to_owned();
        super::http::check_endpoint(&base, "base_url")?;
        let http = super::http::client(self.timeout, "base_url")?;
        Ok(ArcadeBroker {
            base_url: base,
            api_key: self.api_key,
            user_id,
            http,
        })
    }
}

/// Arcade's authorization response.
#[derive(Deserialize)]
struct Authorization {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    token: Option<String>,
}

impl ArcadeBroker {
    async fn authorize(
        &self,
        owner: &ResourceOwner,
        need: &TokenNeed,
    ) -> Result<DownstreamToken, Denial> {
        let user_id = match &self.user_id {
            ArcadeUserId::SubjectAt(issuer)
                if owner.issuer().trim_end_matches('/') == issuer.trim_end_matches('/') =>
            {
                owner.user_id().to_owned()
            }
            ArcadeUserId::SubjectAt(_) => {
                return Err(Denial::forbidden(
                    "the caller's issuer is not the one this Arcade broker serves",
                ));
            }
            ArcadeUserId::IssuerAndSubject => {
                let issuer: String =
                    form_urlencoded::byte_serialize(owner.issuer().as_bytes()).collect();
                format!("{issuer} {}", owner.user_id())
            }
        };
        let body = json!({
            "auth_requirement": {
                "provider_id": need.get_provider(),
                "provider_type": "oauth2",
                "oauth2": {"scopes": need.get_scopes()},
            },
            "user_id": user_id,
        });
        let mut key = reqwest::header::HeaderValue::from_str(&self.api_key)
            .map_err(|_| Denial::unavailable(None, "the Arcade API key can not be sent"))?;
        key.set_sensitive(true);
        let response = self
            .http
            .post(format!("{}/v1/auth/authorize", self.base_url))
            // Arcade's clients send the key itself as the Authorization value.
            .header(AUTHORIZATION, key)
            .header(ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                Denial::unavailable(
                    None,
                    if e.is_timeout() {
                        "Arcade timed out"
                    } else {
                        "Arcade could not be reached"
                    },
                )
            })?;
        let status = response.status();
        let retry_after = super::http::retry_after(response.headers());
        let bytes = super::http::read_capped(response, MAX_RESPONSE_BYTES, "Arcade").await?;
        if !status.is_success() {
            return Err(match status.as_u16() {
                401 | 403 => Denial::unavailable(None, "Arcade refused this server's API key"),
                s @ (429 | 500..) => {
                    Denial::unavailable(retry_after, format!("Arcade answered HTTP {s}"))
                }
                s => Denial::forbidden(format!("Arcade refused the authorization (HTTP {s})")),
            });
        }
        let auth: Authorization = serde_json::from_slice(&bytes)
            .map_err(|_| Denial::unavailable(None, "Arcade's answer is not an authorization"))?;
        match auth.status.as_deref() {
            Some("completed") => {
                let token = auth
                    .context
                    .and_then(|c| c.token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        Denial::unavailable(
                            None,
                            "Arcade completed the authorization without a token",
                        )
                    })?;
                Ok(DownstreamToken::new(token).with_scopes(auth.scopes.unwrap_or_default()))
            }
            Some("pending" | "not_started") => match auth.url {
                Some(url) if url.starts_with("https://") => {
                    Err(Denial::authorization_required(url))
                }
                _ => Err(Denial::unavailable(
                    None,
                    "Arcade gave no authorization URL",
                )),
            },
            Some("failed") => Err(Denial::forbidden("the authorization at Arcade failed")),
            _ => Err(Denial::unavailable(
                None,
                "Arcade answered an unknown status",
            )),
        }
    }
}

impl TokenBroker for ArcadeBroker {
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a> {
        Box::pin(self.authorize(owner, need))
    }
}
