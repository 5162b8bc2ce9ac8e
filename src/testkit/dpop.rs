//! DPoP proofs for tests (RFC 9449): good ones, and each kind of bad one through the setters.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::signing_key::SigningKey;

/// Builds a DPoP proof signed by `key` (its public JWK in the header).
///
/// ```
/// use protected_resource::Algorithm;
/// use protected_resource::dpop::DpopVerifier;
/// use protected_resource::testkit::{DpopProof, SigningKey};
///
/// let key = SigningKey::generate(Algorithm::ES256, "client-key");
/// let proof = DpopProof::new(&key, "POST", "https://mcp.example.com/mcp")
///     .access_token("the-token")
///     .sign();
/// let ok = DpopVerifier::new()
///     .verify(&proof, "POST", "https://mcp.example.com/mcp", "the-token")
///     .unwrap();
/// assert_eq!(ok.jkt, DpopProof::thumbprint(&key));
/// ```
#[derive(Debug)]
#[must_use]
pub struct DpopProof<'k> {
    key: &'k SigningKey,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

/// The public JWK members (no `kid`, `alg`, `use`): what a client puts in a proof.
fn bare_jwk(key: &SigningKey) -> Value {
    let jwk = key.public_jwk();
    let keep = ["kty", "crv", "x", "y", "n", "e"];
    Value::Object(
        jwk.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| keep.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

impl<'k> DpopProof<'k> {
    /// A proof for `method` and `url`, made now, with a fresh `jti`.
    pub fn new(key: &'k SigningKey, method: &str, url: &str) -> Self {
        let mut jti = [0u8; 16];
        let _ = getrandom::fill(&mut jti);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut header = Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert("alg".into(), json!(key.algorithm().as_str()));
        header.insert("jwk".into(), bare_jwk(key));
        let mut claims = Map::new();
        claims.insert("jti".into(), json!(URL_SAFE_NO_PAD.encode(jti)));
        claims.insert("htm".into(), json!(method));
        claims.insert("htu".into(), json!(url));
        claims.insert("iat".into(), json!(now));
        Self {
            key,
            header,
            claims,
        }
    }

    /// Binds the proof to `token` (`ath`: the base64url SHA-256 of the token).
    pub fn access_token(self, token: &str) -> Self {
        let ath = crate::dpop::sha256_b64(token.as_bytes()).unwrap_or_default();
        self.claim("ath", ath)
    }

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

    /// Sets (or replaces) a header member (`typ`, `alg`, `jwk`, …).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// The proof: header and claims as set, signed with the key.
    #[must_use]
    pub fn sign(self) -> String {
        let h = URL_SAFE_NO_PAD.encode(Value::Object(self.header).to_string());
        let c = URL_SAFE_NO_PAD.encode(Value::Object(self.claims).to_string());
        let message = format!("{h}.{c}");
        let signature = self.key.sign(message.as_bytes());
        format!("{message}.{signature}")
    }

    /// The RFC 7638 SHA-256 thumbprint of `key`: the `cnf.jkt` of a token bound to it.
    #[must_use]
    pub fn thumbprint(key: &SigningKey) -> String {
        crate::algorithm::install_crypto_provider();
        serde_json::from_value::<jsonwebtoken::jwk::Jwk>(bare_jwk(key))
            .ok()
            .and_then(|jwk| {
                jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                    .ok()
            })
            .unwrap_or_default()
    }
}
