//! Issuer patterns: an entry's issuer with one `{name}` placeholder standing for a whole
//! path segment (Microsoft Entra's `https://login.microsoftonline.com/{tenantid}/v2.0`,
//! Keycloak's `https://kc.example.com/realms/{realm}`), matched against a token's `iss`.

use crate::config::AuthorizationServerEntry;
use crate::error::{ConfigError, ConfigErrorKind, printable};

/// The longest value a placeholder matches.
pub(crate) const MAX_VALUE_LEN: usize = 128;

/// A parsed issuer pattern: `prefix{name}suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IssuerPattern {
    prefix: String,
    name: String,
    suffix: String,
}

/// Whether `s` can stand for a placeholder: 1 to 128 URL-unreserved characters, not `.` or
/// `..` (which a URL parser would fold away).
pub(crate) fn is_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_VALUE_LEN
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl IssuerPattern {
    /// The pattern in `issuer`: `Ok(None)` when it has no `{`, an error naming `field` when
    /// its placeholder is not one whole path segment named with letters, digits or `_`.
    pub(crate) fn parse(issuer: &str, field: &str) -> Result<Option<Self>, ConfigError> {
        let bad = |why: &str| {
            Err(ConfigError::new(
                ConfigErrorKind::InvalidUrl,
                field,
                format!("`{}`: {why}", printable(issuer)),
            ))
        };
        let Some(open) = issuer.find('{') else {
            if issuer.contains('}') {
                return bad("a `}` without `{`");
            }
            return Ok(None);
        };
        let Some(close) = issuer[open..].find('}').map(|i| open + i) else {
            return bad("a `{` without `}`");
        };
        let (prefix, name, suffix) = (
            &issuer[..open],
            &issuer[open + 1..close],
            &issuer[close + 1..],
        );
        if suffix.contains(['{', '}']) {
            return bad("more than one placeholder");
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return bad("a placeholder is named with letters, digits and `_` (`{tenantid}`)");
        }
        // A whole path segment, after the host.
        let after_host = prefix
            .find("://")
            .map(|i| &prefix[i + 3..])
            .and_then(|rest| rest.find('/'));
        if !prefix.ends_with('/') || after_host.is_none() {
            return bad("the placeholder must be a whole path segment after the host");
        }
        if !(suffix.is_empty() || suffix.starts_with('/')) || issuer.contains(['?', '#']) {
            return bad("the placeholder must be a whole path segment, with no query or fragment");
        }
        Ok(Some(Self {
            prefix: prefix.to_owned(),
            name: name.to_owned(),
            suffix: suffix.to_owned(),
        }))
    }

    /// The value `iss` gives the placeholder, when `iss` fits the pattern.
    pub(crate) fn matches<'a>(&self, iss: &'a str) -> Option<&'a str> {
        let value = iss
            .strip_prefix(self.prefix.as_str())?
            .strip_suffix(self.suffix.as_str())?;
        is_value(value).then_some(value)
    }

    /// `template` (the issuer itself, or a `jwks_uri` using the same placeholder) with the
    /// placeholder replaced by `value`.
    pub(crate) fn fill(&self, template: &str, value: &str) -> String {
        template.replace(&format!("{{{}}}", self.name), value)
    }

    /// The placeholder as written (`{tenantid}`).
    pub(crate) fn placeholder(&self) -> String {
        format!("{{{}}}", self.name)
    }
}

