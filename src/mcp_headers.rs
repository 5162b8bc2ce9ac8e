//! The MCP 2026-07-28 standard request headers (`MCP-Protocol-Version`, `Mcp-Method`,
//! `Mcp-Name`) as the gate reads them, and their agreement with the body's message
//! (`HeaderMismatch`, JSON-RPC `-32020`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::mcp_body::{Message, Shape};
use crate::mcp_request_headers::{GateHeaders, Values};

/// Protocol revisions whose servers must check `Mcp-Method` and `Mcp-Name` against the body
/// (MCP 2026-07-28, "Server Validation"). Deciding from the headers alone is safe only for
/// these: a server speaking an older revision ignores the headers, and a revision unknown
/// here may have other rules.
const HEADER_REVISIONS: [&str; 1] = ["2026-07-28"];

/// The standard headers of one request; each present at most once, as visible ASCII, with
/// `Mcp-Name` decoded from its `=?base64?…?=` form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct McpHeaders {
    pub(crate) version: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) name: Option<String>,
}

/// Why the headers do not agree with the body, or can not be read: the `message` of the
/// `-32020` answer. Fixed texts: nothing the client sent is echoed.
pub(crate) type Mismatch = &'static str;

impl McpHeaders {
    /// Reads the headers; a repeated, non-ASCII or badly encoded one is a mismatch.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn read(headers: &http::HeaderMap) -> Result<Self, Mismatch> {
        Self::from_scan(&GateHeaders::scan(headers))
    }

    /// [`read`](Self::read), from the gate's one pass over the headers.
    pub(crate) fn from_scan(headers: &GateHeaders<'_>) -> Result<Self, Mismatch> {
        let version = one(headers.protocol_version)?;
        let method = one(headers.method)?;
        let name = match one(headers.name)? {
            None => None,
            Some(raw) => Some(decode(raw)?),
        };
        Ok(Self {
            version,
            method,
            name,
        })
    }

    /// Whether the request speaks a revision whose servers check these headers against the
    /// body themselves (exactly one known `MCP-Protocol-Version` of 2026-07-28 or later).
    pub(crate) fn server_checks_agreement(&self) -> bool {
        self.version
            .as_deref()
            .is_some_and(|v| HEADER_REVISIONS.contains(&v))
    }

    /// Whether the request claims a revision in which the headers are required (and list
    /// results carry `cacheScope`): any `MCP-Protocol-Version` that sorts at or after
    /// 2026-07-28, as servers compare them.
    pub(crate) fn is_2026(&self) -> bool {
        self.version
            .as_deref()
            .is_some_and(|v| v >= HEADER_REVISIONS[0])
    }

    /// The operation named by the headers alone, for deciding without reading the body:
    /// `Some` when the request speaks a revision whose server checks agreement, `Mcp-Method`
    /// is present, and `Mcp-Name` is present wherever the method names something.
    pub(crate) fn operation(&self) -> Option<Message<'_>> {
        if !self.server_checks_agreement() {
            return None;
        }
        let method = self.method.as_deref()?;
        // What these name is only in the body.
        if matches!(method, "completion/complete" | "subscriptions/listen") {
            return None;
        }
        let mut message = Message {
            method: Some(method.into()),
            ..Message::default()
        };
        if names_target(Some(method)) {
            let name = Some(self.name.as_deref()?.into());
            match method {
                "tools/call" | "prompts/get" => message.name = name,
                _ => message.uri = name,
            }
        }
        Some(message)
    }

    /// Checks the headers against the body: when the request claims a revision that requires
    /// them, or sends `Mcp-Method` anyway, `Mcp-Method` must equal the body's method and
    /// `Mcp-Name` what the message names (for the methods that name something). A batch can
    /// not agree with a header naming one method.
    pub(crate) fn check(&self, body: &Shape<'_>) -> Result<(), Mismatch> {
        if !self.is_2026() && self.method.is_none() {
            return Ok(());
        }
        let message = match body {
            Shape::One(message) => message,
            Shape::Batch => {
                return Err("Header mismatch: a batch can not carry Mcp-Method");
            }
            // A scalar body is no message; the server answers it.
            Shape::None => return Ok(()),
        };
        let Some(method) = message.method.as_deref() else {
            return Err("Header mismatch: the message has no method");
        };
        match self.method.as_deref() {
            None if method == "initialize" => return Ok(()),
            None => return Err("Header mismatch: missing required Mcp-Method header"),
            Some(header) if header != method => {
                return Err("Header mismatch: Mcp-Method does not match the body's method");
            }
            Some(_) => {}
        }
        if names_target(Some(method)) {
            match (self.name.as_deref(), message.target()) {
                (None, _) => return Err("Header mismatch: missing required Mcp-Name header"),
                (Some(header), Some(body)) if header == body => {}
                _ => return Err("Header mismatch: Mcp-Name does not match the body"),
            }
        }
        Ok(())
    }
}

/// Methods whose `Mcp-Name` carries what they name (`params.name` or `params.uri`).
fn names_target(method: Option<&str>) -> bool {
    matches!(
        method,
        Some(
            "tools/call"
                | "prompts/get"
                | "resources/read"
                | "resources/subscribe"
                | "resources/unsubscribe"
        )
    )
}

