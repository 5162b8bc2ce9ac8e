//! Credentials go only where they belong: [`DownstreamClient`] attaches a provider's token
//! only to that provider's configured hosts, follows no redirect, refuses a request that
//! already carries credentials, and never sends the caller's own (inbound) access token: MCP
//! forbids token passthrough.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};

use super::DownstreamToken;
use crate::ResourceOwner;
use crate::error::{ConfigError, ConfigErrorKind};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a provider's tokens may go: a host, exactly, or every subdomain of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Exact(String),
    /// `*.example.com`: `a.example.com`, `b.a.example.com`; not `example.com` itself, not
    /// `evilexample.com`.
    Subdomains(String),
}

impl HostRule {
    fn parse(rule: &str) -> Option<Self> {
        let rule = rule.trim().trim_end_matches('.').to_ascii_lowercase();
        let (wild, host) = match rule.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, rule),
        };
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            || host.parse::<std::net::IpAddr>().is_ok() && !wild;
        if !valid {
            return None;
        }
        Some(if wild {
            Self::Subdomains(host)
        } else {
            Self::Exact(host)
        })
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => host == h,
            Self::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }
}

/// Why [`DownstreamClient::send`] refused or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The provider was not configured.
    UnknownProvider,
    /// The URL's host is not one of the provider's.
    HostNotAllowed,
    /// Not `https` (`http` only to a loopback host).
    InsecureScheme,
    /// The request already carries an `Authorization` header.
    CredentialsPresent,
    /// The token is the caller's own access token (token passthrough).
    InboundToken,
    /// The request failed on the way (connect, timeout, …).
    Transport,
}

/// A refused or failed [`DownstreamClient::send`]. Never shows a token.
#[derive(Debug, Clone)]
pub struct SendError {
    kind: SendErrorKind,
    message: String,
}

impl SendError {
    fn new(kind: SendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind of error.
    #[must_use]
    pub fn kind(&self) -> SendErrorKind {
        self.kind
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SendError {}

/// Sends requests to third-party APIs with downstream tokens; see the module docs.
///
/// ```
/// use protected_resource::downstream::DownstreamClient;
///
/// # fn main() -> Result<(), protected_resource::ConfigError> {
/// let client = DownstreamClient::builder()
///     .provider("github", ["api.github.com", "*.githubusercontent.com"])
///     .build()?;
/// # drop(client);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DownstreamClient {
    http: reqwest::Client,
    providers: HashMap<String, Vec<HostRule>>,
}

/// Builds a [`DownstreamClient`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct DownstreamClientBuilder {
    providers: Vec<(String, Vec<String>)>,
    timeout: Option<Duration>,
}

impl DownstreamClient {
    /// Starts building a client.
    pub fn builder() -> DownstreamClientBuilder {
        DownstreamClientBuilder::default()
    }

