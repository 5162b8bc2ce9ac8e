//! The MCP policy: which scopes each tool, prompt and resource needs, as fixed
//! [`ScopeRequirement`]s or as functions of the operation, its arguments and the caller
//! ([`McpRequirement`]). Framework-free; the gate (`mcp_scopes.rs`) applies it.

mod caller;
mod uri;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::ConfigError;
use crate::required_claims::RequiredClaim;

pub(crate) use self::caller::CallerRefusal;
use self::caller::CallerRule;
use crate::owner::ResourceOwner;
use crate::scope::ScopeRequirement;

pub(crate) use uri::{MAX_SPELLED_URI, UriTemplate, spellings};

/// What an MCP operation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum McpOperationKind {
    /// A tool (`tools/call`, `tools/list`).
    Tool,
    /// A prompt (`prompts/get`, `prompts/list`).
    Prompt,
    /// A resource (`resources/read`, `resources/subscribe`, `resources/list`) or a resource
    /// template (`resources/templates/list`).
    Resource,
}

impl McpOperationKind {
    /// The kind a JSON-RPC method acts on with a name it must be allowed for, if any.
    pub(crate) fn of_method(method: &str) -> Option<Self> {
        match method {
            "tools/call" => Some(Self::Tool),
            "prompts/get" => Some(Self::Prompt),
            "resources/read" | "resources/subscribe" => Some(Self::Resource),
            _ => None,
        }
    }
}

/// One operation as a [`McpRequirement::from_fn`] function sees it.
///
/// `arguments` are the `params.arguments` of a `tools/call` or `prompts/get` (`None` when the
/// message has none, for resources, and when a list is filtered: a function deciding on
/// arguments should answer the requirement of the most demanding call there).
#[derive(Debug, Clone, Copy)]
pub struct McpOperation<'a> {
    kind: McpOperationKind,
    name: &'a str,
    arguments: Option<&'a serde_json::Value>,
    owner: &'a ResourceOwner,
}

impl<'a> McpOperation<'a> {
    pub(crate) fn new(
        kind: McpOperationKind,
        name: &'a str,
        arguments: Option<&'a serde_json::Value>,
        owner: &'a ResourceOwner,
    ) -> Self {
        Self {
            kind,
            name,
            arguments,
            owner,
        }
    }

    /// Tool, prompt or resource.
    #[must_use]
    pub fn kind(&self) -> McpOperationKind {
        self.kind
    }

    /// The tool or prompt name, or the resource URI, as the client sent it.
    #[must_use]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The call's `arguments`, when there are any to see.
    #[must_use]
    pub fn arguments(&self) -> Option<&'a serde_json::Value> {
        self.arguments
    }

    /// The caller.
    #[must_use]
    pub fn owner(&self) -> &'a ResourceOwner {
        self.owner
    }
}

