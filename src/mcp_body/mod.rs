//! What an MCP `POST` body asks for, read strictly and without building a value tree: for
//! each JSON-RPC message its `method`, `id` and what its `params` name (`mcp_params.rs`),
//! handed on as soon as the message is read, so that a batch is never kept as a list. A body
//! that can not be read this way (not UTF-8, not exactly one JSON value, nesting past the
//! parser's limit, a bad escape in a member the gate reads, a repeated member name or one of
//! serde_json's private names in a message or its `params`) is [`Unreadable`]: the gate
//! refuses it rather than let a more lenient MCP server read something else into it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json::{Text, skip_scalars};
use crate::mcp_json::{MaybeId, MaybeString, Names, drain_seq};
use crate::mcp_params::{Params, Reference};
use crate::mcp_policy::McpOperationKind;

/// The most messages a batch may hold (JSON-RPC batches exist only in MCP 2025-03-26, and
/// clients send a handful): a longer one is refused rather than decided message by message
/// at a cost the client chooses (a 4 MiB batch of `0`s is two million messages), and the
/// arguments a rule reads are never a list that long.
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

/// Where a message sits in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    /// Its position: 0 for a single message.
    pub(crate) index: usize,
    /// Whether it is an element of a batch.
    pub(crate) in_batch: bool,
}

/// How a body holds its messages, once each has been handed on: one (kept, for the headers
/// to be checked against it and its `id` to answer with), a batch, or none (a JSON scalar).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Shape<'a> {
    #[default]
    None,
    One(Message<'a>),
    Batch,
}

/// Reads a body strictly, handing each message to `each` as soon as it is read: a batch is
/// decided message by message and never kept as a list, so what the gate holds beyond the
/// body does not grow with the number of messages. When the body turns out to be
/// [`Unreadable`] after some messages were handed on, the caller must drop what it made of
/// them.
pub(crate) fn read<'a>(
    body: &'a [u8],
    mut each: impl FnMut(At, &Message<'a>),
) -> Result<Shape<'a>, Unreadable> {
    // serde_json skips ignored strings without checking their UTF-8: check it all first
    // (simdutf8: 4x core's check on ASCII here, 10x on other text; BENCHMARKS.md).
    let text = simdutf8::basic::from_utf8(body).map_err(|_| Unreadable)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let shape = Body {
        each: &mut each,
        body: PhantomData,
    }
    .deserialize(&mut de)
    .map_err(|_| Unreadable)?;
    // Exactly one value: trailing data (a second value, garbage) is refused.
    de.end().map_err(|_| Unreadable)?;
    Ok(shape)
}

/// The messages of a body, kept as a list (tests and the fuzz targets' differential checks).
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Messages<'a> {
    #[default]
    None,
    One(Message<'a>),
    Batch(Vec<Message<'a>>),
}

#[cfg(any(test, feature = "fuzzing"))]
impl<'a> Messages<'a> {
    /// Every message, in order.
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

/// Reads a body strictly into a list ([`read`], keeping every message).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn messages(body: &[u8]) -> Result<Messages<'_>, Unreadable> {
    let mut list = Vec::new();
    let mut places = Vec::new();
    let shape = read(body, |at, m| {
        places.push(at);
        list.push(m.clone());
    })?;
    // Each message's place is its index in the list, in a batch or alone.
    let batch = matches!(shape, Shape::Batch);
    for (i, at) in places.iter().enumerate() {
        assert_eq!((at.index, at.in_batch), (i, batch), "{at:?}");
    }
    Ok(match shape {
        Shape::None => Messages::None,
        Shape::One(message) => Messages::One(message),
        Shape::Batch => Messages::Batch(list),
    })
}

/// The whole body, handing its messages on.
struct Body<'f, 'a, F> {
    each: &'f mut F,
    body: PhantomData<&'a ()>,
}

impl<'de: 'a, 'a, F: FnMut(At, &Message<'a>)> DeserializeSeed<'de> for Body<'_, 'a, F> {
    type Value = Shape<'a>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Shape<'a>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de: 'a, 'a, F: FnMut(At, &Message<'a>)> Visitor<'de> for Body<'_, 'a, F> {
    type Value = Shape<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape<'a>, A::Error> {
        let one = message(map)?;
        (self.each)(
            At {
                index: 0,
                in_batch: false,
            },
            &one,
        );
        Ok(Shape::One(one))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape<'a>, A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(Element {
                each: &mut *self.each,
                index,
                body: PhantomData,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(Shape::Batch)
    }
    // Scalars are no message: the server answers them with its own error.
    skip_scalars!(Shape<'a>, Shape::None);
}

/// One element of a batch, handed on once read.
struct Element<'f, 'a, F> {
    each: &'f mut F,
    index: usize,
    body: PhantomData<&'a ()>,
}

impl<'de: 'a, 'a, F: FnMut(At, &Message<'a>)> DeserializeSeed<'de> for Element<'_, 'a, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // Refused before the element is read: a batch over the limit hands nothing more on.
        if self.index == MAX_BATCH {
            return Err(serde::de::Error::custom("a batch over the limit"));
        }
        let at = At {
            index: self.index,
            in_batch: true,
        };
        let read = d.deserialize_any(ElementVisitor(PhantomData))?;
        (self.each)(at, &read);
        Ok(())
    }
}

/// One element of a batch: a message, or (any other value) a message with nothing in it.
struct ElementVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ElementVisitor<'a> {
    type Value = Message<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Message<'a>, A::Error> {
        message(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Message<'a>, A::Error> {
        drain_seq(seq).map(|()| Message::default())
    }
    skip_scalars!(Message<'a>, Message::default());
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
mod tests;
