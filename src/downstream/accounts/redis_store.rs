//! [`RedisTokenStore`] (feature `redis`): connected accounts in Redis, shared by every replica.
//! Keys name no user (a prefix and the [`AccountKey::id`] hash); values are the sealed records.

use std::fmt;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::store::{AccountKey, StoreError, StoreErrorKind, StoreFuture, TokenStore};

/// Deletes a lock only when it still holds the caller's value.
const UNLOCK: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Connected accounts in Redis: several replicas of an MCP server share them, and their
/// refresh locks (`SET NX PX`): one replica refreshes an account at a time.
///
/// ```no_run
/// use protected_resource::downstream::RedisTokenStore;
///
/// # async fn run() -> Result<(), protected_resource::downstream::StoreError> {
/// let store = RedisTokenStore::connect("redis://127.0.0.1:6379/0", "mcp:accounts:").await?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisTokenStore {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisTokenStore {
    /// Connects to `url` (`redis://host:port[/db]` or `unix:///path`; TLS is not built in); keys
    /// start with `prefix`. Each command has a 2 s time limit.
    ///
    /// # Errors
    /// A [`StoreError`] when the URL is not a Redis URL or the server can not be reached
    /// (the URL, which may hold a password, is not in the message).
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|_| StoreError::new(StoreErrorKind::Unavailable, "not a Redis URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(Self {
            conn,
            prefix: prefix.into(),
        })
    }

    fn key(&self, key: &AccountKey) -> String {
        format!("{}{}", self.prefix, key.id())
    }
}

fn unavailable(e: &redis::RedisError) -> StoreError {
    // The kind and category only: a Redis error's text can quote a command's arguments.
    StoreError::new(
        StoreErrorKind::Unavailable,
        format!("Redis failed ({:?})", e.kind()),
    )
}

impl fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TokenStore for RedisTokenStore {
    fn load<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let found: Option<Vec<u8>> = self
                .conn
                .clone()
                .get(self.key(key))
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(found)
        })
    }

    fn save<'a>(&'a self, key: &'a AccountKey, record: Vec<u8>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let () = self
                .conn
                .clone()
                .set(self.key(key), record)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(())
        })
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a AccountKey,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // SET NX PX: taken by exactly one process, released by itself or by time.
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let taken: Option<String> = redis::cmd("SET")
                .arg(format!("{}:lock", self.key(key)))
                .arg(holder)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(taken.is_some())
        })
    }

    fn unlock<'a>(&'a self, key: &'a AccountKey, holder: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // Only the holder's own lock: one that expired and was taken by another stays.
            let _: i64 = redis::cmd("EVAL")
                .arg(UNLOCK)
                .arg(1)
                .arg(format!("{}:lock", self.key(key)))
                .arg(holder)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let removed: u64 = self
                .conn
                .clone()
                .del(self.key(key))
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(removed > 0)
        })
    }
}
