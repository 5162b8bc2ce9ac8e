//! What the development authorization server publishes and signs: its RFC 8414 / OpenID
//! Connect metadata, its key set, and RFC 9068 access tokens.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::store::{self, now_secs};
use super::{ACCESS_TOKEN_SECONDS, Inner, OFFLINE_ACCESS, params};

impl Inner {
    /// Signs an RFC 9068 access token for `scopes` (`offline_access` left out: it is about
    /// the grant, not the resource), expiring in an hour or at `not_after`, whichever is
    /// first.
    pub(crate) fn mint(
        &self,
        user: &str,
        client_id: &str,
        scopes: &[String],
        resource: &str,
        not_after: Option<u64>,
    ) -> Option<String> {
        let now = now_secs();
        let exp = not_after.map_or(now + ACCESS_TOKEN_SECONDS, |n| {
            n.min(now + ACCESS_TOKEN_SECONDS)
        });
        let scope = scopes
            .iter()
            .filter(|s| *s != OFFLINE_ACCESS)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let header =
            json!({"alg": self.key.algorithm().as_str(), "typ": "at+jwt", "kid": self.key.kid()});
        let claims = json!({
            "iss": self.issuer,
            "sub": user,
            "aud": resource,
            "exp": exp,
            "iat": now,
            "jti": store::random_handle()?,
            "client_id": client_id,
            "scope": scope,
        });
        let b64 = |v: &Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(v).unwrap_or_default())
        };
        let message = format!("{}.{}", b64(&header), b64(&claims));
        let signature = self.key.try_sign(message.as_bytes())?;
        Some(format!("{message}.{signature}"))
    }

    pub(crate) fn endpoint(&self, name: &str) -> String {
        format!("{}/{name}", self.issuer)
    }
}

/// RFC 8414 and OpenID Connect discovery metadata (the fields OpenID Connect discovery
/// requires included, though no ID tokens are issued: `openid` is not a supported scope).
pub(crate) async fn metadata(State(inner): State<Arc<Inner>>) -> Json<Value> {
    Json(json!({
        "issuer": inner.issuer,
        "authorization_endpoint": inner.endpoint("authorize"),
        "token_endpoint": inner.endpoint("token"),
        "registration_endpoint": inner.endpoint("register"),
        "revocation_endpoint": inner.endpoint("revoke"),
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "jwks_uri": inner.endpoint("jwks"),
        "scopes_supported": inner.scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            params::TOKEN_EXCHANGE,
        ],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [inner.key.algorithm().as_str()],
    }))
}

pub(crate) async fn jwks(State(inner): State<Arc<Inner>>) -> Json<Value> {
    Json(json!({"keys": [inner.key.public_jwk()]}))
}
