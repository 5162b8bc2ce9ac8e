//! Refreshing a connected account's tokens: one refresh per account at a time across every
//! process sharing the store (the store's lock, bounded wait), since a provider that rotates
//! refresh tokens refuses the second use of one; only the provider's `invalid_grant` ends the
//! account.

use std::future::Future;
use std::time::Duration;

use super::provider::{OAuthProvider, Refresh};
use super::record::{self, Account};
use super::{AccountKey, Inner, store_denial};
use crate::ResourceOwner;
use crate::downstream::{Denial, DownstreamToken, TokenNeed};

/// The store lock lives this much longer than the provider's time limit (the store's own
/// calls, at most a few seconds each, fit in it).
const LOCK_MARGIN: Duration = Duration::from_secs(20);
/// How often and how many times a replica checks for another's refresh before it gives up.
const WAIT_STEP: Duration = Duration::from_millis(100);
const WAIT_STEPS: u32 = 100;

impl Inner {
    /// Runs `work` holding the store's lock of `key` (waiting for another holder at most
    /// ~10 s, checking `done` after each wait: a `Some` ends the wait with that answer).
    pub(super) async fn with_store_lock<T, D, W>(
        &self,
        key: &AccountKey,
        ttl: Duration,
        mut done: impl FnMut() -> D,
        work: impl FnOnce() -> W,
    ) -> Result<T, Denial>
    where
        D: Future<Output = Result<Option<T>, Denial>>,
        W: Future<Output = Result<T, Denial>>,
    {
        let holder = record::random()
            .ok_or_else(|| Denial::unavailable(None, "no randomness for the refresh lock"))?;
        let mut steps = 0;
        while !self
            .store
            .try_lock(key, &holder, ttl)
            .await
            .map_err(store_denial)?
        {
            steps += 1;
            if steps > WAIT_STEPS {
                return Err(Denial::unavailable(
                    Some(Duration::from_secs(1)),
                    "another replica is working on this account",
                ));
            }
            tokio::time::sleep(WAIT_STEP).await;
            if let Some(answer) = done().await? {
                return Ok(answer);
            }
        }
        let result = work().await;
        if let Err(e) = self.store.unlock(key, &holder).await {
            tracing::warn!(reason = %e, "releasing an account lock failed (it expires by itself)");
        }
        result
    }

    /// The account's tokens, refreshed unless another process did it meanwhile. Run it in a
    /// task of its own: a caller that gives up must not lose a rotated refresh token between
    /// the provider's answer and the save.
    pub(super) async fn refresh(
        &self,
        owner: &ResourceOwner,
        need: &TokenNeed,
        provider: &OAuthProvider,
        key: &AccountKey,
    ) -> Result<DownstreamToken, Denial> {
        let margin = self.refresh_before.as_secs();
        let done = || async {
            Ok(self
                .load(key)
                .await?
                .filter(|a| a.is_fresh(margin) && a.covers(need.get_scopes()))
                .map(|a| a.token()))
        };
        let work = || self.refresh_locked(owner, need, provider, key, margin);
        self.with_store_lock(key, provider.timeout + LOCK_MARGIN, done, work)
            .await
    }

    async fn refresh_locked(
        &self,
        owner: &ResourceOwner,
        need: &TokenNeed,
        provider: &OAuthProvider,
        key: &AccountKey,
        margin: u64,
    ) -> Result<DownstreamToken, Denial> {
        let Some(account) = self.load(key).await? else {
            return Err(self.connect(owner, need, &[]));
        };
        if account.is_fresh(margin) {
            return Ok(account.token());
        }
        let Some(refresh_token) = account.refresh_token.clone() else {
            return Err(self.connect(owner, need, &account.scopes));
        };
        match provider.refresh(&refresh_token).await {
            Ok(issued) => {
                let renewed = Account::from_issued(
                    issued,
                    &account.scopes,
                    Some(refresh_token),
                    account.connected_at,
                );
                self.save(key, &renewed).await?;
                if renewed.covers(need.get_scopes()) {
                    Ok(renewed.token())
                } else {
                    Err(self.connect(owner, need, &renewed.scopes))
                }
            }
            Err(Refresh::InvalidGrant) => {
                // Another replica may have refreshed (and rotated) meanwhile (its lock
                // expired, say): its tokens stay.
                if let Some(now) = self.load(key).await?
                    && now.refresh_token != account.refresh_token
                {
                    if now.is_fresh(margin) && now.covers(need.get_scopes()) {
                        return Ok(now.token());
                    }
                    return Err(Denial::unavailable(
                        Some(Duration::from_secs(1)),
                        "the account was refreshed elsewhere meanwhile",
                    ));
                }
                // Only the provider's word that the grant is gone deletes the account.
                self.store.delete(key).await.map_err(store_denial)?;
                Err(self.reconnect(owner, need, &account.scopes))
            }
            Err(Refresh::Failed(denial)) => Err(denial),
        }
    }
}
