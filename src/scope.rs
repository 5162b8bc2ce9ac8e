//! Scopes: what an operation requires ([`ScopeRequirement`]), which granted scopes imply
//! others (scope hierarchies), and the 403 step-up challenge ([`InsufficientScope`]). Every
//! scope check of the crate goes through here.

use std::collections::{HashMap, HashSet};
use std::fmt;

use axum::body::Body;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Response, StatusCode};

use crate::config::is_scope_token;
use crate::error::{ConfigError, ConfigErrorKind, printable};

/// The scopes an operation requires: all of a set, any of a set, or alternatives of sets.
///
/// ```
/// use protected_resource::ScopeRequirement;
///
/// // Needs both.
/// let write = ScopeRequirement::all(["files:read", "files:write"])?;
/// // Needs either; the first is the one a 403 challenge asks for.
/// let read = ScopeRequirement::any(["files:read", "files:admin"])?;
/// // Needs `files:admin`, or both `files:read` and `files:write`.
/// let admin_or_rw = ScopeRequirement::all(["files:admin"])?.or(write);
/// assert_eq!(admin_or_rw.challenge_scopes(), ["files:admin"]);
/// # Ok::<(), protected_resource::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequirement {
    /// Satisfied when every scope of at least one alternative is granted.
    alternatives: Vec<Vec<String>>,
}

fn checked<S: Into<String>>(
    scopes: impl IntoIterator<Item = S>,
) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        let s = s.into();
        if !is_scope_token(&s) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidScope,
                "scope requirement",
                format!("`{}` is not an RFC 6750 scope token", printable(&s)),
            ));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidScope,
            "scope requirement",
            "a requirement needs at least one scope",
        ));
    }
    Ok(out)
}

impl ScopeRequirement {
    /// Every one of `scopes` is required. Errors on an empty list or a string that is not an
    /// RFC 6750 scope token.
    pub fn all<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Result<Self, ConfigError> {
        Ok(Self {
            alternatives: vec![checked(scopes)?],
        })
    }

    /// Any one of `scopes` suffices. The first is the one a 403 challenge asks for.
    pub fn any<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Result<Self, ConfigError> {
        Ok(Self {
            alternatives: checked(scopes)?.into_iter().map(|s| vec![s]).collect(),
        })
    }

    /// This requirement, or else `other`.
    #[must_use]
    pub fn or(mut self, other: Self) -> Self {
        for alt in other.alternatives {
            if !self.alternatives.contains(&alt) {
                self.alternatives.push(alt);
            }
        }
        self
    }

    /// The scopes a 403 challenge names: the first alternative.
    pub fn challenge_scopes(&self) -> &[String] {
        self.alternatives.first().map_or(&[], Vec::as_slice)
    }

    /// Whether `granted` (a token's scopes) satisfies this requirement under `hierarchy`.
    pub(crate) fn satisfied_by(&self, granted: &[String], hierarchy: &ScopeHierarchy) -> bool {
        self.alternatives
            .iter()
            .any(|alt| alt.iter().all(|s| hierarchy.grants(granted, s)))
    }
}

/// Rules "granted scope X implies Y", closed transitively (`admin` → `write` → `read` makes
/// `admin` imply `read`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ScopeHierarchy {
    implied: HashMap<String, HashSet<String>>,
}

impl ScopeHierarchy {
    pub(crate) fn new(rules: &[(String, Vec<String>)]) -> Result<Self, ConfigError> {
        let mut direct: HashMap<&str, Vec<&str>> = HashMap::new();
        for (broad, narrower) in rules {
            for s in std::iter::once(broad).chain(narrower) {
                if !is_scope_token(s) {
                    return Err(ConfigError::new(
                        ConfigErrorKind::InvalidScope,
                        "scope_implies",
                        format!("`{}` is not an RFC 6750 scope token", printable(s)),
                    ));
                }
            }
            direct
                .entry(broad)
                .or_default()
                .extend(narrower.iter().map(String::as_str));
        }
        let mut implied = HashMap::new();
        for &start in direct.keys() {
            let mut seen: HashSet<String> = HashSet::new();
            let mut stack = vec![start];
            while let Some(s) = stack.pop() {
                for &next in direct.get(s).into_iter().flatten() {
                    if next != start && seen.insert(next.to_owned()) {
                        stack.push(next);
                    }
                }
            }
            implied.insert(start.to_owned(), seen);
        }
        Ok(Self { implied })
    }

