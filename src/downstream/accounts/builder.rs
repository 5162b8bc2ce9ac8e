//! [`ConnectedAccountsBuilder`]: providers, logins and limits of [`ConnectedAccounts`],
//! checked at build time.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use super::EncryptionKey;
use super::{ConnectedAccounts, Inner, OAuthProvider, TokenStore};
use crate::ResourceServerAuth;
use crate::error::{ConfigError, ConfigErrorKind};

/// Builds [`ConnectedAccounts`].
#[must_use]
pub struct ConnectedAccountsBuilder {
    pub(super) base: String,
    pub(super) key: EncryptionKey,
    pub(super) store: Arc<dyn TokenStore>,
    pub(super) providers: Vec<OAuthProvider>,
    pub(super) logins: Vec<(String, OAuthProvider)>,
    pub(super) login_scope: Option<String>,
    pub(super) auth: ResourceServerAuth,
    pub(super) refresh_before: Duration,
}

impl fmt::Debug for ConnectedAccountsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectedAccountsBuilder")
            .field("connect_url", &self.base)
            .finish_non_exhaustive()
    }
}

impl ConnectedAccountsBuilder {
    /// A provider users can connect (its name is the [`TokenNeed`](crate::downstream::TokenNeed) provider).
    pub fn provider(mut self, provider: OAuthProvider) -> Self {
        self.providers.push(provider);
        self
    }

    /// How users of `issuer` prove who they are on the connect page: this server's client
    /// at that authorization server (authorization code + PKCE, with the front door's
    /// canonical URL as `resource`). Users of an issuer without a login can not connect.
    pub fn login(mut self, issuer: impl Into<String>, client: OAuthProvider) -> Self {
        self.logins.push((issuer.into(), client));
        self
    }

    /// The `scope` of the login request (default: none, the server's default).
    pub fn login_scope(mut self, scope: impl Into<String>) -> Self {
        self.login_scope = Some(scope.into());
        self
    }

    /// Refresh a token this long before it expires (default 60 s).
    pub fn refresh_before(mut self, margin: Duration) -> Self {
        self.refresh_before = margin;
        self
    }

    /// # Errors
    /// A [`ConfigError`] naming `connect_url` (not https nor loopback http, or with a query
    /// or fragment), `provider` (none, or two with one name) or `login` (none, or an issuer
    /// the front door does not trust).
    pub fn build(self) -> Result<ConnectedAccounts, ConfigError> {
        super::super::http::check_endpoint(&self.base, "connect_url")?;
        let url = reqwest::Url::parse(&self.base).map_err(|_| {
            ConfigError::new(ConfigErrorKind::InvalidUrl, "connect_url", "not a URL")
        })?;
        if url.query().is_some() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidUrl,
                "connect_url",
                "must not have a query",
            ));
        }
        let base = self.base.trim_end_matches('/').to_owned();
        let path = url.path().trim_end_matches('/').to_owned();
        let mut providers = HashMap::new();
        for p in self.providers {
            if providers.insert(p.name().to_owned(), p).is_some() {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidValue,
                    "provider",
                    "two providers have the same name",
                ));
            }
        }
        if providers.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::Missing,
                "provider",
                "configure at least one provider",
            ));
        }
        let trusted: Vec<String> = self
            .auth
            .authorization_servers()
            .iter()
            .map(|e| e.get_issuer().trim_end_matches('/').to_owned())
            .collect();
        let mut logins = HashMap::new();
        for (issuer, client) in self.logins {
            let issuer = issuer.trim_end_matches('/').to_owned();
            if !trusted.contains(&issuer) {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidValue,
                    "login",
                    "the issuer is not one the front door trusts",
                ));
            }
            logins.insert(issuer, client);
        }
        if logins.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::Missing,
                "login",
                "configure the login at the authorization server of the MCP users",
            ));
        }
        Ok(ConnectedAccounts {
            inner: Arc::new(Inner {
                base,
                path,
                secure: url.scheme() == "https",
                key: self.key,
                store: self.store,
                providers,
                logins,
                login_scope: self.login_scope,
                auth: self.auth,
                refresh_before: self.refresh_before,
                refreshing: Cache::builder()
                    .max_capacity(10_000)
                    .time_to_idle(Duration::from_secs(300))
                    .build(),
            }),
        })
    }
}
