//! The `params.arguments` of one message, for requirements that decide on them
//! ([`McpRequirement::from_fn`](crate::McpRequirement::from_fn)): read into a value tree that
//! refuses a member name repeated at any depth, since parsers disagree on which one counts.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::mcp_body::Unreadable;

/// The `params.arguments` of every message (of the batch, or the single message), in order,
/// `None` where a message has none: the body is parsed once, however many messages ask.
/// Only called on bodies `mcp_body::read` has read.
pub(crate) fn all_arguments(body: &[u8]) -> Result<Vec<Option<Value>>, Unreadable> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Strict.deserialize(&mut de).map_err(|_| Unreadable)?;
    de.end().map_err(|_| Unreadable)?;
    let messages = match value {
        Value::Array(batch) => batch,
        one => vec![one],
    };
    Ok(messages
        .into_iter()
        .map(|message| {
            let Value::Object(mut message) = message else {
                return None;
            };
            let Some(Value::Object(mut params)) = message.remove("params") else {
                return None;
            };
            params.remove("arguments")
        })
        .collect())
}

/// The `params.arguments` of the message at `index`.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn arguments(body: &[u8], index: usize) -> Result<Option<Value>, Unreadable> {
    Ok(all_arguments(body)?.into_iter().nth(index).flatten())
}

/// A value tree, refusing repeated member names.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom("a repeated member name"));
            }
            let value = map.next_value_seed(Strict)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_of_the_named_message() {
        let one = br#"{"method":"tools/call","params":{"name":"w","arguments":{"path":"/etc"}}}"#;
        assert_eq!(
            arguments(one, 0),
            Ok(Some(serde_json::json!({"path": "/etc"})))
        );
        let batch = br#"[{"method":"ping"},{"params":{"arguments":[1,2]}}]"#;
        assert_eq!(arguments(batch, 0), Ok(None));
        assert_eq!(arguments(batch, 1), Ok(Some(serde_json::json!([1, 2]))));
        assert_eq!(arguments(batch, 2), Ok(None));
    }

    #[test]
    fn repeated_names_at_any_depth_are_unreadable() {
        let dup = br#"{"params":{"arguments":{"a":{"path":"/tmp","path":"/etc"}}}}"#;
        assert_eq!(arguments(dup, 0), Err(Unreadable));
    }
}