    /// Sends `request` with `token` (of `provider`, obtained for `owner`) in its
    /// `Authorization` header, when its URL is `https` (or `http` to a loopback host) on one
    /// of the provider's hosts. A redirect is answered as it is, never followed.
    ///
    /// # Errors
    /// A [`SendError`]: the provider unknown, the host not the provider's, an insecure
    /// scheme, an `Authorization` header already present, `token` being `owner`'s own access
    /// token, or the request failing.
    pub async fn send(
        &self,
        owner: &ResourceOwner,
        provider: &str,
        token: &DownstreamToken,
        mut request: reqwest::Request,
    ) -> Result<reqwest::Response, SendError> {
        let rules = self.providers.get(provider).ok_or_else(|| {
            SendError::new(
                SendErrorKind::UnknownProvider,
                format!("no provider `{provider}`"),
            )
        })?;
        let url = request.url();
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !rules.iter().any(|r| r.matches(&host)) {
            return Err(SendError::new(
                SendErrorKind::HostNotAllowed,
                format!("`{host}` is not a host of `{provider}`"),
            ));
        }
        let secure = match url.scheme() {
            "https" => true,
            "http" => crate::config::check::is_loopback_host(url),
            _ => false,
        };
        if !secure {
            return Err(SendError::new(
                SendErrorKind::InsecureScheme,
                "tokens go over https only (http only to a loopback host)",
            ));
        }
        if request.headers().contains_key(AUTHORIZATION) {
            return Err(SendError::new(
                SendErrorKind::CredentialsPresent,
                "the request already carries an Authorization header",
            ));
        }
        if owner.bearer_token() == Some(token.secret()) {
            return Err(SendError::new(
                SendErrorKind::InboundToken,
                "the caller's own access token is never sent to another service",
            ));
        }
        let scheme = if token.token_type().eq_ignore_ascii_case("bearer") {
            "Bearer"
        } else {
            token.token_type()
        };
        let mut value =
            HeaderValue::from_str(&format!("{scheme} {}", token.secret())).map_err(|_| {
                SendError::new(
                    SendErrorKind::CredentialsPresent,
                    "the token can not be sent in a header",
                )
            })?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
        self.http.execute(request).await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "failed"
            };
            SendError::new(
                SendErrorKind::Transport,
                format!("the request to `{host}` {what}"),
            )
        })
    }

    /// A request builder on this client's HTTP client (no redirects, time limit), to build the
    /// request [`send`](Self::send) takes.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url)
    }
}

impl DownstreamClientBuilder {
    /// The hosts `provider`'s tokens may go to: exact host names (or IP addresses) and
    /// `*.domain` for every subdomain of `domain`.
    pub fn provider<S: Into<String>>(
        mut self,
        provider: impl Into<String>,
        hosts: impl IntoIterator<Item = S>,
    ) -> Self {
        self.providers
            .push((provider.into(), hosts.into_iter().map(Into::into).collect()));
        self
    }

    /// Time limit of each request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// # Errors
    /// A [`ConfigError`] naming `hosts` (a provider with none, or a host that is not a host
    /// name, an IP address or `*.domain`) or `timeout` (zero).
    pub fn build(self) -> Result<DownstreamClient, ConfigError> {
        let mut providers = HashMap::new();
        for (name, hosts) in self.providers {
            let rules: Vec<HostRule> = hosts
                .iter()
                .map(|h| {
                    HostRule::parse(h).ok_or_else(|| {
                        ConfigError::new(
                            ConfigErrorKind::InvalidValue,
                            "hosts",
                            format!("`{h}` of provider `{name}` is not a host name, an IP address or *.domain"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            if rules.is_empty() {
                return Err(ConfigError::new(
                    ConfigErrorKind::Missing,
                    "hosts",
                    format!("provider `{name}` has no hosts"),
                ));
            }
            providers.insert(name, rules);
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "timeout",
                "must be greater than zero",
            ));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| {
                ConfigError::new(
                    ConfigErrorKind::HttpClient,
                    "downstream client",
                    e.to_string(),
                )
            })?;
        Ok(DownstreamClient { http, providers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules() {
        let exact = HostRule::parse("API.Example.com.").unwrap();
        assert!(exact.matches("api.example.com"));
        assert!(!exact.matches("xapi.example.com"));
        assert!(!exact.matches("api.example.com.evil.test"));
        let sub = HostRule::parse("*.example.com").unwrap();
        assert!(sub.matches("a.example.com"));
        assert!(sub.matches("b.a.example.com"));
        assert!(!sub.matches("example.com"));
        assert!(!sub.matches("evilexample.com"));
        assert!(!sub.matches("example.com.evil.test"));
        assert!(HostRule::parse("127.0.0.1").unwrap().matches("127.0.0.1"));
        for bad in ["", "*.", "a..b", "*.*.x", "a/b", "http://x", "*.::1", "a b"] {
            assert!(HostRule::parse(bad).is_none(), "{bad}");
        }
    }
}