    /// Whether `needed` is granted directly or implied by a granted scope.
    pub(crate) fn grants(&self, granted: &[String], needed: &str) -> bool {
        granted
            .iter()
            .any(|g| g == needed || self.implied.get(g).is_some_and(|set| set.contains(needed)))
    }
}

/// Scope settings every [`ResourceOwner`](crate::ResourceOwner) of one configuration shares.
#[derive(Debug, Default)]
pub(crate) struct ScopeContext {
    pub(crate) resource_metadata: Option<String>,
    pub(crate) hierarchy: ScopeHierarchy,
    /// Granted scopes named here are kept in step-up challenges (empty: none are).
    pub(crate) keep_in_step_up: Vec<String>,
    /// The `DPoP` challenge, for refusals made after the front door (`None`: DPoP off).
    pub(crate) dpop: Option<crate::challenge::DpopChallenge>,
}

/// The token lacks scopes an operation requires: answered 403 with the step-up challenge.
///
/// Every scope check of the crate answers with it:
/// [`ResourceOwner::require`](crate::ResourceOwner::require),
/// [`RequireScopesLayer`](crate::RequireScopesLayer) and
/// [`McpScopesLayer`](crate::McpScopesLayer). As the MCP authorization specification
/// asks ("Runtime Insufficient Scope Errors", RFC 6750 §3.1), the answer is
///
/// ```text
/// HTTP/1.1 403 Forbidden
/// WWW-Authenticate: Bearer error="insufficient_scope", scope="mcp:admin mcp:tools", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
/// ```
///
/// where `scope` lists every scope the operation needs (not only the ones the token lacks,
/// and not the whole catalogue), so that a client's step-up asks for all of them at once,
/// followed by the caller's granted scopes that the resource advertises in
/// `scopes_supported` (here `mcp:tools`), so that re-authorizing does not lose them (MCP
/// 2025-11-25 "recommended approach"; off with
/// [`step_up_keeps_granted_scopes(false)`](crate::ResourceServerAuthBuilder::step_up_keeps_granted_scopes)).
///
/// Returned by [`ResourceOwner::require`](crate::ResourceOwner::require) and
/// [`ResourceOwner::require_scopes`](crate::ResourceOwner::require_scopes); it is an axum
/// response, so a handler can use `?`:
///
/// ```
/// use protected_resource::{InsufficientScope, ResourceOwner};
///
/// async fn delete_file(owner: ResourceOwner) -> Result<&'static str, InsufficientScope> {
///     owner.require_scopes(["files:write"])?;
///     Ok("deleted")
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientScope {
    required: Vec<String>,
    /// `required`, then the granted scopes kept so the client does not lose them.
    challenge: Vec<String>,
    resource_metadata: Option<String>,
    /// The request proved a DPoP key: the challenge uses the `DPoP` scheme (RFC 9449 §7.1).
    dpop: bool,
}

impl InsufficientScope {
    /// The challenge for `required` that also names the `granted` scopes to keep (MCP
    /// 2025-11-25, "Scope Challenge Handling", recommended approach: a client re-authorizing
    /// for the challenge's scopes would otherwise lose them).
    pub(crate) fn keeping(
        required: Vec<String>,
        granted: &[&String],
        resource_metadata: Option<String>,
    ) -> Self {
        let mut challenge = required.clone();
        for g in granted {
            if !challenge.contains(g) {
                challenge.push((*g).clone());
            }
        }
        Self {
            required,
            challenge,
            resource_metadata,
            dpop: false,
        }
    }

    /// The same refusal for a request that proved a DPoP key (`DPoP` scheme).
    pub(crate) fn for_dpop(mut self, dpop: bool) -> Self {
        self.dpop = dpop;
        self
    }

    /// The scopes the operation needs.
    #[must_use]
    pub fn required_scopes(&self) -> &[String] {
        &self.required
    }

