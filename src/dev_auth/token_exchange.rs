//! The token-exchange grant (RFC 8693) of the development authorization server: a client
//! presents an access token this server issued (`subject_token`) and gets one for another of
//! its resources, for the same user, with at most the scopes the subject token had and expiring
//! no later than it. Any client registered for the grant may exchange (in a server where
//! anyone can log in as anyone, holding a user's token gives nothing more).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::answer::{Refused, error};
use super::params::{ACCESS_TOKEN_TYPE, JWT_TYPE, TOKEN_EXCHANGE};
use super::store::{Client, Grant, now_secs};
use super::{Inner, params};

/// The grant a token-exchange request asks for.
pub(crate) fn exchange(
    inner: &Inner,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<(Grant, Option<Grant>), Refused> {
    if !client.grant_types.iter().any(|g| g == TOKEN_EXCHANGE) {
        return Err(error(
            "unauthorized_client",
            "the client did not register the token-exchange grant",
        ));
    }
    match form.get("subject_token_type").map(String::as_str) {
        Some(ACCESS_TOKEN_TYPE | JWT_TYPE) => {}
        _ => {
            return Err(error(
                "invalid_request",
                "subject_token_type must be an access token or a JWT",
            ));
        }
    }
    if form.contains_key("actor_token") {
        return Err(error("invalid_request", "actor tokens are not supported"));
    }
    match form.get("requested_token_type").map(String::as_str) {
        None | Some(ACCESS_TOKEN_TYPE) => {}
        Some(_) => {
            return Err(error(
                "invalid_request",
                "only access tokens can be requested",
            ));
        }
    }
    let subject = form
        .get("subject_token")
        .and_then(|t| inner.issued_claims(t))
        .ok_or_else(|| {
            error(
                "invalid_request",
                "subject_token is not a current access token of this server",
            )
        })?;
    let user = subject.get("sub").and_then(Value::as_str).unwrap_or("");
    let held = params::scopes(subject.get("scope").and_then(Value::as_str).unwrap_or(""))
        .unwrap_or_default();
    let scopes = match form.get("scope") {
        None => held.clone(),
        Some(s) => params::scopes(s)
            .filter(|asked| asked.iter().all(|a| held.contains(a)))
            .ok_or_else(|| error("invalid_scope", "the scope exceeds the subject token's"))?,
    };
    // RFC 8693 `resource` or `audience`: one of this server's resources.
    let target = match (form.get("resource"), form.get("audience")) {
        (Some(_), Some(_)) => {
            return Err(error(
                "invalid_request",
                "give resource or audience, not both",
            ));
        }
        (r, a) => r.or(a).map(String::as_str),
    };
    // A protected resource of this server, or an audience named for exchange only (such as
    // `acme-api`, a logical name, not a URL).
    let exchange_audience = form
        .get("audience")
        .filter(|a| inner.exchange_audiences.contains(a))
        .cloned();
    let resource = exchange_audience
        .or_else(|| inner.served_resource(target))
        .ok_or_else(|| error("invalid_target", "the target is not served here"))?;
    let grant = Grant {
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        redirect_uri: String::new(),
        redirect_given: false,
        // Never outlives the token it was exchanged for.
        not_after: subject.get("exp").and_then(Value::as_u64),
        scopes,
        resource,
        code_challenge: String::new(),
        state: None,
        user: Some(user.to_owned()),
    };
    Ok((grant, None))
}

impl Inner {
    /// The claims of `token` when it is an unexpired access token this server signed.
    fn issued_claims(&self, token: &str) -> Option<serde_json::Map<String, Value>> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
        let message = &token.as_bytes()[..h.len() + 1 + c.len()];
        if !self.key.verify(message, &signature) {
            return None;
        }
        let claims: serde_json::Map<String, Value> =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
        let exp = claims.get("exp").and_then(Value::as_u64)?;
        let sub_ok = claims
            .get("sub")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        (claims.get("iss").and_then(Value::as_str) == Some(&self.issuer)
            && exp > now_secs()
            && sub_ok)
            .then_some(claims)
    }
}
