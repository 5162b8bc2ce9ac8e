//! List answers that show only what the caller may use: the entries of `tools/list`,
//! `prompts/list`, `resources/list` and `resources/templates/list` results that the policy
//! would refuse this caller are left out, and for MCP 2026-07-28 the result is marked
//! `cacheScope: "private"` (it depends on the caller). Framework-free: JSON values in, JSON
//! values out; `mcp_response.rs` finds them in JSON and SSE bodies.

use serde_json::Value;

use crate::mcp_body::{At, Message};
use crate::mcp_policy::{McpOperation, McpOperationKind, Policy};
use crate::owner::ResourceOwner;

/// A list method and the member of its result that holds the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl ListKind {
    pub(crate) fn of_method(method: &str) -> Option<Self> {
        match method {
            "tools/list" => Some(Self::Tools),
            "prompts/list" => Some(Self::Prompts),
            "resources/list" => Some(Self::Resources),
            "resources/templates/list" => Some(Self::Templates),
            _ => None,
        }
    }

    fn member(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::Templates => "resourceTemplates",
        }
    }
}

/// The list requests of one `POST` whose answers are to be filtered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AwaitedLists {
    /// By request id; `None` as the id: whatever response the single request gets (the
    /// request was decided from its headers, its id unread).
    pending: Vec<(Option<Value>, ListKind)>,
    /// Mark results `cacheScope: "private"` (the request speaks MCP 2026-07-28).
    private: bool,
    /// Every answer shaped like a list result, for as long as the stream lasts (a `GET`
    /// stream, which replays earlier answers on resumption).
    by_shape: bool,
}

impl AwaitedLists {
    /// Awaits the answers to the list requests of a body, added as the body is read
    /// ([`add`](Self::add)).
    pub(crate) fn new(private: bool) -> Self {
        Self {
            pending: Vec::new(),
            private,
            by_shape: false,
        }
    }

    /// Awaits the answer to `message` if it is a list request. A single request's answer is
    /// whatever response comes (however the server spells its id); in a batch, answers are
    /// matched by id.
    pub(crate) fn add(&mut self, at: At, message: &Message<'_>) {
        let Some(kind) = message.method.as_deref().and_then(ListKind::of_method) else {
            return;
        };
        // A request without an id is a notification: nothing answers it.
        let Some(id) = &message.id else {
            return;
        };
        self.pending.push((at.in_batch.then(|| id.clone()), kind));
    }

    /// What is awaited, or `None` when the body held no list request.
    pub(crate) fn awaited(self) -> Option<Self> {
        (!self.pending.is_empty()).then_some(self)
    }

    /// The list requests of a whole body (tests).
    #[cfg(test)]
    pub(crate) fn of(body: &[u8], private: bool) -> Option<Self> {
        let mut lists = Self::new(private);
        crate::mcp_body::read(body, |at, m| lists.add(at, m)).ok()?;
        lists.awaited()
    }

    /// The single request named by its `Mcp-Method` header.
    pub(crate) fn by_header(method: &str, private: bool) -> Option<Self> {
        let kind = ListKind::of_method(method)?;
        Some(Self {
            pending: vec![(None, kind)],
            private,
            by_shape: false,
        })
    }

    /// Every list-shaped answer on a stream whose requests are unknown (a `GET` stream:
    /// resumption replays answers to earlier `POST`s).
    pub(crate) fn any_list() -> Self {
        Self {
            pending: Vec::new(),
            private: false,
            by_shape: true,
        }
    }

    /// Whether every awaited answer has been seen.
    pub(crate) fn is_done(&self) -> bool {
        !self.by_shape && self.pending.is_empty()
    }

    /// Whether an SSE event's data may hold an answer to filter (a cheap look before
    /// parsing, for streams filtered by shape; the inner server writes member names plainly).
    pub(crate) fn may_hold_list(&self, data: &str) -> bool {
        !self.by_shape
            || [
                "\"tools\"",
                "\"prompts\"",
                "\"resources\"",
                "\"resourceTemplates\"",
            ]
            .iter()
            .any(|m| data.contains(m))
    }

    /// Filters `message` if it answers an awaited request (then no longer awaited); `true`
    /// when it did.
    pub(crate) fn filter(
        &mut self,
        policy: &Policy,
        owner: &ResourceOwner,
        message: &mut Value,
    ) -> bool {
        let Some(object) = message.as_object_mut() else {
            return false;
        };
        if object.contains_key("method") || !object.contains_key("id") {
            return false; // a request or notification from the server, not an answer
        }
        let kind = if self.by_shape {
            let Some(Value::Object(result)) = object.get("result") else {
                return false;
            };
            let Some(kind) = [
                ListKind::Tools,
                ListKind::Prompts,
                ListKind::Resources,
                ListKind::Templates,
            ]
            .into_iter()
            .find(|k| result.get(k.member()).is_some_and(Value::is_array)) else {
                return false;
            };
            kind
        } else {
            let id = object.get("id");
            let Some(at) = self.pending.iter().position(|(want, _)| match want {
                None => true,
                Some(want) => id.is_some_and(|id| same_id(want, id)),
            }) else {
                return false;
            };
            self.pending.swap_remove(at).1
        };
        let Some(Value::Object(result)) = object.get_mut("result") else {
            return true; // an error answer
        };
        if let Some(Value::Array(entries)) = result.get_mut(kind.member()) {
            entries.retain(|entry| visible(policy, owner, kind, entry));
        }
        if self.private {
            result.insert("cacheScope".to_owned(), Value::from("private"));
        }
        true
    }
}

