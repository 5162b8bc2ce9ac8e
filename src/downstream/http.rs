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

/// A token endpoint's answer: status, `Retry-After` and the body (capped).
pub(crate) struct FormAnswer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

/// POSTs `form` to a token-style `endpoint` with the client's authentication (RFC 6749
/// §2.3: Basic header, body parameters or an assertion), asking for JSON; `who` names the
/// server in denials. Transport failures are [`Denial::unavailable`].
pub(crate) async fn post_form(
    http: &reqwest::Client,
    endpoint: &str,
    auth: &crate::client_auth::ClientAuth,
    mut form: Vec<(&'static str, String)>,
    who: &str,
) -> Result<FormAnswer, Denial> {
    use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
    let mut request = http.post(endpoint).header(ACCEPT, "application/json");
    if let Some(basic) = auth.basic_header() {
        let mut value = HeaderValue::from_str(&basic)
            .map_err(|_| Denial::unavailable(None, "the client credentials can not be sent"))?;
        value.set_sensitive(true);
        request = request.header(AUTHORIZATION, value);
    }
    form.extend(
        auth.body_params(endpoint)
            .ok_or_else(|| Denial::unavailable(None, "the client assertion could not be signed"))?,
    );
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let response = request
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            Denial::unavailable(
                None,
                if e.is_timeout() {
                    format!("{who} timed out")
                } else {
                    format!("{who} could not be reached")
                },
            )
        })?;
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = read_capped(response, MAX_FORM_ANSWER_BYTES, who).await?;
    Ok(FormAnswer {
        status,
        retry_after,
        body,
    })
}

/// Largest token-endpoint answer read.
const MAX_FORM_ANSWER_BYTES: usize = 64 * 1024;
