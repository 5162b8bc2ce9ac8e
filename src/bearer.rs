//! Taking the access token from a request (RFC 6750 §2.1, RFC 9449 §7.1, RFC 7235).
//!
//! Only the `Authorization` header carries a token, with the `Bearer` or the `DPoP` scheme
//! (the proof header is checked later, in `dpop/resource.rs`). The scheme matches case-insensitively,
//! one run of spaces separates it from the token, and the token must be a `b64token`
//! (RFC 6750 §2.1): checked here for the `DPoP` scheme (its proof is checked against the token
//! next); a bearer token goes straight to validation, which reads every character anyway (the
//! strict base64url decoding of a JWT's three parts admits nothing else, `jws.rs`) and checks
//! an opaque token before introspecting it (`jwt.rs`). The refusal is the same either way:
//! 401 `invalid_token`, [`Malformed`](crate::ValidationErrorKind::Malformed).
//!
//! A token in the query string is never accepted; together with a header
//! token it makes the request malformed (RFC 6750 §3.1: more than one method).

use std::ops::Range;

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::error::{ValidationError, ValidationErrorKind};

/// What the request carries. `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Bearer<'a> {
    /// No `Authorization` header, or one with another scheme.
    None,
    /// A syntactically acceptable bearer token.
    Token(&'a str),
    /// A syntactically acceptable token sent with the `DPoP` scheme.
    Dpop(&'a str),
}

impl std::fmt::Debug for Bearer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Token(_) => f.write_str("Token([redacted])"),
            Self::Dpop(_) => f.write_str("Dpop([redacted])"),
        }
    }
}

/// Why a request is refused before its token is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExtractError {
    /// 400 `invalid_request`.
    InvalidRequest(&'static str),
    /// 401 `invalid_token` (malformed or oversized token).
    InvalidToken(ValidationError),
}

/// Whether `b` may appear in a `b64token` before its trailing `=`s: ALPHA / DIGIT /
/// "-" / "." / "_" / "~" / "+" / "/".
const fn is_b64token_char(b: u8) -> bool {
    // Branch-free, so that the loop below compiles to vector code: a token is checked in a
    // few hundred instructions instead of ten per byte.
    let lower = b | 0x20;
    (b.wrapping_sub(b'0') < 10)
        | (lower.wrapping_sub(b'a') < 26)
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

pub(crate) fn is_b64token(t: &[u8]) -> bool {
    let body = t
        .iter()
        .rposition(|&b| b != b'=')
        .and_then(|last| t.get(..=last))
        .unwrap_or_default();
    // No early exit (also keeps the time independent of where a bad byte is).
    !body.is_empty() && body.iter().fold(true, |ok, &b| ok & is_b64token_char(b))
}

fn query_has_access_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    })
}

/// Where the token sits in an `Authorization` value with the `Bearer` or `DPoP` scheme.
struct Credential {
    dpop: bool,
    /// The token's bytes in the value: after the scheme and one run of spaces, without
    /// trailing spaces and tabs. Nothing about its characters is checked yet.
    token: Range<usize>,
}

/// The scheme of an `Authorization` value (case-insensitive, then a space or the end) and
/// where its token is; `None` for any other scheme. Worked on bytes, so the value is read
/// once.
fn credential(value: &[u8]) -> Option<Credential> {
    let scheme = |name: &[u8]| {
        value.len() >= name.len()
            && value[..name.len()].eq_ignore_ascii_case(name)
            && value.get(name.len()).is_none_or(|&b| b == b' ')
    };
    let (dpop, scheme_len) = if scheme(b"bearer") {
        (false, 6)
    } else if scheme(b"dpop") {
        (true, 4)
    } else {
        return None;
    };
    let rest = value.get(scheme_len..).unwrap_or_default();
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let end = rest
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |last| last + 1);
    Some(Credential {
        dpop,
        token: scheme_len + start..scheme_len + end,
    })
}

