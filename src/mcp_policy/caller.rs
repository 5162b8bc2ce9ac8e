//! Who may use one tool, prompt or resource, beyond scopes ([`McpRequirement::allowed_clients`],
//! [`required_claims`](McpRequirement::required_claims),
//! [`max_token_age`](McpRequirement::max_token_age)): checked against the caller's token.

use std::time::Duration;

use serde_json::Value;

use crate::owner::ResourceOwner;
use crate::required_claims::RequiredClaim;

#[cfg(doc)]
use crate::McpRequirement;

/// Rules about the caller, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CallerRule {
    pub(crate) allowed_clients: Vec<String>,
    pub(crate) required_claims: Vec<RequiredClaim>,
    pub(crate) max_token_age: Option<Duration>,
}

/// Why a caller may not use an operation, whatever scopes it gets: ordered, the strongest
/// last (a client that is not allowed is refused as such even when its token is also old).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CallerRefusal {
    /// The token is older than the operation accepts: a fresh one may do (401).
    TooOld,
    /// The client or the claims are not allowed (403, no scope helps).
    NotAllowed,
}

impl CallerRule {
    /// Why `owner` may not call, or `None`. Logged with the rule that failed (never sent).
    pub(crate) fn refusal(&self, owner: &ResourceOwner) -> Option<CallerRefusal> {
        if !self.allowed_clients.is_empty()
            && !owner
                .client_id()
                .is_some_and(|c| self.allowed_clients.iter().any(|a| a == c))
        {
            tracing::info!(
                issuer = owner.issuer(),
                user_id = owner.user_id(),
                rule = "allowed_clients",
                "MCP operation refused: the client is not allowed"
            );
            return Some(CallerRefusal::NotAllowed);
        }
        if let Some(missing) = self
            .required_claims
            .iter()
            .find(|r| !r.holds_in(owner.claims()))
        {
            tracing::info!(
                issuer = owner.issuer(),
                user_id = owner.user_id(),
                rule = "required_claims",
                path = missing.path(),
                "MCP operation refused: a required claim value is missing"
            );
            return Some(CallerRefusal::NotAllowed);
        }
        if let Some(max) = self.max_token_age {
            let now = crate::clock::unix_secs_f64();
            let fresh = owner
                .claim("iat")
                .and_then(Value::as_f64)
                .is_some_and(|iat| now - iat <= max.as_secs_f64());
            if !fresh {
                tracing::info!(
                    issuer = owner.issuer(),
                    user_id = owner.user_id(),
                    rule = "max_token_age",
                    "MCP operation refused: the token is too old for it"
                );
                return Some(CallerRefusal::TooOld);
            }
        }
        None
    }
}
