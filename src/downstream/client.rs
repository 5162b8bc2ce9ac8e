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

/// Where a provider's tokens may go: a host, exactly, or every subdomain of a domain; on one
/// port (the scheme's own unless the rule names one).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// A host name or an IP address (IPv6 without brackets).
    Exact(String),
    /// `*.example.com`: `a.example.com`, `b.a.example.com`; not `example.com` itself, not
    /// `evilexample.com`.
    Subdomains(String),
}

impl HostRule {
    /// `host`, `host:port`, `[v6]`, `[v6]:port`, `*.domain`, `*.domain:port`.
    fn parse(rule: &str) -> Option<Self> {
        let rule = rule.trim().to_ascii_lowercase();
        let (host, port) = if let Some(rest) = rule.strip_prefix('[') {
            let (v6, after) = rest.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            v6.parse::<std::net::Ipv6Addr>().ok()?;
            return Some(Self {
                host: HostPattern::Exact(v6.to_owned()),
                port,
            });
        } else {
            match rule.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p.parse::<u16>().ok()?)),
                None => (rule, None),
            }
        };
        let host = host.trim_end_matches('.');
        let (wild, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        if host.parse::<std::net::IpAddr>().is_ok() {
            // An IP address is a host, never a domain with subdomains.
            return (!wild).then(|| Self {
                host: HostPattern::Exact(host.to_owned()),
                port,
            });
        }
        let labels: Vec<&str> = host.split('.').collect();
        let valid = !host.is_empty()
            && host.len() <= 253
            && labels.iter().all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            // `*.com`: a whole top-level domain is no provider's.
            && (!wild || labels.len() >= 2);
        valid.then(|| Self {
            host: if wild {
                HostPattern::Subdomains(host.to_owned())
            } else {
                HostPattern::Exact(host.to_owned())
            },
            port,
        })
    }

    /// Whether `url` is on this rule's host and port.
    fn matches(&self, url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Exact(h) => host == *h,
            HostPattern::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        };
        // `url` drops a port equal to the scheme's default, so `None` means the default.
        host_ok && url.port() == self.port
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
    /// The request sets its own `Host` header (it could reach another virtual host).
    HostOverride,
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
        let host = url.host_str().unwrap_or_default().to_owned();
        if !rules.iter().any(|r| r.matches(url)) {
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
        if request.headers().contains_key(reqwest::header::HOST) {
            return Err(SendError::new(
                SendErrorKind::HostOverride,
                "the request sets its own Host header",
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
    /// The hosts `provider`'s tokens may go to: exact host names (or IP addresses, IPv6 in
    /// brackets) and `*.domain` for every subdomain of `domain`, each with `:port` when not
    /// the scheme's default port (443 for https).
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
        let http =
            super::http::client(self.timeout.unwrap_or(DEFAULT_TIMEOUT), "downstream client")?;
        Ok(DownstreamClient { http, providers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let exact = HostRule::parse("API.Example.com.").unwrap();
        assert!(exact.matches(&url("https://api.example.com/x")));
        assert!(exact.matches(&url("https://api.example.com:443/x")));
        assert!(
            !exact.matches(&url("https://api.example.com:8443/x")),
            "another port"
        );
        assert!(!exact.matches(&url("https://xapi.example.com/")));
        assert!(!exact.matches(&url("https://api.example.com.evil.test/")));
        let sub = HostRule::parse("*.example.com").unwrap();
        assert!(sub.matches(&url("https://a.example.com/")));
        assert!(sub.matches(&url("https://b.a.example.com/")));
        assert!(!sub.matches(&url("https://example.com/")));
        assert!(!sub.matches(&url("https://evilexample.com/")));
        assert!(!sub.matches(&url("https://example.com.evil.test/")));
        let local = HostRule::parse("127.0.0.1:8000").unwrap();
        assert!(local.matches(&url("http://127.0.0.1:8000/acme")));
        assert!(!local.matches(&url("http://127.0.0.1:8001/acme")));
        assert!(!local.matches(&url("http://127.0.0.1/acme")));
        let v6 = HostRule::parse("[::1]:9").unwrap();
        assert!(v6.matches(&url("http://[::1]:9/")));
        assert!(!v6.matches(&url("http://[::2]:9/")));
        for bad in [
            "",
            "*.",
            "a..b",
            "*.*.x",
            "a/b",
            "http://x",
            "a b",
            "*.::1",
            "*.com",
            "*.10.0.0.1",
            "x:99999",
            "[::1",
            "[zz]",
        ] {
            assert!(HostRule::parse(bad).is_none(), "{bad}");
        }
    }
}
