//! MCP session binding: an `Mcp-Session-Id` belongs to the user that created it.
//!
//! The MCP security best practices ("Session Hijacking") say session ids are not
//! authentication: anyone holding one could otherwise continue another user's session with
//! their own valid token. So when the inner service answers a request with an
//! `Mcp-Session-Id` header, the layer remembers the pair (`iss`, `sub`) of that request's
//! token for the session. A later request naming that session with a token of another pair
//! goes on with every session id replaced by a decoy of the same shape that no server issued
//! ([`decoy`]): the MCP server answers it exactly as it answers any session it does not
//! know (byte for byte, whatever the server), so the caller can not tell a live session of
//! another user from a made-up id, and the real session is never touched. A successful
//! `DELETE` of the session forgets the binding.
//!
//! Bindings live in a bounded moka cache (default 100,000 sessions, 24 hours after their
//! last request). A session the cache no longer holds (evicted, or created before a restart)
//! is passed through unbound, as the layer can not tell who made it.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use http::HeaderValue;
use moka::sync::Cache;

use crate::config::{MAX_DURATION, SessionOptions};
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
        if opts.capacity == 0 || opts.idle.is_zero() || opts.idle > MAX_DURATION {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidValue,
                "mcp_session_binding_limits",
                "capacity and idle time must be greater than zero, idle time at most 365 days (or use bind_mcp_sessions(false))",
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

    /// Whether `session` is bound to anyone.
    pub(crate) fn is_bound(&self, session: &HeaderValue) -> bool {
        self.bound.contains_key(session.as_bytes())
    }

    /// Forgets `session` (it was deleted).
    pub(crate) fn forget(&self, session: &HeaderValue) {
        self.bound.invalidate(session.as_bytes());
    }
}

/// A session id of the same shape as `id` (length, and digits, hex letters, other letters
/// and punctuation in the same places) that no server issued: random in every letter and
/// digit, and redrawn while it equals `id` or is `bound` (a short or sequential id could
/// otherwise hit a third user's session); an id without letters or digits gets a `0`
/// appended.
pub(crate) fn decoy(id: &HeaderValue, bound: impl Fn(&HeaderValue) -> bool) -> HeaderValue {
    let original = id.as_bytes();
    let mut state = std::collections::hash_map::RandomState::new().build_hasher();
    state.write(original);
    let mut random = state.finish();
    let mut next = move || {
        // splitmix64: a well-mixed stream from the randomly keyed seed.
        random = random.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = random;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for _ in 0..8 {
        let out: Vec<u8> = original
            .iter()
            .map(|&b| {
                let mut pick = |base: u8, n: u64| base + (next() % n) as u8;
                match b {
                    b'0'..=b'9' => pick(b'0', 10),
                    b'a'..=b'f' => pick(b'a', 6),
                    b'g'..=b'z' => pick(b'g', 20),
                    b'A'..=b'F' => pick(b'A', 6),
                    b'G'..=b'Z' => pick(b'G', 20),
                    other => other,
                }
            })
            .collect();
        if out != original
            && let Ok(value) = HeaderValue::from_bytes(&out)
            && !bound(&value)
        {
            return value;
        }
    }
    let mut out = original.to_vec();
    out.push(b'0');
    HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoys_keep_the_shape_and_never_the_value() {
        let id = HeaderValue::from_static("3f2b9c1e-7a4d-4e0f-9b8a-1c2d3e4f5a6b");
        for _ in 0..200 {
            let d = decoy(&id, |_| false);
            assert_ne!(d, id);
            assert_eq!(d.len(), id.len());
            for (a, b) in id.as_bytes().iter().zip(d.as_bytes()) {
                assert_eq!(a.is_ascii_digit(), b.is_ascii_digit());
                assert_eq!(a.is_ascii_hexdigit(), b.is_ascii_hexdigit());
                if !a.is_ascii_alphanumeric() {
                    assert_eq!(a, b);
                }
            }
        }
        assert_ne!(decoy(&HeaderValue::from_static("7"), |_| false), "7");
        // A bound id is never drawn.
        for _ in 0..200 {
            let d = decoy(&HeaderValue::from_static("7"), |d| d == "3");
            assert!(d != "3" && d != "7", "{d:?}");
        }
        assert_eq!(decoy(&HeaderValue::from_static("--"), |_| false), "--0");
    }
}
