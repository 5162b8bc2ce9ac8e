//! CORS for the protected and metadata routes: the [`AllowedOrigins`] setting, turned into
//! tower-http's `CorsLayer`, so browser-based MCP clients can send their preflights without a
//! token and read `WWW-Authenticate` and the MCP session headers of every answer.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders};

use crate::error::{ConfigError, ConfigErrorKind, printable};

/// Where browsers may call the protected routes from (`Access-Control-Allow-Origin`).
///
/// The front door answers every CORS preflight (`OPTIONS` with
/// `Access-Control-Request-Method`) itself: no token needed, and the inner service is never
/// called. Unless CORS is [`Disabled`](Self::Disabled), the answer (200) allows the methods
/// `GET`, `POST`, `DELETE` and whatever request headers the preflight asks for (MCP
/// 2026-07-28 clients send `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`), and the answer to every
/// other request with an `Origin` header, the front door's refusals included (but not that of
/// a plain `OPTIONS`), carries the CORS headers, exposing `WWW-Authenticate`,
/// `Mcp-Session-Id` and `MCP-Protocol-Version`. These replace any CORS headers the inner
/// service sets. Requests without `Origin` do not come from a browser's cross-origin call:
/// their answers get no CORS headers, only `Vary` when a cache may keep them (the metadata
/// document, or an inner answer with `Cache-Control`, `Expires`, `Last-Modified` or `ETag`),
/// so that no cache hands them to a browser; this spares every other client the work. With `Disabled`, preflights are answered
/// 204 without CORS headers (the browser then refuses the call) and no CORS headers are
/// added: handle CORS in a layer outside the front door.
///
/// ```
/// use protected_resource::{AllowedOrigins, AuthorizationServerEntry, ResourceServerAuth};
///
/// let auth = ResourceServerAuth::builder()
///     .canonical_url("https://mcp.example.com/mcp")
///     .authorization_server(AuthorizationServerEntry::new("https://auth.example.com"))
///     .allowed_origins(AllowedOrigins::List(vec!["https://app.example.com".into()]))
///     .build()?;
/// # drop(auth);
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AllowedOrigins {
    /// `*` (the default; bearer tokens are not cookies, so this exposes nothing by itself).
    #[default]
    Any,
    /// Only these origins (for example `https://app.example.com`); others get no
    /// `Access-Control-Allow-Origin`.
    List(Vec<String>),
    /// Send no CORS headers at all (a layer outside the front door handles CORS); preflights
    /// that reach the front door are answered 204 without them.
    Disabled,
}

const EXPOSE_HEADERS: [HeaderName; 4] = [
    http::header::WWW_AUTHENTICATE,
    HeaderName::from_static("mcp-session-id"),
    HeaderName::from_static("mcp-protocol-version"),
    // A browser client must read the DPoP server nonce (RFC 9449 §8, §9).
    HeaderName::from_static("dpop-nonce"),
];

/// How long browsers may cache a preflight answer.
const MAX_AGE: Duration = Duration::from_secs(86_400);

/// The CORS layer for these origins, `None` when CORS is disabled. Every origin is checked
/// here, so tower-http's own assertions can never fire at run time.
pub(crate) fn cors_layer(origins: &AllowedOrigins) -> Result<Option<CorsLayer>, ConfigError> {
    // tower-http derives `Vary` from these: `Vary: origin` for listed origins, none for `*`
    // (the allowed methods and headers are fixed lists).
    let allow_origin = match origins {
        AllowedOrigins::Disabled => return Ok(None),
        AllowedOrigins::Any => AllowOrigin::any(),
        AllowedOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .map(|o| {
                    HeaderValue::from_str(o)
                        .ok()
                        .filter(|_| !o.is_empty() && o != "*")
                        .ok_or_else(|| {
                            ConfigError::new(
                                ConfigErrorKind::InvalidValue,
                                "allowed_origins",
                                format!("`{}` is not an origin", printable(o)),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods(AllowMethods::list([
                Method::GET,
                Method::POST,
                Method::DELETE,
                Method::OPTIONS,
            ]))
            // Whatever request headers the preflight names: MCP 2026-07-28 clients send
            // `Mcp-Method`, `Mcp-Name` and any number of `Mcp-Param-*`, which no fixed list
            // can hold. Allowing a header grants nothing: every request still needs a token.
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(ExposeHeaders::list(EXPOSE_HEADERS))
            .max_age(MAX_AGE),
    ))
}
