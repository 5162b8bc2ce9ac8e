//! [`RequiredClaim`]: a claim value an entry requires of every token (a group, a role, a
//! tenant), read at a path into the claims: `groups`, `realm_access.roles`, `tid`.

use serde_json::Value;

use crate::error::{ValidationError, ValidationErrorKind};

/// A value the token must carry at `path`: the claim equals `value`, or is an array holding
/// it. The path is the claim's name, or dot-separated names into nested objects
/// (`realm_access.roles`); a name that itself contains dots (`https://example.com/roles`) is
/// tried whole first.
///
/// ```
/// use protected_resource::{AccessTokenValidationOptions, RequiredClaim};
///
/// let mut options = AccessTokenValidationOptions::default();
/// options.required_claims = vec![
///     RequiredClaim::new("realm_access.roles", "mcp-user"),
///     RequiredClaim::new("tid", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
/// ];
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredClaim {
    path: String,
    value: String,
}

impl RequiredClaim {
    /// The claim at `path` must be (or hold) `value`.
    pub fn new(path: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            value: value.into(),
        }
    }

    /// The path.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    fn holds(&self, claims: &Value) -> bool {
        let found = claims
            .get(&self.path)
            .or_else(|| self.path.split('.').try_fold(claims, |v, name| v.get(name)));
        self.is_held_by(found)
    }

    /// [`holds`](Self::holds) for a claims object.
    pub(crate) fn holds_in(&self, claims: &serde_json::Map<String, Value>) -> bool {
        let found = claims.get(&self.path).or_else(|| {
            let mut names = self.path.split('.');
            let first = claims.get(names.next()?)?;
            names.try_fold(first, |v, name| v.get(name))
        });
        self.is_held_by(found)
    }

    fn is_held_by(&self, found: Option<&Value>) -> bool {
        match found {
            Some(Value::String(s)) => *s == self.value,
            Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(&self.value)),
            _ => false,
        }
    }
}

/// Every requirement holds for the claims JSON `raw` (already checked by the token parser);
/// else a refusal that names no rule (the detail is for the log).
pub(crate) fn check(required: &[RequiredClaim], raw: &str) -> Result<(), ValidationError> {
    if required.is_empty() {
        return Ok(());
    }
    let refused = || {
        ValidationError::new(
            ValidationErrorKind::ClaimsNotAllowed,
            "a required claim value is missing",
        )
    };
    let claims: Value = serde_json::from_str(raw).map_err(|_| refused())?;
    if required.iter().all(|r| r.holds(&claims)) {
        Ok(())
    } else {
        Err(refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_values_and_arrays() {
        let claims = json!({
            "tid": "t1",
            "groups": ["a", "b"],
            "realm_access": {"roles": ["mcp-user"]},
            "https://example.com/roles": ["admin"],
            "n": 5,
        });
        let holds = |p: &str, v: &str| RequiredClaim::new(p, v).holds(&claims);
        assert!(holds("tid", "t1") && !holds("tid", "t2"));
        assert!(holds("groups", "b") && !holds("groups", "c"));
        assert!(holds("realm_access.roles", "mcp-user"));
        assert!(holds("https://example.com/roles", "admin"));
        assert!(!holds("n", "5"), "strings only");
        assert!(!holds("realm_access", "mcp-user"));
        assert!(!holds("missing.path", "x"));
    }
}
