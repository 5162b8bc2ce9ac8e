//! Finding an issuer's `jwks_uri` (for entries configured with an issuer only,
//! [`AuthorizationServerEntry::new`](crate::AuthorizationServerEntry::new) without
//! `jwks_uri`) or `introspection_endpoint` (for [`Introspection`](crate::Introspection)
//! without an endpoint) from its published metadata.
//!
//! The metadata locations are tried in the order of the MCP authorization specification
//! (2025-11-25, "Authorization Server Metadata Discovery"):
//!
//! | issuer | tried in order |
//! |---|---|
//! | `https://as.example` | `/.well-known/oauth-authorization-server`, `/.well-known/openid-configuration` |
//! | `https://as.example/tenant` | `/.well-known/oauth-authorization-server/tenant` (RFC 8414 path insertion), `/.well-known/openid-configuration/tenant`, `/tenant/.well-known/openid-configuration` (OpenID Connect Discovery) |
//!
//! A document is used only when its `issuer` equals the configured issuer exactly (RFC 8414
//! §3.3, OpenID Connect Discovery §4.3); a document naming another issuer is skipped. The
//! `jwks_uri` it gives must be `https` (or `http` on a loopback host, or anything when
//! `dangerous_allow_insecure_jwks_uri` is on). Documents are fetched with the same timeouts,
//! size cap and no-redirect policy as key sets, and cached and refreshed like them.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::is_loopback_host;
use crate::error::printable;
use crate::keys::fetch::{FetchError, Fetched, HttpFetcher};

/// A discovered location and how long the document may be cached.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    pub(crate) url: Arc<str>,
    pub(crate) lifetime: Option<Duration>,
}

/// Which URL of the metadata is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    JwksUri,
    IntrospectionEndpoint,
}

impl Wanted {
    fn name(self) -> &'static str {
        match self {
            Self::JwksUri => "jwks_uri",
            Self::IntrospectionEndpoint => "introspection_endpoint",
        }
    }
}

/// The metadata URLs to try for `issuer`, in order.
pub(crate) fn candidates(issuer: &reqwest::Url) -> Vec<String> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    introspection_endpoint: Option<String>,
}

/// Fetches the issuer's metadata and returns the `wanted` URL.
pub(crate) async fn discover(
    fetcher: &HttpFetcher,
    issuer: &str,
    allow_insecure: bool,
    wanted: Wanted,
) -> Result<Discovered, FetchError> {
    let parsed = reqwest::Url::parse(issuer)
        .map_err(|_| FetchError::Discovery("the issuer is not a URL".to_owned()))?;
    // The most telling reason seen so far (a 404 says less than a mismatch or a 500).
    let mut reason: Option<String> = None;
    for url in candidates(&parsed) {
        let (bytes, lifetime) = match fetcher.get(&url, "application/json", None).await {
            Ok(Fetched::Body {
                bytes, lifetime, ..
            }) => (bytes, lifetime),
            Ok(Fetched::NotModified { .. }) => continue,
            Err(FetchError::Status(404)) => continue,
            Err(e) => {
                reason.get_or_insert(format!("{url}: {e}"));
                continue;
            }
        };
        let found = match read_url(&bytes, issuer, allow_insecure, wanted) {
            Reading::Found(uri) => uri,
            Reading::NotMetadata => {
                reason.get_or_insert(format!(
                    "{url}: not an authorization server metadata document"
                ));
                continue;
            }
            Reading::OtherIssuer(other) => {
                tracing::warn!(
                    metadata_url = %url,
                    configured_issuer = issuer,
                    document_issuer = %printable(&other),
                    "skipping authorization server metadata naming another issuer"
                );
                reason = Some(format!(
                    "{url} names issuer `{}`, not the configured `{issuer}`",
                    printable(&other)
                ));
                continue;
            }
            Reading::Refused(why) => return Err(FetchError::Discovery(format!("{url}: {why}"))),
        };
        return Ok(Discovered {
            url: Arc::from(found),
            lifetime,
        });
    }
    Err(FetchError::Discovery(reason.unwrap_or_else(|| {
        "no authorization server metadata found (RFC 8414 or OpenID Connect)".to_owned()
    })))
}

/// What one metadata document says about the URL wanted of `issuer`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// The document is `issuer`'s and names this acceptable URL.
    Found(String),
    /// The document names another issuer (skipped: RFC 8414 §3.3).
    OtherIssuer(String),
    /// Not a metadata document (not JSON, no string `issuer`).
    NotMetadata,
    /// `issuer`'s document, but without an acceptable URL.
    Refused(String),
}

/// Reads the `jwks_uri` of an RFC 8414 / OpenID Connect metadata document fetched for
/// `issuer`.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn read_document(bytes: &[u8], issuer: &str, allow_insecure: bool) -> Reading {
    read_url(bytes, issuer, allow_insecure, Wanted::JwksUri)
}

