//! What a [`ResourceOwner`](crate::ResourceOwner) takes from its token's claims alone: the
//! same for every owner of one token, so the owners of a token that a thread remembers
//! (`parsed_tokens.rs`) share one copy instead of building it per request.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::claims::{Claim, Claims};
use crate::error::{ValidationError, ValidationErrorKind};

pub(crate) struct OwnerClaims {
    pub(crate) user_id: String,
    pub(crate) client_id: Option<String>,
    /// As the token lists them (a configured scope prefix is the owner's).
    pub(crate) scopes: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) expires_at: Option<SystemTime>,
    /// The claims object as the token carried it (checked JSON): parsed into `claims` only
    /// when an application asks.
    pub(crate) raw_claims: String,
    pub(crate) claims: OnceLock<Map<String, Value>>,
}

impl OwnerClaims {
    /// What validated claims say of their owner; the JSON they were read from is attached
    /// next (`raw_claims`). Refused without a non-blank `sub`.
    pub(crate) fn of(claims: &Claims<'_>) -> Result<Self, ValidationError> {
        let user_id = match &claims.sub {
            Claim::Str(s) if !s.trim().is_empty() => String::from(&**s),
            _ => {
                return Err(ValidationError::new(
                    ValidationErrorKind::MissingSubject,
                    "",
                ));
            }
        };
        // RFC 9068 `client_id`; OIDC `azp` (Auth0, Keycloak, Entra v2); Okta `cid`; Entra v1
        // `appid`.
        let client_id = [&claims.client_id, &claims.azp, &claims.cid, &claims.appid]
            .into_iter()
            .find_map(Claim::non_empty)
            .map(str::to_owned);
        let scopes = match (&claims.scope, &claims.scp) {
            (Claim::Str(s), _) => split_scopes(s),
            (_, Claim::Array { strings: a, .. }) => strings(a),
            (_, Claim::Str(s)) => split_scopes(s),
            _ => Vec::new(),
        };
        let audiences = match &claims.aud {
            Claim::Str(s) => vec![String::from(&**s)],
            Claim::Array { strings: a, .. } => strings(a),
            _ => Vec::new(),
        };
        let expires_at = match claims.exp {
            Claim::Number(e) if (0.0..1e12).contains(&e) => {
                Some(UNIX_EPOCH + Duration::from_secs_f64(e))
            }
            _ => None,
        };
        Ok(Self {
            user_id,
            client_id,
            scopes,
            audiences,
            expires_at,
            raw_claims: String::new(),
            claims: OnceLock::new(),
        })
    }
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split_ascii_whitespace().map(str::to_owned).collect()
}

fn strings(list: &[std::borrow::Cow<'_, str>]) -> Vec<String> {
    list.iter().map(|s| String::from(&**s)).collect()
}
