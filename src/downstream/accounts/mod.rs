//! Connected accounts: for providers that do not federate with the MCP server's authorization
//! server (GitHub, Google, Slack…), the MCP server is an OAuth client of the provider and keeps
//! each user's tokens, sealed, in a [`TokenStore`].
//!
//! A user without an account gets [`Denial::authorization_required`] with a connect link bound
//! to them (sealed: issuer, subject, provider, scopes, ten minutes). The link's page
//! ([`ConnectedAccounts::router`]) first has the person in the browser log in at the
//! authorization server that issued the user's MCP token and checks that issuer and subject
//! are the same (what MCP asks of URL-mode elicitation: a link sent to someone else connects
//! nothing), then runs authorization code + PKCE with the provider, bound to the browser by a
//! cookie, and stores the tokens. Refreshes are one at a time per account in a process; a
//! provider that rejects the refresh token makes the user connect again. Disconnecting revokes
//! (RFC 7009, when the provider has an endpoint) and deletes.

mod builder;
mod connect;
mod provider;
mod record;
#[cfg(feature = "redis")]
mod redis_store;
mod refresh;
mod seal;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

pub use self::builder::ConnectedAccountsBuilder;
pub use self::provider::{OAuthProvider, OAuthProviderBuilder};
use self::record::{Account, Link};
#[cfg(feature = "redis")]
pub use self::redis_store::RedisTokenStore;
pub use self::seal::EncryptionKey;
pub use self::store::{
    AccountKey, MemoryTokenStore, StoreError, StoreErrorKind, StoreFuture, TokenStore,
};
use super::{BrokerFuture, Denial, DenialKind, DownstreamToken, TokenBroker, TokenNeed};
use crate::{ResourceOwner, ResourceServerAuth};

const LINK_SECONDS: u64 = 600;
const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(60);
/// A store lock for work without a provider call lives the provider's time limit plus this.
const STORE_MARGIN: Duration = Duration::from_secs(20);
/// How long a call waits for this process's refresh of the same account.
const LOCAL_WAIT: Duration = Duration::from_secs(30);

/// Connected accounts: a [`TokenBroker`] over stored per-user provider tokens, and the
/// browser flow that connects them. See the module docs.
///
/// ```no_run
/// use std::sync::Arc;
/// use protected_resource::downstream::{
///     ConnectedAccounts, EncryptionKey, MemoryTokenStore, OAuthProvider,
/// };
/// # fn run(auth: protected_resource::ResourceServerAuth) -> Result<(), protected_resource::ConfigError> {
/// let accounts = ConnectedAccounts::builder(
///     "https://mcp.example.com/connect",
///     EncryptionKey::from_base64url(&std::env::var("ACCOUNTS_KEY").unwrap_or_default())?,
///     Arc::new(MemoryTokenStore::new(100_000)),
///     auth, // the front door's: it checks who logs in on the connect page
/// )
/// .provider(OAuthProvider::github("Iv1.id", "secret").build()?)
/// .login(
///     "https://auth.example.com",
///     OAuthProvider::builder("login", "https://auth.example.com/authorize", "https://auth.example.com/token")
///         .client_secret_basic("mcp-server", "secret")
///         .build()?,
/// )
/// .build()?;
/// let app: axum::Router = accounts.router(); // serves /connect/start, /connect/login, /connect/callback
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectedAccounts {
    inner: Arc<Inner>,
}

struct Inner {
    /// The connect pages' base URL, without a trailing `/`.
    base: String,
    /// The path of `base`.
    path: String,
    /// `base` is https (cookies `__Host-` and `Secure`).
    secure: bool,
    key: EncryptionKey,
    store: Arc<dyn TokenStore>,
    providers: HashMap<String, OAuthProvider>,
    /// Login clients by issuer (without a trailing `/`).
    logins: HashMap<String, OAuthProvider>,
    login_scope: Option<String>,
    auth: ResourceServerAuth,
    refresh_before: Duration,
    /// One refresh at a time per account in this process.
    refreshing: Cache<AccountKey, Arc<tokio::sync::Mutex<()>>>,
}

/// What [`ConnectedAccounts::disconnect`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disconnection {
    /// There was no account to disconnect.
    NotConnected,
    /// The provider revoked the grant and the tokens were deleted.
    RevokedAndDeleted,
    /// The tokens were deleted; the provider has no revocation endpoint, or revoking failed
    /// (the grant may still be valid at the provider until it expires).
    DeletedOnly,
}