/// The checks of a pattern entry (`check_entry` runs the common ones on it afterwards, with
/// a value in place of the placeholder).
pub(crate) fn check(
    entry: &AuthorizationServerEntry,
    allow_insecure: bool,
) -> Result<(), ConfigError> {
    let invalid =
        |field: &str, why: &str| Err(ConfigError::new(ConfigErrorKind::InvalidValue, field, why));
    let Some(pattern) = IssuerPattern::parse(&entry.issuer, "issuer")? else {
        return invalid(
            "tenants",
            "tenants, tenant_claim and max_tenants are for an issuer pattern (an issuer with a `{name}` placeholder)",
        );
    };
    match &entry.authorization_server_url {
        None => {
            return invalid(
                "authorization_server_url",
                "an issuer pattern needs the URL clients log in at (Entra: https://login.microsoftonline.com/organizations/v2.0)",
            );
        }
        Some(url) if url.contains(['{', '}']) => {
            return invalid("authorization_server_url", "must not hold a placeholder");
        }
        Some(_) => {}
    }
    if let Some(uri) = &entry.jwks_uri {
        // The placeholder, if any, is the issuer's and a whole path segment: a token's value
        // never picks the host keys are fetched from.
        let own = IssuerPattern::parse(uri, "jwks_uri")?;
        if own.is_some_and(|p| p.name != pattern.name) {
            return invalid(
                "jwks_uri",
                &format!(
                    "may hold only the issuer's placeholder {}",
                    pattern.placeholder()
                ),
            );
        }
    }
    if !entry.validation_options.verify_iss {
        return invalid(
            "validation_options.verify_iss",
            "must be true for an issuer pattern",
        );
    }
    if entry.introspection.is_some() {
        return invalid("introspection", "is not available for an issuer pattern");
    }
    if entry.initial_jwks.is_some() {
        return invalid("initial_jwks", "is not available for an issuer pattern");
    }
    if let Some(bad) = entry.tenants.iter().find(|t| !is_value(t)) {
        return invalid(
            "tenants",
            &format!(
                "`{}` is not a path segment value (1 to {MAX_VALUE_LEN} letters, digits, `-`, `.`, `_`, `~`)",
                printable(bad)
            ),
        );
    }
    if entry.tenant_claim.as_ref().is_some_and(|c| c.is_empty()) {
        return invalid("tenant_claim", "must not be empty");
    }
    if entry.max_tenants == 0 {
        return invalid("max_tenants", "must be greater than zero");
    }
    // The common checks, on a concrete issuer.
    let mut concrete = entry.clone();
    concrete.issuer = pattern.fill(&entry.issuer, "x");
    concrete.jwks_uri = entry.jwks_uri.as_ref().map(|u| pattern.fill(u, "x"));
    concrete.tenants.clear();
    concrete.tenant_claim = None;
    crate::config::check_entry(&concrete, allow_insecure)
}

/// The most tenants of one pattern entry kept (default of
/// [`AuthorizationServerEntry::max_tenants`]).
pub(crate) const DEFAULT_MAX_TENANTS: usize = 1000;

impl AuthorizationServerEntry {
    /// For an issuer pattern (an issuer with one `{name}` placeholder standing for a whole
    /// path segment, such as `https://login.microsoftonline.com/{tenantid}/v2.0` or
    /// `https://kc.example.com/realms/{realm}`): the only values accepted for the placeholder.
    /// Empty (the default): any value, so **any tenant of the provider**, including one an
    /// attacker creates; then restrict callers with
    /// [`allowed_clients`](crate::AccessTokenValidationOptions::allowed_clients) or
    /// [`required_claims`](crate::AccessTokenValidationOptions::required_claims).
    ///
    /// A `jwks_uri` without the placeholder is one key set for every concrete issuer (Entra's
    /// `https://login.microsoftonline.com/common/discovery/v2.0/keys`): no lookup per issuer,
    /// and a made-up one costs only its signature check. With the placeholder (a whole path
    /// segment: `https://login.microsoftonline.com/{tenantid}/discovery/v2.0/keys`), or
    /// without a `jwks_uri` (each concrete issuer's metadata names its keys), each concrete
    /// issuer is looked up on its first token and kept, and its keys verify only its own
    /// tokens; at most one new one is looked up per key-set refetch cooldown (a token of
    /// another new one meanwhile is answered 503 with `Retry-After`), so made-up tenants cost
    /// the provider no more than made-up key ids do. A pattern entry needs
    /// [`authorization_server_url`](Self::authorization_server_url) (where clients log in,
    /// for example `https://login.microsoftonline.com/organizations/v2.0`).
    ///
    /// ```
    /// use protected_resource::AuthorizationServerEntry;
    ///
    /// let entra = AuthorizationServerEntry::new("https://login.microsoftonline.com/{tenantid}/v2.0")
    ///     .authorization_server_url("https://login.microsoftonline.com/organizations/v2.0")
    ///     .tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47"])
    ///     .expected_audiences(["11111111-1111-1111-1111-111111111111"]);
    /// assert!(entra.is_pattern());
    /// ```
    #[must_use]
    pub fn tenants<S: Into<String>>(mut self, values: impl IntoIterator<Item = S>) -> Self {
        self.tenants = values.into_iter().map(Into::into).collect();
        self
    }

