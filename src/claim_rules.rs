//! The checks of an access token's claims against one configured entry, after its signature
//! (`jwt.rs`): `typ`, sender constraint, ID-token claims, `exp`/`nbf`/`iat`, `aud`, `sub`.

use crate::algorithm::Algorithm;
use crate::claims::{Claim, Claims, Cnf};
use crate::config::{AccessTokenValidationOptions, AuthorizationServerEntry, DpopPolicy};
use crate::error::{ValidationError, ValidationErrorKind as K};

/// What one entry requires of a token.
pub(crate) struct EntryRules {
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) audiences: Vec<String>,
    pub(crate) options: AccessTokenValidationOptions,
    /// See [`AuthorizationServerEntry::scope_prefix`](crate::AuthorizationServerEntry::scope_prefix).
    pub(crate) scope_prefix: Option<Box<str>>,
    pub(crate) dpop: DpopPolicy,
    pub(crate) dpop_algorithms: Vec<Algorithm>,
}

/// The DPoP proof a request came with, as the token check needs it: the key's thumbprint
/// and the proof's algorithm (already verified against the request).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProofBinding<'p> {
    pub(crate) jkt: &'p str,
    pub(crate) alg: Algorithm,
}

impl EntryRules {
    /// What `entry` requires; the audience is `canonical` unless the entry names others.
    pub(crate) fn of(entry: &AuthorizationServerEntry, canonical: &str) -> Self {
        let audiences = if entry.expected_audiences.is_empty() {
            vec![canonical.to_owned()]
        } else {
            entry.expected_audiences.clone()
        };
        Self {
            algorithms: entry.algorithms.clone(),
            audiences,
            options: entry.validation_options.clone(),
            scope_prefix: entry.scope_prefix.as_deref().map(Box::from),
            dpop: entry.dpop,
            dpop_algorithms: entry.dpop_algorithms.clone(),
        }
    }
}

/// A NumericDate claim: absent, a number, or (an error) anything else.
fn numeric(claim: &Claim<'_>, name: &'static str) -> Result<Option<f64>, ValidationError> {
    match claim {
        Claim::Absent => Ok(None),
        Claim::Number(n) => Ok(Some(*n)),
        _ => Err(ValidationError::new(K::InvalidClaim, name)),
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

pub(crate) fn check_claims(
    rules: &EntryRules,
    alg: Algorithm,
    typ: Option<&str>,
    claims: &Claims<'_>,
    proof: Option<ProofBinding<'_>>,
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
    check_claim_values(rules, claims, proof, now, true)
}

/// The token's binding (`cnf`) against the request's proof and the entry's DPoP policy
/// (RFC 9449 §7.1, §7.2; RFC 8705 §3).
fn check_binding(
    rules: &EntryRules,
    cnf: &Cnf<'_>,
    proof: Option<ProofBinding<'_>>,
) -> Result<(), ValidationError> {
    match (cnf, proof) {
        (Cnf::Absent, None) if rules.dpop == DpopPolicy::Required => {
            Err(ValidationError::of(K::DpopRequired))
        }
        (Cnf::Absent, None) => Ok(()),
        // The DPoP scheme promises a bound token: an unbound one is not what was sent.
        (Cnf::Absent, Some(_)) => Err(ValidationError::of(K::NotDpopBound)),
        (Cnf::Jkt(_), Some(_)) if rules.dpop == DpopPolicy::Off => Err(ValidationError::new(
            K::NotDpopBound,
            "DPoP is off for this issuer",
        )),
        (Cnf::Jkt(_), Some(p)) if !rules.dpop_algorithms.contains(&p.alg) => {
            Err(ValidationError::of(K::DpopAlgorithmNotAllowed))
        }
        (Cnf::Jkt(jkt), Some(p)) if **jkt == *p.jkt => Ok(()),
        (Cnf::Jkt(_), Some(_)) => Err(ValidationError::of(K::DpopKeyMismatch)),
        // A bound token is useless (and must be refused) without its proof, so it is never
        // a bearer token; a binding of another kind can not be proved here at all.
        (Cnf::Jkt(_), None) | (Cnf::Other, _) => Err(ValidationError::of(K::SenderConstrained)),
    }
}

/// The checks of the claims themselves, for a JWT's claims or an introspection answer
/// (where `exp` may be absent: the server just said the token is active).
pub(crate) fn check_claim_values(
    rules: &EntryRules,
    claims: &Claims<'_>,
    proof: Option<ProofBinding<'_>>,
    now: f64,
    exp_required: bool,
) -> Result<(), ValidationError> {
    let o = &rules.options;
    check_binding(rules, &claims.cnf, proof)?;
    if o.reject_id_token_claims && claims.id_token_claims {
        return Err(ValidationError::of(K::IdToken));
    }
    let leeway = o.leeway.as_secs_f64();
    if o.verify_exp {
        match numeric(&claims.exp, "exp")? {
            Some(exp) if now >= exp + leeway => return Err(ValidationError::of(K::Expired)),
            Some(_) => {}
            None if exp_required => return Err(ValidationError::new(K::MissingClaim, "exp")),
            None => {}
        }
    }
    if o.verify_nbf
        && let Some(nbf) = numeric(&claims.nbf, "nbf")?
        && now + leeway < nbf
    {
        return Err(ValidationError::of(K::NotYetValid));
    }
    if o.verify_iat
        && let Some(iat) = numeric(&claims.iat, "iat")?
        && iat > now + leeway
    {
        return Err(ValidationError::of(K::IssuedInFuture));
    }
    if let Some(max) = o.max_token_age {
        let iat = numeric(&claims.iat, "iat")?.ok_or(ValidationError::new(
            K::TooOld,
            "no iat while a maximum age is set",
        ))?;
        if now - iat > max.as_secs_f64() + leeway {
            return Err(ValidationError::new(
                K::TooOld,
                "issued longer ago than the maximum age",
            ));
        }
    }
    if !o.allowed_clients.is_empty() {
        let client = [&claims.client_id, &claims.azp, &claims.cid, &claims.appid]
            .into_iter()
            .find_map(Claim::non_empty);
        if !client.is_some_and(|c| o.allowed_clients.iter().any(|a| a == c)) {
            return Err(ValidationError::new(
                K::ClientNotAllowed,
                "client not in allowed_clients",
            ));
        }
    }
    let audience_ok = match &claims.aud {
        Claim::Absent => return Err(ValidationError::new(K::MissingClaim, "aud")),
        Claim::Str(a) => rules.audiences.iter().any(|e| same_resource(e, a)),
        Claim::Array {
            strings,
            only_strings: true,
        } => strings
            .iter()
            .any(|a| rules.audiences.iter().any(|e| same_resource(e, a))),
        _ => return Err(ValidationError::new(K::InvalidClaim, "aud")),
    };
    if !audience_ok {
        return Err(ValidationError::of(K::InvalidAudience));
    }
    match &claims.sub {
        Claim::Str(s) if !s.trim().is_empty() => Ok(()),
        Claim::Str(_) | Claim::Absent => Err(ValidationError::of(K::MissingSubject)),
        _ => Err(ValidationError::new(K::InvalidClaim, "sub")),
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
}