impl ConnectedAccounts {
    /// Connected accounts whose pages are under `connect_url` (for example
    /// `https://mcp.example.com/connect`; https, or http on a loopback host), sealed with
    /// `key`, kept in `store`; `auth` (the front door's) validates the token of the login
    /// that proves who is in the browser.
    pub fn builder(
        connect_url: impl Into<String>,
        key: EncryptionKey,
        store: Arc<dyn TokenStore>,
        auth: ResourceServerAuth,
    ) -> ConnectedAccountsBuilder {
        ConnectedAccountsBuilder {
            base: connect_url.into(),
            key,
            store,
            providers: Vec::new(),
            logins: Vec::new(),
            login_scope: None,
            auth,
            refresh_before: DEFAULT_REFRESH_BEFORE,
        }
    }

    /// Disconnects `owner`'s account at `provider`: revokes the grant (RFC 7009, the refresh
    /// token when there is one) and deletes the tokens, even when revoking fails.
    ///
    /// # Errors
    /// A [`Denial`] (unavailable) when the store fails; forbidden for an unknown provider.
    pub async fn disconnect(
        &self,
        owner: &ResourceOwner,
        provider: &str,
    ) -> Result<Disconnection, Denial> {
        let p = self.inner.provider(provider)?;
        let key = AccountKey::of(owner, provider);
        // Not while a refresh of this account (here or in another replica) saves new tokens.
        let lock = self.inner.lock(&key).await;
        let _guard = lock.lock().await;
        let never = || async { Ok(None) };
        let work = || async {
            let account = self.inner.load(&key).await?;
            let deleted = self.inner.store.delete(&key).await.map_err(store_denial)?;
            Ok((account, deleted))
        };
        let (account, deleted) = self
            .inner
            .with_store_lock(&key, p.timeout + STORE_MARGIN, never, work)
            .await?;
        let Some(account) = account else {
            return Ok(if deleted {
                Disconnection::DeletedOnly
            } else {
                Disconnection::NotConnected
            });
        };
        let revoked = match &account.refresh_token {
            Some(r) => p.revoke(r, "refresh_token").await,
            None => p.revoke(&account.access_token, "access_token").await,
        };
        Ok(match revoked {
            Ok(true) => Disconnection::RevokedAndDeleted,
            Ok(false) => Disconnection::DeletedOnly,
            Err(e) => {
                tracing::warn!(provider, reason = %e, "revoking a disconnected account failed");
                Disconnection::DeletedOnly
            }
        })
    }

    /// Whether `owner` has an account at `provider` (tokens stored, fresh or not).
    ///
    /// # Errors
    /// A [`Denial`] (unavailable) when the store fails.
    pub async fn is_connected(
        &self,
        owner: &ResourceOwner,
        provider: &str,
    ) -> Result<bool, Denial> {
        Ok(self
            .inner
            .load(&AccountKey::of(owner, provider))
            .await?
            .is_some())
    }

    async fn obtain(
        &self,
        owner: &ResourceOwner,
        need: &TokenNeed,
    ) -> Result<DownstreamToken, Denial> {
        let inner = &*self.inner;
        let provider = inner.provider(need.get_provider())?;
        let key = AccountKey::of(owner, provider.name());
        let margin = inner.refresh_before.as_secs();
        let Some(account) = inner.load(&key).await? else {
            return Err(inner.connect(owner, need, &[]));
        };
        if !account.covers(need.get_scopes()) {
            return Err(inner.connect(owner, need, &account.scopes));
        }
        if account.is_fresh(margin) {
            return Ok(account.token());
        }
        if account.refresh_token.is_none() {
            return Err(inner.connect(owner, need, &account.scopes));
        }
        // One refresh per account at a time, here and (through the store) across replicas;
        // whoever waited finds the new tokens. In a task of its own: a caller that gives up
        // does not cut it between the provider's answer and the save.
        let (inner, owner, need) = (self.inner.clone(), owner.clone(), need.clone());
        let task = tokio::spawn(async move {
            let lock = inner.lock(&key).await;
            let Ok(_guard) = tokio::time::timeout(LOCAL_WAIT, lock.lock()).await else {
                return Err(Denial::unavailable(
                    Some(Duration::from_secs(1)),
                    "this account is being refreshed",
                ));
            };
            let provider = inner.provider(need.get_provider())?;
            inner.refresh(&owner, &need, provider, &key).await
        });
        task.await
            .unwrap_or_else(|_| Err(Denial::unavailable(None, "the refresh failed")))
    }