    /// For an issuer pattern: the claim that must equal the placeholder's value in the
    /// token's own `iss`. Default `tid` for Microsoft Entra patterns
    /// (`login.microsoftonline.com`, `sts.windows.net`), else none.
    #[must_use]
    pub fn tenant_claim(mut self, claim: impl Into<String>) -> Self {
        self.tenant_claim = Some(claim.into());
        self
    }

    /// For an issuer pattern: the most concrete issuers kept (default 1000; the least used
    /// are dropped first, and looked up again when they come back).
    #[must_use]
    pub fn max_tenants(mut self, max: usize) -> Self {
        self.max_tenants = max;
        self
    }

    /// Whether the issuer is a pattern (has a `{name}` placeholder).
    #[must_use]
    pub fn is_pattern(&self) -> bool {
        self.issuer.contains('{')
    }

    /// The values accepted for the pattern's placeholder (empty: any).
    #[must_use]
    pub fn get_tenants(&self) -> &[String] {
        &self.tenants
    }

    /// The claim checked against the placeholder's value, as configured or by default.
    #[must_use]
    pub fn get_tenant_claim(&self) -> Option<&str> {
        if let Some(claim) = &self.tenant_claim {
            return Some(claim);
        }
        let entra = [
            "https://login.microsoftonline.com/",
            "https://sts.windows.net/",
        ];
        (self.is_pattern() && entra.iter().any(|h| self.issuer.starts_with(h))).then_some("tid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> IssuerPattern {
        IssuerPattern::parse(s, "issuer").unwrap().unwrap()
    }

    #[test]
    fn placeholders_are_whole_path_segments() {
        let p = pattern("https://login.microsoftonline.com/{tenantid}/v2.0");
        assert_eq!(
            p.matches("https://login.microsoftonline.com/72f9-88bf/v2.0"),
            Some("72f9-88bf")
        );
        for no in [
            "https://login.microsoftonline.com//v2.0",
            "https://login.microsoftonline.com/a/b/v2.0",
            "https://login.microsoftonline.com/../v2.0",
            "https://login.microsoftonline.com/a%2Fb/v2.0",
            "https://login.microsoftonline.com/a?x/v2.0",
            "https://login.microsoftonline.com/a/v2.0/",
            "https://evil.example/a/v2.0",
            "http://login.microsoftonline.com/a/v2.0",
        ] {
            assert_eq!(p.matches(no), None, "{no}");
        }
        let long = format!("https://kc.example.com/realms/{}", "a".repeat(129));
        assert_eq!(
            pattern("https://kc.example.com/realms/{realm}").matches(&long),
            None
        );
        assert_eq!(
            p.fill(
                "https://login.microsoftonline.com/{tenantid}/discovery/v2.0/keys",
                "t1"
            ),
            "https://login.microsoftonline.com/t1/discovery/v2.0/keys"
        );
        assert_eq!(
            IssuerPattern::parse("https://a.example/x", "issuer"),
            Ok(None)
        );
        for bad in [
            "https://{tenant}.example.com/",
            "https://a.example/x{t}/",
            "https://a.example/{t}x",
            "https://a.example/{t}/{u}",
            "https://a.example/{}/",
            "https://a.example/{t-id}/",
            "https://a.example/{t",
            "https://a.example/t}",
            "https://a.example/{t}?q",
        ] {
            assert!(IssuerPattern::parse(bad, "issuer").is_err(), "{bad}");
        }
    }
}
