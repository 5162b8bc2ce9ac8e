//! The header and claims of the tokens this thread accepted last, as they were read: a client
//! sends the same access token with every request of a session, and reading its JSON is most
//! of what the front door adds to the signature check (BENCHMARKS.md).
//!
//! Only the reading is remembered. It is a function of the token's first two parts alone
//! (the signed message), which a hit compares byte for byte; the same bytes read the same. A
//! request whose token is remembered still has everything else done as for any other
//! (`jwt.rs`): its signature verified, its issuer routed, its key looked up in the keys held
//! now, its claims checked against the configuration and the clock. The signature part is
//! not kept, so what is remembered is not a credential (the claims themselves are kept, as
//! the owner of a request keeps them).
//!
//! Per thread, so no lock and nothing shared: [`SLOTS`] slots, each picked by the first bytes
//! of the token's signature (pseudo-random for every algorithm accepted). A token is kept the
//! second time this thread accepts it with no other accepted at its slot in between, so
//! traffic with more live tokens than slots does not copy each token only to evict it at the
//! next; a token whose message is over [`MAX_MESSAGE`] bytes is never kept.
//!
//! Who can fill the slots: only the holders of tokens that the validator accepted (a DPoP
//! proof is checked for replay after that, so a replayed proof's token counts too), and a
//! full slot only costs its next token a reading. What a hit tells: it is faster than a
//! reading, so someone who already knows a token's whole header and claims could learn from
//! the time of a refusal whether a thread holds it; the answer is the same either way.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::claims::Claims;
use crate::jws::Header;
use crate::owner_claims::OwnerClaims;

/// Slots per thread: a few KiB of claims each at most, for a typical access token ~1.3 KiB.
const SLOTS: usize = 64;

/// The longest message kept (an access token's is usually under 1.5 KiB).
const MAX_MESSAGE: usize = 4096;

/// One token's reading.
pub(crate) struct Parsed {
    /// The signed message (header and claims, base64url) the reading is of.
    message: Box<[u8]>,
    pub(crate) header: Header<'static>,
    pub(crate) claims: Claims<'static>,
    /// What the claims say of their owner, the claims' JSON text with it.
    pub(crate) owner: Arc<OwnerClaims>,
}

struct Memory {
    slots: [Option<Rc<Parsed>>; SLOTS],
    /// Per slot, the signature prefix of the last token accepted there and not kept yet.
    seen: [u64; SLOTS],
}

thread_local! {
    static MEMORY: RefCell<Memory> = const {
        RefCell::new(Memory {
            slots: [const { None }; SLOTS],
            seen: [0; SLOTS],
        })
    };
}

