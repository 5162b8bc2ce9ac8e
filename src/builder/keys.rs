//! The key-set settings of [`ResourceServerAuthBuilder`]: caching, fetching, and the
//! trust anchors for fetching over TLS.

use std::time::Duration;

use crate::builder::ResourceServerAuthBuilder;

impl ResourceServerAuthBuilder {
    /// How long a fetched key set is used before it is fetched again, when the answer has no
    /// `Cache-Control: max-age` or `Expires`. Default 1 hour.
    pub fn jwks_cache_ttl(mut self, ttl: Duration) -> Self {
        self.jwks.ttl = ttl;
        self.jwks_in_code.push("jwks_cache_ttl");
        self
    }

    /// Bounds for the lifetime an authorization server gives its key set with
    /// `Cache-Control: max-age` or `Expires` (`no-cache`/`no-store` count as zero, so as the
    /// minimum). Default 1 minute to 24 hours. The minimum must be at least 1 s.
    pub fn jwks_cache_ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.jwks.min_ttl = min;
        self.jwks.max_ttl = max;
        self.jwks_in_code.push("jwks_cache_ttl_bounds");
        self
    }

    /// How long past its lifetime a key set is still used while refreshing it fails (the
    /// authorization server is down or answers garbage). Default 24 hours. Zero: expired keys
    /// are never used.
    pub fn jwks_stale_if_error(mut self, window: Duration) -> Self {
        self.jwks.stale_if_error = window;
        self.jwks_in_code.push("jwks_stale_if_error");
        self
    }

    /// The longest wait between retries of a failing key-set fetch (the wait doubles from
    /// the refetch cooldown with each failure, with jitter). Default 5 minutes.
    pub fn jwks_max_backoff(mut self, max: Duration) -> Self {
        self.jwks.max_backoff = max;
        self.jwks_in_code.push("jwks_max_backoff");
        self
    }

    /// The least time between two fetches of one key set caused by unknown `kid`s.
    /// Default 5 s. Between refetches, tokens with an unknown `kid` fail without network.
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks.refetch_cooldown = cooldown;
        self.jwks_in_code.push("jwks_refetch_cooldown");
        self
    }

    /// Total time allowed for one key-set fetch. Default 5 s.
    pub fn jwks_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.jwks.fetch_timeout = timeout;
        self.jwks_in_code.push("jwks_fetch_timeout");
        self
    }

    /// Time allowed to connect to a key-set host. Default 2 s.
    pub fn jwks_connect_timeout(mut self, timeout: Duration) -> Self {
        self.jwks.connect_timeout = timeout;
        self.jwks_in_code.push("jwks_connect_timeout");
        self
    }

    /// The largest key-set response accepted. Default 1 MiB.
    pub fn jwks_max_response_bytes(mut self, bytes: usize) -> Self {
        self.jwks.max_response_bytes = bytes;
        self.jwks_in_code.push("jwks_max_response_bytes");
        self
    }

    /// **Dangerous**: allow `http` key-set URLs on hosts other than loopback. Keys fetched
    /// without TLS can be replaced by anyone on the path. Default `false`.
    pub fn dangerous_allow_insecure_jwks_uri(mut self, allow: bool) -> Self {
        self.jwks.allow_insecure_http = allow;
        self
    }

    /// Adds the CA certificates of a PEM document (one certificate or a bundle) as trust
    /// anchors for fetching key sets and authorization-server metadata, **on top of** the
    /// system's roots: for an authorization server behind a private CA. Checked by `build()`:
    /// the document must hold at least one certificate and no private key. Pass CA
    /// certificates only: a trust anchor vouches for any host name. Environment:
    /// `MCP_SERVER_AUTH_CA_CERTS` (PEM text) or `MCP_SERVER_AUTH_CA_CERTS_FILE` (a file).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use protected_resource::{AuthorizationServerEntry, ResourceServerAuth};
    ///
    /// let auth = ResourceServerAuth::builder()
    ///     .canonical_url("https://mcp.example.com/mcp")
    ///     .authorization_server(AuthorizationServerEntry::new("https://idp.internal.example"))
    ///     .add_root_certificates_pem(std::fs::read("/etc/ssl/private-ca.pem")?)
    ///     .build()?;
    /// # let _ = auth; Ok(()) }
    /// ```
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates
            .push(("root_certificates".to_owned(), pem.into()));
        self
    }
}

/// The certificates of a PEM document given as trust anchors: at least one, no private key.
pub(super) fn parse_root_certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    if pem
        .windows(b"PRIVATE KEY-----".len())
        .any(|w| w == b"PRIVATE KEY-----")
    {
        return Err("the PEM document holds a private key: give CA certificates only".to_owned());
    }
    let certs = match reqwest::Certificate::from_pem_bundle(pem) {
        Ok(certs) if !certs.is_empty() => certs,
        Ok(_) => return Err("the PEM document holds no certificate".to_owned()),
        Err(_) => return Err("the PEM document can not be read as certificates".to_owned()),
    };
    // Reading PEM does not look inside the certificates; the TLS library does, when a client
    // is built with them.
    reqwest::Client::builder()
        .tls_certs_merge(certs.iter().cloned())
        .build()
        .map_err(|_| "the PEM document holds a certificate the TLS library can not use")?;
    Ok(certs)
}
