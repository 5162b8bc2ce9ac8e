//! Strict JSON pieces the MCP gate reads with (`mcp_body/`, `mcp_params.rs`): member names
//! checked for repeats, serde_json's private names and case variants of what the gate reads;
//! strings and ids read strictly, everything else skipped without being built.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use crate::json::Repeats;
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
    // Most names differ from `read` in their first byte already: an ASCII byte folds only
    // to itself in the other case.
    let first_differs = match (name.as_bytes().first(), read.as_bytes().first()) {
        (Some(n), Some(r)) => n.is_ascii() && !n.eq_ignore_ascii_case(r),
        _ => false,
    };
    !first_differs
        && (read.len()..=3 * read.len()).contains(&name.len())
        && name.chars().map(fold).eq(read.chars().map(fold))
}

/// The member names of one JSON object, checked as they come: not one of serde_json's
/// private names, not a case variant of a name the gate reads; and, once the object is read
/// ([`finish`](Self::finish)), none repeated ([`Repeats`]).
/// JSON-RPC messages and their params have a handful of members: 8 compared in place.
pub(crate) struct Names<'de>(Repeats<'de, 8>);

impl<'de> Names<'de> {
    pub(crate) fn new() -> Self {
        Self(Repeats::new())
    }

    /// Checks one name as it arrives.
    pub(crate) fn check<E: serde::de::Error>(&mut self, name: Cow<'de, str>) -> Result<(), E> {
        if name.starts_with('$') && PRIVATE_NAMES.contains(&&*name) {
            return Err(E::custom("a serde_json private member name"));
        }
        if name.len() <= MAX_FOLDING_LEN
            && !READ_NAMES.contains(&&*name)
            && READ_NAMES.iter().any(|read| same_folded(&name, read))
        {
            return Err(E::custom("a case variant of a member name the gate reads"));
        }
        self.0.add(name);
        Ok(())
    }

    /// After the last name: refuses the object if a name came twice.
    pub(crate) fn finish<E: serde::de::Error>(self) -> Result<(), E> {
        if self.0.any() {
            return Err(E::custom("a repeated member name"));
        }
        Ok(())
    }
}

/// A string (read strictly: escapes must form valid characters), or `None` for any other
/// value, which is skipped without being built. Borrowed from the body unless it has escapes.
pub(crate) struct MaybeString<'a>(pub(crate) Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for MaybeString<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = MaybeString<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<MaybeString<'a>, E> {
                Ok(MaybeString(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<MaybeString<'a>, E> {
                Ok(MaybeString(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<MaybeString<'a>, E> {
                Ok(MaybeString(Some(Cow::Owned(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeString<'a>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeString<'a>, A::Error> {
                drain_seq(seq).map(|()| MaybeString(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeString<'a>, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeString<'a>, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeString<'a>, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeString<'a>, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeString<'a>, E> {
                Ok(MaybeString(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
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
    fn repeated_names_are_refused() {
        assert!(check_all(&["a".into(), "b".into(), "a".into()]).is_err());
        assert!(check_all(&["a".into(), "b".into()]).is_ok());
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