type RuleFn = dyn Fn(&McpOperation<'_>) -> Option<ScopeRequirement> + Send + Sync;

/// What a tool, prompt or resource requires: fixed scopes (a [`ScopeRequirement`], which
/// converts into this), or a function of the operation, its arguments and the caller.
///
/// ```
/// use protected_resource::{McpRequirement, ScopeRequirement};
///
/// let write = ScopeRequirement::all(["files:write"])?;
/// let admin = ScopeRequirement::all(["files:admin"])?;
/// // Writing under /etc needs files:admin; anywhere else files:write.
/// let rule = McpRequirement::from_fn(move |op| {
///     let path = op.arguments()?.get("path")?.as_str()?;
///     Some(if path.starts_with("/etc") { admin.clone() } else { write.clone() })
/// });
/// # let _ = rule;
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
///
/// A function answering `None` lets the operation through. The gate refuses a `tools/call`
/// whose function answers a requirement the caller's scopes do not meet, with the 403
/// challenge naming that requirement's scopes. Functions run on every such call: keep them
/// fast and free of I/O.
///
/// **Who may call**, beyond scopes: [`allowed_clients`](Self::allowed_clients),
/// [`required_claims`](Self::required_claims) and [`max_token_age`](Self::max_token_age) add
/// rules about the caller's token (start from [`McpRequirement::caller`] for these alone).
/// A client or claims not allowed get 403 `insufficient_scope` with a fixed description
/// that names no rule (no re-authorization helps; the log says which rule failed); a token
/// too old gets 401 `invalid_token` "The access token is too old" (a fresh token helps).
///
/// ```
/// use std::time::Duration;
/// use protected_resource::{McpRequirement, RequiredClaim, ScopeRequirement};
///
/// // Scopes, and only the admin console, for members of `ops`, with a token from the last
/// // ten minutes.
/// let deploy = McpRequirement::from(ScopeRequirement::all(["mcp:admin"])?)
///     .allowed_clients(["admin-console"])
///     .required_claims([RequiredClaim::new("groups", "ops")])
///     .max_token_age(Duration::from_secs(600));
/// # let _ = deploy;
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct McpRequirement {
    scopes: Option<Rule>,
    caller: Option<Arc<CallerRule>>,
}

#[derive(Clone)]
enum Rule {
    Scopes(ScopeRequirement),
    Function(Arc<RuleFn>),
}

impl McpRequirement {
    /// A requirement computed per operation. When the function would read `arguments()`
    /// of a call, the gate reads the body (also in
    /// [`decide_from_headers`](crate::McpScopesLayer::decide_from_headers) mode).
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(&McpOperation<'_>) -> Option<ScopeRequirement> + Send + Sync + 'static,
    {
        Self {
            scopes: Some(Rule::Function(Arc::new(f))),
            caller: None,
        }
    }

    /// No scope requirement: add rules about the caller with
    /// [`allowed_clients`](Self::allowed_clients), [`required_claims`](Self::required_claims)
    /// and [`max_token_age`](Self::max_token_age).
    #[must_use]
    pub fn caller() -> Self {
        Self {
            scopes: None,
            caller: Some(Arc::new(CallerRule::default())),
        }
    }

    fn caller_mut(&mut self) -> &mut CallerRule {
        Arc::make_mut(self.caller.get_or_insert_with(Arc::default))
    }

    /// Only these clients may use it: the token's `client_id`, else `azp`, `cid` or `appid`
    /// (as [`ResourceOwner::client_id`] reads it), compared exactly. A token naming no
    /// client is refused.
    #[must_use]
    pub fn allowed_clients<S: Into<String>>(
        mut self,
        clients: impl IntoIterator<Item = S>,
    ) -> Self {
        self.caller_mut()
            .allowed_clients
            .extend(clients.into_iter().map(Into::into));
        self
    }

    /// Claim values the caller's token must carry, all of them (groups, roles, a tenant;
    /// dotted paths such as `realm_access.roles`; a claim holding an array matches when the
    /// array holds the value).
    #[must_use]
    pub fn required_claims(mut self, claims: impl IntoIterator<Item = RequiredClaim>) -> Self {
        self.caller_mut().required_claims.extend(claims);
        self
    }

    /// The caller's token must have been issued (`iat`) at most this long ago (a token
    /// without `iat` is too old): for operations that want a recent login.
    #[must_use]
    pub fn max_token_age(mut self, age: std::time::Duration) -> Self {
        self.caller_mut().max_token_age = Some(age);
        self
    }

    /// Whether deciding needs the operation's arguments (a function might read them).
    pub(crate) fn is_function(&self) -> bool {
        matches!(self.scopes, Some(Rule::Function(_)))
    }

    /// The scope requirement for this operation, if any.
    pub(crate) fn resolve(&self, op: &McpOperation<'_>) -> Option<Cow<'_, ScopeRequirement>> {
        match self.scopes.as_ref()? {
            Rule::Scopes(s) => Some(Cow::Borrowed(s)),
            Rule::Function(f) => f(op).map(Cow::Owned),
        }
    }

    /// Why the caller may not use the operation whatever its scopes, if so.
    fn caller_refusal(&self, owner: &ResourceOwner) -> Option<CallerRefusal> {
        self.caller.as_ref()?.refusal(owner)
    }
}

impl From<ScopeRequirement> for McpRequirement {
    fn from(requirement: ScopeRequirement) -> Self {
        Self {
            scopes: Some(Rule::Scopes(requirement)),
            caller: None,
        }
    }
}

impl fmt::Debug for McpRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("McpRequirement");
        match &self.scopes {
            Some(Rule::Scopes(s)) => d.field("scopes", s),
            Some(Rule::Function(_)) => d.field("scopes", &"<function>"),
            None => d.field("scopes", &"none"),
        };
        if let Some(c) = &self.caller {
            d.field("caller", c);
        }
        d.finish()
    }
}

/// Every rule of one layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    pub(crate) tools: BTreeMap<String, McpRequirement>,
    pub(crate) unlisted_tools: Option<McpRequirement>,
    pub(crate) prompts: BTreeMap<String, McpRequirement>,
    pub(crate) unlisted_prompts: Option<McpRequirement>,
    pub(crate) resources: BTreeMap<String, McpRequirement>,
    pub(crate) templates: Vec<(UriTemplate, McpRequirement)>,
    pub(crate) prefixes: Vec<(String, McpRequirement)>,
    pub(crate) unlisted_resources: Option<McpRequirement>,
}

