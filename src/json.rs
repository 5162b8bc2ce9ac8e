//! JSON reading pieces shared by the token claims (`claims.rs`) and the MCP gate
//! (`mcp_json.rs`): strings borrowed from the input when they hold no escapes, and the check
//! that no member name of an object comes twice.

use std::borrow::Cow;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

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

/// A JSON string, borrowed when it has no escapes (serde's own `Cow<str>` always copies,
/// and `#[serde(borrow)]` does not reach into an `Option`).
#[derive(Debug, PartialEq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The member names of one JSON object, to refuse a name that comes twice (parsers disagree
/// on which one wins).
///
/// The first `N` names are kept (borrowed from the input) and compared exactly:
/// no allocation and no hashing for an ordinary object. Past that, every name is kept as a
/// 64-bit SipHash value under a key drawn for the object, sorted at the end: 8 bytes per
/// member and no quadratic work whatever the object holds (it may arrive before any
/// signature check). Two different names collide with odds of about 2⁻⁶⁴ per pair, and the
/// sender can not aim for it without the key (a collision would only refuse the sender's own
/// input).
pub(crate) struct Repeats<'de, const N: usize> {
    first: [Option<Cow<'de, str>>; N],
    count: usize,
    /// Set once the names do not fit in `first` any more.
    hashed: Option<(RandomState, Vec<u64>)>,
}

impl<'de, const N: usize> Repeats<'de, N> {
    pub(crate) fn new() -> Self {
        Self {
            first: [const { None }; N],
            count: 0,
            hashed: None,
        }
    }

    /// Notes one more name.
    pub(crate) fn add(&mut self, name: Cow<'de, str>) {
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
    }

    /// Whether some name came twice.
    pub(crate) fn any(self) -> bool {
        match self.hashed {
            None => {
                let first = &self.first[..self.count.min(N)];
                first
                    .iter()
                    .enumerate()
                    .any(|(i, n)| first[i + 1..].contains(n))
            }
            Some((_, mut hashes)) => {
                hashes.sort_unstable();
                hashes.windows(2).any(|w| w[0] == w[1])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_found_in_place_and_past_the_inline_names() {
        for count in [1, 2, 15, 16, 17, 100] {
            let names: Vec<String> = (0..count).map(|i| format!("n{i}")).collect();
            let repeated = |extra: Option<usize>| {
                let mut r = Repeats::<16>::new();
                for n in names.iter().chain(extra.map(|i| &names[i])) {
                    r.add(Cow::Borrowed(n));
                }
                r.any()
            };
            assert!(!repeated(None), "{count} distinct names");
            for at in [0, count / 2, count - 1] {
                assert!(repeated(Some(at)), "{count} names, #{at} repeated");
            }
        }
    }
}
