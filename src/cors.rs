//! CORS headers on every answer of the protected and metadata routes, so browser-based MCP
//! clients can read `WWW-Authenticate` and the MCP session headers.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};
use http::{HeaderMap, HeaderValue};

use crate::config::AllowedOrigins;
use crate::error::{ConfigError, ConfigErrorKind, printable};

const ALLOW_HEADERS: &str =
    "Authorization, Content-Type, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Accept";
const EXPOSE_HEADERS: &str = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version";
const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";

#[derive(Debug, Clone)]
pub(crate) enum CorsPolicy {
    Any,
    List(Vec<HeaderValue>),
    Disabled,
}

impl CorsPolicy {
    pub(crate) fn new(origins: &AllowedOrigins) -> Result<Self, ConfigError> {
        Ok(match origins {
            AllowedOrigins::Any => CorsPolicy::Any,
            AllowedOrigins::Disabled => CorsPolicy::Disabled,
            AllowedOrigins::List(list) => CorsPolicy::List(
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
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Adds the CORS headers to a response, keeping any the inner service already set.
    pub(crate) fn apply(
        &self,
        origin: Option<&HeaderValue>,
        headers: &mut HeaderMap,
        preflight: bool,
    ) {
        let allow = match self {
            CorsPolicy::Disabled => return,
            CorsPolicy::Any => HeaderValue::from_static("*"),
            CorsPolicy::List(list) => {
                headers.append(VARY, HeaderValue::from_static("Origin"));
                match origin {
                    Some(o) if list.contains(o) => o.clone(),
                    _ => return,
                }
            }
        };
        if headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
            return;
        }
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        headers
            .entry(ACCESS_CONTROL_EXPOSE_HEADERS)
            .or_insert(HeaderValue::from_static(EXPOSE_HEADERS));
        headers
            .entry(ACCESS_CONTROL_ALLOW_HEADERS)
            .or_insert(HeaderValue::from_static(ALLOW_HEADERS));
        headers
            .entry(ACCESS_CONTROL_ALLOW_METHODS)
            .or_insert(HeaderValue::from_static(ALLOW_METHODS));
        if preflight {
            headers
                .entry(ACCESS_CONTROL_MAX_AGE)
                .or_insert(HeaderValue::from_static("86400"));
        }
    }
}