impl Policy {
    /// Adds a resource template rule.
    pub(crate) fn add_template(
        &mut self,
        template: &str,
        requirement: McpRequirement,
    ) -> Result<(), ConfigError> {
        let template = UriTemplate::parse(template)?;
        self.templates.push((template, requirement));
        Ok(())
    }

    /// Whether any rule is configured (lists are filtered only then).
    pub(crate) fn is_empty(&self) -> bool {
        self.tools.is_empty()
            && self.unlisted_tools.is_none()
            && self.prompts.is_empty()
            && self.unlisted_prompts.is_none()
            && self.resources.is_empty()
            && self.templates.is_empty()
            && self.prefixes.is_empty()
            && self.unlisted_resources.is_none()
    }

    /// The rules that apply to what `name` names. For a resource, every rule matching any
    /// spelling of the URI applies (exact, template, prefix), all of them; the unlisted rule
    /// when none does.
    pub(crate) fn rules(&self, kind: McpOperationKind, name: &str) -> Rules<'_> {
        let (map, unlisted) = match kind {
            McpOperationKind::Tool => (&self.tools, &self.unlisted_tools),
            McpOperationKind::Prompt => (&self.prompts, &self.unlisted_prompts),
            McpOperationKind::Resource => return Rules::Many(self.resource_rules(name)),
        };
        Rules::One(map.get(name).or(unlisted.as_ref()))
    }

    fn resource_rules(&self, uri: &str) -> Vec<&McpRequirement> {
        let mut rules: Vec<&McpRequirement> = Vec::new();
        if uri.len() > MAX_SPELLED_URI {
            // Too long to spell out in bounded time: every resource rule applies.
            for r in self.resources.values() {
                push_unique(&mut rules, r);
            }
            for r in self.templates.iter().map(|(_, r)| r) {
                push_unique(&mut rules, r);
            }
            for r in self.prefixes.iter().map(|(_, r)| r) {
                push_unique(&mut rules, r);
            }
            if let Some(r) = &self.unlisted_resources {
                push_unique(&mut rules, r);
            }
            return rules;
        }
        let spellings = spellings(uri);
        for s in &spellings {
            if let Some(r) = self.resources.get(s) {
                push_unique(&mut rules, r);
            }
        }
        for (template, r) in &self.templates {
            if spellings.iter().any(|s| template.matches(s)) {
                push_unique(&mut rules, r);
            }
        }
        for (prefix, r) in &self.prefixes {
            let lower = prefix.to_ascii_lowercase();
            if spellings
                .iter()
                .any(|s| s.starts_with(prefix.as_str()) || s.starts_with(&lower))
            {
                push_unique(&mut rules, r);
            }
        }
        if rules.is_empty()
            && let Some(r) = &self.unlisted_resources
        {
            rules.push(r);
        }
        rules
    }

    /// Whether deciding on this operation needs its arguments.
    pub(crate) fn needs_arguments(&self, kind: McpOperationKind, name: &str) -> bool {
        self.rules(kind, name).has_function()
    }

    /// Why the operation is refused, or `None` when every rule that applies is met.
    pub(crate) fn refused(&self, op: &McpOperation<'_>) -> Option<Refusal> {
        self.rules(op.kind, op.name).refused(op)
    }

    /// As [`refused`](Self::refused), for an entry of `resources/templates/list` (`op.name`
    /// is the template): the rules of the same template, the prefix rules it starts with,
    /// else the unlisted rule.
    pub(crate) fn template_refused(&self, op: &McpOperation<'_>) -> Option<Refusal> {
        let mut rules: Vec<&McpRequirement> = Vec::new();
        for (template, r) in &self.templates {
            if template.as_str() == op.name {
                push_unique(&mut rules, r);
            }
        }
        for (prefix, r) in &self.prefixes {
            if op.name.starts_with(prefix.as_str()) {
                push_unique(&mut rules, r);
            }
        }
        if rules.is_empty()
            && let Some(r) = &self.unlisted_resources
        {
            rules.push(r);
        }
        Rules::Many(rules).refused(op)
    }
}

