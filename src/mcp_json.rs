//! Strict JSON pieces the MCP gate reads with (`mcp_body.rs`, `mcp_params.rs`): member names
//! checked for repeats, serde_json's private names and case variants of what the gate reads;
//! strings and ids read strictly, everything else skipped without being built.

use std::borrow::Cow;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Member names that serde_json gives a meaning of their own when its `raw_value` or
/// `arbitrary_precision` features are on: a server built with them could turn such an
/// object back into a message the gate never saw.
const PRIVATE_NAMES: [&str; 2] = [
    "$serde_json::private::RawValue",
    "$serde_json::private::Number",
];

/// The member names the gate reads. A name that differs from one of these only in case is
/// refused: Go's `encoding/json` matches member names case-insensitively (folding `ſ` to
/// `s` and the Kelvin sign to `k` too), so `"Method"` could be the method to a Go server.
const READ_NAMES: [&str; 8] = [
    "method",
    "params",
    "name",
    "uri",
    "ref",
    "type",
    "notifications",
    "resourceSubscriptions",
];

/// Longest name that can fold to one of [`READ_NAMES`] (each `s` may be a two-byte `ſ`, each
/// `k` a three-byte Kelvin sign).
const MAX_FOLDING_LEN: usize = 32;

/// A character as Go's `encoding/json` compares names: ASCII case and the two Unicode folds.
fn fold(c: char) -> char {
    match c {
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    }
}

/// Whether `name` equals the ASCII name `read` as Go compares names (no allocation). Each
/// character of `name` is one to three bytes, so only lengths from `read.len()` to three
/// times that can match.
fn same_folded(name: &str, read: &str) -> bool {
    (read.len()..=3 * read.len()).contains(&name.len())
        && name.chars().map(fold).eq(read.chars().map(fold))
}

/// Visitor methods for the scalars a visitor skips, answering `$value`.
macro_rules! skip_scalars {
    ($ty:ty, $value:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_str<E>(self, _: &str) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_unit<E>(self) -> Result<$ty, E> {
            Ok($value)
        }
    };
}

pub(crate) use skip_scalars;

/// The member names of one JSON object, checked as they come: not one of serde_json's
/// private names, not a case variant of a name the gate reads; and, once the object is read
/// ([`finish`](Self::finish)), none repeated (parsers disagree on which one wins).
///
/// The first [`INLINE_NAMES`] names are kept (borrowed from the body) and compared exactly:
/// no allocation and no hashing for an ordinary message. Past that, every name is kept as a
/// 64-bit SipHash value under a key drawn for the object, sorted at the end: 8 bytes per
/// member and no quadratic work whatever the object holds. Two different names collide
/// with odds of about 2⁻⁶⁴ per pair, and the sender can not aim for it without the key (a
/// collision would only refuse the sender's own request).
pub(crate) struct Names<'de> {
    first: [Option<Cow<'de, str>>; INLINE_NAMES],
    count: usize,
    /// Set once the names do not fit in `first` any more.
    hashed: Option<(RandomState, Vec<u64>)>,
}

/// How many names [`Names`] compares exactly, without allocating.
const INLINE_NAMES: usize = 8;

impl<'de> Names<'de> {
    pub(crate) fn new() -> Self {
        Self {
            first: [const { None }; INLINE_NAMES],
            count: 0,
            hashed: None,
        }
    }

    /// Checks one name as it arrives.
    pub(crate) fn check<E: serde::de::Error>(&mut self, name: Cow<'de, str>) -> Result<(), E> {
        if PRIVATE_NAMES.contains(&&*name) {
            return Err(E::custom("a serde_json private member name"));
        }
        if name.len() <= MAX_FOLDING_LEN
            && !READ_NAMES.contains(&&*name)
            && READ_NAMES.iter().any(|read| same_folded(&name, read))
        {
            return Err(E::custom("a case variant of a member name the gate reads"));
        }
        if let Some(slot) = self.first.get_mut(self.count) {
            *slot = Some(name);
        } else {
            let (key, hashes) = self.hashed.get_or_insert_with(|| {
                let key = RandomState::new();
                let hashes = self
                    .first
                    .iter()
                    .flatten()
                    .map(|n| key.hash_one(n))
                    .collect();
                (key, hashes)
            });
            hashes.push(key.hash_one(&name));
        }
        self.count += 1;
        Ok(())
    }

    /// After the last name: refuses the object if a name came twice.
    pub(crate) fn finish<E: serde::de::Error>(self) -> Result<(), E> {
        let repeated = match self.hashed {
            None => {
                let first = &self.first[..self.count.min(INLINE_NAMES)];
                first
                    .iter()
                    .enumerate()
                    .any(|(i, n)| first[i + 1..].contains(n))
            }
            Some((_, mut hashes)) => {
                hashes.sort_unstable();
                hashes.windows(2).any(|w| w[0] == w[1])
            }
        };
        if repeated {
            return Err(E::custom("a repeated member name"));
        }
        Ok(())
    }
}

/// A string (read strictly: escapes must form valid characters), or `None` for any other
/// value, which is skipped without being built.
pub(crate) struct MaybeString(pub(crate) Option<String>);

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeString, A::Error> {
                drain_seq(seq).map(|()| MaybeString(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON-RPC `id` (a string or a number, read strictly), or `None` for any other value.
pub(crate) struct MaybeId(pub(crate) Option<serde_json::Value>);

impl<'de> Deserialize<'de> for MaybeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC id")
            }
            fn visit_str<E>(self, v: &str) -> Result<MaybeId, E> {
                Ok(MaybeId(Some(v.into())))
            }
            fn visit_string<E>(self, v: String) -> Result<MaybeId, E> {
                Ok(MaybeId(Some(v.into())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<MaybeId, E> {
                Ok(MaybeId(Some(v.into())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<MaybeId, E> {
                Ok(MaybeId(Some(v.into())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<MaybeId, E> {
                Ok(MaybeId(serde_json::Number::from_f64(v).map(Into::into)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeId, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeId(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeId, A::Error> {
                drain_seq(seq).map(|()| MaybeId(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeId, E> {
                Ok(MaybeId(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeId, E> {
                Ok(MaybeId(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Skips the rest of an array.
pub(crate) fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod names_tests {
    use super::*;

    fn check_all(names: &[String]) -> Result<(), serde_json::Error> {
        let mut n = Names::new();
        for name in names {
            n.check::<serde_json::Error>(Cow::Borrowed(name))?;
        }
        n.finish()
    }

    #[test]
    fn repeats_are_found_in_place_and_past_the_inline_names() {
        for count in [1, 2, 8, 9, 100] {
            let mut names: Vec<String> = (0..count).map(|i| format!("n{i}")).collect();
            assert!(check_all(&names).is_ok(), "{count} distinct names");
            for at in [0, count / 2, count - 1] {
                names.push(names[at].clone());
                assert!(check_all(&names).is_err(), "{count} names, #{at} repeated");
                names.pop();
            }
        }
    }

    #[test]
    fn private_names_and_case_variants_are_refused() {
        for bad in [
            "$serde_json::private::RawValue",
            "Method",
            "PARAMS",
            "nAme",
            "notification\u{17F}",
            "re\u{17F}ourceSubscriptions",
            "resourcesubscriptions",
        ] {
            assert!(check_all(&[bad.to_owned()]).is_err(), "{bad}");
        }
        for good in ["method", "resourceSubscriptions", "jsonrpc", "names", "Id"] {
            assert!(check_all(&[good.to_owned()]).is_ok(), "{good}");
        }
    }
}
