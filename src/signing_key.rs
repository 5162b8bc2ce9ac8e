//! Signing keys of the test kit's mock and of the development authorization server:
//! generation, public JWKs, signatures.
// Generating a key fails only when the crypto library itself is broken; the test utility then
// panics (documented on the methods). Request paths sign with `try_sign`, which does not.
#![allow(clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Algorithm;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Material {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key with its public JWK.
pub struct SigningKey {
    pub(crate) kid: String,
    pub(crate) alg: Algorithm,
    material: Material,
    pub(crate) jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a key for `alg` (RSA keys are 2048 bits).
    ///
    /// # Panics
    /// When the crypto library can not generate a key (it never does on a working system).
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Self {
        Self::try_generate(alg, kid).expect("key generation")
    }

    /// Generates a key for `alg`; `None` only when the crypto library fails.
    pub(crate) fn try_generate(alg: Algorithm, kid: impl Into<String>) -> Option<Self> {
        let kid = kid.into();
        let (material, mut jwk) = match alg.family() {
            crate::algorithm::KeyFamily::Rsa => {
                let kp = RsaKeyPair::generate(KeySize::Rsa2048).ok()?;
                let public = kp.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                });
                (Material::Rsa(kp), jwk)
            }
            family @ (crate::algorithm::KeyFamily::P256
            | crate::algorithm::KeyFamily::P384
            | crate::algorithm::KeyFamily::P521) => {
                let (signing, crv, len) = match family {
                    crate::algorithm::KeyFamily::P256 => {
                        (&sig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                    }
                    crate::algorithm::KeyFamily::P384 => {
                        (&sig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                    }
                    _ => (&sig::ECDSA_P521_SHA512_FIXED_SIGNING, "P-521", 66),
                };
                let kp = EcdsaKeyPair::generate(signing).ok()?;
                let point = kp.public_key().as_ref();
                let jwk = json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": b64(&point[1..1 + len]),
                    "y": b64(&point[1 + len..]),
                });
                (Material::Ec(kp), jwk)
            }
            crate::algorithm::KeyFamily::Ed25519 => {
                let kp = Ed25519KeyPair::generate().ok()?;
                let jwk =
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())});
                (Material::Ed(kp), jwk)
            }
        };
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.as_str());
        jwk["use"] = json!("sig");
        Some(Self {
            kid,
            alg,
            material,
            jwk,
        })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK (with `kid`, `alg` and `use`).
    #[must_use]
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `message` with this key's algorithm and returns the base64url signature.
    ///
    /// # Panics
    /// When the crypto library fails to sign (it never does on a working system).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> String {
        self.try_sign(message).expect("signing")
    }

    /// Whether `signature` (raw bytes) is this key's signature of `message`.
    #[cfg(feature = "dev-auth")]
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let (algorithm, public): (&'static dyn sig::VerificationAlgorithm, &[u8]) =
            match &self.material {
                Material::Rsa(kp) => (
                    match self.alg {
                        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                        _ => &sig::RSA_PKCS1_2048_8192_SHA256,
                    },
                    kp.public_key().as_ref(),
                ),
                Material::Ec(kp) => (
                    match self.alg {
                        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                        Algorithm::ES512 => &sig::ECDSA_P521_SHA512_FIXED,
                        _ => &sig::ECDSA_P256_SHA256_FIXED,
                    },
                    kp.public_key().as_ref(),
                ),
                Material::Ed(kp) => (&sig::ED25519, kp.public_key().as_ref()),
            };
        sig::UnparsedPublicKey::new(algorithm, public)
            .verify(message, signature)
            .is_ok()
    }

    /// Signs `message`; `None` only when the crypto library fails.
    pub(crate) fn try_sign(&self, message: &[u8]) -> Option<String> {
        let rng = SystemRandom::new();
        match &self.material {
            Material::Rsa(kp) => {
                let padding: &'static dyn sig::RsaEncoding = match self.alg {
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_SHA512,
                    _ => &sig::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &rng, message, &mut out).ok()?;
                Some(b64(&out))
            }
            Material::Ec(kp) => Some(b64(kp.sign(&rng, message).ok()?.as_ref())),
            Material::Ed(kp) => Some(b64(kp.sign(message).as_ref())),
        }
    }
}
