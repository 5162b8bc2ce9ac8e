//! Tool-level authorization (feature `downstream`): a tool obtains a token for a third-party
//! API for the user who called it.
//!
//! The front door ([`ProtectedResourceLayer`](crate::ProtectedResourceLayer)) says *who* calls:
//! a [`ResourceOwner`]. A [`TokenBroker`] answers what a tool needs to act for that user on
//! another API: a [`DownstreamToken`] for a [`TokenNeed`] (provider, scopes, audience or
//! resource), or a typed [`Denial`] saying what the user can do. The principal is always the
//! owner's (issuer, subject), never `sub` alone.
//!
//! - [`TokenExchangeBroker`]: exchange of the caller's own access token at an authorization
//!   server for a token of another audience: RFC 8693 (Keycloak, Okta, the development
//!   server), Auth0 Token Vault, Microsoft Entra on-behalf-of ([`ExchangeProfile`]); client
//!   authentication `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
//! - [`CachedBroker`]: keeps each user's tokens until shortly before they expire, one fetch at
//!   a time per (issuer, subject, need).
//! - [`ArcadeBroker`]: Arcade's authorization API, the platform the model relies on: the
//!   token of a completed authorization, or the URL of a pending one.
//! - [`DownstreamClient`]: sends a provider's token only to that provider's hosts, follows no
//!   redirect, and never sends the caller's own access token.
//! - [`ConnectedAccounts`]: for providers that do not federate, the MCP server is their OAuth
//!   client and keeps each user's tokens (sealed, in a [`TokenStore`]: memory or Redis); a user
//!   without an account gets a connect link bound to them.
//! - `denial_response` (with the feature `rmcp`): a denial as MCP URL elicitation.
//!
//! ```no_run
//! use protected_resource::ResourceOwner;
//! use protected_resource::downstream::{
//!     CachedBroker, TokenBroker, TokenExchangeBroker, TokenNeed,
//! };
//!
//! # async fn tool(owner: ResourceOwner) -> Result<String, Box<dyn std::error::Error>> {
//! let broker = CachedBroker::new(
//!     TokenExchangeBroker::keycloak("https://auth.example.com/realms/acme")
//!         .client_secret_basic("mcp-server", "client-secret")
//!         .build()?,
//! );
//! let need = TokenNeed::new("acme").audience("acme-api").scopes(["profile:read"]);
//! let token = broker.token(&owner, &need).await?;
//! # Ok(token.token_type().to_owned())
//! # }
//! ```

mod accounts;
mod arcade;
mod cache;
mod client;
mod denial;
mod exchange;
mod http;
#[cfg(feature = "rmcp")]
mod mcp;
mod profile;
mod token;

use std::future::Future;
use std::pin::Pin;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::accounts::RedisTokenStore;
pub use self::accounts::{
    AccountKey, ConnectedAccounts, ConnectedAccountsBuilder, Disconnection, EncryptionKey,
    MemoryTokenStore, OAuthProvider, OAuthProviderBuilder, StoreError, StoreErrorKind, StoreFuture,
    TokenStore,
};
pub use self::arcade::{ArcadeBroker, ArcadeBrokerBuilder, ArcadeUserId};
pub use self::cache::CachedBroker;
pub use self::client::{DownstreamClient, DownstreamClientBuilder, SendError, SendErrorKind};
pub use self::denial::{Denial, DenialKind};
pub use self::exchange::{TokenExchangeBroker, TokenExchangeBrokerBuilder};
#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub use self::mcp::{URL_ELICITATION_REQUIRED, denial_response};
pub use self::profile::ExchangeProfile;
pub use self::token::DownstreamToken;
use crate::ResourceOwner;

/// The future a [`TokenBroker`] answers with.
pub type BrokerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<DownstreamToken, Denial>> + Send + 'a>>;

/// Obtains downstream tokens for users. Implement it for your own source of tokens; the
/// crate's brokers are [`TokenExchangeBroker`] and [`CachedBroker`] around any broker.
pub trait TokenBroker: Send + Sync {
    /// A token for `owner` meeting `need`, or why there is none.
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a>;
}

impl<B: TokenBroker + ?Sized> TokenBroker for std::sync::Arc<B> {
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a> {
        (**self).token(owner, need)
    }
}

/// What a tool needs: a token for `provider` with these scopes, for this audience or
/// resource. Scopes are kept sorted and once each, so that the same need is the same key.
///
/// ```
/// use protected_resource::downstream::TokenNeed;
///
/// let need = TokenNeed::new("github").scopes(["repo", "read:user", "repo"]);
/// assert_eq!(need.get_scopes(), ["read:user", "repo"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenNeed {
    provider: String,
    scopes: Vec<String>,
    audience: Option<String>,
    resource: Option<String>,
}

impl TokenNeed {
    /// A need for a token of `provider` (a name the broker knows, such as `github`).
    pub fn new(provider: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            scopes: Vec::new(),
            audience: None,
            resource: None,
        }
    }

    /// The scopes the tool needs (only those: least privilege).
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        let mut scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        scopes.sort();
        scopes.dedup();
        self.scopes = scopes;
        self
    }

    /// The audience of the token (RFC 8693 `audience`: a logical name such as `acme-api`).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The resource the token is for (RFC 8707 / RFC 8693 `resource`: an absolute URI).
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// The provider.
    #[must_use]
    pub fn get_provider(&self) -> &str {
        &self.provider
    }

    /// The scopes, sorted, each once.
    #[must_use]
    pub fn get_scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The audience, when given.
    #[must_use]
    pub fn get_audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The resource, when given.
    #[must_use]
    pub fn get_resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }
}
