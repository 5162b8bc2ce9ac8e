//! The DPoP replay check shared by every replica, in Redis (feature `redis`): one
//! `SET key 1 NX PX lifetime` per accepted proof. A proof any replica accepted is refused by
//! all of them; Redis out of reach means the proof can not be checked, so it is not accepted
//! (503 with `Retry-After`).

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::dpop::FirstUse;

/// The longest wait for Redis, connecting included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// The connection, made at the first DPoP request (the builder runs outside any runtime).
pub(crate) struct RedisReplay {
    client: redis::Client,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    prefix: String,
    lifetime: Duration,
}

impl fmt::Debug for RedisReplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("RedisReplay")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisReplay {
    /// `None` when `url` is not a Redis URL (`redis://`, `unix://`).
    pub(crate) fn new(url: &str, lifetime: Duration) -> Option<Self> {
        Some(Self {
            client: redis::Client::open(url).ok()?,
            conn: tokio::sync::OnceCell::new(),
            prefix: "protected-resource:dpop-jti:".to_owned(),
            lifetime,
        })
    }

    /// The connection manager, made without connecting (it connects, and reconnects, on its
    /// own): requests never queue behind a connection attempt.
    async fn connection(&self) -> Option<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        self.conn
            .get_or_try_init(|| async {
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await
            .inspect_err(|e| {
                tracing::warn!(kind = ?e.kind(), "DPoP replay store: no Redis connection manager");
            })
            .ok()
            .cloned()
    }

    /// Whether the proof with this replay `key` is used for the first time (then recorded);
    /// `Unavailable` when Redis does not answer within 2 s.
    pub(crate) async fn first_use(&self, key: [u8; 32]) -> FirstUse {
        tokio::time::timeout(COMMAND_TIMEOUT, self.set_new(key))
            .await
            .unwrap_or_else(|_| {
                tracing::warn!("DPoP replay store: Redis did not answer in time");
                FirstUse::Unavailable
            })
    }

    async fn set_new(&self, key: [u8; 32]) -> FirstUse {
        let Some(mut conn) = self.connection().await else {
            return FirstUse::Unavailable;
        };
        let mut name = String::with_capacity(self.prefix.len() + 64);
        name.push_str(&self.prefix);
        for b in key {
            let _ = write!(name, "{b:02x}"); // writing to a String can not fail
        }
        let millis = u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX);
        let set: Result<Option<String>, redis::RedisError> = redis::cmd("SET")
            .arg(&name)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query_async(&mut conn)
            .await;
        match set {
            Ok(Some(_)) => FirstUse::Yes,
            Ok(None) => FirstUse::Replayed,
            Err(e) => {
                tracing::warn!(kind = ?e.kind(), "DPoP replay store: Redis command failed");
                FirstUse::Unavailable
            }
        }
    }
}