/// The first eight bytes of a signature part as a number (never 0: they are base64url
/// characters), or `None` for a shorter one.
fn prefix(signature: &str) -> Option<u64> {
    let bytes: [u8; 8] = signature.as_bytes().get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

fn slot(prefix: u64) -> usize {
    // The top bits of a multiplicative hash: every byte of the prefix counts.
    (prefix.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (u64::BITS - SLOTS.trailing_zeros())) as usize
}

/// The reading of `message`, when this thread remembers it (at the slot of `signature`).
pub(crate) fn recall(message: &[u8], signature: &str) -> Option<Rc<Parsed>> {
    let i = slot(prefix(signature)?);
    let found = MEMORY
        .try_with(|memory| {
            let memory = memory.try_borrow().ok()?;
            let parsed = memory.slots.get(i)?.as_ref()?;
            (*parsed.message == *message).then(|| Rc::clone(parsed))
        })
        .ok()
        .flatten();
    #[cfg(feature = "test-util")]
    if found.is_some() {
        let _ = RECALLED.try_with(|n| n.set(n.get() + 1));
    }
    found
}

#[cfg(feature = "test-util")]
thread_local! {
    static RECALLED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many requests of this thread used a remembered reading (the crate's own tests).
#[cfg(feature = "test-util")]
pub(crate) fn recalled() -> u64 {
    RECALLED.try_with(std::cell::Cell::get).unwrap_or(0)
}

/// Notes that the token of this message and signature was accepted: `true` when it is the
/// second time in a row at its slot, and its reading is to be [`kept`](keep).
pub(crate) fn accepted(message: &[u8], signature: &str) -> bool {
    let Some(key) = prefix(signature).filter(|_| message.len() <= MAX_MESSAGE) else {
        return false;
    };
    let i = slot(key);
    MEMORY
        .try_with(|memory| {
            let Ok(mut memory) = memory.try_borrow_mut() else {
                return false;
            };
            let Some(seen) = memory.seen.get_mut(i) else {
                return false;
            };
            if *seen == key {
                *seen = 0;
                true
            } else {
                *seen = key;
                false
            }
        })
        .unwrap_or(false)
}

/// Keeps the reading of an accepted token (at the slot of its signature), replacing whatever
/// was there.
pub(crate) fn keep(
    message: &[u8],
    signature: &str,
    header: Header<'static>,
    claims: Claims<'static>,
    owner: Arc<OwnerClaims>,
) {
    let Some(key) = prefix(signature) else {
        return;
    };
    let parsed = Rc::new(Parsed {
        message: message.into(),
        header,
        claims,
        owner,
    });
    let _ = MEMORY.try_with(|memory| {
        if let Ok(mut memory) = memory.try_borrow_mut()
            && let Some(place) = memory.slots.get_mut(slot(key))
        {
            *place = Some(parsed);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::Token;

    fn read<'a>(token: &'a Token<'_>) -> (Header<'a>, Claims<'a>) {
        let mut claims = Claims::default();
        let header = token.read(&mut claims).unwrap();
        (header, claims)
    }

    fn token(claims: &str, signature: &str) -> String {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        format!(
            "{}.{}.{signature}",
            B64.encode(r#"{"alg":"RS256","kid":"k\u0031","typ":"at+jwt"}"#),
            B64.encode(claims)
        )
    }

    /// What the front door does with a token it accepted (`jwt.rs`).
    fn accept(token: &Token<'_>) {
        if accepted(token.message, token.signature) {
            let (header, claims) = read(token);
            let mut owner = OwnerClaims::of(&claims).unwrap();
            owner.raw_claims = token.claims.clone();
            keep(
                token.message,
                token.signature,
                header.detached(),
                claims.detached(),
                Arc::new(owner),
            );
        }
    }

    #[test]
    fn a_token_is_kept_the_second_time_it_is_accepted_and_read_as_before() {
        let claims = r#"{"iss":"https://as","sub":"u\u00e9","aud":["a","b",1],"exp":17e8,
            "scope":"x y","cnf":{"jkt":"t"},"nonce":"n","other":{"a":[1]}}"#;
        let jwt = token(claims, "c2lnbmF0dXJlX2Zvcl90aGlzX3Rlc3Q");
        let parts = Token::split(&jwt, usize::MAX).unwrap();
        let (header, read_claims) = read(&parts);
        assert!(recall(parts.message, parts.signature).is_none());
        accept(&parts);
        assert!(
            recall(parts.message, parts.signature).is_none(),
            "kept at once"
        );
        accept(&parts);
        let kept = recall(parts.message, parts.signature).expect("kept the second time");
        assert_eq!(kept.header, header);
        assert_eq!(kept.claims, read_claims);
        assert_eq!(kept.owner.raw_claims, parts.claims);
        assert_eq!(kept.owner.user_id, "u\u{e9}");
        // The same signature with another message: not this reading.
        let other = token(r#"{"iss":"https://as","sub":"v"}"#, parts.signature);
        let other = Token::split(&other, usize::MAX).unwrap();
        assert!(recall(other.message, other.signature).is_none());
    }

    #[test]
    fn another_token_in_between_keeps_neither_and_short_signatures_are_never_kept() {
        let sig_a = "AAAAAAAAAAAA";
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let sig_b = alphabet
            .chars()
            .flat_map(|x| alphabet.chars().map(move |y| format!("AAAAAA{x}{y}AAAA")))
            .find(|s| s != sig_a && slot(prefix(s).unwrap()) == slot(prefix(sig_a).unwrap()))
            .expect("another prefix at the same slot");
        let (a, b) = (
            token(r#"{"sub":"a"}"#, sig_a),
            token(r#"{"sub":"b"}"#, &sig_b),
        );
        let (a, b) = (
            Token::split(&a, usize::MAX).unwrap(),
            Token::split(&b, usize::MAX).unwrap(),
        );
        accept(&a);
        accept(&b);
        accept(&a);
        assert!(recall(a.message, a.signature).is_none());
        assert!(recall(b.message, b.signature).is_none());
        accept(&a);
        assert!(recall(a.message, a.signature).is_some());
        // A hit is the message's: any signature at that slot finds it (and is verified as
        // any other).
        assert!(recall(a.message, &sig_b).is_some());

        let short = token(r#"{"sub":"s"}"#, "AAAA");
        let short = Token::split(&short, usize::MAX).unwrap();
        for _ in 0..3 {
            accept(&short);
        }
        assert!(recall(short.message, short.signature).is_none());

        let long = format!(r#"{{"sub":"l","x":"{}"}}"#, "a".repeat(MAX_MESSAGE));
        let long = token(&long, "AAAAAAAAAAAD");
        let long = Token::split(&long, usize::MAX).unwrap();
        for _ in 0..3 {
            accept(&long);
        }
        assert!(recall(long.message, long.signature).is_none());
    }
}
