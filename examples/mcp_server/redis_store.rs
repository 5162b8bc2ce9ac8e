//! An rmcp `SessionStore` on Redis (`MCP_SERVER_SESSION_STORE=redis://…`): what rmcp needs to
//! restore a session (its `initialize` parameters) is shared by every replica, so a session
//! opened on one continues on another. Binding the session to its user is the layer's work
//! (the sealed session id), not the store's.

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};

/// Sessions live this long after they were opened (rmcp stores them once).
const TTL_SECS: u64 = 24 * 3600;

pub struct RedisSessionStore {
    conn: ConnectionManager,
}

impl RedisSessionStore {
    /// Connects to `url` (`redis://host:port[/db]` or `unix:///path`).
    pub async fn connect(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("not a Redis URL: {e}"))?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(|e| format!("can not connect: {e}"))?;
        Ok(Self { conn })
    }
}

fn key(session_id: &str) -> String {
    format!("mcp:session:{session_id}")
}

#[async_trait::async_trait]
impl SessionStore for RedisSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let text: Option<String> = self.conn.clone().get(key(session_id)).await?;
        Ok(match text {
            Some(text) => Some(serde_json::from_str(&text)?),
            None => None,
        })
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let text = serde_json::to_string(state)?;
        let () = self
            .conn
            .clone()
            .set_ex(key(session_id), text, TTL_SECS)
            .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let () = self.conn.clone().del(key(session_id)).await?;
        Ok(())
    }
}
