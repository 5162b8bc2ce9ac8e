//! Entry points for the `fuzz/` targets (feature `fuzzing`; not a public API, no stability
//! promise): every parser that sees untrusted bytes, each with the invariants it must keep.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

use crate::algorithm::Algorithm;
use crate::auth::ResourceServerAuth;
use crate::bearer::{self, Bearer};
use crate::challenge;
use crate::env;
use crate::keys::KeySet;
use crate::keys::discovery::{Reading, read_document};
use crate::testkit::{MockAuthorizationServer, SigningKey};
use crate::{mcp_arguments, mcp_body, mcp_headers, mcp_policy};

/// The `Authorization` header: a token handed on is non-empty, trimmed and within the cap; a
/// DPoP token is a `b64token`, and a bearer token is one whenever it splits into a JWS (its
/// alphabet is checked by that split, or before introspection).
pub fn authorization_header(value: &[u8], query: Option<&str>) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let (token, dpop) = match bearer::extract(&headers, query, 1024) {
        Ok(Bearer::Token(token)) => (token, false),
        Ok(Bearer::Dpop(token)) => (token, true),
        _ => return,
    };
    assert!(!token.is_empty() && token.len() <= 1024);
    assert!(!token.starts_with(' ') && !token.ends_with([' ', '\t']));
    let split = crate::jws::Token::split(token, 1024);
    if dpop || split.is_ok() {
        assert!(bearer::is_b64token(token.as_bytes()), "{token:?}");
        assert!(!token.contains([' ', ',', '"', '\\']), "{token:?}");
    }
    // A bearer token outside the alphabet is refused as malformed on both validation paths.
    if !bearer::is_b64token(token.as_bytes()) {
        let malformed =
            |e: crate::ValidationError| e.kind() == crate::ValidationErrorKind::Malformed;
        assert!(split.err().is_some_and(malformed), "{token:?}");
        assert!(
            crate::jwt::opaque_token(token, 1024)
                .err()
                .is_some_and(malformed),
            "{token:?}"
        );
    }
}

/// A JWK Set: parsing never fails on a bad key, only on a body that is not a set; every
/// lookup answers.
pub fn jwk_set(body: &[u8]) {
    if let Ok(set) = KeySet::parse(body, "fuzz") {
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            let _ = set.find(None, alg);
            let _ = set.find(Some("k"), alg);
        }
    }
}

/// An authorization server's metadata: a `jwks_uri` is accepted only from the configured
/// issuer's document, and only `https` for a remote issuer.
pub fn metadata(body: &[u8]) {
    let issuer = "https://as.example.com";
    if let Reading::Found(uri) = read_document(body, issuer, false) {
        // As the HTTP client will read it (the URL standard: `https:host/x` is
        // `https://host/x`).
        let parsed = reqwest::Url::parse(&uri).ok();
        assert!(
            parsed.is_some_and(|u| u.scheme() == "https" && !crate::config::is_loopback_host(&u)),
            "{uri}"
        );
    }
}

