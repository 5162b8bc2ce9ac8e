//! MCP session binding: an `Mcp-Session-Id` belongs to the user that created it, and any
//! replica that shares the key can tell.
//!
//! The MCP security best practices ("Session Hijacking") say session ids are not
//! authentication: anyone holding one could otherwise continue another user's session with
//! their own valid token. So when the inner service answers with an `Mcp-Session-Id`, the
//! layer hands the client a sealed id instead: `<id>.<tag>`, where the tag is an
//! HMAC-SHA-256 under the [`SealingKey`] over the token's (`iss`, `sub`) and the id. On the way
//! in, the layer checks the tag against the caller and passes the inner service the id it
//! issued. Nothing is stored: every replica with the key enforces the binding, and a restart
//! forgets nothing. A request naming a sealed id of another user, or any id that does not
//! verify (forged, unsealed, mangled), goes on with every session id replaced by a random
//! decoy of the same shape ([`decoy`]): the MCP server answers it exactly as it answers any
//! session it does not know (byte for byte, whatever the server), so the caller can not tell
//! a live session of another user from a made-up id, and the real session is never touched.

use http::HeaderValue;

use crate::owner::ResourceOwner;
use crate::sealing_key::SealingKey;

/// The `Mcp-Session-Id` header name.
pub(crate) const MCP_SESSION_ID: http::HeaderName = http::HeaderName::from_static("mcp-session-id");

/// Domain label of session-id MACs.
const LABEL: &str = "protected-resource/mcp-session/v1";

/// Seals the inner service's session ids to their owner and opens them.
#[derive(Debug, Clone)]
pub(crate) struct SessionSeal {
    key: SealingKey,
}

impl SessionSeal {
    pub(crate) fn new(key: SealingKey) -> Self {
        Self { key }
    }

    /// The id the client gets for the inner service's `id`: `<id>.<tag>`.
    pub(crate) fn seal(&self, id: &HeaderValue, owner: &ResourceOwner) -> Option<HeaderValue> {
        let tag = self.key.seal(LABEL, &[&owner.principal(), id.as_bytes()]);
        let mut sealed = Vec::with_capacity(id.len() + 1 + tag.len());
        sealed.extend_from_slice(id.as_bytes());
        sealed.push(b'.');
        sealed.extend_from_slice(tag.as_bytes());
        HeaderValue::from_bytes(&sealed).ok()
    }

    /// The inner service's id in `sealed`, when it was sealed for `owner` (with the current
    /// or a previous key).
    pub(crate) fn open(&self, sealed: &HeaderValue, owner: &ResourceOwner) -> Option<HeaderValue> {
        let bytes = sealed.as_bytes();
        let dot = bytes.iter().rposition(|&b| b == b'.')?;
        let (id, tag) = (&bytes[..dot], &bytes[dot + 1..]);
        let tag = std::str::from_utf8(tag).ok()?;
        if id.is_empty() || !self.key.verify(LABEL, &[&owner.principal(), id], tag) {
            return None;
        }
        HeaderValue::from_bytes(id).ok()
    }
}

/// The session ids a request names, as the inner service must see them.
pub(crate) enum SessionIds {
    /// Every id opened for this caller: the inner ids, in order.
    Opened(Vec<HeaderValue>),
    /// Some id is not this caller's: decoys for all of them.
    Foreign(Vec<HeaderValue>),
}

impl SessionSeal {
    /// What the inner service sees for the session ids `sent` by `owner`.
    pub(crate) fn inbound(&self, sent: &[HeaderValue], owner: &ResourceOwner) -> SessionIds {
        let opened: Option<Vec<HeaderValue>> = sent.iter().map(|s| self.open(s, owner)).collect();
        match opened {
            Some(ids) => SessionIds::Opened(ids),
            None => {
                tracing::warn!(
                    issuer = owner.issuer(),
                    user_id = owner.user_id(),
                    "a request named an MCP session that is not the caller's (another user's, or not issued here)"
                );
                SessionIds::Foreign(
                    sent.iter()
                        .map(|s| {
                            // The shape of the id the server issued (before the tag).
                            let b = s.as_bytes();
                            let id = b.iter().rposition(|&c| c == b'.').map_or(b, |d| &b[..d]);
                            decoy(&HeaderValue::from_bytes(id).unwrap_or_else(|_| s.clone()))
                        })
                        .collect(),
                )
            }
        }
    }
}

/// Random characters a decoy has at least: a short or sequential id with its letters and
/// digits redrawn could otherwise hit a third user's live session, so random hex digits are
/// appended up to this many (over 80 random bits whatever the shape).
const MIN_RANDOM: usize = 32;

