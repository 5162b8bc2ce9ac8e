//! List answers that show only what the caller may use: the entries of `tools/list`,
//! `prompts/list`, `resources/list` and `resources/templates/list` results that the policy
//! would refuse this caller are left out, and for MCP 2026-07-28 the result is marked
//! `cacheScope: "private"` (it depends on the caller). Framework-free: JSON values in, JSON
//! values out; `mcp_response.rs` finds them in JSON and SSE bodies.

use serde_json::Value;

use crate::mcp_body::Message;
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
}

impl AwaitedLists {
    /// The list requests among `messages`, or `None` when there are none.
    pub(crate) fn of(messages: &[Message], private: bool) -> Option<Self> {
        let pending: Vec<_> = messages
            .iter()
            .filter_map(|m| {
                let kind = ListKind::of_method(m.method.as_deref()?)?;
                // A request without an id is a notification: nothing answers it.
                Some((Some(m.id.clone()?), kind))
            })
            .collect();
        (!pending.is_empty()).then_some(Self { pending, private })
    }

    /// The single request named by its `Mcp-Method` header.
    pub(crate) fn by_header(method: &str, private: bool) -> Option<Self> {
        let kind = ListKind::of_method(method)?;
        Some(Self {
            pending: vec![(None, kind)],
            private,
        })
    }

    /// Whether every awaited answer has been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.pending.is_empty()
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
        let id = object.get("id");
        let Some(at) = self
            .pending
            .iter()
            .position(|(want, _)| want.is_none() || want.as_ref() == id)
        else {
            return false;
        };
        let (_, kind) = self.pending.swap_remove(at);
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