/// The MCP gate's classifier, against a full parse: for every message the gate reads the
/// same `method`, `params.name` and `params.uri` as serde_json's own value tree, and the same
/// `params.arguments` when a rule asks for them, whenever serde_json can parse the body at all.
pub fn mcp_messages(body: &[u8]) {
    let Ok(gate) = mcp_body::messages(body) else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let (full, batch): (Vec<&serde_json::Value>, bool) = match &value {
        serde_json::Value::Array(list) => (list.iter().collect(), true),
        one @ serde_json::Value::Object(_) => (vec![one], false),
        _ => (Vec::new(), false),
    };
    assert_eq!(gate.is_batch(), batch);
    assert_eq!(gate.list().len(), full.len());
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    for (i, (read, message)) in gate.list().iter().zip(full).enumerate() {
        let params = message.get("params");
        assert_eq!(
            read.method.as_deref(),
            text(message.get("method")).as_deref()
        );
        assert_eq!(
            read.name.as_deref(),
            text(params.and_then(|p| p.get("name"))).as_deref()
        );
        assert_eq!(
            read.uri.as_deref(),
            text(params.and_then(|p| p.get("uri"))).as_deref()
        );
        let reference = params.and_then(|p| p.get("ref"));
        let expected = match text(reference.and_then(|r| r.get("type"))).as_deref() {
            Some("ref/prompt") => text(reference.and_then(|r| r.get("name")))
                .map(crate::mcp_params::Reference::Prompt),
            Some("ref/resource") => text(reference.and_then(|r| r.get("uri")))
                .map(crate::mcp_params::Reference::Resource),
            _ => None,
        };
        assert_eq!(read.reference, expected);
        let subscriptions: Vec<String> = params
            .and_then(|p| p.get("notifications"))
            .and_then(|n| n.get("resourceSubscriptions"))
            .and_then(|l| l.as_array())
            .map(|l| {
                l.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(read.subscriptions, subscriptions);
        if let Ok(arguments) = mcp_arguments::arguments(body, i) {
            let expected = params
                .filter(|p| p.is_object())
                .and_then(|p| p.get("arguments"));
            assert_eq!(arguments.as_ref(), expected);
        }
    }
}

/// An MCP request's standard headers against its body: reading never panics; when the
/// headers agree with the body and name an operation by themselves (what
/// `decide_from_headers` decides on), it is exactly the body's operation.
pub fn mcp_request(data: &[u8]) {
    // First bytes: the three header values, separated by newlines; the rest: the body.
    let mut parts = data.splitn(4, |&b| b == b'\n');
    let (Some(version), Some(method), Some(name), Some(body)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let mut headers = HeaderMap::new();
    for (header, value) in [
        ("mcp-protocol-version", version),
        ("mcp-method", method),
        ("mcp-name", name),
    ] {
        if !value.is_empty()
            && let Ok(v) = HeaderValue::from_bytes(value)
        {
            headers.insert(header, v);
        }
    }
    let Ok(read) = mcp_headers::McpHeaders::read(&headers) else {
        return;
    };
    let Ok(shape) = mcp_body::read(body, |_, _| {}) else {
        return;
    };
    if read.check(&shape).is_ok()
        && let Some(op) = read.operation()
        && let mcp_body::Shape::One(message) = &shape
    {
        assert_eq!(op.method, message.method);
        assert_eq!(op.target(), message.target());
    }
}

/// A resource URI against a URI template: matching takes time linear in the URI, never
/// panics, and agrees with a plain backtracking matcher on short inputs (literals as written
/// or in lower case); every spelling of a URI is produced without panicking.
pub fn resource_uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template, uri) = text.split_once('\n').unwrap_or((text, ""));
    let _ = mcp_policy::spellings(uri);
    let Ok(parsed) = mcp_policy::UriTemplate::parse(template) else {
        return;
    };
    let fast = parsed.matches(uri);
    if uri.len() <= 64 && template.len() <= 32 {
        // Literals also match in lower case (a URI's lower-case spelling meets `ADMIN://…`).
        let reference =
            reference_match(template, uri) || reference_match(&template.to_ascii_lowercase(), uri);
        assert_eq!(fast, reference, "{template:?} {uri:?}");
    }
}

/// The template semantics by backtracking: `{var}` one or more characters without `/`, `?`,
/// `#`; an expression with an operator any characters; literals as they are.
fn reference_match(template: &str, uri: &str) -> bool {
    let Some(open) = template.find('{') else {
        return template == uri;
    };
    let (literal, rest) = template.split_at(open);
    let Some(uri) = uri.strip_prefix(literal) else {
        return false;
    };
    let Some(close) = rest.find('}') else {
        return false;
    };
    let any = rest[1..close].starts_with(['+', '#', '/', '.', ';', '?', '&']);
    let after = &rest[close + 1..];
    let bytes = uri.as_bytes();
    let start = usize::from(!any);
    (start..=bytes.len()).any(|n| {
        uri.is_char_boundary(n)
            && (any || !bytes[..n].iter().any(|b| matches!(b, b'/' | b'?' | b'#')))
            && reference_match(after, &uri[n..])
    })
}

/// The environment's JSON list of authorization servers: an error or entries, never a panic.
pub fn env_entries(text: &str) {
    if let Ok(entries) = env::parse_entries(text) {
        assert!(!entries.is_empty());
    }
}

/// A `Bearer` challenge with arbitrary parameter values: always a valid header value whose
/// quoted values hold no `"` or `\`.
pub fn challenge(values: &[&str]) {
    let params: Vec<(&str, &str)> = values.iter().map(|v| ("p", *v)).collect();
    let header = challenge::challenge("Bearer", &params);
    let text = header.to_str().unwrap_or_default();
    assert!(text.starts_with("Bearer"));
    let inner: String = text
        .split("p=\"")
        .skip(1)
        .map(|part| part.trim_end_matches(", ").trim_end_matches('"'))
        .collect();
    assert!(!inner.contains(['"', '\\']), "{text}");
}

/// A resource server trusting one mock authorization server whose key the fuzzer signs with.
pub struct Tokens {
    runtime: tokio::runtime::Runtime,
    auth: ResourceServerAuth,
    key: Arc<SigningKey>,
    issuer: String,
    _server: MockAuthorizationServer,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

/// The audience the [`Tokens`] resource expects.
pub const AUDIENCE: &str = "http://127.0.0.1:8000/mcp";

impl Tokens {
    /// Started once per process (a real server on 127.0.0.1, keys fetched once).
    ///
    /// # Panics
    /// When the mock server can not start (a fuzzing setup error).
    #[allow(clippy::expect_used)]
    pub fn get() -> &'static Self {
        static TOKENS: OnceLock<Tokens> = OnceLock::new();
        TOKENS.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let (server, auth) = runtime.block_on(async {
                let server = MockAuthorizationServer::start().await.expect("server");
                server.add_signing_key(SigningKey::generate(Algorithm::ES256, "fuzz"));
                let auth = ResourceServerAuth::builder()
                    .canonical_url(AUDIENCE)
                    .authorization_server(server.entry().algorithms([Algorithm::ES256]))
                    .build()
                    .expect("config");
                (server, auth)
            });
            let issuer = server.issuer().to_owned();
            let key = server
                .keys()
                .into_iter()
                .find(|k| k.kid == "fuzz")
                .expect("the key just added");
            Self {
                runtime,
                auth,
                key,
                issuer,
                _server: server,
            }
        })
    }

    /// Validates `token` as it is: anything but a correctly signed token is refused.
    pub fn validate(&self, token: &[u8]) {
        let Ok(token) = std::str::from_utf8(token) else {
            return;
        };
        let outcome = self.runtime.block_on(self.auth.validate(token));
        assert!(outcome.is_err(), "an unsigned fuzz input was accepted");
        // The hot path's base64url decoder is exactly as strict as the base64 crate.
        for part in token.split('.') {
            let expected = URL_SAFE_NO_PAD.decode(part).ok();
            assert_eq!(
                crate::base64url::is_canonical(part),
                expected.is_some(),
                "{part:?}"
            );
            assert_eq!(crate::base64url::decode(part), expected, "{part:?}");
        }
    }

    /// Signs `claims` (arbitrary bytes as the claims part) with the server's published key,
    /// and validates: an accepted token names the trusted issuer, this audience, a subject,
    /// and has not expired.
    pub fn validate_claims(&self, claims: &[u8]) {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"fuzz"}"#);
        let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
        let token = format!("{message}.{}", self.key.sign(message.as_bytes()));
        let Ok(owner) = self.runtime.block_on(self.auth.validate(&token)) else {
            return;
        };
        assert_eq!(owner.issuer(), self.issuer);
        assert_eq!(
            owner.claim("iss").and_then(|v| v.as_str()),
            Some(self.issuer.as_str())
        );
        assert!(!owner.user_id().trim().is_empty());
        assert!(owner.audiences().iter().any(|a| a == AUDIENCE));
        assert!(
            owner
                .expires_at()
                .is_some_and(|t| t > std::time::SystemTime::now())
        );
        // The claims object built on demand is the token's, exactly.
        let full = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(claims);
        assert_eq!(Ok(owner.claims()), full.as_ref().map_err(|_| ()));
    }
}

