//! MCP session binding: an `Mcp-Session-Id` belongs to the user that created it.
//!
//! The MCP security best practices ("Session Hijacking") say session ids are not
//! authentication: anyone holding one could otherwise continue another user's session with
//! their own valid token. So when the inner service answers a request with an
//! `Mcp-Session-Id` header, the layer remembers the pair (`iss`, `sub`) of that request's
//! token for the session. A later request naming that session with a token of another pair
//! is answered `404` with a JSON-RPC error "Session not found" (what the MCP transport
//! answers for a session it does not know, so the attacker learns nothing) and never reaches
//! the MCP server. A successful `DELETE` of the session forgets the binding.
//!
//! Bindings live in a bounded moka cache (default 100,000 sessions, 24 hours after their
//! last request). A session the cache no longer holds (evicted, or created before a restart)
//! is passed through unbound, as the layer can not tell who made it.

use std::sync::Arc;

use http::HeaderValue;
use moka::sync::Cache;

use crate::config::SessionOptions;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::owner::ResourceOwner;

/// The `Mcp-Session-Id` header name.
pub(crate) const MCP_SESSION_ID: &str = "mcp-session-id";

/// Who a session belongs to.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    issuer: Box<str>,
    user_id: Box<str>,
}

impl Identity {
    fn is(&self, owner: &ResourceOwner) -> bool {
        *self.issuer == *owner.issuer() && *self.user_id == *owner.user_id()
    }
}

/// Session id → the identity that created it.
#[derive(Clone)]
pub(crate) struct SessionBindings {
    bound: Cache<Box<[u8]>, Arc<Identity>>,
}

impl std::fmt::Debug for SessionBindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBindings")
            .field("sessions", &self.bound.entry_count())
            .finish()
    }
}

impl SessionBindings {
    /// `None` when binding is switched off.
    pub(crate) fn new(opts: &SessionOptions) -> Result<Option<Self>, ConfigError> {
        if !opts.enabled {
            return Ok(None);
        }
        if opts.capacity == 0 || opts.idle.is_zero() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "mcp_session_binding_limits",
                "capacity and idle time must be greater than zero (or use bind_mcp_sessions(false))",
            ));
        }
        Ok(Some(Self {
            bound: Cache::builder()
                .max_capacity(opts.capacity)
                .time_to_idle(opts.idle)
                .build(),
        }))
    }

    /// Whether `owner` may use `session` (unknown sessions: yes).
    pub(crate) fn allows(&self, session: &HeaderValue, owner: &ResourceOwner) -> bool {
        match self.bound.get(session.as_bytes()) {
            Some(identity) if !identity.is(owner) => {
                tracing::warn!(
                    issuer = owner.issuer(),
                    user_id = owner.user_id(),
                    "refused a request for an MCP session that belongs to another user"
                );
                false
            }
            _ => true,
        }
    }

    /// Binds `session` (named by the inner service's answer) to `owner`, unless bound.
    pub(crate) fn bind(&self, session: &HeaderValue, owner: &ResourceOwner) {
        self.bound
            .entry(Box::from(session.as_bytes()))
            .or_insert_with(|| {
                Arc::new(Identity {
                    issuer: owner.issuer().into(),
                    user_id: owner.user_id().into(),
                })
            });
    }

    /// Forgets `session` (it was deleted).
    pub(crate) fn forget(&self, session: &HeaderValue) {
        self.bound.invalidate(session.as_bytes());
    }
}
