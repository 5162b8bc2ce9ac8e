//! What an MCP `POST` body asks for, read strictly and without building a value tree: the
//! names of the tools its `tools/call` messages call. A body that can not be read this way
//! (not UTF-8, not exactly one JSON value, nesting past the parser's limit, a bad escape in a
//! member the gate reads, a repeated member name or one of serde_json's private names in a
//! message or its `params`) is [`Unreadable`]: the tool gate refuses it rather than let a
//! more lenient MCP server read something else into it.

use std::collections::HashSet;
use std::fmt;

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
const READ_NAMES: [&str; 3] = ["method", "params", "name"];

/// The body can not be read strictly; answered with a JSON-RPC parse error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unreadable;

/// The names of the tools the body's `tools/call` messages (one message or a batch) call.
/// Messages of other methods, and `tools/call` messages without a string `params.name`
/// (which no server runs), name nothing.
pub(crate) fn tool_calls(body: &[u8]) -> Result<Vec<String>, Unreadable> {
    // serde_json skips ignored strings without checking their UTF-8: check it all first.
    let text = std::str::from_utf8(body).map_err(|_| Unreadable)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let Calls(calls) = Calls::deserialize(&mut de).map_err(|_| Unreadable)?;
    // Exactly one value: trailing data (a second value, garbage) is refused.
    de.end().map_err(|_| Unreadable)?;
    Ok(calls)
}

/// The tool names of a whole body.
struct Calls(Vec<String>);