/// The one-pass claims reader against `serde_json::Value`: whatever it accepts is a JSON
/// object that `Value` accepts (so the claims built on demand always exist), with the same
/// `iss`, `sub` and `exp`; whatever `Value` refuses, it refuses.
pub fn claims_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let read = crate::claims::Claims::parse(text);
    let value = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text);
    let Some(read) = read else {
        return;
    };
    assert!(
        value.is_ok(),
        "the claims reader accepted what serde_json refuses"
    );
    let Ok(map) = value else { return };
    assert_eq!(read.iss.as_str(), map.get("iss").and_then(|v| v.as_str()));
    assert_eq!(read.sub.as_str(), map.get("sub").and_then(|v| v.as_str()));
    let exp = match read.exp {
        crate::claims::Claim::Number(n) => Some(n),
        _ => None,
    };
    assert_eq!(exp, map.get("exp").and_then(serde_json::Value::as_f64));
    assert_eq!(
        read.cnf != crate::claims::Cnf::Absent,
        map.contains_key("cnf")
    );
    // A binding is read only from a `cnf` that is exactly `{"jkt": "<string>"}`.
    if let crate::claims::Cnf::Jkt(jkt) = &read.cnf {
        assert_eq!(
            map.get("cnf"),
            Some(&serde_json::json!({ "jkt": &**jkt })),
            "a DPoP binding read from a cnf that is not one"
        );
    }
}