/// Whether two JSON-RPC ids name the same request: equal, or the same number however it is
/// written (`1`, `1.0`). Integers compare exactly (2^53 and 2^53 + 1 are two ids).
fn same_id(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (Value::Number(x), Value::Number(y)) = (a, b) else {
        return false;
    };
    if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
        return i == j;
    }
    if let (Some(i), Some(j)) = (x.as_u64(), y.as_u64()) {
        return i == j;
    }
    // A float on one side: the same value, where floats still hold every integer exactly.
    matches!((x.as_f64(), y.as_f64()), (Some(f), Some(g)) if f == g && f.abs() < 9_007_199_254_740_992.0)
}

/// Whether the caller may use what a list entry names; an entry without the name it should
/// have is left out.
fn visible(policy: &Policy, owner: &ResourceOwner, kind: ListKind, entry: &Value) -> bool {
    let (op_kind, member) = match kind {
        ListKind::Tools => (McpOperationKind::Tool, "name"),
        ListKind::Prompts => (McpOperationKind::Prompt, "name"),
        ListKind::Resources => (McpOperationKind::Resource, "uri"),
        ListKind::Templates => (McpOperationKind::Resource, "uriTemplate"),
    };
    let Some(name) = entry.get(member).and_then(Value::as_str) else {
        return false;
    };
    let op = McpOperation::new(op_kind, name, None, owner);
    let refused = if kind == ListKind::Templates {
        policy.template_refused(&op)
    } else {
        policy.refused(&op)
    };
    refused.is_none()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::scope::ScopeRequirement;

    fn setup() -> (Policy, ResourceOwner) {
        let mut policy = Policy::default();
        policy.tools.insert(
            "admin".to_owned(),
            ScopeRequirement::all(["mcp:admin"]).unwrap().into(),
        );
        let serde_json::Value::Object(claims) =
            serde_json::json!({"sub": "u", "scope": "mcp:tools"})
        else {
            unreachable!()
        };
        let owner = ResourceOwner::from_claims("https://as".to_owned(), claims, Arc::default());
        (policy, owner.unwrap())
    }

    fn answer(id: &Value) -> Value {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{"name": "admin"}, {"name": "open"}]}})
    }

    #[test]
    fn a_single_request_is_answered_whatever_the_id_spelling() {
        let (policy, owner) = setup();
        let body = br#"{"id":1e0,"method":"tools/list"}"#;
        let mut awaited = AwaitedLists::of(body, false).unwrap();
        // A server request or notification on the stream is not the answer.
        let mut ping = serde_json::json!({"jsonrpc":"2.0","id":"s1","method":"ping"});
        assert!(!awaited.filter(&policy, &owner, &mut ping));
        let mut reply = answer(&Value::from(1));
        assert!(awaited.filter(&policy, &owner, &mut reply));
        assert_eq!(
            reply["result"]["tools"],
            serde_json::json!([{"name": "open"}])
        );
        assert!(awaited.is_done());
    }

    #[test]
    fn batch_answers_are_matched_by_id_numerically() {
        let (policy, owner) = setup();
        let body = br#"[{"id":"a","method":"ping"},{"id":2,"method":"tools/list"}]"#;
        let mut awaited = AwaitedLists::of(body, true).unwrap();
        let mut other = answer(&Value::from("a"));
        assert!(!awaited.filter(&policy, &owner, &mut other));
        assert_eq!(other["result"]["tools"].as_array().unwrap().len(), 2);
        let mut reply = answer(&serde_json::json!(2.0));
        assert!(awaited.filter(&policy, &owner, &mut reply));
        assert_eq!(reply["result"]["cacheScope"], "private");
        assert_eq!(reply["result"]["tools"].as_array().unwrap().len(), 1);
        // Integers compare exactly, floats only when exactly that integer.
        assert!(same_id(&serde_json::json!(2), &serde_json::json!(2.0)));
        assert!(!same_id(
            &serde_json::json!(9_007_199_254_740_992u64),
            &serde_json::json!(9_007_199_254_740_993u64)
        ));
        assert!(!same_id(&serde_json::json!(2), &serde_json::json!("2")));
        assert!(!same_id(&serde_json::json!(2), &serde_json::json!(2.5)));
        // Notifications are not awaited; no list request, nothing to filter.
        assert!(AwaitedLists::of(br#"{"method":"tools/list"}"#, true).is_none());
    }
}