/// The single value of a header, as text; a repeated or non-ASCII header is a mismatch.
fn one(values: Values<'_>) -> Result<Option<String>, Mismatch> {
    let Some(first) = values.first else {
        return Ok(None);
    };
    if values.repeated {
        return Err("Header mismatch: a standard MCP header is repeated");
    }
    let text = first
        .to_str()
        .map_err(|_| "Header mismatch: a standard MCP header is not visible ASCII")?;
    Ok(Some(text.to_owned()))
}

/// A header value, decoded from the Base64 sentinel form `=?base64?…?=` (case-sensitive
/// markers, standard alphabet with padding, UTF-8) when it has that form.
fn decode(raw: String) -> Result<String, Mismatch> {
    let Some(encoded) = raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    else {
        return Ok(raw);
    };
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| "Header mismatch: Mcp-Name is not valid Base64")?;
    String::from_utf8(bytes).map_err(|_| "Header mismatch: Mcp-Name is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp_body::read;
    use http::HeaderMap;
    use std::borrow::Cow;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn check(pairs: &[(&str, &str)], body: &str) -> Result<(), Mismatch> {
        McpHeaders::read(&headers(pairs))?.check(&read(body.as_bytes(), |_, _| {}).unwrap())
    }

    const V: (&str, &str) = ("MCP-Protocol-Version", "2026-07-28");
    const CALL: &str =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_report"}}"#;

    #[test]
    fn agreeing_headers_pass() {
        let ok = [
            V,
            ("mcp-method", "tools/call"),
            ("Mcp-Name", "admin_report"),
        ];
        assert_eq!(check(&ok, CALL), Ok(()));
        // Base64 sentinel form, for any value.
        let encoded = [
            V,
            ("mcp-method", "prompts/get"),
            ("mcp-name", "=?base64?5pel5aCx?="),
        ];
        assert_eq!(
            check(
                &encoded,
                r#"{"method":"prompts/get","params":{"name":"日報"}}"#
            ),
            Ok(())
        );
        // Older revisions without the headers are not asked for them.
        assert_eq!(
            check(&[("mcp-protocol-version", "2025-11-25")], CALL),
            Ok(())
        );
        assert_eq!(check(&[], CALL), Ok(()));
        // initialize may omit Mcp-Method; methods that name nothing need no Mcp-Name.
        assert_eq!(check(&[V], r#"{"id":1,"method":"initialize"}"#), Ok(()));
        assert_eq!(
            check(
                &[V, ("mcp-method", "tools/list")],
                r#"{"id":1,"method":"tools/list"}"#
            ),
            Ok(())
        );
    }

    #[test]
    fn disagreement_is_a_mismatch() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[V, ("mcp-method", "tools/list")], CALL),
            (
                &[V, ("mcp-method", "tools/call"), ("mcp-name", "whoami")],
                CALL,
            ),
            (&[V, ("mcp-method", "tools/call")], CALL),
            (&[V], CALL),
            (&[V, ("mcp-name", "admin_report")], CALL),
            // Sent by a 2025 client anyway: checked all the same.
            (&[("mcp-method", "tools/list")], CALL),
            (
                &[
                    V,
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "=?base64?!!?="),
                ],
                CALL,
            ),
            (
                &[
                    V,
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "admin_report"),
                    ("mcp-name", "admin_report"),
                ],
                CALL,
            ),
            (
                &[
                    V,
                    V,
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "admin_report"),
                ],
                CALL,
            ),
            (
                &[
                    V,
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "admin_report"),
                ],
                &format!("[{CALL}]"),
            ),
            // A resource named by Mcp-Name must be the body's uri, not its name.
            (
                &[V, ("mcp-method", "resources/read"), ("mcp-name", "n")],
                r#"{"method":"resources/read","params":{"name":"n","uri":"admin://report"}}"#,
            ),
            // Case matters in values.
            (
                &[
                    V,
                    ("mcp-method", "Tools/Call"),
                    ("mcp-name", "admin_report"),
                ],
                CALL,
            ),
        ];
        for (pairs, body) in cases {
            assert!(check(pairs, body).is_err(), "{pairs:?} {body}");
        }
        // A version sorting after 2026-07-28 requires the headers too.
        assert!(check(&[("mcp-protocol-version", "2027-01-01")], CALL).is_err());
    }

    #[test]
    fn the_headers_alone_name_an_operation_only_for_known_revisions() {
        let read = |pairs: &[(&str, &str)]| {
            let read = McpHeaders::read(&headers(pairs)).unwrap();
            read.operation().map(|op| {
                let target = op.target().map(str::to_owned);
                (op.method.map(Cow::into_owned), target)
            })
        };
        let op = read(&[
            V,
            ("mcp-method", "resources/read"),
            ("mcp-name", "admin://report"),
        ])
        .unwrap();
        assert_eq!(op.1.as_deref(), Some("admin://report"));
        let op = read(&[
            V,
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?d2hvYW1p?="),
        ])
        .unwrap();
        assert_eq!(op.1.as_deref(), Some("whoami"));
        assert!(read(&[V, ("mcp-method", "tools/list")]).is_some());
        // Missing Mcp-Name where the method names something; no version; an unknown or old one.
        assert_eq!(read(&[V, ("mcp-method", "tools/call")]), None);
        assert_eq!(
            read(&[("mcp-method", "tools/call"), ("mcp-name", "a")]),
            None
        );
        for version in ["2025-11-25", "2027-01-01", "9"] {
            assert_eq!(
                read(&[
                    ("mcp-protocol-version", version),
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "a")
                ]),
                None
            );
        }
    }
}
