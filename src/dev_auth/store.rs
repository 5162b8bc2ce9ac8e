//! The development authorization server's in-memory state: registered clients, authorization
//! requests awaiting consent, authorization codes and refresh tokens, each in a map bounded in
//! size and lifetime, keyed by unguessable random handles.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How a client authenticates at the token endpoint (RFC 7591 `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    /// A public client: `client_id` only.
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }
}

/// A registered client (or one described by a client ID metadata document).
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) id: String,
    /// Confidential clients only; never printed.
    pub(crate) secret: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) grant_types: Vec<String>,
    pub(crate) auth_method: AuthMethod,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("redirect_uris", &self.redirect_uris)
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

/// What the user is asked to approve, and what a code or refresh token carries.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    /// For the page.
    pub(crate) client_name: Option<String>,
    pub(crate) redirect_uri: String,
    /// Whether the authorization request named `redirect_uri` (then the token request must
    /// name the same, RFC 6749 §4.1.3).
    pub(crate) redirect_given: bool,
    /// The access token expires no later than this (seconds since the epoch): a token
    /// exchange never outlives the token it exchanged.
    pub(crate) not_after: Option<u64>,
    pub(crate) scopes: Vec<String>,
    pub(crate) resource: String,
    /// The PKCE `code_challenge` (S256).
    pub(crate) code_challenge: String,
    pub(crate) state: Option<String>,
    /// Set once the user approved.
    pub(crate) user: Option<String>,
}

/// A map from random handles to values, at most `capacity` entries, each dropped after its
/// lifetime.
pub(crate) struct Bounded<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
    capacity: usize,
    lifetime: Duration,
}

impl<T: Clone> Bounded<T> {
    pub(crate) fn new(capacity: usize, lifetime: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            lifetime,
        }
    }

    /// Stores `value` under a new random handle; `None` when no randomness is available.
    pub(crate) fn insert(&self, value: T) -> Option<String> {
        let handle = random_handle()?;
        self.insert_as(handle.clone(), value).then_some(handle)
    }

    /// Stores `value` under `handle` (a client id chosen elsewhere). When the map is full
    /// after dropping what expired, the entry closest to expiry makes room: a flood evicts
    /// old entries instead of locking everyone out. False only when the lock is poisoned.
    pub(crate) fn insert_as(&self, handle: String, value: T) -> bool {
        let Ok(mut map) = self.entries.lock() else {
            return false;
        };
        let now = Instant::now();
        if map.len() >= self.capacity {
            map.retain(|_, (expires, _)| *expires > now);
        }
        if map.len() >= self.capacity
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(handle, (now + self.lifetime, value));
        true
    }

    /// The value under `handle`, when it has not expired.
    pub(crate) fn get(&self, handle: &str) -> Option<T> {
        let map = self.entries.lock().ok()?;
        let (expires, value) = map.get(handle)?;
        (*expires > Instant::now()).then(|| value.clone())
    }

    /// Removes and answers the value under `handle` (one use), when it has not expired.
    pub(crate) fn take(&self, handle: &str) -> Option<T> {
        let mut map = self.entries.lock().ok()?;
        let (expires, value) = map.remove(handle)?;
        (expires > Instant::now()).then_some(value)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    crate::clock::unix_secs()
}

/// 256 random bits, base64url.
pub(crate) fn random_handle() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_maps_expire_refuse_when_full_and_take_once() {
        let map = Bounded::new(2, Duration::from_secs(60));
        let a = map.insert(1).unwrap();
        let b = map.insert(2).unwrap();
        assert_ne!(a, b);
        std::thread::sleep(Duration::from_millis(2));
        let c = map.insert(3).unwrap();
        assert_eq!(map.get(&a), None, "full: the oldest made room");
        assert_eq!((map.get(&b), map.get(&c)), (Some(2), Some(3)));
        assert_eq!(map.take(&b), Some(2));
        assert_eq!(map.take(&b), None, "one use");

        let short = Bounded::new(1, Duration::ZERO);
        let h = short.insert(1).unwrap();
        assert_eq!(short.get(&h), None, "expired");
        assert!(short.insert(2).is_some(), "the expired entry made room");
    }
}