/// A session id of the same shape as `id` (digits, hex letters, other letters and punctuation
/// in the same places) that no server issued: random in every letter and digit, different
/// from `id`, with random hex digits appended while it has fewer than 32 random characters.
pub(crate) fn decoy(id: &HeaderValue) -> HeaderValue {
    let original = id.as_bytes();
    let mut random = Random::new();
    loop {
        let mut drawn = 0;
        let mut out: Vec<u8> = original
            .iter()
            .map(|&b| {
                let mut pick = |base: u8, n: u16| {
                    drawn += 1;
                    base + (random.next() % n) as u8
                };
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
        while drawn < MIN_RANDOM {
            out.push(b"0123456789abcdef"[usize::from(random.next() % 16)]);
            drawn += 1;
        }
        if out != original
            && let Ok(value) = HeaderValue::from_bytes(&out)
        {
            return value;
        }
    }
}

/// Random numbers from the operating system, a buffer at a time; should it ever fail, from
/// the standard library's randomly keyed hasher.
struct Random {
    buf: [u8; 64],
    at: usize,
}

impl Random {
    fn new() -> Self {
        let mut r = Self {
            buf: [0; 64],
            at: 64,
        };
        r.refill();
        r
    }

    fn refill(&mut self) {
        if getrandom::fill(&mut self.buf).is_err() {
            use std::hash::{BuildHasher, Hasher};
            for chunk in self.buf.chunks_mut(8) {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(chunk.as_ptr() as usize);
                chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
            }
        }
        self.at = 0;
    }

    fn next(&mut self) -> u16 {
        if self.at + 2 > self.buf.len() {
            self.refill();
        }
        let v = u16::from_le_bytes([self.buf[self.at], self.buf[self.at + 1]]);
        self.at += 2;
        v
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn decoys_keep_the_shape_and_never_the_value() {
        let id = HeaderValue::from_static("3f2b9c1e-7a4d-4e0f-9b8a-1c2d3e4f5a6b");
        for _ in 0..200 {
            let d = decoy(&id);
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
        // Short ids get random digits appended: never a short id another user may hold.
        let d = decoy(&HeaderValue::from_static("7"));
        assert_eq!(d.len(), 32, "{d:?}");
        let d = decoy(&HeaderValue::from_static("--"));
        assert!(d.as_bytes().starts_with(b"--") && d.len() == 34, "{d:?}");
    }

    fn owner(iss: &str, sub: &str) -> ResourceOwner {
        let serde_json::Value::Object(claims) = serde_json::json!({"sub": sub}) else {
            unreachable!()
        };
        ResourceOwner::from_claims(iss.to_owned(), claims, Arc::default()).unwrap()
    }

    #[test]
    fn sealed_ids_open_only_for_their_owner() {
        let seal = SessionSeal::new(SealingKey::from_bytes(&[9; 32]).unwrap());
        let alice = owner("https://a", "alice");
        let id = HeaderValue::from_static("3f2b9c1e-7a4d-4e0f-9b8a-1c2d3e4f5a6b");
        let sealed = seal.seal(&id, &alice).unwrap();
        assert!(sealed.as_bytes().starts_with(id.as_bytes()));
        assert_eq!(seal.open(&sealed, &alice), Some(id.clone()));
        for other in [owner("https://b", "alice"), owner("https://a", "bob")] {
            assert_eq!(seal.open(&sealed, &other), None);
        }
        for bad in [id.as_bytes(), b".x", b"", b"a.b.c"] {
            let bad = HeaderValue::from_bytes(bad).unwrap();
            assert_eq!(seal.open(&bad, &alice), None, "{bad:?}");
        }
        // A rotated key still opens it; an unrelated key does not.
        let rotated = SessionSeal::new(
            SealingKey::from_bytes(&[10; 32])
                .unwrap()
                .with_previous(&SealingKey::from_bytes(&[9; 32]).unwrap()),
        );
        assert_eq!(rotated.open(&sealed, &alice), Some(id.clone()));
        let other = SessionSeal::new(SealingKey::from_bytes(&[11; 32]).unwrap());
        assert_eq!(other.open(&sealed, &alice), None);
        // Inbound: all opened, or decoys for all when any is not the caller's.
        match seal.inbound(std::slice::from_ref(&sealed), &alice) {
            SessionIds::Opened(ids) => assert_eq!(ids, std::slice::from_ref(&id)),
            SessionIds::Foreign(_) => panic!("alice's own session"),
        }
        match seal.inbound(std::slice::from_ref(&sealed), &owner("https://a", "bob")) {
            SessionIds::Foreign(decoys) => {
                assert_eq!(decoys[0].len(), id.len());
                assert_ne!(decoys[0], id);
            }
            SessionIds::Opened(_) => panic!("bob may not open alice's session"),
        }
    }
}
