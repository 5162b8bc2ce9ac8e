//! Tokens: the builder the mock authorization server hands out, and provider-shaped claims.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::signing_key::SigningKey;
use crate::testkit::server::MockAuthorizationServer;
use crate::testkit::{b64, now_secs};

impl MockAuthorizationServer {
    /// Starts a token signed with the first published key: `iss` this server, `sub`
    /// `user-123`, `iat` now, `exp` in 5 minutes, no `aud` (set one with
    /// [`TokenBuilder::audience`]).
    pub fn token(&self) -> TokenBuilder {
        let now = now_secs();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer()));
        claims.insert("sub".into(), json!("user-123"));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + 300));
        TokenBuilder {
            key: self.keys().first().cloned(),
            header: Map::new(),
            claims,
            with_kid: true,
        }
    }
}

/// Builds and signs one token; see [`MockAuthorizationServer::token`].
#[derive(Debug)]
#[must_use]
pub struct TokenBuilder {
    key: Option<Arc<SigningKey>>,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    with_kid: bool,
}

impl TokenBuilder {
    /// Sets (or replaces) a claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets `sub`.
    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", sub)
    }

    /// Sets `aud` to one string.
    pub fn audience(self, aud: &str) -> Self {
        self.claim("aud", aud)
    }

    /// Sets `scope` (space-separated).
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// Sets `exp` relative to now (negative: already expired).
    pub fn expires_in(self, seconds: i64) -> Self {
        self.claim("exp", now_secs() + seconds)
    }

    /// Sets a JOSE header member (for example `typ`, `crit`, `jku`, or a lying `alg`).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Signs with the published key `kid`.
    pub fn key_id(mut self, server: &MockAuthorizationServer, kid: &str) -> Self {
        self.key = server.keys().into_iter().find(|k| k.kid == kid);
        self
    }

    /// Signs with this key (which need not be published).
    pub fn key(mut self, key: Arc<SigningKey>) -> Self {
        self.key = Some(key);
        self
    }

    /// Binds the token to `key` (DPoP, RFC 9449 §6.1): `cnf: {"jkt": <thumbprint>}`.
    pub fn dpop_bound(self, key: &crate::signing_key::SigningKey) -> Self {
        let jkt = crate::testkit::DpopProof::thumbprint(key);
        self.claim("cnf", serde_json::json!({ "jkt": jkt }))
    }

    /// Leaves `kid` out of the header.
    pub fn without_kid(mut self) -> Self {
        self.with_kid = false;
        self
    }

    /// Encodes and signs.
    ///
    /// # Panics
    /// When the server has no signing key (a test setup error).
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn sign(self) -> String {
        let key = self
            .key
            .expect("the mock authorization server has no signing key");
        let mut header = Map::new();
        header.insert("alg".into(), json!(key.alg.as_str()));
        header.insert("typ".into(), json!("JWT"));
        if self.with_kid {
            header.insert("kid".into(), json!(key.kid));
        }
        for (k, v) in self.header {
            header.insert(k, v);
        }
        let signing_input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header).unwrap_or_default()),
            b64(&serde_json::to_vec(&self.claims).unwrap_or_default())
        );
        let signature = key.sign(signing_input.as_bytes());
        format!("{signing_input}.{signature}")
    }
}

/// Encodes a token from raw header and claims JSON with the given signature part, for
/// tests of malformed or unsigned tokens (`alg: none`).
#[must_use]
pub fn unsigned_token(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(&serde_json::to_vec(header).unwrap_or_default()),
        b64(&serde_json::to_vec(claims).unwrap_or_default())
    )
}

/// Access-token shapes of identity providers people put in front of MCP servers, as their
/// documentation describes them: which claim carries the scopes and the client id, and the
/// extra claims they add. See `docs/identity-providers.md` for the matching configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderShape {
    /// WorkOS AuthKit: `scope` string, `client_id`, `sid`, `org_id`.
    WorkOsAuthKit,
    /// Auth0: `scope` string, `azp`, `gty`, `permissions` array, `aud` as an array that also
    /// names the tenant's userinfo endpoint.
    Auth0,
    /// Keycloak: `scope` string, `azp`, a `typ: "Bearer"` claim, `realm_access.roles`,
    /// `preferred_username`.
    Keycloak,
    /// Okta (custom authorization server): `scp` array, `cid`, `uid`, `ver: 1`.
    Okta,
    /// Microsoft Entra ID v2 tokens: `scp` space-separated string, `azp`, `oid`, `tid`,
    /// `ver: "2.0"`, `roles` for application permissions.
    EntraId,
    /// Microsoft Entra ID v1 tokens: `scp` string, `appid` for the client, `ver: "1.0"`.
    EntraIdV1,
    /// Descope: `scope` string, `azp`, `dct` (tenant), `roles`.
    Descope,
}

impl TokenBuilder {
    /// Shapes the token like `shape`'s access tokens, for client `client_id` and `scopes`,
    /// keeping the `iss`, `sub`, `aud`, `exp` already set.
    pub fn shaped_like(self, shape: ProviderShape, client_id: &str, scopes: &[&str]) -> Self {
        let joined = scopes.join(" ");
        match shape {
            ProviderShape::WorkOsAuthKit => self
                .claim("scope", joined)
                .claim("client_id", client_id)
                .claim("sid", "session_01HZY")
                .claim("org_id", "org_01HZY"),
            ProviderShape::Auth0 => {
                let aud = self.claims.get("aud").cloned().unwrap_or(Value::Null);
                let issuer = self
                    .claims
                    .get("iss")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                self.claim("scope", joined)
                    .claim("azp", client_id)
                    .claim("gty", "client-credentials")
                    .claim("permissions", json!(scopes))
                    .claim("aud", json!([aud, format!("{issuer}userinfo")]))
            }
            ProviderShape::Keycloak => self
                .claim("scope", format!("openid profile {joined}"))
                .claim("azp", client_id)
                .claim("typ", "Bearer")
                .claim("realm_access", json!({"roles": ["default-roles-mcp"]}))
                .claim("preferred_username", format!("service-account-{client_id}")),
            ProviderShape::Okta => self
                .claim("scp", json!(scopes))
                .claim("cid", client_id)
                .claim("uid", "00u1abcd")
                .claim("ver", 1),
            ProviderShape::EntraId => self
                .claim("scp", joined)
                .claim("azp", client_id)
                .claim("oid", "6f3c-object-id")
                .claim("tid", "72f9-tenant-id")
                .claim("ver", "2.0"),
            ProviderShape::EntraIdV1 => self
                .claim("scp", joined)
                .claim("appid", client_id)
                .claim("ver", "1.0"),
            ProviderShape::Descope => self
                .claim("scope", joined)
                .claim("azp", client_id)
                .claim("dct", "tenant-1")
                .claim("roles", json!(["member"])),
        }
    }
}
