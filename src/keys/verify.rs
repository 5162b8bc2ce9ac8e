//! Signature verification with keys parsed once per key set, not once per request.
//!
//! With the `aws_lc_rs` feature (the default) each JWK becomes an aws-lc-rs `ParsedPublicKey`
//! when its key set is fetched, so a request pays only for the signature check itself. With only
//! `rust_crypto`, verification goes through jsonwebtoken's `crypto::verify` with a
//! `DecodingKey` built once per key.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};

use crate::algorithm::{Algorithm, KeyFamily};

/// Smallest RSA modulus accepted (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;

/// A public key ready to verify signatures.
pub(crate) struct PublicKey {
    family: KeyFamily,
    backend: Backend,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

fn b64(s: &str) -> Result<Vec<u8>, &'static str> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| "a key member is not base64url")
}

fn rsa_bits(n: &[u8]) -> usize {
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

impl PublicKey {
    pub(crate) fn family(&self) -> KeyFamily {
        self.family
    }

    /// Builds a key from a JWK, or says why the key can not be used.
    pub(crate) fn from_jwk(jwk: &Jwk) -> Result<Self, &'static str> {
        match &jwk.algorithm {
            AlgorithmParameters::RSA(p) => {
                let n = b64(&p.n)?;
                let e = b64(&p.e)?;
                if rsa_bits(&n) < MIN_RSA_BITS {
                    return Err("RSA key shorter than 2048 bits");
                }
                Ok(Self {
                    family: KeyFamily::Rsa,
                    backend: Backend::rsa(jwk, &n, &e)?,
                })
            }
            AlgorithmParameters::EllipticCurve(p) => {
                let (family, len) = match p.curve {
                    EllipticCurve::P256 => (KeyFamily::P256, 32),
                    EllipticCurve::P384 => (KeyFamily::P384, 48),
                    EllipticCurve::P521 => (KeyFamily::P521, 66),
                    _ => return Err("unsupported curve for kty EC"),
                };
                let x = b64(&p.x)?;
                let y = b64(&p.y)?;
                if x.len() != len || y.len() != len {
                    return Err("EC coordinates have the wrong length for the curve");
                }
                Ok(Self {
                    family,
                    backend: Backend::ec(jwk, family, &x, &y)?,
                })
            }
            AlgorithmParameters::OctetKeyPair(p) => {
                if p.curve != EllipticCurve::Ed25519 {
                    return Err("unsupported curve for kty OKP");
                }
                let x = b64(&p.x)?;
                if x.len() != 32 {
                    return Err("Ed25519 key has the wrong length");
                }
                Ok(Self {
                    family: KeyFamily::Ed25519,
                    backend: Backend::ed25519(jwk, &x)?,
                })
            }
            AlgorithmParameters::OctetKey(_) => Err("symmetric key (kty oct)"),
            _ => Err("unsupported kty"),
        }
    }

    /// Checks `signature_b64` (the third part of the token) over `message` (the first two
    /// parts). The caller has already checked that `alg` fits this key's family.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature_b64: &str) -> bool {
        self.backend.verify(alg, message, signature_b64)
    }
}

