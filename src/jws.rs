//! A compact JWS cut into its parts: the header and claims decoded (strict base64url, UTF-8)
//! and read, the signed message and the signature left as they came.

use std::borrow::Cow;

use serde::Deserialize;

use crate::claims::Claims;
use crate::error::{ValidationError, ValidationErrorKind as K};
use crate::json::Text;

/// The JOSE header members we read; all others (`jku`, `x5u`, `jwk`, `x5c`, …) are ignored.
#[derive(Debug, Deserialize, PartialEq)]
pub(crate) struct Header<'a> {
    #[serde(borrow)]
    pub(crate) alg: Text<'a>,
    #[serde(default, borrow)]
    pub(crate) kid: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub(crate) typ: Option<Text<'a>>,
    /// Whether `crit` is present at all (any value, `null` and `[]` included).
    #[serde(default, deserialize_with = "present")]
    pub(crate) crit: bool,
}

impl Header<'_> {
    /// The header with its strings copied out of the JSON it was read from.
    pub(crate) fn detached(&self) -> Header<'static> {
        let text = |t: &Text<'_>| Text(Cow::Owned(String::from(&*t.0)));
        Header {
            alg: text(&self.alg),
            kid: self.kid.as_ref().map(text),
            typ: self.typ.as_ref().map(text),
            crit: self.crit,
        }
    }
}

/// `true` for a member that is present, whatever its value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// A token cut into its parts, header and claims decoded to (UTF-8) JSON text.
pub(crate) struct Token<'t> {
    /// The first two parts and the dot between them: what the signature covers.
    pub(crate) message: &'t [u8],
    pub(crate) signature: &'t str,
    header: String,
    pub(crate) claims: String,
}

/// A token cut at its dots, before anything is decoded: the checks of [`Token::split`] that
/// need no decoding (size, three parts, a canonical signature part), in its order.
pub(crate) struct Cut<'t> {
    token: &'t str,
    /// The first two parts and the dot between them: what the signature covers.
    pub(crate) message: &'t [u8],
    pub(crate) signature: &'t str,
    h64: &'t str,
    c64: &'t str,
}

impl<'t> Cut<'t> {
    pub(crate) fn new(token: &'t str, max_token_bytes: usize) -> Result<Self, ValidationError> {
        if token.len() > max_token_bytes {
            return Err(ValidationError::of(K::TooLarge));
        }
        let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
        let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
            return Err(malformed(token, "not three parts"));
        };
        let (Some(h64), Some(c64), Some(signature), Some(message)) = (
            token.get(..first),
            token.get(first + 1..second),
            token.get(second + 1..),
            token.as_bytes().get(..second),
        ) else {
            return Err(malformed(token, "not three parts"));
        };
        // Every character of the three parts is checked here, by their strict decoding: a
        // token that splits is a `b64token` (RFC 6750 §2.1), which is why the front door does
        // not scan a bearer token for its alphabet first (`bearer.rs`).
        if !crate::base64url::is_canonical(signature) {
            return Err(malformed(token, "signature is not base64url"));
        }
        Ok(Self {
            token,
            message,
            signature,
            h64,
            c64,
        })
    }

    /// The header and the claims decoded (strict base64url, UTF-8).
    pub(crate) fn decode(self) -> Result<Token<'t>, ValidationError> {
        Ok(Token {
            message: self.message,
            signature: self.signature,
            header: decode_text(self.h64)
                .ok_or_else(|| malformed(self.token, "header is not a JSON object"))?,
            claims: decode_text(self.c64)
                .ok_or_else(|| malformed(self.token, "claims are not a JSON object"))?,
        })
    }
}

impl<'t> Token<'t> {
    pub(crate) fn split(token: &'t str, max_token_bytes: usize) -> Result<Self, ValidationError> {
        Cut::new(token, max_token_bytes)?.decode()
    }

    /// The header, and the claims read into `claims` (a fresh [`Claims::default`]; duplicate
    /// claim names refused).
    pub(crate) fn read<'s>(
        &'s self,
        claims: &mut Claims<'s>,
    ) -> Result<Header<'s>, ValidationError> {
        let header: Header<'_> = serde_json::from_str(&self.header)
            .map_err(|_| ValidationError::new(K::Malformed, "header is not a JSON object"))?;
        if !claims.read(&self.claims) {
            return Err(ValidationError::new(
                K::Malformed,
                "claims are not a JSON object",
            ));
        }
        Ok(header)
    }
}

/// The refusal of a token that is not a JWS; its detail says first whether the token is not
/// a `b64token` at all (what the front door said before it left the alphabet to this check).
fn malformed(token: &str, detail: &'static str) -> ValidationError {
    let detail = if crate::bearer::is_b64token(token.as_bytes()) {
        detail
    } else {
        "token is not a b64token"
    };
    ValidationError::new(K::Malformed, detail)
}

/// A base64url part decoded to UTF-8 text.
fn decode_text(part: &str) -> Option<String> {
    String::from_utf8(crate::base64url::decode(part)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn token(header: &[u8]) -> String {
        format!("{}.{}.c2ln", b64(header), b64(br#"{"iss":"a"}"#))
    }

    #[test]
    fn headers_of_every_size_are_read_alike() {
        // Around the in-place size and far past it (an `x5c` chain).
        for pad in [
            0, 300, 340, 350, 351, 352, 353, 360, 383, 384, 385, 400, 5000,
        ] {
            let header = format!(r#"{{"alg":"RS256","kid":"k","x":"{}"}}"#, "a".repeat(pad));
            let token = token(header.as_bytes());
            let parts = Token::split(&token, usize::MAX).unwrap();
            let header = parts.read(&mut Claims::default()).unwrap();
            assert_eq!(&*header.alg.0, "RS256", "{pad}");
            assert_eq!(header.kid.map(|k| k.0).as_deref(), Some("k"), "{pad}");
        }
    }

    #[test]
    fn a_header_that_is_not_utf8_or_json_is_refused() {
        let bad: [&[u8]; 3] = [
            b"{\"alg\":\"RS256\",\"x\":\"\xff\"}",
            b"{\"alg\":\"RS256\"} trailing",
            b"[]",
        ];
        for header in bad {
            for pad in [0, 500] {
                let mut header = header.to_vec();
                header.extend(std::iter::repeat_n(b' ', pad));
                let token = token(&header);
                let parts = Token::split(&token, usize::MAX);
                assert!(parts.is_err() || parts.unwrap().read(&mut Claims::default()).is_err());
            }
        }
        // Not strict base64url: padding, the standard alphabet, a length no encoding has,
        // non-zero trailing bits ("QQ" is the canonical spelling of "QB").
        assert!(Token::split("eyJhbGciOiJSUzI1NiJ9QQ.e30.c2ln", usize::MAX).is_ok());
        for h64 in [
            "eyJhbGciOiJSUzI1NiJ9=",
            "eyJhbGciOiJSUzI1NiJ+",
            "eyJhbGciOiJSUzI1NiJ9B",
            "eyJhbGciOiJSUzI1NiJ9QB",
        ] {
            assert!(
                Token::split(&format!("{h64}.e30.c2ln"), usize::MAX).is_err(),
                "{h64}"
            );
        }
    }
}
