//! Access-token validation (RFC 8725, RFC 9068, MCP): parse, route by issuer, verify the
//! signature with that issuer's keys, then check the claims.
//!
//! Order of work for one token:
//! 1. size cap, three base64url parts, JSON header and claims (duplicate claim names refused);
//! 2. header: `alg` must be an asymmetric algorithm we know, `crit` is refused; `jku`, `x5u`,
//!    `jwk`, `x5c` are ignored: keys come only from the configured JWKS;
//! 3. the unverified `iss` picks the issuer (exact match); an unknown issuer is refused, no
//!    other issuer is tried;
//! 4. `alg` must be allowed for that issuer; the key is found by `kid` in that issuer's key
//!    sets only, and must fit `alg` (and equal the JWK's `alg` when it has one);
//! 5. the signature is verified;
//! 6. `typ` (optional), `exp`, `nbf`, `iat`, `aud`, `sub` are checked per entry.
//!
//! Nothing is cached per token: every request is validated.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::config::{AccessTokenValidationOptions, AuthorizationServerEntry};
use crate::error::{ValidationError, ValidationErrorKind as K};
use crate::keys::{KeySet, KeyStore, Lookup};
use crate::owner::ResourceOwner;
use crate::scope::ScopeContext;

/// The JOSE header members we read; all others (`jku`, `x5u`, `jwk`, `x5c`, …) are ignored.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// Whether `crit` is present at all (any value, `null` and `[]` included).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` for a member that is present, whatever its value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// A claims object; a repeated member name is an error (no "last one wins").
struct Claims(Map<String, Value>);

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Claims;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Claims, A::Error> {
                let mut m = Map::new();
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    if m.contains_key(&k) {
                        return Err(serde::de::Error::custom("duplicate claim"));
                    }
                    m.insert(k, v);
                }
                Ok(Claims(m))
            }
        }
        d.deserialize_map(V)
    }
}

struct EntryRules {
    algorithms: Vec<Algorithm>,
    audiences: Vec<String>,
    options: AccessTokenValidationOptions,
}

/// Everything trusted about one issuer: its key sources and the entries that name it.
struct IssuerGroup {
    issuer: String,
    sources: Vec<usize>,
    entries: Vec<EntryRules>,
}

impl IssuerGroup {
    fn from_entries<'a>(
        issuer: &str,
        entries: impl Iterator<Item = &'a AuthorizationServerEntry>,
        canonical: &str,
        keys: &KeyStore,
    ) -> Self {
        let mut group = Self {
            issuer: issuer.to_owned(),
            sources: Vec::new(),
            entries: Vec::new(),
        };
        for e in entries {
            if let Some(id) = keys.source_of(e)
                && !group.sources.contains(&id)
            {
                group.sources.push(id);
            }
            let audiences = if e.expected_audiences.is_empty() {
                vec![canonical.to_owned()]
            } else {
                e.expected_audiences.clone()
            };
            group.entries.push(EntryRules {
                algorithms: e.algorithms.clone(),
                audiences,
                options: e.validation_options.clone(),
            });
        }
        group
    }

    fn allows(&self, alg: Algorithm) -> bool {
        self.entries.iter().any(|e| e.algorithms.contains(&alg))
    }
}

/// The shared validation state, built once.
pub(crate) struct Validator {
    issuers: HashMap<String, IssuerGroup>,
    /// Entries with `verify_iss = false`: used only for tokens whose `iss` matches no issuer.
    fallback: Option<IssuerGroup>,
    keys: KeyStore,
    max_token_bytes: usize,
    /// Shared by every owner this validator makes.
    scopes: Arc<ScopeContext>,
}

impl Validator {
    pub(crate) fn new(
        entries: &[AuthorizationServerEntry],
        canonical: &str,
        keys: KeyStore,
        max_token_bytes: usize,
        scopes: Arc<ScopeContext>,
    ) -> Self {
        let mut issuers = HashMap::new();
        for e in entries {
            issuers.entry(e.issuer.clone()).or_insert_with(|| {
                IssuerGroup::from_entries(
                    &e.issuer,
                    entries.iter().filter(|x| x.issuer == e.issuer),
                    canonical,
                    &keys,
                )
            });
        }
        let fallback = entries
            .iter()
            .find(|e| !e.validation_options.verify_iss)
            .map(|first| {
                IssuerGroup::from_entries(
                    &first.issuer,
                    entries
                        .iter()
                        .filter(|x| x.issuer == first.issuer && !x.validation_options.verify_iss),
                    canonical,
                    &keys,
                )
            });
        Self {
            issuers,
            fallback,
            keys,
            max_token_bytes,
            scopes,
        }
    }

    pub(crate) fn keys(&self) -> &KeyStore {
        &self.keys
    }

