//! The HTTP plumbing every downstream client shares: a client that follows no redirect, uses
//! no proxy from the environment (a token goes where it is sent and nowhere else) and has a
//! time limit; endpoints that are https (http only on a loopback host) without credentials in
//! the URL; answers read up to a size cap; `Retry-After` in seconds, capped.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::Denial;
use crate::error::{ConfigError, ConfigErrorKind};

/// The HTTP client: no redirects, no environment proxy, `timeout` (named `field`'s error
/// when zero or when the client can not be built).
pub(crate) fn client(timeout: Duration, field: &str) -> Result<reqwest::Client, ConfigError> {
    if timeout.is_zero() {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidValue,
            "timeout",
            "must be greater than zero",
        ));
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| ConfigError::new(ConfigErrorKind::HttpClient, field, e.to_string()))
}

/// Checks that `url` is https (http only on a loopback host), without user info or fragment.
pub(crate) fn check_endpoint(url: &str, field: &str) -> Result<(), ConfigError> {
    let ok = reqwest::Url::parse(url).is_ok_and(|u| {
        let scheme_ok = match u.scheme() {
            "https" => u.host().is_some(),
            "http" => crate::config::check::is_loopback_host(&u),
            _ => false,
        };
        scheme_ok && u.fragment().is_none() && u.username().is_empty() && u.password().is_none()
    });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            field,
            "must be https (http only on a loopback host), without user info or fragment",
        ))
    }
}

/// `Retry-After` in seconds, at most a day (a hostile value must not overflow a caller's
/// clock arithmetic); HTTP dates are not read.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(86_400)))
}

/// The body, at most `max` bytes (streamed: a huge answer is cut off early); `who` names the
/// server in the denial.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
    who: &str,
) -> Result<Vec<u8>, Denial> {
    let too_large = || Denial::unavailable(None, format!("{who}'s answer is too large"));
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| Denial::unavailable(None, format!("{who}'s answer was cut off")))?
    {
        if bytes.len() + chunk.len() > max {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
