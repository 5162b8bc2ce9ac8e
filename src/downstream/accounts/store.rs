//! Where connected accounts live: a [`TokenStore`] keeps one sealed record per
//! [`AccountKey`] (issuer, subject, provider). Records are sealed (AES-256-GCM, bound to their
//! key) before a store sees them: a store holds only ciphertext, and a record copied to another
//! user's key does not open there.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ResourceOwner;

/// The future a [`TokenStore`] answers with.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Whose account with which provider: the owner's issuer and subject (never `sub` alone) and
/// the provider's name.
///
/// ```
/// use protected_resource::downstream::AccountKey;
///
/// let key = AccountKey::new("https://as.example.com", "alice", "github");
/// assert_ne!(key.id(), AccountKey::new("https://other.example.com", "alice", "github").id());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey {
    issuer: String,
    subject: String,
    provider: String,
}

impl AccountKey {
    /// The key of `subject` at `issuer` for `provider`.
    pub fn new(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        provider: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
            provider: provider.into(),
        }
    }

    /// The key of `owner` for `provider`.
    #[must_use]
    pub fn of(owner: &ResourceOwner, provider: &str) -> Self {
        Self::new(owner.issuer(), owner.user_id(), provider)
    }

    /// The issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The subject at the issuer.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The provider.
    #[must_use]
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The three parts, each length-prefixed: one byte string per key and no two keys alike
    /// (the associated data a record is sealed with).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [&self.issuer, &self.subject, &self.provider] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }

    /// A fixed-length identifier (hex SHA-256 of [`to_bytes`](Self::to_bytes)): a store's key
    /// that names no user.
    #[must_use]
    pub fn id(&self) -> String {
        use std::fmt::Write;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.to_bytes());
        digest
            .as_ref()
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}

/// The kind of a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached or failed.
    Unavailable,
    /// The store is full.
    Full,
}

/// A [`TokenStore`] failure (never with a record's content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    /// An error of `kind`, saying `message`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind of failure.
    #[must_use]
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token store: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

/// Keeps sealed connected-account records. Implement it for your own database; the crate's
/// stores are [`MemoryTokenStore`] (one process) and, with the feature `redis`,
/// `RedisTokenStore` (replicas share accounts).
pub trait TokenStore: Send + Sync {
    /// The record under `key`, if any.
    fn load<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Keeps `record` under `key`, replacing what was there.
    fn save<'a>(&'a self, key: &'a AccountKey, record: Vec<u8>) -> StoreFuture<'a, ()>;
    /// Removes the record under `key`; `true` when there was one.
    fn delete<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, bool>;

    /// Takes the refresh lock of `key` for `holder` (a random value) for at most `ttl`, across
    /// every process that shares this store: `true` when taken, `false` while another holds
    /// it. The default takes it at once: right for a store only one process uses; a shared
    /// store should implement it (refresh tokens that rotate are lost when two processes
    /// refresh one account at the same instant).
    fn try_lock<'a>(
        &'a self,
        key: &'a AccountKey,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let _ = (key, holder, ttl);
        Box::pin(async { Ok(true) })
    }

    /// Releases the lock of `key` if `holder` still holds it.
    fn unlock<'a>(&'a self, key: &'a AccountKey, holder: &'a str) -> StoreFuture<'a, ()> {
        let _ = (key, holder);
        Box::pin(async { Ok(()) })
    }
}

impl<S: TokenStore + ?Sized> TokenStore for std::sync::Arc<S> {
    fn load<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        (**self).load(key)
    }
    fn save<'a>(&'a self, key: &'a AccountKey, record: Vec<u8>) -> StoreFuture<'a, ()> {
        (**self).save(key, record)
    }
    fn delete<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, bool> {
        (**self).delete(key)
    }
    fn try_lock<'a>(
        &'a self,
        key: &'a AccountKey,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        (**self).try_lock(key, holder, ttl)
    }
    fn unlock<'a>(&'a self, key: &'a AccountKey, holder: &'a str) -> StoreFuture<'a, ()> {
        (**self).unlock(key, holder)
    }
}

/// Connected accounts in this process's memory, at most `capacity` of them (a save beyond
/// answers [`StoreErrorKind::Full`]; nobody's account is pushed out). Its refresh locks hold
/// across every [`ConnectedAccounts`](super::ConnectedAccounts) sharing it.
///
/// ```
/// use protected_resource::downstream::MemoryTokenStore;
///
/// let store = MemoryTokenStore::new(10_000);
/// # let _ = store;
/// ```
pub struct MemoryTokenStore {
    capacity: usize,
    records: Mutex<HashMap<AccountKey, Vec<u8>>>,
    /// Refresh locks: holder and deadline (at most one per stored account).
    locks: Mutex<HashMap<AccountKey, (String, Instant)>>,
}

impl MemoryTokenStore {
    /// An empty store for at most `capacity` accounts.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            records: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<AccountKey, Vec<u8>>) -> T) -> T {
        let mut map = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut map)
    }
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.with(|m| m.len());
        write!(f, "MemoryTokenStore({len} of {})", self.capacity)
    }
}

impl TokenStore for MemoryTokenStore {
    fn load<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        let found = self.with(|m| m.get(key).cloned());
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(&'a self, key: &'a AccountKey, record: Vec<u8>) -> StoreFuture<'a, ()> {
        let saved = self.with(|m| {
            if m.len() >= self.capacity && !m.contains_key(key) {
                return false;
            }
            m.insert(key.clone(), record);
            true
        });
        Box::pin(async move {
            if saved {
                Ok(())
            } else {
                Err(StoreError::new(
                    StoreErrorKind::Full,
                    "the memory store is full",
                ))
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, bool> {
        let removed = self.with(|m| m.remove(key).is_some());
        Box::pin(async move { Ok(removed) })
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a AccountKey,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let now = Instant::now();
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.retain(|_, (_, until)| *until > now);
        let taken = if locks.contains_key(key) || locks.len() >= self.capacity {
            false
        } else {
            locks.insert(key.clone(), (holder.to_owned(), now + ttl));
            true
        };
        Box::pin(async move { Ok(taken) })
    }

    fn unlock<'a>(&'a self, key: &'a AccountKey, holder: &'a str) -> StoreFuture<'a, ()> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks.get(key).is_some_and(|(h, _)| h == holder) {
            locks.remove(key);
        }
        Box::pin(async { Ok(()) })
    }
}