    pub(crate) fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    pub(crate) async fn validate(&self, token: &str) -> Result<ResourceOwner, ValidationError> {
        if token.len() > self.max_token_bytes {
            return Err(ValidationError::of(K::TooLarge));
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(c64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ValidationError::new(K::Malformed, "not three parts"));
        };
        let header: Header = decode_json(h64).ok_or(ValidationError::new(
            K::Malformed,
            "header is not a JSON object",
        ))?;
        if header.crit {
            return Err(ValidationError::of(K::CriticalHeader));
        }
        let alg = Algorithm::from_header(&header.alg)
            .filter(|a| a.is_supported())
            .ok_or(ValidationError::new(
                K::AlgorithmNotAllowed,
                "unsupported alg",
            ))?;
        let Claims(claims) = decode_json(c64).ok_or(ValidationError::new(
            K::Malformed,
            "claims are not a JSON object",
        ))?;

        let iss = claims.get("iss").and_then(Value::as_str);
        let (group, fallback) = match iss.and_then(|i| self.issuers.get(i)) {
            Some(g) => (g, false),
            None => (
                self.fallback
                    .as_ref()
                    .ok_or(ValidationError::of(K::UnknownIssuer))?,
                true,
            ),
        };
        if !group.allows(alg) {
            return Err(ValidationError::new(
                K::AlgorithmNotAllowed,
                "alg not allowed for issuer",
            ));
        }

        let message = &token.as_bytes()[..h64.len() + 1 + c64.len()];
        self.verify_signature(group, header.kid.as_deref(), alg, message, s64)
            .await?;

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        let mut first_error = None;
        for rules in &group.entries {
            match check_claims(rules, alg, header.typ.as_deref(), &claims, now) {
                Ok(()) => {
                    // With `verify_iss = false` the owner still names the token's own issuer
                    // (when it gives one), so that users of different real issuers stay apart.
                    let issuer = match claims.get("iss") {
                        Some(Value::String(i)) if fallback => i.clone(),
                        _ => group.issuer.clone(),
                    };
                    return ResourceOwner::from_claims(issuer, claims, self.scopes.clone());
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(ValidationError::of(K::AlgorithmNotAllowed)))
    }

    /// Verifies the signature with the issuer's keys, over all its key sources: a source
    /// that can not answer does not stop the search in the others, and the answer is 503
    /// only when the key was found nowhere and some source could not answer.
    async fn verify_signature(
        &self,
        group: &IssuerGroup,
        kid: Option<&str>,
        alg: Algorithm,
        message: &[u8],
        signature: &str,
    ) -> Result<(), ValidationError> {
        let mut unavailable = None;
        let mut held = Vec::with_capacity(group.sources.len());
        for &id in &group.sources {
            match self.keys.current(id).await {
                Ok(set) => held.push((id, set)),
                Err(u) => {
                    tracing::debug!(issuer = %group.issuer, error = %u, "no keys for token");
                    unavailable.get_or_insert(u.retry_after);
                }
            }
        }
        let sets: Vec<&KeySet> = held.iter().map(|(_, s)| &**s).collect();
        let mut lookup = KeySet::find_in(&sets, kid, alg);
        // Not in any held set: each source may refetch once per cooldown.
        let mut refetched = Vec::new();
        if matches!(lookup, Lookup::NotFound) {
            for (id, set) in &held {
                match self.keys.refetch_for_unknown(*id, set, kid).await {
                    Ok(Some(newer)) => refetched.push((*id, newer, true)),
                    Ok(None) => refetched.push((*id, set.clone(), false)),
                    Err(u) => {
                        unavailable.get_or_insert(u.retry_after);
                    }
                }
            }
            let newest: Vec<&KeySet> = refetched.iter().map(|(_, s, _)| &**s).collect();
            lookup = KeySet::find_in(&newest, kid, alg);
            if matches!(lookup, Lookup::NotFound) {
                for (id, set, was_refetched) in &refetched {
                    self.keys.unknown_kid(*id, kid, set, *was_refetched).await;
                }
            }
        }
        match lookup {
            Lookup::Found(key) if key.key.verify(alg, message, signature) => Ok(()),
            Lookup::Found(_) => Err(ValidationError::of(K::InvalidSignature)),
            // The key may sit in a source that could not answer: the token may be fine.
            _ if unavailable.is_some() => Err(ValidationError::keys_unavailable(
                unavailable.unwrap_or_default(),
            )),
            Lookup::NotFound => Err(ValidationError::of(K::UnknownKey)),
            Lookup::WrongAlgorithm => Err(ValidationError::of(K::KeyAlgorithmMismatch)),
            Lookup::Ambiguous => Err(ValidationError::of(K::AmbiguousKey)),
        }
    }
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Option<T> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A NumericDate claim: absent, a number, or (an error) anything else.
fn numeric(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<f64>, ValidationError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or(ValidationError::new(K::InvalidClaim, name)),
        Some(_) => Err(ValidationError::new(K::InvalidClaim, name)),
    }
}

/// Compares URLs with scheme and host case-insensitively (MCP: servers SHOULD accept
/// uppercase scheme and host), everything else exactly.
fn same_resource(expected: &str, got: &str) -> bool {
    if expected == got {
        return true;
    }
    let split = |s: &str| -> Option<(usize, usize)> {
        let scheme_end = s.find("://")?;
        let authority_end = s[scheme_end + 3..]
            .find(['/', '?'])
            .map_or(s.len(), |i| scheme_end + 3 + i);
        Some((scheme_end, authority_end))
    };
    match (split(expected), split(got)) {
        (Some((_, ea)), Some((_, ga))) => {
            ea == ga
                && expected[..ea].eq_ignore_ascii_case(&got[..ga])
                && expected[ea..] == got[ga..]
        }
        _ => false,
    }
}

fn check_claims(
    rules: &EntryRules,
    alg: Algorithm,
    typ: Option<&str>,
    claims: &Map<String, Value>,
    now: f64,
) -> Result<(), ValidationError> {
    if !rules.algorithms.contains(&alg) {
        return Err(ValidationError::new(
            K::AlgorithmNotAllowed,
            "alg not allowed for entry",
        ));
    }
    let o = &rules.options;
    let at_jwt = typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    // RFC 8725 §3.11: a `typ` naming another kind of JWT is never an access token.
    let plain_jwt = typ
        .is_none_or(|t| t.eq_ignore_ascii_case("jwt") || t.eq_ignore_ascii_case("application/jwt"));
    if !at_jwt && (o.require_at_jwt_type || !plain_jwt) {
        return Err(ValidationError::of(K::InvalidType));
    }
    // RFC 9449 §7.2, RFC 8705 §3: a bound token is useless (and must be refused) without
    // its proof, so it is never a bearer token.
    if claims.contains_key("cnf") {
        return Err(ValidationError::of(K::SenderConstrained));
    }
    if o.reject_id_token_claims
        && ["nonce", "at_hash", "c_hash"]
            .iter()
            .any(|c| claims.contains_key(*c))
    {
        return Err(ValidationError::of(K::IdToken));
    }
    let leeway = o.leeway.as_secs_f64();
    if o.verify_exp {
        let exp = numeric(claims, "exp")?.ok_or(ValidationError::new(K::MissingClaim, "exp"))?;
        if now >= exp + leeway {
            return Err(ValidationError::of(K::Expired));
        }
    }
    if o.verify_nbf
        && let Some(nbf) = numeric(claims, "nbf")?
        && now + leeway < nbf
    {
        return Err(ValidationError::of(K::NotYetValid));
    }
    if o.verify_iat
        && let Some(iat) = numeric(claims, "iat")?
        && iat > now + leeway
    {
        return Err(ValidationError::of(K::IssuedInFuture));
    }
    let audience_ok = match claims.get("aud") {
        None => return Err(ValidationError::new(K::MissingClaim, "aud")),
        Some(Value::String(a)) => rules.audiences.iter().any(|e| same_resource(e, a)),
        Some(Value::Array(list)) => {
            let mut ok = false;
            for a in list {
                let a = a
                    .as_str()
                    .ok_or(ValidationError::new(K::InvalidClaim, "aud"))?;
                ok |= rules.audiences.iter().any(|e| same_resource(e, a));
            }
            ok
        }
        Some(_) => return Err(ValidationError::new(K::InvalidClaim, "aud")),
    };
    if !audience_ok {
        return Err(ValidationError::of(K::InvalidAudience));
    }
    match claims.get("sub") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        Some(Value::String(_)) | None => Err(ValidationError::of(K::MissingSubject)),
        Some(_) => Err(ValidationError::new(K::InvalidClaim, "sub")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_comparison_folds_only_scheme_and_host() {
        assert!(same_resource(
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp"
        ));
        assert!(same_resource(
            "https://mcp.example.com/mcp",
            "HTTPS://MCP.Example.com/mcp"
        ));
        assert!(!same_resource(
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/MCP"
        ));
        assert!(!same_resource(
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp/"
        ));
        assert!(!same_resource(
            "https://mcp.example.com",
            "https://mcp.example.co"
        ));
        assert!(!same_resource("client-id", "CLIENT-ID"));
    }

    #[test]
    fn duplicate_claims_are_malformed() {
        let ok: Option<Claims> = serde_json::from_str(r#"{"sub":"a","iss":"b"}"#).ok();
        assert!(ok.is_some());
        let dup: Option<Claims> = serde_json::from_str(r#"{"sub":"a","sub":"b"}"#).ok();
        assert!(dup.is_none());
        let not_object: Option<Claims> = serde_json::from_str("[1]").ok();
        assert!(not_object.is_none());
    }
}
