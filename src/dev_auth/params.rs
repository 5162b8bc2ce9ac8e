//! Request parameters of the development authorization server: `application/x-www-form-urlencoded`
//! pairs (query strings and form bodies) where a repeated name makes the request invalid
//! (RFC 6749 §3.1, §3.2), scope lists, and the URNs of RFC 8693.

use std::collections::HashMap;

/// The token-exchange grant type (RFC 8693).
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of access tokens (RFC 8693 §3).
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The token type of JWTs (RFC 8693 §3).
pub(crate) const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Most parameters any endpoint reads; a request with more is refused.
const MAX_PARAMS: usize = 64;

/// The parameters of a query string or form body, without those sent empty (RFC 6749 §3.1:
/// treated as omitted); `None` when a name repeats or there are too many.
pub(crate) fn unique(input: &[u8]) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (count, (name, value)) in form_urlencoded::parse(input).enumerate() {
        if count >= MAX_PARAMS {
            return None;
        }
        if out.insert(name.into_owned(), value.into_owned()).is_some() {
            return None;
        }
    }
    // "Parameters sent without a value MUST be treated as if they were omitted."
    out.retain(|_, v| !v.is_empty());
    Some(out)
}

/// Most scope tokens one `scope` value may hold.
const MAX_SCOPES: usize = 64;

/// A `scope` value split into its tokens; `None` when a token breaks the RFC 6749 §3.3
/// grammar (`%x21 / %x23-5B / %x5D-7E`) or there are more than 64. Repeated tokens are kept
/// once.
pub(crate) fn scopes(value: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (count, token) in value.split(' ').filter(|t| !t.is_empty()).enumerate() {
        if count >= MAX_SCOPES {
            return None;
        }
        let valid = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return None;
        }
        if !out.iter().any(|s| s == token) {
            out.push(token.to_owned());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_are_refused_and_empty_values_omitted() {
        let p = unique(b"a=1&b=&c=%20x").unwrap();
        assert_eq!(p.get("a").map(String::as_str), Some("1"));
        assert!(!p.contains_key("b"));
        assert_eq!(p.get("c").map(String::as_str), Some(" x"));
        assert!(unique(b"a=1&a=1").is_none());
        assert!(unique(b"a=&a=1").is_none());
        let many: String = (0..65).map(|i| format!("p{i}=1&")).collect();
        assert!(unique(many.as_bytes()).is_none());
    }

    #[test]
    fn scope_grammar() {
        assert_eq!(
            scopes("mcp:tools  mcp:admin mcp:tools").unwrap(),
            ["mcp:tools", "mcp:admin"]
        );
        assert!(scopes("a\"b").is_none());
        assert!(scopes("a\\b").is_none());
        assert!(scopes("é").is_none());
        assert!(scopes("").unwrap().is_empty());
        let many: String = (0..65).map(|i| format!("s{i} ")).collect();
        assert!(scopes(&many).is_none());
        let repeated = "a ".repeat(100);
        assert!(
            scopes(&repeated).is_none(),
            "counted before removing repeats"
        );
    }
}