    /// A tool's report that the provider refused `rejected` (HTTP 401, say: the user revoked
    /// the access at the provider): the next use refreshes when there is a refresh token,
    /// else the user must connect again. Nothing changes when the stored token is already
    /// another one.
    ///
    /// # Errors
    /// A [`Denial`] (unavailable) when the store fails; forbidden for an unknown provider.
    pub async fn token_rejected(
        &self,
        owner: &ResourceOwner,
        provider: &str,
        rejected: &DownstreamToken,
    ) -> Result<(), Denial> {
        let p = self.inner.provider(provider)?;
        let key = AccountKey::of(owner, provider);
        let lock = self.inner.lock(&key).await;
        let _guard = lock.lock().await;
        let never = || async { Ok(None) };
        let work = || async {
            let Some(mut account) = self.inner.load(&key).await? else {
                return Ok(());
            };
            if account.access_token != rejected.secret() {
                return Ok(());
            }
            if account.refresh_token.is_some() {
                account.expires_at = Some(0);
                self.inner.save(&key, &account).await
            } else {
                self.inner
                    .store
                    .delete(&key)
                    .await
                    .map(|_| ())
                    .map_err(store_denial)
            }
        };
        self.inner
            .with_store_lock(&key, p.timeout + STORE_MARGIN, never, work)
            .await
    }
}

impl Inner {
    fn provider(&self, name: &str) -> Result<&OAuthProvider, Denial> {
        self.providers
            .get(name)
            .ok_or_else(|| Denial::forbidden(format!("no provider named {name:?} is configured")))
    }

    /// The account under `key`; one that no key opens counts as none (and is logged); one
    /// a previous key opened is sealed again with the current key.
    async fn load(&self, key: &AccountKey) -> Result<Option<Account>, Denial> {
        let Some(sealed) = self.store.load(key).await.map_err(store_denial)? else {
            return Ok(None);
        };
        match Account::open(&self.key, key, &sealed) {
            Some((account, true)) => Ok(Some(account)),
            Some((account, false)) => {
                if let Err(e) = self.save(key, &account).await {
                    tracing::warn!(provider = key.provider(), reason = %e, "re-sealing an account failed");
                }
                Ok(Some(account))
            }
            None => {
                tracing::warn!(
                    provider = key.provider(),
                    "a stored account could not be opened (key rotated away, or not this user's)"
                );
                Ok(None)
            }
        }
    }

    /// The lock that makes refreshes (and disconnects) of one account one at a time here.
    async fn lock(&self, key: &AccountKey) -> Arc<tokio::sync::Mutex<()>> {
        self.refreshing
            .get_with(key.clone(), async { Arc::new(tokio::sync::Mutex::new(())) })
            .await
    }

    async fn save(&self, key: &AccountKey, account: &Account) -> Result<(), Denial> {
        let sealed = account
            .seal(&self.key, key)
            .ok_or_else(|| Denial::unavailable(None, "the account could not be sealed"))?;
        self.store.save(key, sealed).await.map_err(store_denial)
    }

    fn link(&self, owner: &ResourceOwner, need: &TokenNeed, had: &[String]) -> Option<String> {
        let mut scopes: Vec<String> = had.iter().chain(need.get_scopes()).cloned().collect();
        scopes.sort();
        scopes.dedup();
        let link = Link {
            iss: owner.issuer().to_owned(),
            sub: owner.user_id().to_owned(),
            provider: need.get_provider().to_owned(),
            scopes,
            exp: record::now_secs() + LINK_SECONDS,
        };
        let sealed = record::seal_json(&self.key, record::LINK, &self.base, &link)?;
        Some(format!("{}/start?link={sealed}", self.base))
    }

    /// The user must connect (with the scopes they had and the ones needed now).
    fn connect(&self, owner: &ResourceOwner, need: &TokenNeed, had: &[String]) -> Denial {
        match self.link(owner, need, had) {
            Some(url) => Denial::authorization_required(url)
                .with_message(format!("connect your {} account", need.get_provider())),
            None => Denial::unavailable(None, "a connect link could not be made"),
        }
    }

    /// The provider no longer accepts the grant: connect again.
    fn reconnect(&self, owner: &ResourceOwner, need: &TokenNeed, had: &[String]) -> Denial {
        Denial::reauthorization_required(
            self.link(owner, need, had),
            format!("connect your {} account again", need.get_provider()),
        )
    }
}

#[allow(clippy::needless_pass_by_value)] // the shape `map_err` hands over
pub(super) fn store_denial(e: StoreError) -> Denial {
    Denial::unavailable(None, e.to_string())
}

impl TokenBroker for ConnectedAccounts {
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a> {
        Box::pin(self.obtain(owner, need))
    }
}

impl fmt::Debug for ConnectedAccounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectedAccounts")
            .field("connect_url", &self.inner.base)
            .field(
                "providers",
                &self.inner.providers.keys().collect::<Vec<_>>(),
            )
            .field("logins", &self.inner.logins.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
