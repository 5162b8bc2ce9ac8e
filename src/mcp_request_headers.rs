//! The request headers the MCP gate reads (`mcp_admit.rs`, `mcp_headers.rs`), found in one
//! pass over the header map instead of one lookup each: a request carries a handful of
//! headers, and comparing a name against a known one is cheaper than hashing it for a lookup.

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue};

// Names parsed once, not on every request.
pub(crate) const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub(crate) const METHOD: HeaderName = HeaderName::from_static("mcp-method");
pub(crate) const NAME: HeaderName = HeaderName::from_static("mcp-name");

/// One header as the gate reads it: its first value and whether another came.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Values<'a> {
    pub(crate) first: Option<&'a HeaderValue>,
    pub(crate) repeated: bool,
}

impl<'a> Values<'a> {
    fn add(&mut self, value: &'a HeaderValue) {
        match self.first {
            None => self.first = Some(value),
            Some(_) => self.repeated = true,
        }
    }
}

/// What the gate reads of a request's headers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GateHeaders<'a> {
    /// Some `Transfer-Encoding` value names a coding other than `chunked` (or is not text).
    pub(crate) foreign_transfer_coding: bool,
    /// Some `Content-Encoding` value is not `identity`.
    pub(crate) content_encoded: bool,
    pub(crate) content_type: Values<'a>,
    pub(crate) content_length: Values<'a>,
    pub(crate) protocol_version: Values<'a>,
    pub(crate) method: Values<'a>,
    pub(crate) name: Values<'a>,
}

impl<'a> GateHeaders<'a> {
    /// Reads `headers` once, every value of every name.
    pub(crate) fn scan(headers: &'a HeaderMap) -> Self {
        let mut seen = Self::default();
        for (name, value) in headers {
            if name == CONTENT_TYPE {
                seen.content_type.add(value);
            } else if name == CONTENT_LENGTH {
                seen.content_length.add(value);
            } else if name == TRANSFER_ENCODING {
                seen.foreign_transfer_coding |= !only_chunked(value);
            } else if name == CONTENT_ENCODING {
                seen.content_encoded |= !value.as_bytes().eq_ignore_ascii_case(b"identity");
            } else if name == PROTOCOL_VERSION {
                seen.protocol_version.add(value);
            } else if name == METHOD {
                seen.method.add(value);
            } else if name == NAME {
                seen.name.add(value);
            }
        }
        seen
    }
}

/// Whether a `Transfer-Encoding` value lists only `chunked` (RFC 9112 §6.1: a recipient
/// answers 501 for a coding it does not apply itself).
fn only_chunked(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        v.split(',')
            .all(|c| c.trim().eq_ignore_ascii_case("chunked"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// The one pass finds what a lookup per header finds, in any order and case of names.
    #[test]
    fn finds_what_lookups_find() {
        let headers = map(&[
            ("Accept", "application/json"),
            ("MCP-Method", "tools/call"),
            ("content-type", "application/json"),
            ("Mcp-Name", "a"),
            ("X-Other", "1"),
            ("mcp-name", "b"),
            ("Content-Length", "10"),
            ("Content-Encoding", "IDENTITY"),
            ("Transfer-Encoding", "Chunked"),
        ]);
        let seen = GateHeaders::scan(&headers);
        let first = |v: Values<'_>| v.first.map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(first(seen.method).as_deref(), Some("tools/call"));
        assert!(!seen.method.repeated);
        assert_eq!(first(seen.name).as_deref(), Some("a"));
        assert!(seen.name.repeated);
        assert_eq!(
            first(seen.content_type).as_deref(),
            Some("application/json")
        );
        assert_eq!(first(seen.content_length).as_deref(), Some("10"));
        assert!(seen.protocol_version.first.is_none() && !seen.protocol_version.repeated);
        assert!(!seen.content_encoded && !seen.foreign_transfer_coding);

        for (pairs, encoded, foreign) in [
            (&[("Content-Encoding", "gzip")][..], true, false),
            (
                &[("Content-Encoding", "identity"), ("Content-Encoding", "br")],
                true,
                false,
            ),
            (&[("Transfer-Encoding", "gzip, chunked")], false, true),
            (
                &[("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "x")],
                false,
                true,
            ),
            (&[("Transfer-Encoding", " chunked ,CHUNKED")], false, false),
        ] {
            let headers = map(pairs);
            let seen = GateHeaders::scan(&headers);
            assert_eq!(seen.content_encoded, encoded, "{pairs:?}");
            assert_eq!(seen.foreign_transfer_coding, foreign, "{pairs:?}");
        }
        let mut odd = HeaderMap::new();
        odd.append(
            TRANSFER_ENCODING,
            HeaderValue::from_bytes(b"chunked\xff").unwrap(),
        );
        assert!(GateHeaders::scan(&odd).foreign_transfer_coding);
    }
}