#[cfg(feature = "aws_lc_rs")]
mod backend {
    use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};

    use super::*;

    pub(crate) enum Backend {
        /// One parsed key per RSA algorithm: RS256, RS384, RS512, PS256, PS384, PS512.
        Rsa(Box<[ParsedPublicKey; 6]>),
        Single(ParsedPublicKey),
    }

    fn rsa_slot(alg: Algorithm) -> Option<usize> {
        Some(match alg {
            Algorithm::RS256 => 0,
            Algorithm::RS384 => 1,
            Algorithm::RS512 => 2,
            Algorithm::PS256 => 3,
            Algorithm::PS384 => 4,
            Algorithm::PS512 => 5,
            _ => return None,
        })
    }

    impl Backend {
        pub(crate) fn rsa(_jwk: &Jwk, n: &[u8], e: &[u8]) -> Result<Self, &'static str> {
            let c = RsaPublicKeyComponents { n, e };
            let p = |params| {
                c.to_parsed_public_key(params)
                    .map_err(|_| "invalid RSA key")
            };
            Ok(Self::Rsa(Box::new([
                p(&sig::RSA_PKCS1_2048_8192_SHA256)?,
                p(&sig::RSA_PKCS1_2048_8192_SHA384)?,
                p(&sig::RSA_PKCS1_2048_8192_SHA512)?,
                p(&sig::RSA_PSS_2048_8192_SHA256)?,
                p(&sig::RSA_PSS_2048_8192_SHA384)?,
                p(&sig::RSA_PSS_2048_8192_SHA512)?,
            ])))
        }

        pub(crate) fn ec(
            _jwk: &Jwk,
            family: KeyFamily,
            x: &[u8],
            y: &[u8],
        ) -> Result<Self, &'static str> {
            let alg: &'static sig::EcdsaVerificationAlgorithm = match family {
                KeyFamily::P256 => &sig::ECDSA_P256_SHA256_FIXED,
                KeyFamily::P384 => &sig::ECDSA_P384_SHA384_FIXED,
                _ => &sig::ECDSA_P521_SHA512_FIXED,
            };
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(4);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            ParsedPublicKey::new(alg, point)
                .map(Backend::Single)
                .map_err(|_| "EC point is not on the curve")
        }

        pub(crate) fn ed25519(_jwk: &Jwk, x: &[u8]) -> Result<Self, &'static str> {
            ParsedPublicKey::new(&sig::ED25519, x)
                .map(Backend::Single)
                .map_err(|_| "invalid Ed25519 key")
        }

        pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature_b64: &str) -> bool {
            let Some(signature) = crate::base64url::decode(signature_b64) else {
                return false;
            };
            let key = match self {
                Self::Rsa(keys) => match rsa_slot(alg) {
                    Some(i) => &keys[i],
                    None => return false,
                },
                Self::Single(key) => key,
            };
            key.verify_sig(message, &signature).is_ok()
        }
    }
}

#[cfg(not(feature = "aws_lc_rs"))]
mod backend {
    use jsonwebtoken::DecodingKey;

    use super::*;

    pub(crate) struct Backend(DecodingKey);

    fn to_jwt(alg: Algorithm) -> Option<jsonwebtoken::Algorithm> {
        use jsonwebtoken::Algorithm as J;
        Some(match alg {
            Algorithm::RS256 => J::RS256,
            Algorithm::RS384 => J::RS384,
            Algorithm::RS512 => J::RS512,
            Algorithm::PS256 => J::PS256,
            Algorithm::PS384 => J::PS384,
            Algorithm::PS512 => J::PS512,
            Algorithm::ES256 => J::ES256,
            Algorithm::ES384 => J::ES384,
            Algorithm::EdDSA => J::EdDSA,
            _ => return None,
        })
    }

    impl Backend {
        pub(crate) fn rsa(jwk: &Jwk, _n: &[u8], _e: &[u8]) -> Result<Self, &'static str> {
            DecodingKey::from_jwk(jwk)
                .map(Backend)
                .map_err(|_| "invalid RSA key")
        }

        pub(crate) fn ec(
            jwk: &Jwk,
            family: KeyFamily,
            _x: &[u8],
            _y: &[u8],
        ) -> Result<Self, &'static str> {
            if family == KeyFamily::P521 {
                return Err("P-521 needs the aws_lc_rs backend");
            }
            DecodingKey::from_jwk(jwk)
                .map(Backend)
                .map_err(|_| "invalid EC key")
        }

        pub(crate) fn ed25519(jwk: &Jwk, _x: &[u8]) -> Result<Self, &'static str> {
            DecodingKey::from_jwk(jwk)
                .map(Backend)
                .map_err(|_| "invalid Ed25519 key")
        }

        pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature_b64: &str) -> bool {
            match to_jwt(alg) {
                Some(a) => jsonwebtoken::crypto::verify(signature_b64, message, &self.0, a)
                    .unwrap_or(false),
                None => false,
            }
        }
    }
}

use backend::Backend;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_bit_length_ignores_leading_zeros() {
        assert_eq!(rsa_bits(&[0, 0, 0x80, 0]), 16);
        assert_eq!(rsa_bits(&[0x01]), 1);
        assert_eq!(rsa_bits(&[0, 0]), 0);
        assert_eq!(rsa_bits(&[0xff; 256]), 2048);
        assert_eq!(rsa_bits(&[0x7f; 256]), 2047);
    }
}
