//! What an MCP `POST` body asks for, read strictly and without building a value tree: for
//! each JSON-RPC message its `method`, `id`, `params.name` and `params.uri`. A body that can not
//! be read this way (not UTF-8, not exactly one JSON value, nesting past the parser's limit, a
//! bad escape in a member the gate reads, a repeated member name or one of serde_json's private
//! names in a message or its `params`) is [`Unreadable`]: the gate refuses it rather than let a
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
const READ_NAMES: [&str; 4] = ["method", "params", "name", "uri"];

/// The body can not be read strictly; answered with a JSON-RPC parse error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unreadable;

/// What the gate reads of one JSON-RPC message. Members that are not strings (or, for `id`,
/// not a string or a number) read as `None`; an element of a batch that is not an object reads
/// as all `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Message {
    /// `method`.
    pub(crate) method: Option<String>,
    /// `id`, a string or a number, to answer with.
    pub(crate) id: Option<serde_json::Value>,
    /// `params.name` (tools and prompts).
    pub(crate) name: Option<String>,
    /// `params.uri` (resources).
    pub(crate) uri: Option<String>,
}

impl Message {
    /// What the message names, by its method: the tool of a `tools/call`, the prompt of a
    /// `prompts/get`, the resource of `resources/read`, `resources/subscribe` or
    /// `resources/unsubscribe`; `None` for other methods (the `Mcp-Name` rules of MCP
    /// 2026-07-28).
    pub(crate) fn target(&self) -> Option<&str> {
        match self.method.as_deref()? {
            "tools/call" | "prompts/get" => self.name.as_deref(),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                self.uri.as_deref()
            }
            _ => None,
        }
    }
}

/// The messages of a body: one, or the elements of a batch. A body that is a JSON scalar
/// holds no message.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Messages {
    pub(crate) list: Vec<Message>,
    pub(crate) batch: bool,
}

/// Reads a body strictly.
pub(crate) fn messages(body: &[u8]) -> Result<Messages, Unreadable> {
    // serde_json skips ignored strings without checking their UTF-8: check it all first.
    let text = std::str::from_utf8(body).map_err(|_| Unreadable)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let read = Messages::deserialize(&mut de).map_err(|_| Unreadable)?;
    // Exactly one value: trailing data (a second value, garbage) is refused.
    de.end().map_err(|_| Unreadable)?;
    Ok(read)
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

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Messages;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message or batch")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Messages, A::Error> {
                Ok(Messages {
                    list: vec![message(map)?],
                    batch: false,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
                let mut list = Vec::new();
                while let Some(Element(m)) = seq.next_element::<Element>()? {
                    list.push(m);
                }
                Ok(Messages { list, batch: true })
            }
            // Scalars are no message: the server answers them with its own error.
            skip_scalars!(Messages, Messages::default());
        }
        d.deserialize_any(V)
    }
}

/// One element of a batch.
struct Element(Message);

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Element;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element, A::Error> {
                message(map).map(Element)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
                drain_seq(seq).map(|()| Element(Message::default()))
            }
            skip_scalars!(Element, Element(Message::default()));
        }
        d.deserialize_any(V)
    }
}

/// Reads one message object.
fn message<'de, A: MapAccess<'de>>(mut map: A) -> Result<Message, A::Error> {
    let mut names: HashSet<String> = HashSet::new();
    let mut read = Message::default();
    while let Some(key) = map.next_key::<String>()? {
        check_name(&key, &names)?;
        match key.as_str() {
            "method" => read.method = map.next_value::<MaybeString>()?.0,
            "id" => read.id = map.next_value::<MaybeId>()?.0,
            "params" => {
                let Params { name, uri } = map.next_value::<Params>()?;
                (read.name, read.uri) = (name, uri);
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        names.insert(key);
    }
    Ok(read)
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

/// `params`: its string `name` and `uri` when it is an object.
#[derive(Default)]
struct Params {
    name: Option<String>,
    uri: Option<String>,
}

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
                let mut params = Params::default();
                while let Some(key) = map.next_key::<String>()? {
                    check_name(&key, &names)?;
                    match key.as_str() {
                        "name" => params.name = map.next_value::<MaybeString>()?.0,
                        "uri" => params.uri = map.next_value::<MaybeString>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    names.insert(key);
                }
                Ok(params)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
                drain_seq(seq).map(|()| Params::default())
            }
            skip_scalars!(Params, Params::default());
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

/// A JSON-RPC `id` (a string or a number, read strictly), or `None` for any other value.
struct MaybeId(Option<serde_json::Value>);

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

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tools the body's `tools/call` messages call.
    fn calls(s: &str) -> Result<Vec<String>, Unreadable> {
        tool_calls(s.as_bytes())
    }

    fn tool_calls(body: &[u8]) -> Result<Vec<String>, Unreadable> {
        Ok(messages(body)?
            .list
            .into_iter()
            .filter(|m| m.method.as_deref() == Some("tools/call"))
            .filter_map(|m| m.name)
            .collect())
    }

    #[test]
    fn every_message_is_read_with_its_target() {
        let read = messages(
            br#"[{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"admin://report","name":"n"}},
                {"id":7,"method":"prompts/get","params":{"name":"brief","arguments":{"uri":"x"}}},
                {"method":"tools/list","id":null},
                5]"#,
        )
        .unwrap();
        assert!(read.batch);
        let targets: Vec<_> = read.list.iter().map(Message::target).collect();
        assert_eq!(targets, [Some("admin://report"), Some("brief"), None, None]);
        assert_eq!(read.list[0].id, Some("a".into()));
        assert_eq!(read.list[1].id, Some(7.into()));
        assert_eq!(read.list[2].id, None);
        assert_eq!(read.list[3], Message::default());
        let one = messages(br#"{"method":"resources/subscribe","params":{"uri":"u"}}"#).unwrap();
        assert!(!one.batch);
        assert_eq!(one.list[0].target(), Some("u"));
        assert_eq!(messages(b"null").unwrap(), Messages::default());
        // A case variant of `uri` is refused like one of `name`.
        assert_eq!(
            messages(br#"{"method":"resources/read","params":{"uri":"a","URI":"b"}}"#),
            Err(Unreadable)
        );
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
