//! The checks `build()` runs on plain settings: URLs (canonical, issuer, key sets), entries,
//! scope tokens. Each error names the field.

use crate::config::AuthorizationServerEntry;
use crate::error::{ConfigError, ConfigErrorKind, printable};

pub(crate) fn parse_absolute(value: &str, field: &str) -> Result<reqwest::Url, ConfigError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            field,
            format!("`{}` is empty or contains whitespace", printable(value)),
        ));
    }
    reqwest::Url::parse(value).map_err(|e| {
        ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            field,
            format!("`{}` is not an absolute URL: {e}", printable(value)),
        )
    })
}

/// Whether the URL's host is `localhost` or a loopback address (`127.0.0.0/8`, `[::1]`).
pub(crate) fn is_loopback_host(url: &reqwest::Url) -> bool {
    // `host_str` is the parsed, normalised host (`127.1` is `127.0.0.1`, IPv6 in brackets).
    let Some(host) = url.host_str() else {
        return false;
    };
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    // `*.localhost` resolves to this machine (RFC 6761 §6.3); `0.0.0.0` and `[::]` reach
    // it too, as does an IPv4-mapped loopback address.
    name == "localhost"
        || name.ends_with(".localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || matches!(ip, std::net::IpAddr::V6(v6)
                        if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_unspecified()))
            })
}

/// Checks the canonical URL rules (SPEC §6) and returns it parsed.
pub(crate) fn check_canonical_url(value: &str) -> Result<reqwest::Url, ConfigError> {
    let bad =
        |msg: String| ConfigError::new(ConfigErrorKind::InvalidCanonicalUrl, "canonical_url", msg);
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!(
            "`{}` is empty or contains whitespace",
            printable(value)
        )));
    }
    // The URL is sent byte for byte in `resource` and in the challenges' quoted
    // `resource_metadata`, which carry ASCII without `"` or `\` only (RFC 6750 §3): anything
    // else would be altered there and point clients elsewhere. Internationalised hosts are
    // written in their `xn--` form.
    if !value.is_ascii() || value.contains(['"', '\\']) {
        return Err(bad(format!(
            "`{}` must be ASCII without `\"` or `\\` (write an internationalised host as xn--…)",
            printable(value)
        )));
    }
    let url = reqwest::Url::parse(value).map_err(|e| {
        bad(format!(
            "`{}` is not an absolute URL: {e}",
            printable(value)
        ))
    })?;
    if value.contains('#') {
        return Err(bad(format!(
            "`{}` must not have a fragment",
            printable(value)
        )));
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad(format!(
            "`{}` must name a host and carry no user information",
            printable(value)
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(bad(format!(
                "`{}` uses http, which is allowed only for localhost, 127.0.0.1 and [::1]; use https",
                printable(value)
            )));
        }
        other => {
            return Err(bad(format!(
                "`{}` has scheme `{other}`; use https",
                printable(value)
            )));
        }
    }
    Ok(url)
}

pub(crate) fn check_entry(
    entry: &AuthorizationServerEntry,
    allow_insecure: bool,
) -> Result<(), ConfigError> {
    // The advertised URL (the issuer unless set) must be a URL clients can use.
    parse_absolute(
        entry.get_authorization_server_url(),
        "authorization_server_url",
    )?;
    if entry.issuer.is_empty() {
        return Err(ConfigError::new(
            ConfigErrorKind::Missing,
            "issuer",
            "the issuer must not be empty",
        ));
    }
    if entry.is_pattern() || !entry.tenants.is_empty() || entry.tenant_claim.is_some() {
        // Its URLs are checked with a value in place of the placeholder.
        return crate::config::pattern::check(entry, allow_insecure);
    }
    if let Some(i) = &entry.introspection {
        check_introspection(i, entry)?;
    }
    match &entry.jwks_uri {
        // Introspection only: no keys are fetched.
        None if entry.introspection.is_some() => {}
        Some(uri) => {
            let jwks = parse_absolute(uri, "jwks_uri")?;
            require_tls(&jwks, uri, "jwks_uri", allow_insecure)?;
        }
        None => {
            // Discovery: the metadata URLs are built from the issuer.
            let issuer = parse_absolute(&entry.issuer, "issuer")?;
            if issuer.query().is_some() || entry.issuer.contains('#') {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidUrl,
                    "issuer",
                    format!(
                        "`{}` has a query or fragment, so its metadata can not be discovered (RFC 8414 §2); give jwks_uri",
                        printable(&entry.issuer)
                    ),
                ));
            }
            require_tls(&issuer, &entry.issuer, "issuer", allow_insecure)?;
        }
    }
    if entry.algorithms.is_empty() {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidAlgorithm,
            "algorithms",
            "at least one algorithm must be allowed",
        ));
    }
    if let Some(alg) = entry.algorithms.iter().find(|a| !a.is_supported()) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidAlgorithm,
            "algorithms",
            format!("{alg} needs the `aws_lc_rs` feature of protected-resource"),
        ));
    }
    super::check_dpop(entry)?;
    if let Some(prefix) = &entry.scope_prefix
        && !is_scope_token(prefix)
    {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidScope,
            "scope_prefix",
            format!(
                "`{}` is not made of scope-token characters (printable ASCII without space, `\"` or `\\`)",
                printable(prefix)
            ),
        ));
    }
    if entry.expected_audiences.iter().any(|a| a.is_empty()) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidAudience,
            "expected_audiences",
            "an expected audience must not be empty",
        ));
    }
    Ok(())
}

