//! How this crate authenticates to an authorization server (a token exchange, a connected
//! account's token endpoint, token introspection): `client_secret_basic` (RFC 6749 §2.3.1,
//! both parts form-urlencoded), `client_secret_post`, or `private_key_jwt` (RFC 7523 §2.2: a
//! short-lived assertion signed with the client's private key, a fresh `jti` each time).
//! `Debug` never shows a secret or a key.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use crate::Algorithm;
use crate::error::{ConfigError, ConfigErrorKind};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion.
const ASSERTION_SECONDS: u64 = 60;

#[derive(Clone)]
pub(crate) enum ClientAuth {
    Basic {
        id: String,
        secret: String,
    },
    Post {
        id: String,
        secret: String,
    },
    PrivateKeyJwt {
        id: String,
        key: EncodingKey,
        alg: jsonwebtoken::Algorithm,
        kid: Option<String>,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { id, .. } => write!(f, "client_secret_basic({id}, [redacted])"),
            Self::Post { id, .. } => write!(f, "client_secret_post({id}, [redacted])"),
            Self::PrivateKeyJwt { id, alg, .. } => {
                write!(f, "private_key_jwt({id}, {alg:?}, [redacted])")
            }
        }
    }
}

impl ClientAuth {
    /// `private_key_jwt` with a PEM private key (PKCS#8; RSA, EC or Ed25519 as `alg` says).
    pub(crate) fn private_key_jwt(
        id: String,
        pem: &[u8],
        alg: Algorithm,
        kid: Option<String>,
    ) -> Result<Self, ConfigError> {
        let bad = |m: &str| ConfigError::new(ConfigErrorKind::InvalidValue, "private_key_jwt", m);
        let jwt_alg = alg
            .to_jsonwebtoken()
            .ok_or_else(|| bad("this algorithm can not sign client assertions"))?;
        let key = match alg.family() {
            crate::algorithm::KeyFamily::Rsa => EncodingKey::from_rsa_pem(pem),
            crate::algorithm::KeyFamily::Ed25519 => EncodingKey::from_ed_pem(pem),
            _ => EncodingKey::from_ec_pem(pem),
        }
        .map_err(|_| bad("the key is not a PEM private key for this algorithm"))?;
        crate::algorithm::install_crypto_provider();
        let auth = Self::PrivateKeyJwt {
            id,
            key,
            alg: jwt_alg,
            kid,
        };
        // Sign once now, so a key that can not sign fails at build time, not per request.
        auth.assertion("https://check.invalid/token")
            .ok_or_else(|| bad("the key can not sign with this algorithm"))?;
        Ok(auth)
    }

    #[cfg(feature = "downstream")]
    pub(crate) fn client_id(&self) -> &str {
        match self {
            Self::Basic { id, .. } | Self::Post { id, .. } | Self::PrivateKeyJwt { id, .. } => id,
        }
    }

    /// The `Authorization` header value, for Basic.
    pub(crate) fn basic_header(&self) -> Option<String> {
        let Self::Basic { id, secret } = self else {
            return None;
        };
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
        ))
    }

    /// The body parameters for `token_endpoint` (none for Basic); `None` when an assertion
    /// could not be signed.
    pub(crate) fn body_params(&self, token_endpoint: &str) -> Option<Vec<(&'static str, String)>> {
        Some(match self {
            Self::Basic { .. } => Vec::new(),
            Self::Post { id, secret } => {
                vec![("client_id", id.clone()), ("client_secret", secret.clone())]
            }
            Self::PrivateKeyJwt { id, .. } => vec![
                ("client_id", id.clone()),
                ("client_assertion_type", ASSERTION_TYPE.to_owned()),
                ("client_assertion", self.assertion(token_endpoint)?),
            ],
        })
    }

    /// A client assertion for `audience` (RFC 7523 §3: iss = sub = client id).
    fn assertion(&self, audience: &str) -> Option<String> {
        let Self::PrivateKeyJwt { id, key, alg, kid } = self else {
            return None;
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).ok()?;
        let mut header = Header::new(*alg);
        header.kid.clone_from(kid);
        let claims = json!({
            "iss": id,
            "sub": id,
            "aud": audience,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
            "jti": URL_SAFE_NO_PAD.encode(jti),
        });
        jsonwebtoken::encode(&header, &claims, key).ok()
    }
}
