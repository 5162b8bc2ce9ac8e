//! What an MCP `POST` body asks for, read strictly and without building a value tree: for
//! each JSON-RPC message its `method`, `id` and what its `params` name (`mcp_params.rs`). A body that can not
//! be read this way (not UTF-8, not exactly one JSON value, nesting past the parser's limit, a
//! bad escape in a member the gate reads, a repeated member name or one of serde_json's private
//! names in a message or its `params`) is [`Unreadable`]: the gate refuses it rather than let a
//! more lenient MCP server read something else into it.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json::{Text, skip_scalars};
use crate::mcp_json::{MaybeId, MaybeString, Names, drain_seq};
use crate::mcp_params::{Params, Reference};
use crate::mcp_policy::McpOperationKind;

/// The most messages a batch may hold (JSON-RPC batches exist only in MCP 2025-03-26, and
/// clients send a handful): a longer one is refused rather than read into a list whose size
/// the client chooses (a 4 MiB batch of `0`s is two million messages).
pub(crate) const MAX_BATCH: usize = 256;

/// The body can not be read strictly; answered with a JSON-RPC parse error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unreadable;

/// What the gate reads of one JSON-RPC message. Members that are not strings (or, for `id`,
/// not a string or a number) read as `None`; an element of a batch that is not an object reads
/// as all `None`. `method`, `params.name` and `params.uri` are borrowed from the body unless
/// they hold escapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Message<'a> {
    /// `method`.
    pub(crate) method: Option<Cow<'a, str>>,
    /// `id`, a string or a number, to answer with.
    pub(crate) id: Option<serde_json::Value>,
    /// `params.name` (tools and prompts).
    pub(crate) name: Option<Cow<'a, str>>,
    /// `params.uri` (resources).
    pub(crate) uri: Option<Cow<'a, str>>,
    /// `params.ref` (`completion/complete`).
    pub(crate) reference: Option<Reference>,
    /// `params.notifications.resourceSubscriptions` (`subscriptions/listen`).
    pub(crate) subscriptions: Vec<String>,
}

impl Message<'_> {
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

    /// Everything the message acts on that a policy rule can name: the tool, prompt or
    /// resource of its method, the prompt or resource a `completion/complete` completes, the
    /// resources a `subscriptions/listen` subscribes to.
    pub(crate) fn operations(&self) -> impl Iterator<Item = (McpOperationKind, &str)> {
        let (one, listen) = match self.method.as_deref() {
            None => (None, false),
            Some("completion/complete") => (
                match &self.reference {
                    Some(Reference::Prompt(name)) => {
                        Some((McpOperationKind::Prompt, name.as_str()))
                    }
                    Some(Reference::Resource(uri)) => {
                        Some((McpOperationKind::Resource, uri.as_str()))
                    }
                    None => None,
                },
                false,
            ),
            Some("subscriptions/listen") => (None, true),
            Some(method) => (
                McpOperationKind::of_method(method).zip(self.target()),
                false,
            ),
        };
        let subscriptions = if listen { &self.subscriptions[..] } else { &[] };
        one.into_iter().chain(
            subscriptions
                .iter()
                .map(|uri| (McpOperationKind::Resource, uri.as_str())),
        )
    }
}

/// The messages of a body: one, or the elements of a batch. A body that is a JSON scalar
/// holds no message.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Messages<'a> {
    #[default]
    None,
    One(Message<'a>),
    Batch(Vec<Message<'a>>),
}

impl<'a> Messages<'a> {
    /// Every message, in order (one without a list of its own: no allocation).
    pub(crate) fn list(&self) -> &[Message<'a>] {
        match self {
            Self::None => &[],
            Self::One(message) => std::slice::from_ref(message),
            Self::Batch(list) => list,
        }
    }

    /// Whether the body is a JSON-RPC batch (an array).
    pub(crate) fn is_batch(&self) -> bool {
        matches!(self, Self::Batch(_))
    }
}

/// Reads a body strictly.
pub(crate) fn messages(body: &[u8]) -> Result<Messages<'_>, Unreadable> {
    // serde_json skips ignored strings without checking their UTF-8: check it all first
    // (simdutf8: 4x core's check on ASCII here, 10x on other text; BENCHMARKS.md).
    let text = simdutf8::basic::from_utf8(body).map_err(|_| Unreadable)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let read = Messages::deserialize(&mut de).map_err(|_| Unreadable)?;
    // Exactly one value: trailing data (a second value, garbage) is refused.
    de.end().map_err(|_| Unreadable)?;
    Ok(read)
}

