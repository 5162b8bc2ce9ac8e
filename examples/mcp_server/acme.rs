//! Tool-level authorization in the example: the "Acme API", a third-party API of the example's
//! own on the same port (`/acme/profile`), accepts only tokens of the development authorization
//! server for the audience `acme-api` (the MCP token itself gets 401 there). The tool
//! `acme_profile` obtains a token for its caller by token exchange (the example's own
//! confidential client, registered at start with the token-exchange grant), keeps it per user
//! until shortly before it expires, and sends it only to Acme's host.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use protected_resource::dev_auth::DevAuthorizationServer;
use protected_resource::downstream::{
    CachedBroker, DownstreamClient, TokenBroker, TokenExchangeBroker, TokenNeed,
};
use protected_resource::{JwksTokenValidator, ResourceOwner};
use serde_json::{Value, json};

/// The audience Acme accepts.
pub const ACME_AUDIENCE: &str = "acme-api";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The `acme_profile` tool's way to Acme.
pub struct Acme {
    broker: CachedBroker<TokenExchangeBroker>,
    client: DownstreamClient,
    url: String,
}

impl Acme {
    /// Registers the example's client at `dev` and aims at Acme on `base` (`http://host:port`).
    pub fn new(dev: &DevAuthorizationServer, base: &str) -> Result<Self, String> {
        let (id, secret) = dev
            .register_confidential_client("mcp_server example (token exchange)", &[TOKEN_EXCHANGE])
            .ok_or("could not register the example's token-exchange client")?;
        let broker = TokenExchangeBroker::builder(format!("{}/token", dev.issuer()))
            .issuer(dev.issuer())
            .client_secret_basic(id, secret)
            .build()
            .map_err(|e| e.to_string())?;
        let url = reqwest::Url::parse(base).map_err(|e| e.to_string())?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err("the Acme URL has no host".to_owned()),
        };
        let client = DownstreamClient::builder()
            .provider("acme", [host])
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            broker: CachedBroker::new(broker),
            client,
            url: format!("{base}/acme/profile"),
        })
    }

    /// Acme's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The caller's Acme profile: `{"acme_user": <the sub Acme saw>, "audience": "acme-api"}`,
    /// or why not (never a token).
    pub async fn profile(&self, owner: &ResourceOwner) -> Result<Value, String> {
        let need = TokenNeed::new("acme").audience(ACME_AUDIENCE);
        let token = self
            .broker
            .token(owner, &need)
            .await
            .map_err(|d| format!("no Acme token for you: {d}"))?;
        let request = self
            .client
            .request(reqwest::Method::GET, &self.url)
            .build()
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .send(owner, "acme", &token, request)
            .await
            .map_err(|e| format!("Acme could not be reached: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("Acme answered HTTP {}", response.status().as_u16()));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|_| "Acme's answer is not JSON".to_owned())?;
        Ok(json!({"acme_user": body["sub"], "audience": body["aud"]}))
    }
}

/// The Acme API: `GET /acme/profile` with an `acme-api` token of the development server.
pub fn router(validator: JwksTokenValidator) -> Router {
    Router::new()
        .route("/acme/profile", get(profile))
        .with_state(validator)
}

async fn profile(State(validator): State<JwksTokenValidator>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let refused = || {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response()
    };
    let Some(token) = token else {
        return refused();
    };
    match validator.validate(token).await {
        Ok(owner) => {
            axum::Json(json!({"sub": owner.user_id(), "aud": ACME_AUDIENCE})).into_response()
        }
        Err(_) => refused(),
    }
}