    /// The scopes sent as `scope="…"`: the required ones, then the caller's granted scopes
    /// that the resource advertises (unless
    /// [`step_up_keeps_granted_scopes`](crate::ResourceServerAuthBuilder::step_up_keeps_granted_scopes)
    /// is off).
    #[must_use]
    pub fn challenge_scopes(&self) -> &[String] {
        &self.challenge
    }

    /// The `WWW-Authenticate` value:
    /// `Bearer error="insufficient_scope", scope="…", resource_metadata="…"` (`DPoP …` when
    /// the request was sender-constrained with DPoP, RFC 9449 §7.1).
    #[must_use]
    pub fn www_authenticate(&self) -> HeaderValue {
        let scope = self.challenge.join(" ");
        let mut params = vec![("error", "insufficient_scope"), ("scope", scope.as_str())];
        if let Some(m) = &self.resource_metadata {
            params.push(("resource_metadata", m));
        }
        crate::challenge::challenge(if self.dpop { "DPoP" } else { "Bearer" }, &params)
    }
}

impl fmt::Display for InsufficientScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the access token lacks the scopes this operation requires: {}",
            self.required.join(" ")
        )
    }
}

impl std::error::Error for InsufficientScope {}

impl InsufficientScope {
    /// The 403 answer with the step-up challenge (axum's `IntoResponse` calls this).
    pub(crate) fn response(&self) -> Response<Body> {
        tracing::debug!(required = %self.required.join(" "), "insufficient scope");
        let mut res = crate::challenge::text(StatusCode::FORBIDDEN, format!("Forbidden: {self}"));
        res.headers_mut()
            .insert(WWW_AUTHENTICATE, self.www_authenticate());
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn requirements_all_any_or() {
        let h = ScopeHierarchy::default();
        let all = ScopeRequirement::all(["a", "b"]).unwrap();
        assert!(all.satisfied_by(&scopes("b a c"), &h));
        assert!(!all.satisfied_by(&scopes("a"), &h));
        let any = ScopeRequirement::any(["a", "b"]).unwrap();
        assert!(any.satisfied_by(&scopes("b"), &h));
        assert!(!any.satisfied_by(&scopes("c"), &h));
        assert_eq!(any.challenge_scopes(), ["a"]);
        let either = ScopeRequirement::all(["x"]).unwrap().or(all);
        assert!(either.satisfied_by(&scopes("a b"), &h));
        assert!(either.satisfied_by(&scopes("x"), &h));
        assert!(!either.satisfied_by(&scopes("a"), &h));
        assert!(ScopeRequirement::all(Vec::<String>::new()).is_err());
        assert!(ScopeRequirement::all(["has space"]).is_err());
        assert!(ScopeRequirement::any(["quote\""]).is_err());
    }

    #[test]
    fn hierarchies_are_transitive_and_directed() {
        let h = ScopeHierarchy::new(&[
            ("admin".into(), scopes("write")),
            ("write".into(), scopes("read")),
            ("read".into(), scopes("admin-view")),
            ("loop".into(), scopes("loop back")),
            ("back".into(), scopes("loop")),
        ])
        .unwrap();
        assert!(h.grants(&scopes("admin"), "read"));
        assert!(h.grants(&scopes("admin"), "admin-view"));
        assert!(h.grants(&scopes("write"), "read"));
        assert!(!h.grants(&scopes("read"), "write"));
        assert!(!h.grants(&scopes("write"), "admin"));
        assert!(h.grants(&scopes("back"), "loop"));
        assert!(h.grants(&scopes("loop"), "back"));
        assert!(!h.grants(&[], "read"));
        assert!(ScopeHierarchy::new(&[("a b".into(), scopes("c"))]).is_err());
    }

    #[test]
    fn the_challenge_has_the_mcp_shape() {
        let granted = scopes("mcp:tools mcp:admin");
        let e = InsufficientScope::keeping(
            scopes("mcp:admin mcp:write"),
            &granted.iter().collect::<Vec<_>>(),
            Some("https://r.example/.well-known/oauth-protected-resource/mcp".into()),
        );
        assert_eq!(
            e.www_authenticate(),
            r#"Bearer error="insufficient_scope", scope="mcp:admin mcp:write mcp:tools", resource_metadata="https://r.example/.well-known/oauth-protected-resource/mcp""#
        );
        let res = e.response();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
}
