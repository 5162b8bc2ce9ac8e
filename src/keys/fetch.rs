//! One HTTP GET of a key set or an authorization server's metadata document.
//!
//! Every fetch has a connect timeout and a total timeout, follows no redirect, reads at most
//! the configured number of bytes (streamed, so a huge body is cut off early), sends
//! `If-None-Match` / `If-Modified-Since` when the previous answer had validators, and reports
//! how long the answer may be cached (`Cache-Control: max-age` minus `Age`, else `Expires`
//! minus `Date`).

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{
    ACCEPT, AGE, CACHE_CONTROL, DATE, ETAG, EXPIRES, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED,
};
use reqwest::header::HeaderValue;

use crate::error::{ConfigError, ConfigErrorKind};

/// Why a key set (or the metadata naming it) could not be obtained. Reported to clients as
/// 503, never as 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    Transport(String),
    Status(u16),
    TooLarge,
    NotAKeySet(String),
    Discovery(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "request failed: {e}"),
            Self::Status(s) => write!(f, "answered HTTP {s}"),
            Self::TooLarge => f.write_str("response exceeds the size cap"),
            Self::NotAKeySet(e) => write!(f, "response is not a JWK set: {e}"),
            Self::Discovery(e) => write!(f, "discovery failed: {e}"),
        }
    }
}

/// The cache validators of an answer, sent back on the next fetch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Validators {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

impl Validators {
    fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            etag: headers.get(ETAG).cloned(),
            last_modified: headers.get(LAST_MODIFIED).cloned(),
        }
    }
}

/// The outcome of a successful GET.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// 200 with its body.
    Body {
        bytes: Vec<u8>,
        validators: Validators,
        /// How long the answer may be cached, when the server said so.
        lifetime: Option<Duration>,
    },
    /// 304: what we hold is still current.
    NotModified { lifetime: Option<Duration> },
}

/// The HTTP client used for key sets and discovery.
#[derive(Debug, Clone)]
pub(crate) struct HttpFetcher {
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl HttpFetcher {
    pub(crate) fn new(
        connect_timeout: Duration,
        total_timeout: Duration,
        max_response_bytes: usize,
        roots: &[reqwest::Certificate],
    ) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .tls_certs_merge(roots.iter().cloned())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(total_timeout)
            .user_agent(concat!("protected-resource/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConfigError::new(
                    ConfigErrorKind::HttpClient,
                    "jwks",
                    format!("HTTP client: {e}"),
                )
            })?;
        Ok(Self {
            client,
            max_response_bytes,
        })
    }

    /// GETs `uri`. Any status but 200 (and 304 when `validators` were sent) is an error.
    pub(crate) async fn get(
        &self,
        uri: &str,
        accept: &'static str,
        validators: Option<&Validators>,
    ) -> Result<Fetched, FetchError> {
        let mut request = self.client.get(uri).header(ACCEPT, accept);
        if let Some(v) = validators {
            if let Some(etag) = &v.etag {
                request = request.header(IF_NONE_MATCH, etag.clone());
            }
            if let Some(lm) = &v.last_modified {
                request = request.header(IF_MODIFIED_SINCE, lm.clone());
            }
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| FetchError::Transport(transport_reason(&e)))?;
        let status = response.status();
        let lifetime = lifetime(response.headers(), SystemTime::now());
        if status == http::StatusCode::NOT_MODIFIED && validators.is_some() {
            return Ok(Fetched::NotModified { lifetime });
        }
        if status != http::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let validators = Validators::from_headers(response.headers());
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Transport(transport_reason(&e)))?
        {
            if bytes.len() + chunk.len() > self.max_response_bytes {
                return Err(FetchError::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body {
            bytes,
            validators,
            lifetime,
        })
    }
}

pub(crate) fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        e.to_string()
    }
}

/// How long an answer may be cached according to its headers (RFC 9111 §4.2.1), or `None`
/// when the headers say nothing. `no-store` and `no-cache` count as zero (the caller clamps
/// every lifetime to its configured minimum, so a key set is never fetched per request).
pub(crate) fn lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok())
            {
                max_age = Some(secs);
            }
        }
    }
    if let Some(secs) = max_age {
        return Some(Duration::from_secs(secs.saturating_sub(age)));
    }
    let expires = headers.get(EXPIRES)?.to_str().ok()?;
    // An invalid Expires (such as "0") means "already expired" (RFC 9111 §5.3).
    let Ok(expires) = httpdate::parse_http_date(expires) else {
        return Some(Duration::ZERO);
    };
    let date = headers
        .get(DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .unwrap_or(now);
    Some(
        expires
            .duration_since(date)
            .unwrap_or(Duration::ZERO)
            .saturating_sub(Duration::from_secs(age)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cache_lifetime_from_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let secs = |pairs: &[(&'static str, &'static str)]| {
            lifetime(&headers(pairs), now).map(|d| d.as_secs())
        };
        assert_eq!(secs(&[]), None);
        assert_eq!(secs(&[("cache-control", "public, max-age=600")]), Some(600));
        assert_eq!(
            secs(&[("cache-control", "max-age=600"), ("age", "100")]),
            Some(500)
        );
        assert_eq!(secs(&[("cache-control", "max-age=\"60\"")]), Some(60));
        assert_eq!(secs(&[("cache-control", "no-cache")]), Some(0));
        assert_eq!(secs(&[("cache-control", "max-age=600, no-store")]), Some(0));
        assert_eq!(secs(&[("cache-control", "max-age=banana")]), None);
        assert_eq!(
            secs(&[
                ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
                ("expires", "Tue, 14 Nov 2023 23:13:20 GMT")
            ]),
            Some(3600)
        );
        // Without Date, Expires is measured from now (1_700_000_000 = 22:13:20).
        assert_eq!(
            secs(&[("expires", "Tue, 14 Nov 2023 22:23:20 GMT")]),
            Some(600)
        );
        assert_eq!(secs(&[("expires", "0")]), Some(0));
        // max-age wins over Expires.
        assert_eq!(
            secs(&[
                ("cache-control", "max-age=120"),
                ("expires", "Tue, 14 Nov 2023 23:13:20 GMT")
            ]),
            Some(120)
        );
    }
}
