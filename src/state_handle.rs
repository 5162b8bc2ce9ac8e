//! [`StateSealer`]: state handles bound to the caller who received them (MCP 2026-07-28
//! security best practices, "State Handle Hijacking").

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::owner::ResourceOwner;
use crate::sealing_key::SealingKey;

/// Domain label of state-handle MACs.
const LABEL: &str = "protected-resource/state-handle/v1";

/// Seals values into handles bound to one caller, and opens them only for that caller.
///
/// A handle is `v1.<payload>.<tag>` (base64url): the payload as given, and an HMAC-SHA-256
/// over the caller's [`principal`](ResourceOwner::principal) (issuer and subject) and the
/// payload. [`open`](Self::open) answers the payload only to the caller it was sealed for,
/// under the current or a previous [`SealingKey`]; for anyone else, and for a handle that
/// never existed, it answers `None`, the same. The payload is readable by whoever holds the
/// handle (sealed, not encrypted): keep secrets out of it, or store them server-side under a
/// random id and seal the id. Handles do not expire by themselves; put a time in the payload
/// when they should.
///
/// ```
/// # use protected_resource::{SealingKey, StateSealer, testkit::MockAuthorizationServer, ResourceServerAuth};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let idp = MockAuthorizationServer::start().await?;
/// # let auth = ResourceServerAuth::builder().canonical_url("http://127.0.0.1:8000/mcp")
/// #     .authorization_server(idp.entry()).build()?;
/// # let alice = auth.validate(&idp.token().audience("http://127.0.0.1:8000/mcp").subject("alice").sign()).await?;
/// # let bob = auth.validate(&idp.token().audience("http://127.0.0.1:8000/mcp").subject("bob").sign()).await?;
/// let sealer = StateSealer::new(SealingKey::random()?);
/// let handle = sealer.seal(&alice, b"cursor=42");
/// assert_eq!(sealer.open(&alice, &handle).as_deref(), Some(&b"cursor=42"[..]));
/// assert_eq!(sealer.open(&bob, &handle), None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct StateSealer {
    key: SealingKey,
    purpose: String,
}

impl StateSealer {
    /// A sealer with `key` (every replica that opens handles needs the same key), for the
    /// default purpose.
    #[must_use]
    pub fn new(key: SealingKey) -> Self {
        Self {
            key,
            purpose: String::new(),
        }
    }

    /// The same sealer for another purpose: a handle sealed for one purpose (say, `notes`)
    /// never opens as a handle of another (say, `cursors`), even for the same caller.
    #[must_use]
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = purpose.into();
        self
    }

    /// A handle carrying `payload`, bound to `owner`.
    #[must_use]
    pub fn seal(&self, owner: &ResourceOwner, payload: &[u8]) -> String {
        let tag = self.key.seal(
            LABEL,
            &[self.purpose.as_bytes(), &owner.principal(), payload],
        );
        format!("v1.{}.{tag}", URL_SAFE_NO_PAD.encode(payload))
    }

    /// The payload of `handle` when it was sealed for `owner` with this sealer's key (or a
    /// previous one); `None` otherwise, whatever the reason.
    #[must_use]
    pub fn open(&self, owner: &ResourceOwner, handle: &str) -> Option<Vec<u8>> {
        let rest = handle.strip_prefix("v1.")?;
        let (payload, tag) = rest.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        self.key
            .verify(
                LABEL,
                &[self.purpose.as_bytes(), &owner.principal(), &payload],
                tag,
            )
            .then_some(payload)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn owner(iss: &str, sub: &str) -> ResourceOwner {
        let serde_json::Value::Object(claims) = serde_json::json!({"sub": sub}) else {
            unreachable!()
        };
        ResourceOwner::from_claims(iss.to_owned(), claims, Arc::default()).unwrap()
    }

    #[test]
    fn a_handle_opens_only_for_its_owner() {
        let sealer = StateSealer::new(SealingKey::from_bytes(&[3; 32]).unwrap());
        let alice = owner("https://a.example", "alice");
        let handle = sealer.seal(&alice, b"note");
        assert_eq!(sealer.open(&alice, &handle), Some(b"note".to_vec()));
        // Same `sub` at another issuer, another subject, another key: all refused alike.
        assert_eq!(
            sealer.open(&owner("https://b.example", "alice"), &handle),
            None
        );
        assert_eq!(
            sealer.open(&owner("https://a.example", "bob"), &handle),
            None
        );
        let other = StateSealer::new(SealingKey::from_bytes(&[4; 32]).unwrap());
        assert_eq!(other.open(&alice, &handle), None);
        // Another purpose with the same key: refused too.
        let cursors = sealer.clone().purpose("cursors");
        assert_eq!(cursors.open(&alice, &handle), None);
        assert_eq!(
            cursors.open(&alice, &cursors.seal(&alice, b"c")),
            Some(b"c".to_vec())
        );
        // Principals do not run into each other: ("ab", "c") is not ("a", "bc").
        let ab = owner("ab", "c");
        assert_ne!(ab.principal(), owner("a", "bc").principal());
        assert_eq!(
            sealer.open(&owner("a", "bc"), &sealer.seal(&ab, b"x")),
            None
        );
        // Tampered payloads and malformed handles.
        let forged = handle.replacen("v1.bm90ZQ", "v1.bm90Zg", 1);
        assert_eq!(sealer.open(&alice, &forged), None);
        for bad in ["", "v1.", "v1..", "v2.bm90ZQ.x", "v1.!!.x"] {
            assert_eq!(sealer.open(&alice, bad), None, "{bad}");
        }
    }
}