impl<'de> Deserialize<'de> for Calls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Calls;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message or batch")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Calls, A::Error> {
                Ok(Calls(message(map)?.into_iter().collect()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Calls, A::Error> {
                let mut calls = Vec::new();
                while let Some(Message(call)) = seq.next_element::<Message>()? {
                    calls.extend(call);
                }
                Ok(Calls(calls))
            }
            // Scalars are no message: the server answers them with its own error.
            fn visit_bool<E>(self, _: bool) -> Result<Calls, E> {
                Ok(Calls(Vec::new()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Calls, E> {
                Ok(Calls(Vec::new()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Calls, E> {
                Ok(Calls(Vec::new()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Calls, E> {
                Ok(Calls(Vec::new()))
            }
            fn visit_str<E>(self, _: &str) -> Result<Calls, E> {
                Ok(Calls(Vec::new()))
            }
            fn visit_unit<E>(self) -> Result<Calls, E> {
                Ok(Calls(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One element of a batch: the tool it calls, if it is a `tools/call`.
struct Message(Option<String>);

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Message;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Message, A::Error> {
                message(map).map(Message)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Message, A::Error> {
                drain_seq(seq).map(|()| Message(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Message, E> {
                Ok(Message(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Message, E> {
                Ok(Message(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Message, E> {
                Ok(Message(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Message, E> {
                Ok(Message(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Message, E> {
                Ok(Message(None))
            }
            fn visit_unit<E>(self) -> Result<Message, E> {
                Ok(Message(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads one message object: its `method`, and `params.name` when the method is
/// `tools/call`.
fn message<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<String>, A::Error> {
    let mut names: HashSet<String> = HashSet::new();
    let mut method = None;
    let mut tool = None;
    while let Some(key) = map.next_key::<String>()? {
        check_name(&key, &names)?;
        match key.as_str() {
            "method" => method = map.next_value::<MaybeString>()?.0,
            "params" => tool = map.next_value::<Params>()?.0,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        names.insert(key);
    }
    Ok(tool.filter(|_| method.as_deref() == Some("tools/call")))
}

/// A member name the gate accepts: not repeated (parsers disagree on which one wins), not
/// one of serde_json's private names, not a case variant of a name the gate reads.
fn check_name<E: serde::de::Error>(name: &str, seen: &HashSet<String>) -> Result<(), E> {
    if PRIVATE_NAMES.contains(&name) {
        return Err(E::custom("a serde_json private member name"));
    }
    if seen.contains(name) {
        return Err(E::custom("a repeated member name"));
    }
    if name.len() <= 8 && !READ_NAMES.contains(&name) {
        let folded: String = name
            .chars()
            .map(|c| match c {
                '\u{17F}' => 's',
                '\u{212A}' => 'k',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        if READ_NAMES.contains(&folded.as_str()) {
            return Err(E::custom("a case variant of a member name the gate reads"));
        }
    }
    Ok(())
}

/// `params`: its `name` when it is an object with a string `name`.
struct Params(Option<String>);

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut names: HashSet<String> = HashSet::new();
                let mut name = None;
                while let Some(key) = map.next_key::<String>()? {
                    check_name(&key, &names)?;
                    if key == "name" {
                        name = map.next_value::<MaybeString>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                    names.insert(key);
                }
                Ok(Params(name))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
                drain_seq(seq).map(|()| Params(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Params, E> {
                Ok(Params(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Params, E> {
                Ok(Params(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Params, E> {
                Ok(Params(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Params, E> {
                Ok(Params(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Params, E> {
                Ok(Params(None))
            }
            fn visit_unit<E>(self) -> Result<Params, E> {
                Ok(Params(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string (read strictly: escapes must form valid characters), or `None` for any other
/// value, which is skipped without being built.
struct MaybeString(Option<String>);

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

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(s: &str) -> Result<Vec<String>, Unreadable> {
        tool_calls(s.as_bytes())
    }

    #[test]
    fn tools_calls_are_found_in_messages_and_batches() {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":[1,{"y":"\ud83d\ude00"}]}}}"#;
        assert_eq!(calls(call), Ok(vec!["a".to_owned()]));
        let batch = format!(
            r#"[{call}, {{"jsonrpc":"2.0","method":"tools/list"}}, 7, {{"method":"tools/call","params":{{"name":"b"}}}}]"#
        );
        assert_eq!(calls(&batch), Ok(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(
            calls(r#"{"method":"tools/call","params":{"name":42}}"#),
            Ok(vec![])
        );
        assert_eq!(
            calls(r#"{"meth\u006fd":"tools/call","params":{"n\u0061me":"c"}}"#),
            Ok(vec!["c".to_owned()])
        );
        assert_eq!(calls("  3  "), Ok(vec![]));
    }

    #[test]
    fn what_can_not_be_read_strictly_is_unreadable() {
        for bad in [
            "",
            "not json",
            r#"{"method":"tools/call"} trailing"#,
            r#"{"a":1}{"method":"tools/call","params":{"name":"x"}}"#,
            "\u{feff}{}",
            r#"{"method":"tools/call","params":{"name":"\ud800"}}"#,
            r#"{"method":"\udc00","params":{"name":"x"}}"#,
            r#"{"method":"tools/call","method":"ping"}"#,
            r#"{"params":{"name":"a","name":"b"},"method":"tools/call"}"#,
            r#"{"$serde_json::private::RawValue":"{}"}"#,
            r#"{"method":"tools/call","params":{"$serde_json::private::Number":"1"}}"#,
            r#"{"method":"ping","Method":"tools/call","Params":{"Name":"x"}}"#,
            r#"{"method":"tools/call","params":{"name":"a","NAME":"b"}}"#,
            "{\"method\":\"tools/call\",\"params\":{\"name\":\"a\"},\"PARAMS\":{}}",
            "{\"method\":\"ping\",\"Method\":\"tools/call\"}",
            "{\"method\":\"ping\",\"param\u{17F}\":{\"name\":\"x\"}}",
        ] {
            assert_eq!(calls(bad), Err(Unreadable), "{bad:?}");
        }
        assert_eq!(tool_calls(b"{\"a\":\"\xff\"}"), Err(Unreadable));
    }

    #[test]
    fn deep_nesting_in_ignored_members_is_skipped_not_built() {
        // serde_json skips ignored values with a stack of its own (no recursion limit), so
        // what the gate reads stays exact however deep the arguments go.
        let deep = format!(
            r#"{{"method":"tools/call","params":{{"arguments":{}{},"name":"x"}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(calls(&deep), Ok(vec!["x".to_owned()]));
        let unbalanced = format!(
            r#"{{"method":"tools/call","params":{{"arguments":{},"name":"x"}}}}"#,
            "[".repeat(1000)
        );
        assert_eq!(calls(&unbalanced), Err(Unreadable));
    }
}