/// The settings of an entry's introspection (the private key is checked when the client
/// authentication is built).
///
/// The token and the client's credentials go to the endpoint: it is `https` (`http` only on a
/// loopback host) whatever `dangerous_allow_insecure_jwks_uri` says.
fn check_introspection(
    i: &crate::config::Introspection,
    entry: &AuthorizationServerEntry,
) -> Result<(), ConfigError> {
    use crate::config::IntrospectionAuth;
    let bad = |field: &str, message: &str| {
        Err(ConfigError::new(
            ConfigErrorKind::InvalidValue,
            format!("introspection.{field}"),
            message,
        ))
    };
    if i.client_id.trim().is_empty() {
        return bad("client_id", "the client id must not be empty");
    }
    if let IntrospectionAuth::Basic(secret) | IntrospectionAuth::Post(secret) = &i.auth
        && secret.is_empty()
    {
        return bad("client_secret", "the client secret must not be empty");
    }
    if i.timeout.is_zero() || i.timeout > crate::config::MAX_DURATION {
        return bad("timeout", "must be greater than zero and at most 365 days");
    }
    if i.cache_ttl > crate::config::MAX_DURATION {
        return bad("cache_ttl", "must be at most 365 days");
    }
    if i.max_concurrent == 0 {
        return bad("max_concurrent", "must be greater than zero");
    }
    match &i.endpoint {
        Some(url) => {
            let parsed = parse_absolute(url, "introspection.endpoint")?;
            if !parsed.username().is_empty() || parsed.password().is_some() || url.contains('#') {
                return bad("endpoint", "must carry no user information or fragment");
            }
            require_tls(&parsed, url, "introspection.endpoint", false)
        }
        None => {
            let issuer = parse_absolute(&entry.issuer, "issuer")?;
            if issuer.query().is_some() || entry.issuer.contains('#') {
                return bad(
                    "endpoint",
                    "the issuer has a query or fragment, so its metadata can not be discovered: give the endpoint",
                );
            }
            require_tls(&issuer, &entry.issuer, "issuer", false)
        }
    }
}

/// Key material must come over TLS, except from loopback hosts or when explicitly allowed.
pub(crate) fn require_tls(
    url: &reqwest::Url,
    raw: &str,
    field: &str,
    allow_insecure: bool,
) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure || is_loopback_host(url) => Ok(()),
        other => Err(ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            field,
            format!(
                "`{}` uses `{other}`; use https (http only on loopback hosts)",
                printable(raw)
            ),
        )),
    }
}

/// Whether `s` is an RFC 6750 `scope-token`: 1*( %x21 / %x23-5B / %x5D-7E ).
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Validates scope tokens, drops duplicates (first-seen order kept) and refuses
/// `offline_access`, which a resource must not advertise.
pub(crate) fn clean_scopes(scopes: Vec<String>, field: &str) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for s in scopes {
        if !is_scope_token(&s) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidScope,
                field,
                format!(
                    "`{}` is not an RFC 6750 scope token (printable ASCII without space, `\"` or `\\`)",
                    printable(&s)
                ),
            ));
        }
        if s == "offline_access" {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidScope,
                field,
                "`offline_access` must not be advertised by a protected resource (refresh tokens are not a resource requirement)",
            ));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}