/// The rules that apply to one operation: at most one for a tool or prompt (no allocation),
/// any number for a resource.
pub(crate) enum Rules<'a> {
    One(Option<&'a McpRequirement>),
    Many(Vec<&'a McpRequirement>),
}

impl<'a> Rules<'a> {
    /// Whether one of the rules is a function (it may read the operation's arguments).
    pub(crate) fn has_function(&self) -> bool {
        self.iter().any(McpRequirement::is_function)
    }

    /// Why one of the rules is not met by the caller, if one is not (what
    /// [`Policy::refused`] answers, with the rules already found).
    pub(crate) fn refused(&self, op: &McpOperation<'_>) -> Option<Refusal> {
        let mut refusal = Refusal::default();
        let mut refused = false;
        for rule in self.iter() {
            if let Some(c) = rule.caller_refusal(op.owner) {
                refused = true;
                refusal.caller = refusal.caller.max(Some(c));
            }
            let Some(requirement) = rule.resolve(op) else {
                continue;
            };
            if !op.owner.satisfies(&requirement) {
                refused = true;
                for s in requirement.challenge_scopes() {
                    if !refusal.scopes.contains(s) {
                        refusal.scopes.push(s.clone());
                    }
                }
            }
        }
        refused.then_some(refusal)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a McpRequirement> + '_ {
        let (one, many) = match self {
            Self::One(one) => (*one, &[][..]),
            Self::Many(many) => (None, many.as_slice()),
        };
        one.into_iter().chain(many.iter().copied())
    }
}

/// Why operations are refused: the scopes to challenge for, and a refusal about the caller
/// that no scope lifts (the strongest of those met).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) scopes: Vec<String>,
    pub(crate) caller: Option<CallerRefusal>,
}

impl Refusal {
    /// Adds another operation's refusal.
    pub(crate) fn merge(&mut self, other: Self) {
        for s in other.scopes {
            if !self.scopes.contains(&s) {
                self.scopes.push(s);
            }
        }
        self.caller = self.caller.max(other.caller);
    }
}

fn push_unique<'a>(rules: &mut Vec<&'a McpRequirement>, rule: &'a McpRequirement) {
    if !rules.iter().any(|r| std::ptr::eq(*r, rule)) {
        rules.push(rule);
    }
}
