//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document MCP clients read to find the
//! authorization servers.
//!
//! For the canonical URL `https://host/mcp` the document is served at the path-inserted URL
//! `https://host/.well-known/oauth-protected-resource/mcp` (the one named in
//! `resource_metadata`), at the root `https://host/.well-known/oauth-protected-resource`, and
//! at `https://host/mcp/.well-known/oauth-protected-resource`, where the Python model serves
//! it. GET and HEAD, `application/json`, CORS, `Cache-Control`, never behind the token check.
//!
//! [`ProtectedResourceLayer`](crate::ProtectedResourceLayer) answers these paths itself when
//! requests for them reach it (for example with `Router::layer` on the whole app). When the
//! layer guards only some routes (`route_layer`, a nested service), mount the document next to
//! them in one line with [`ResourceServerAuth::metadata_router`](crate::ResourceServerAuth::metadata_router).

use axum::body::Body;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use serde::Serialize;

/// The well-known suffix of RFC 9728 §3.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata document; empty fields are omitted.
#[derive(Debug, Serialize)]
pub(crate) struct Document {
    pub(crate) resource: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) authorization_servers: Vec<String>,
    pub(crate) bearer_methods_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) scopes_supported: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) resource_signing_alg_values_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_documentation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_tos_uri: Option<String>,
    /// RFC 9728 §2: the DPoP proof algorithms accepted (absent when DPoP is off).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) dpop_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 9728 §2: `true` when every entry requires DPoP (absent when DPoP is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dpop_bound_access_tokens_required: Option<bool>,
}

/// The serialized document and where it is served.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    /// The absolute URL sent in `resource_metadata`.
    pub(crate) url: String,
    /// Request paths that serve the document.
    pub(crate) paths: Vec<String>,
    body: Bytes,
}

impl Metadata {
    pub(crate) fn new(canonical: &str, parsed: &reqwest::Url, doc: &Document) -> Self {
        // Keep the canonical URL's own spelling of scheme, authority and path (no normalising).
        let after_scheme = canonical.find("://").map_or(0, |i| i + 3);
        let authority_end = canonical[after_scheme..]
            .find(['/', '?'])
            .map_or(canonical.len(), |i| after_scheme + i);
        let origin = &canonical[..authority_end];
        let rest = &canonical[authority_end..];
        let (path, query) = match rest.find('?') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = if path == "/" { "" } else { path };
        let inserted = format!("{WELL_KNOWN}{path}");
        let url = format!("{origin}{inserted}{query}");
        let mut paths = vec![inserted.clone()];
        let decoded_path = parsed.path();
        for p in [
            WELL_KNOWN.to_owned(),
            format!(
                "{WELL_KNOWN}{}",
                if decoded_path == "/" {
                    ""
                } else {
                    decoded_path
                }
            ),
        ] {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        if !path.is_empty() {
            let legacy = format!("{}{WELL_KNOWN}", path.trim_end_matches('/'));
            if !paths.contains(&legacy) {
                paths.push(legacy);
            }
        }
        let body = serde_json::to_vec(doc).map(Bytes::from).unwrap_or_default();
        Self { url, paths, body }
    }

    pub(crate) fn serves(&self, path: &str) -> bool {
        self.paths.iter().any(|p| p == path)
    }

    /// The answer for a request to one of the metadata paths (without CORS headers).
    pub(crate) fn respond(&self, method: &Method) -> Response<Body> {
        let mut res = if *method == Method::GET {
            Response::new(Body::from(self.body.clone()))
        } else if *method == Method::HEAD {
            let mut r = Response::new(Body::empty());
            r.headers_mut().insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(self.body.len()),
            );
            r
        } else if *method == Method::OPTIONS {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            return r;
        } else {
            let mut r = Response::new(Body::from("Method Not Allowed"));
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            r.headers_mut().insert(
                http::header::ALLOW,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            return r;
        };
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(canonical: &str) -> Metadata {
        let parsed = reqwest::Url::parse(canonical).unwrap();
        Metadata::new(
            canonical,
            &parsed,
            &Document {
                resource: canonical.into(),
                authorization_servers: vec!["https://as".into()],
                bearer_methods_supported: vec!["header"],
                scopes_supported: vec![],
                resource_signing_alg_values_supported: vec![],
                resource_name: None,
                resource_documentation: None,
                resource_policy_uri: None,
                resource_tos_uri: None,
                dpop_signing_alg_values_supported: vec![],
                dpop_bound_access_tokens_required: None,
            },
        )
    }

    #[test]
    fn path_insertion_follows_rfc_9728() {
        let m = meta("https://host/mcp");
        assert_eq!(
            m.url,
            "https://host/.well-known/oauth-protected-resource/mcp"
        );
        assert!(m.serves("/.well-known/oauth-protected-resource/mcp"));
        assert!(m.serves("/.well-known/oauth-protected-resource"));
        assert!(m.serves("/mcp/.well-known/oauth-protected-resource"));
        assert!(!m.serves("/mcp"));
        let m = meta("https://host");
        assert_eq!(m.url, "https://host/.well-known/oauth-protected-resource");
        let m = meta("https://host:8443/a/b?x=1");
        assert_eq!(
            m.url,
            "https://host:8443/.well-known/oauth-protected-resource/a/b?x=1"
        );
        let m = meta("http://127.0.0.1:8000/mcp");
        assert_eq!(
            m.url,
            "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"
        );
    }

    #[test]
    fn empty_fields_are_omitted() {
        let m = meta("https://host/mcp");
        let v: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "resource": "https://host/mcp",
                "authorization_servers": ["https://as"],
                "bearer_methods_supported": ["header"]
            })
        );
    }
}