impl<'de: 'a, 'a> Deserialize<'de> for Messages<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Messages<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message or batch")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Messages<'a>, A::Error> {
                message(map).map(Messages::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages<'a>, A::Error> {
                let mut list = Vec::new();
                while let Some(Element(m)) = seq.next_element::<Element<'a>>()? {
                    if list.len() == MAX_BATCH {
                        return Err(serde::de::Error::custom("a batch over the limit"));
                    }
                    list.push(m);
                }
                Ok(Messages::Batch(list))
            }
            // Scalars are no message: the server answers them with its own error.
            skip_scalars!(Messages<'a>, Messages::default());
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One element of a batch.
struct Element<'a>(Message<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Element<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Element<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element<'a>, A::Error> {
                message(map).map(Element)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element<'a>, A::Error> {
                drain_seq(seq).map(|()| Element(Message::default()))
            }
            skip_scalars!(Element<'a>, Element(Message::default()));
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Reads one message object.
fn message<'de: 'a, 'a, A: MapAccess<'de>>(mut map: A) -> Result<Message<'a>, A::Error> {
    let mut names = Names::new();
    let mut read = Message::default();
    while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
        names.check(key.clone())?;
        match &*key {
            "method" => read.method = map.next_value::<MaybeString<'a>>()?.0,
            "id" => read.id = map.next_value::<MaybeId>()?.0,
            "params" => {
                let params = map.next_value::<Params<'a>>()?;
                (read.name, read.uri) = (params.name, params.uri);
                (read.reference, read.subscriptions) = (params.reference, params.subscriptions);
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    names.finish()?;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body's UTF-8 check (simdutf8) refuses exactly what the standard library refuses,
    /// wherever the bad sequence sits in the vector blocks of an ignored member.
    #[test]
    fn utf8_is_checked_as_the_standard_library_does() {
        let sequences: [&[u8]; 12] = [
            b"\xc3\xa9",
            b"\xe2\x9c\x93",
            b"\xf0\x9f\x98\x80",
            b"\xc3",
            b"\xe2\x9c",
            b"\xf0\x9f\x98",
            b"\xc0\x80",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80",
            b"\x80",
            b"\xff",
        ];
        for seq in sequences {
            for at in [0, 1, 15, 16, 31, 32, 33, 63, 64, 65, 100] {
                let mut body = br#"{"jsonrpc":"2.0","x":""#.to_vec();
                let mut text = vec![b'a'; 130];
                text.splice(at..at + seq.len(), seq.iter().copied());
                body.extend(&text);
                body.extend(br#""}"#);
                assert_eq!(
                    messages(&body).is_ok(),
                    std::str::from_utf8(&body).is_ok(),
                    "{seq:?} at {at}"
                );
            }
        }
    }

    /// The tools the body's `tools/call` messages call.
    fn calls(s: &str) -> Result<Vec<String>, Unreadable> {
        tool_calls(s.as_bytes())
    }

    fn tool_calls(body: &[u8]) -> Result<Vec<String>, Unreadable> {
        Ok(messages(body)?
            .list()
            .iter()
            .filter(|m| m.method.as_deref() == Some("tools/call"))
            .filter_map(|m| m.name.as_deref().map(str::to_owned))
            .collect())
    }

    #[test]
    fn batches_are_bounded() {
        let batch = |n: usize| format!("[{}]", vec!["0"; n].join(","));
        assert_eq!(
            messages(batch(MAX_BATCH).as_bytes()).unwrap().list().len(),
            MAX_BATCH
        );
        assert_eq!(messages(batch(MAX_BATCH + 1).as_bytes()), Err(Unreadable));
    }

    #[test]
    fn completions_and_subscriptions_name_what_they_act_on() {
        let read = messages(
            br#"[{"id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"admin_brief"},"argument":{"name":"a","value":"b"}}},
                {"id":2,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"admin://reports/{id}"}}},
                {"id":3,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["admin://report",7,"public://readme"]}}},
                {"id":4,"method":"completion/complete","params":{"ref":{"type":"ref/other","name":"x"}}}]"#,
        )
        .unwrap();
        let ops: Vec<Vec<_>> = read
            .list()
            .iter()
            .map(|m| m.operations().collect())
            .collect();
        assert_eq!(ops[0], [(McpOperationKind::Prompt, "admin_brief")]);
        assert_eq!(
            ops[1],
            [(McpOperationKind::Resource, "admin://reports/{id}")]
        );
        assert_eq!(
            ops[2],
            [
                (McpOperationKind::Resource, "admin://report"),
                (McpOperationKind::Resource, "public://readme")
            ]
        );
        assert!(ops[3].is_empty());
        // Repeats and case variants inside the nested objects are refused too.
        for bad in [
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","name":"b"}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","Name":"b","name":"a"}}}"#,
            r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["a"],"ResourceSubscriptions":["b"]}}}"#,
        ] {
            assert_eq!(messages(bad.as_bytes()), Err(Unreadable), "{bad}");
        }
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
        assert!(read.is_batch());
        let targets: Vec<_> = read.list().iter().map(Message::target).collect();
        assert_eq!(targets, [Some("admin://report"), Some("brief"), None, None]);
        assert_eq!(read.list()[0].id, Some("a".into()));
        assert_eq!(read.list()[1].id, Some(7.into()));
        assert_eq!(read.list()[2].id, None);
        assert_eq!(read.list()[3], Message::default());
        let one = messages(br#"{"method":"resources/subscribe","params":{"uri":"u"}}"#).unwrap();
        assert!(!one.is_batch());
        assert_eq!(one.list()[0].target(), Some("u"));
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