/// Extracts the bearer token. `max_len` caps the token before any further work.
pub(crate) fn extract<'a>(
    headers: &'a HeaderMap,
    query: Option<&str>,
    max_len: usize,
) -> Result<Bearer<'a>, ExtractError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ExtractError::InvalidRequest(
            "more than one Authorization header",
        ));
    }
    let in_query = query_has_access_token(query);
    let Some(value) = first else {
        // A query-string token alone is not a credential we accept: answer as for none.
        return Ok(Bearer::None);
    };
    let Some(Credential { dpop, token }) = credential(value.as_bytes()) else {
        if in_query {
            return Err(ExtractError::InvalidRequest(
                "access token in both the header and the query string",
            ));
        }
        return Ok(Bearer::None);
    };
    if in_query {
        return Err(ExtractError::InvalidRequest(
            "access token in both the header and the query string",
        ));
    }
    let malformed =
        |d| ExtractError::InvalidToken(ValidationError::new(ValidationErrorKind::Malformed, d));
    let token = value.as_bytes().get(token).unwrap_or_default();
    if token.len() > max_len {
        return Err(ExtractError::InvalidToken(ValidationError::new(
            ValidationErrorKind::TooLarge,
            "",
        )));
    }
    // A bearer token's alphabet is checked where it is read (module docs).
    if dpop && !is_b64token(token) {
        return Err(malformed("token is not a b64token"));
    }
    let Ok(token) = std::str::from_utf8(token) else {
        return Err(malformed("token is not a b64token"));
    };
    if token.is_empty() {
        return Err(malformed("token is not a b64token"));
    }
    Ok(if dpop {
        Bearer::Dpop(token)
    } else {
        Bearer::Token(token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn scheme_is_case_insensitive_and_spaces_are_one_run() {
        for v in [
            "Bearer abc.def-ghi_~+/=",
            "bearer abc",
            "BEARER abc",
            "Bearer   abc",
        ] {
            let h = headers(&[v]);
            assert!(
                matches!(extract(&h, None, 100), Ok(Bearer::Token(_))),
                "{v}"
            );
        }
        let h = headers(&["Bearer abc.d"]);
        assert_eq!(extract(&h, None, 100), Ok(Bearer::Token("abc.d")));
    }

    #[test]
    fn b64token_characters_are_exactly_those_of_rfc_6750() {
        for b in 0..=255u8 {
            let expected =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_b64token_char(b), expected, "byte {b:#04x}");
        }
        assert!(is_b64token(b"abc=="));
        assert!(!is_b64token(b"=="));
        assert!(!is_b64token(b"a=b"));
        assert!(!is_b64token(
            format!("{}\u{e9}", "a".repeat(100)).as_bytes()
        ));
    }

    #[test]
    fn the_token_is_trimmed_and_anything_but_a_b64token_is_malformed() {
        let value = |bytes: &[u8]| {
            let mut h = HeaderMap::new();
            h.append(AUTHORIZATION, HeaderValue::from_bytes(bytes).unwrap());
            h
        };
        for (bytes, token) in [
            (&b"Bearer abc \t "[..], "abc"),
            (b"DPoP  abc==\t", "abc=="),
            (b"Bearer a.b.c", "a.b.c"),
        ] {
            let h = value(bytes);
            let got = extract(&h, None, 100);
            assert!(
                got == Ok(Bearer::Token(token)) || got == Ok(Bearer::Dpop(token)),
                "{bytes:?}: {got:?}"
            );
        }
        let malformed =
            |d| ExtractError::InvalidToken(ValidationError::new(ValidationErrorKind::Malformed, d));
        for bytes in [
            &b"Bearer ab\xe9c"[..],
            b"Bearer abc\x80",
            b"Bearer \t",
            b"Bearer ",
            b"Bearer",
            b"DPoP a\tbc",
            b"DPoP a bc",
            b"DPoP ====",
            b"DPoP a.b.c,d",
        ] {
            assert_eq!(
                extract(&value(bytes), None, 100),
                Err(malformed("token is not a b64token")),
                "{bytes:?}"
            );
        }
        // A bearer token goes to validation, which refuses it for the same reason: splitting
        // it into a JWS reads every character (and an opaque one is checked in jwt.rs).
        for (bytes, token) in [
            (&b"Bearer a\tbc"[..], "a\tbc"),
            (b"Bearer a bc", "a bc"),
            (b"Bearer ====", "===="),
            (b"Bearer a.b.c,d", "a.b.c,d"),
            (b"Bearer e30.e30.c!g", "e30.e30.c!g"),
            (b"Bearer e30.e 30.c2ln", "e30.e 30.c2ln"),
        ] {
            assert_eq!(
                extract(&value(bytes), None, 100),
                Ok(Bearer::Token(token)),
                "{bytes:?}"
            );
            let refused = crate::jws::Token::split(token, 100).err();
            assert_eq!(
                refused,
                Some(ValidationError::new(
                    ValidationErrorKind::Malformed,
                    "token is not a b64token"
                )),
                "{bytes:?}"
            );
        }
        // The cap applies to the trimmed token.
        let h = value(b"Bearer abcd   ");
        assert_eq!(extract(&h, None, 4), Ok(Bearer::Token("abcd")));
        assert!(matches!(
            extract(&value(b"Bearer abcde"), None, 4),
            Err(ExtractError::InvalidToken(e)) if e.kind() == ValidationErrorKind::TooLarge
        ));
    }

    #[test]
    fn debug_never_prints_the_token() {
        let h = headers(&["Bearer secret.token.value"]);
        let printed = format!("{:?}", extract(&h, None, 100));
        assert!(!printed.contains("secret"), "{printed}");
        assert!(printed.contains("redacted"), "{printed}");
    }

    #[test]
    fn other_schemes_are_no_credentials() {
        for v in [
            "Basic dXNlcjpwYXNz",
            "DPoPabc",
            "Bearerabc",
            "Token abc",
            "DPo abc",
        ] {
            assert_eq!(extract(&headers(&[v]), None, 100), Ok(Bearer::None), "{v}");
        }
        assert_eq!(extract(&HeaderMap::new(), None, 100), Ok(Bearer::None));
    }

    #[test]
    fn dpop_scheme_is_read_like_bearer() {
        for v in ["DPoP abc", "dpop abc", "DPOP   abc"] {
            assert_eq!(
                extract(&headers(&[v]), None, 100),
                Ok(Bearer::Dpop("abc")),
                "{v}"
            );
        }
        for v in ["DPoP", "DPoP ", "DPoP a b"] {
            assert!(
                matches!(
                    extract(&headers(&[v]), None, 100),
                    Err(ExtractError::InvalidToken(_))
                ),
                "{v}"
            );
        }
        assert!(matches!(
            extract(&headers(&["DPoP a"]), Some("access_token=b"), 100),
            Err(ExtractError::InvalidRequest(_))
        ));
        let printed = format!("{:?}", extract(&headers(&["DPoP secret"]), None, 100));
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn bad_token_syntax_is_invalid_token() {
        for v in [
            "Bearer",
            "Bearer ",
            "DPoP a b",
            "DPoP a,b",
            "DPoP \"abc\"",
            "Bearer\tabc",
            "DPoP ==",
        ] {
            let h = headers(&[v]);
            let r = extract(&h, None, 100);
            assert!(
                matches!(r, Err(ExtractError::InvalidToken(_)) | Ok(Bearer::None)),
                "{v}: {r:?}"
            );
            assert_ne!(r.clone().ok(), Some(Bearer::Token("abc")), "{v}");
        }
        assert!(matches!(
            extract(&headers(&["DPoP a b"]), None, 100),
            Err(ExtractError::InvalidToken(_))
        ));
    }

    #[test]
    fn duplicates_and_two_places_are_invalid_request() {
        assert!(matches!(
            extract(&headers(&["Bearer a", "Bearer b"]), None, 100),
            Err(ExtractError::InvalidRequest(_))
        ));
        assert!(matches!(
            extract(&headers(&["Bearer a"]), Some("x=1&access_token=b"), 100),
            Err(ExtractError::InvalidRequest(_))
        ));
        assert_eq!(
            extract(&HeaderMap::new(), Some("access_token=b"), 100),
            Ok(Bearer::None)
        );
    }

    #[test]
    fn oversized_token_is_refused_before_parsing() {
        let long = format!("Bearer {}", "a".repeat(101));
        match extract(&headers(&[&long]), None, 100) {
            Err(ExtractError::InvalidToken(e)) => {
                assert_eq!(e.kind(), ValidationErrorKind::TooLarge)
            }
            other => panic!("{other:?}"),
        }
    }
}