/// Reads the `wanted` URL of a metadata document fetched for `issuer`.
fn read_url(bytes: &[u8], issuer: &str, allow_insecure: bool, wanted: Wanted) -> Reading {
    let Ok(doc) = serde_json::from_slice::<Document>(bytes) else {
        return Reading::NotMetadata;
    };
    if doc.issuer != issuer {
        return Reading::OtherIssuer(doc.issuer);
    }
    let url = match wanted {
        Wanted::JwksUri => doc.jwks_uri,
        Wanted::IntrospectionEndpoint => doc.introspection_endpoint,
    };
    let Some(url) = url else {
        return Reading::Refused(format!("no {}", wanted.name()));
    };
    let issuer_loopback = reqwest::Url::parse(issuer).is_ok_and(|u| is_loopback_host(&u));
    match check_url(&url, issuer_loopback, allow_insecure, wanted.name()) {
        Ok(()) => Reading::Found(url),
        Err(why) => Reading::Refused(why),
    }
}

/// A discovered URL must be `https` (or `http` on a loopback host), and may name a loopback
/// host only when the issuer itself is one: a remote issuer's metadata must not point this
/// server at its own local services. `allow_insecure` (the dangerous switch) lifts both
/// rules.
fn check_url(
    uri: &str,
    issuer_loopback: bool,
    allow_insecure: bool,
    name: &str,
) -> Result<(), String> {
    let url = reqwest::Url::parse(uri)
        .map_err(|_| format!("{name} `{}` is not an absolute URL", printable(uri)))?;
    if is_loopback_host(&url) && !issuer_loopback && !allow_insecure {
        return Err(format!(
            "{name} `{}` names a loopback host, but the issuer is not one",
            printable(uri)
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure || is_loopback_host(&url) => Ok(()),
        other => Err(format!(
            "{name} `{}` uses `{other}`; it must be https",
            printable(uri)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_locations_follow_the_mcp_order() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(
            candidates(&url("https://as.example.com")),
            [
                "https://as.example.com/.well-known/oauth-authorization-server",
                "https://as.example.com/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            candidates(&url("https://as.example.com/")),
            candidates(&url("https://as.example.com"))
        );
        assert_eq!(
            candidates(&url("https://as.example.com:8443/tenant/v2")),
            [
                "https://as.example.com:8443/.well-known/oauth-authorization-server/tenant/v2",
                "https://as.example.com:8443/.well-known/openid-configuration/tenant/v2",
                "https://as.example.com:8443/tenant/v2/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn documents_are_read_as_the_http_client_reads_urls() {
        let issuer = "https://as.example.com";
        // Found by fuzzing (fuzz/ metadata target): a scheme without `//` is still https to
        // the URL standard, so it is accepted as such (the fuzz invariant was too strict).
        let body = br#"{"issuer": "https://as.example.com", "jwks_urq": "httpsample.com", "jwks_uri": "https:ias/ps://as.pleem.axcom/authorize"}"#;
        match read_document(body, issuer, false) {
            Reading::Found(uri) => {
                let url = reqwest::Url::parse(&uri).unwrap();
                assert_eq!((url.scheme(), url.host_str()), ("https", Some("ias")));
            }
            other => panic!("{other:?}"),
        }
        let local = br#"{"issuer":"https://as.example.com","jwks_uri":"https:127.0.0.1/jwks"}"#;
        assert!(matches!(
            read_document(local, issuer, false),
            Reading::Refused(_)
        ));
        let other = br#"{"issuer":"https://evil.example.com","jwks_uri":"https://e/jwks"}"#;
        assert!(matches!(
            read_document(other, issuer, false),
            Reading::OtherIssuer(_)
        ));
        assert_eq!(read_document(b"[]", issuer, false), Reading::NotMetadata);
    }

    fn check_jwks(uri: &str, issuer_loopback: bool, allow_insecure: bool) -> Result<(), String> {
        check_url(uri, issuer_loopback, allow_insecure, "jwks_uri")
    }

    #[test]
    fn discovered_key_sets_need_tls() {
        assert!(check_jwks("https://as.example.com/jwks", false, false).is_ok());
        assert!(check_jwks("http://127.0.0.1:9/jwks", true, false).is_ok());
        assert!(check_jwks("http://as.example.com/jwks", false, false).is_err());
        assert!(check_jwks("http://as.example.com/jwks", false, true).is_ok());
        assert!(check_jwks("file:///etc/keys", false, true).is_err());
        assert!(check_jwks("/jwks", false, false).is_err());
        // A remote issuer's metadata must not point at this machine.
        for local in [
            "http://127.0.0.1:9/jwks",
            "https://localhost/jwks",
            "https://[::1]/jwks",
            "https://127.1/jwks",
            "https://0.0.0.0/jwks",
            "https://[::]/jwks",
            "https://[::ffff:127.0.0.1]/jwks",
            "https://metadata.localhost/jwks",
            "https://LOCALHOST./jwks",
        ] {
            assert!(check_jwks(local, false, false).is_err(), "{local}");
            assert!(check_jwks(local, true, false).is_ok(), "{local}");
            assert!(check_jwks(local, false, true).is_ok(), "{local}");
        }
    }
}
