//! The shapes of token exchange the broker speaks: RFC 8693 as written (Keycloak's standard
//! token exchange, Okta, the development authorization server), Auth0 Token Vault's
//! federated-connection grant, and Microsoft Entra's on-behalf-of flow (the JWT-bearer grant).

use super::TokenNeed;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const AUTH0_GRANT: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
const AUTH0_REQUESTED: &str = "http://auth0.com/oauth/token-type/federated-connection-access-token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Which token-exchange request a [`TokenExchangeBroker`](super::TokenExchangeBroker) sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExchangeProfile {
    /// RFC 8693: `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, the caller's
    /// token as an access-token `subject_token`, `requested_token_type` access token, and the
    /// need's `audience`, `resource` and `scope`. Keycloak (standard token exchange, 26.2+:
    /// `audience` is the target client), Okta (custom authorization server, `audience` the
    /// target API and `scope` required) and the development authorization server.
    Rfc8693,
    /// Auth0 Token Vault: the federated connection access token grant for the connection
    /// `connection` (for example `google-oauth2`), with an optional `login_hint`; Auth0
    /// answers with the token it holds for that user's connected account.
    Auth0TokenVault {
        /// The Auth0 connection whose token is wanted.
        connection: String,
        /// Which of the user's accounts on that connection, when several.
        login_hint: Option<String>,
    },
    /// Microsoft Entra ID on-behalf-of: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
    /// the caller's token as `assertion`, `requested_token_use=on_behalf_of`, and the need's
    /// scopes (for example `https://graph.microsoft.com/User.Read` or `api://…/.default`).
    EntraOnBehalfOf,
}

impl ExchangeProfile {
    /// The request's body parameters, client authentication aside.
    pub(crate) fn params(&self, subject: &str, need: &TokenNeed) -> Vec<(&'static str, String)> {
        let scope = need.get_scopes().join(" ");
        let mut p: Vec<(&'static str, String)> = match self {
            Self::Rfc8693 => {
                let mut p = vec![
                    ("grant_type", TOKEN_EXCHANGE.to_owned()),
                    ("subject_token", subject.to_owned()),
                    ("subject_token_type", ACCESS_TOKEN_TYPE.to_owned()),
                    ("requested_token_type", ACCESS_TOKEN_TYPE.to_owned()),
                ];
                if let Some(a) = need.get_audience() {
                    p.push(("audience", a.to_owned()));
                }
                if let Some(r) = need.get_resource() {
                    p.push(("resource", r.to_owned()));
                }
                p
            }
            Self::Auth0TokenVault {
                connection,
                login_hint,
            } => {
                let mut p = vec![
                    ("grant_type", AUTH0_GRANT.to_owned()),
                    ("subject_token", subject.to_owned()),
                    ("subject_token_type", ACCESS_TOKEN_TYPE.to_owned()),
                    ("requested_token_type", AUTH0_REQUESTED.to_owned()),
                    ("connection", connection.clone()),
                ];
                if let Some(hint) = login_hint {
                    p.push(("login_hint", hint.clone()));
                }
                p
            }
            Self::EntraOnBehalfOf => vec![
                ("grant_type", JWT_BEARER.to_owned()),
                ("assertion", subject.to_owned()),
                ("requested_token_use", "on_behalf_of".to_owned()),
            ],
        };
        if !scope.is_empty() {
            p.push(("scope", scope));
        }
        p
    }
}
