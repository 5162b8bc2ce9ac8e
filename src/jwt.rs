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
//! Every request is validated: no decision is kept per token. What a thread keeps of the
//! tokens it accepted last is their reading (step 1's header and claims, `parsed_tokens.rs`),
//! a function of the token's bytes alone; steps 2 to 6 are done for every request. The claims
//! are read in one pass that borrows what the checks need (`claims.rs`); the full claims
//! object is built only when an application asks for it. A token whose issuer has one key
//! source with fresh keys in memory is decided without waiting (`validate_now`, no future, no
//! allocation for it); otherwise `validate` awaits the fetch, refresh or unknown-key refetch
//! first.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::algorithm::Algorithm;
use crate::claim_rules::{ProofBinding, check_claims};
use crate::claims::Claims;
use crate::config::AuthorizationServerEntry;
use crate::error::{ValidationError, ValidationErrorKind as K};
use crate::introspection::Introspector;
use crate::issuer_group::IssuerGroup;
use crate::jws::{Cut, Header, Token};
use crate::keys::{KeySet, KeyStore, Lookup};
use crate::owner::ResourceOwner;
use crate::owner_claims::OwnerClaims;
use crate::parsed_tokens;
use crate::required_claims;
use crate::scope::ScopeContext;
use crate::tenants::{Tenant, Tenants};

/// The shared validation state, built once.
pub(crate) struct Validator {
    /// By issuer; a B-tree: a handful of issuers are found in a few comparisons, no hashing.
    issuers: BTreeMap<String, IssuerGroup>,
    /// Entries with `verify_iss = false`: used only for tokens whose `iss` matches no issuer.
    fallback: Option<IssuerGroup>,
    keys: KeyStore,
    max_token_bytes: usize,
    /// Shared by every owner this validator makes.
    scopes: Arc<ScopeContext>,
    /// The entry introspecting tokens that are not JWTs, if any.
    introspector: Option<Introspector>,
    /// The pattern entries' concrete issuers.
    tenants: Vec<Tenants>,
}

impl Validator {
    pub(crate) fn new(
        entries: &[AuthorizationServerEntry],
        canonical: &str,
        keys: KeyStore,
        max_token_bytes: usize,
        scopes: Arc<ScopeContext>,
        introspector: Option<Introspector>,
        tenants: Vec<Tenants>,
    ) -> Self {
        let mut issuers = BTreeMap::new();
        for e in entries.iter().filter(|e| !e.is_pattern()) {
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
            introspector,
            tenants,
        }
    }

    /// The introspector, when `token` is not a JWT (not three dot-separated parts) and an
    /// entry introspects such tokens.
    fn introspector_for(&self, token: &str) -> Option<&Introspector> {
        self.introspector
            .as_ref()
            .filter(|_| token.bytes().filter(|&b| b == b'.').count() != 2)
    }

    pub(crate) fn keys(&self) -> &KeyStore {
        &self.keys
    }

    pub(crate) fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// Validates `token`, sent with the DPoP `proof` (already checked against the request)
    /// or as a bearer token (`None`).
    pub(crate) async fn validate(
        &self,
        token: &str,
        proof: Option<ProofBinding<'_>>,
    ) -> Result<ResourceOwner, ValidationError> {
        if let Some(introspector) = self.introspector_for(token) {
            opaque_token(token, self.max_token_bytes)?;
            return introspector.decide(token, proof).await;
        }
        let token = Token::split(token, self.max_token_bytes)?;
        let mut claims = Claims::default();
        let header = token.read(&mut claims)?;
        let tenant;
        let route = match self.route(&header, &claims)? {
            Routing::Ready(route) => route,
            Routing::Tenant(tenants, iss, alg) => {
                tenant = tenants.resolve(iss).await?;
                Route::tenant(&tenant, tenants, alg)
            }
        };
        self.verify_signature(
            route.keys,
            route.group,
            header.kid.as_ref().map(|k| &*k.0),
            route.alg,
            token.message,
            token.signature,
        )
        .await?;
        let owner = self.admit(&route, &header, &claims, Known::Raw(&token.claims), proof)?;
        drop((header, claims));
        Ok(owner.with_raw_claims(token.claims))
    }

    /// [`validate`](Self::validate) when it can decide without waiting: the issuer has one
    /// key source whose keys are fresh and hold the token's key, or the token is refused
    /// before its key is needed. `None` when it must wait (a fetch, a refresh, a refetch
    /// for an unknown key): then `validate` decides, from the start.
    pub(crate) fn validate_now(
        &self,
        token: &str,
        proof: Option<ProofBinding<'_>>,
    ) -> Option<Result<ResourceOwner, ValidationError>> {
        if let Some(introspector) = self.introspector_for(token) {
            if let Err(e) = opaque_token(token, self.max_token_bytes) {
                return Some(Err(e));
            }
            return introspector.decide_now(token, proof);
        }
        let cut = match Cut::new(token, self.max_token_bytes) {
            Ok(cut) => cut,
            Err(e) => return Some(Err(e)),
        };
        // A token this thread accepted before: read as then, everything else done anew.
        if let Some(seen) = parsed_tokens::recall(cut.message, cut.signature) {
            return self.decide_now(
                &seen.header,
                &seen.claims,
                Known::Read(&seen.owner),
                cut.message,
                cut.signature,
                proof,
            );
        }
        let token = match cut.decode() {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let mut claims = Claims::default();
        let header = match token.read(&mut claims) {
            Ok(header) => header,
            Err(e) => return Some(Err(e)),
        };
        let decided = self.decide_now(
            &header,
            &claims,
            Known::Raw(&token.claims),
            token.message,
            token.signature,
            proof,
        );
        let kept = matches!(decided, Some(Ok(_)))
            && parsed_tokens::accepted(token.message, token.signature);
        let detached = kept.then(|| (header.detached(), claims.detached()));
        drop((header, claims));
        let owner = decided?.map(|o| o.with_raw_claims(token.claims));
        // Kept only with the claims' JSON attached (the owner was just built, so it is).
        if let (Some((header, claims)), Ok(owner)) = (detached, &owner)
            && !owner.token_claims().raw_claims.is_empty()
        {
            parsed_tokens::keep(
                token.message,
                token.signature,
                header,
                claims,
                Arc::clone(owner.token_claims()),
            );
        }
        Some(owner)
    }

    /// [`validate_now`](Self::validate_now) past the reading of the token: `None` when the
    /// issuer's keys must be fetched, refreshed or refetched first.
    fn decide_now(
        &self,
        header: &Header<'_>,
        claims: &Claims<'_>,
        known: Known<'_>,
        message: &[u8],
        signature: &str,
        proof: Option<ProofBinding<'_>>,
    ) -> Option<Result<ResourceOwner, ValidationError>> {
        let tenant;
        let route = match self.route(header, claims) {
            Ok(Routing::Ready(route)) => route,
            Ok(Routing::Tenant(tenants, iss, alg)) => {
                tenant = tenants.cached(iss)?;
                Route::tenant(&tenant, tenants, alg)
            }
            Err(e) => return Some(Err(e)),
        };
        let &[source] = route.group.sources.as_slice() else {
            return None;
        };
        let set = route.keys.cached(source)?;
        let Lookup::Found(key) =
            KeySet::find_in(&[&*set], header.kid.as_ref().map(|k| &*k.0), route.alg)
        else {
            return None;
        };
        route.keys.count_hit(source);
        if !key.key.verify(route.alg, message, signature) {
            return Some(Err(ValidationError::of(K::InvalidSignature)));
        }
        Some(self.admit(&route, header, claims, known, proof))
    }

    /// The issuer group the token's `iss` picks, and its `alg` if that group allows it.
    fn route<'v, 'c>(
        &'v self,
        header: &Header<'_>,
        claims: &'c Claims<'_>,
    ) -> Result<Routing<'v, 'c>, ValidationError> {
        if header.crit {
            return Err(ValidationError::of(K::CriticalHeader));
        }
        let alg = Algorithm::from_header(&header.alg.0)
            .filter(|a| a.is_supported())
            .ok_or(ValidationError::new(
                K::AlgorithmNotAllowed,
                "unsupported alg",
            ))?;
        let iss = claims.iss.as_str();
        let (group, fallback) = match iss.and_then(|i| self.issuers.get(i)) {
            Some(g) => (g, false),
            None => {
                // An issuer of a pattern entry (allowed tenants only).
                if let Some(iss) = iss
                    && let Some(tenants) = self.tenants.iter().find(|t| t.matches(iss).is_some())
                {
                    if !tenants.allows(alg) {
                        return Err(ValidationError::new(
                            K::AlgorithmNotAllowed,
                            "alg not allowed for issuer",
                        ));
                    }
                    return Ok(Routing::Tenant(tenants, iss, alg));
                }
                (
                    self.fallback
                        .as_ref()
                        .ok_or(ValidationError::of(K::UnknownIssuer))?,
                    true,
                )
            }
        };
        if !group.allows(alg) {
            return Err(ValidationError::new(
                K::AlgorithmNotAllowed,
                "alg not allowed for issuer",
            ));
        }
        Ok(Routing::Ready(Route {
            group,
            keys: &self.keys,
            tenant: None,
            fallback,
            alg,
        }))
    }

    /// After the signature: the claims against each entry of the group, and the owner
    /// (without its raw claims yet: the caller moves them in).
    fn admit(
        &self,
        route: &Route<'_>,
        header: &Header<'_>,
        claims: &Claims<'_>,
        known: Known<'_>,
        proof: Option<ProofBinding<'_>>,
    ) -> Result<ResourceOwner, ValidationError> {
        let raw = known.raw_claims();
        let now = crate::clock::unix_secs_f64();
        let mut first_error = None;
        for rules in &route.group.entries {
            match check_claims(
                rules,
                route.alg,
                header.typ.as_ref().map(|t| &*t.0),
                claims,
                proof,
                now,
            )
            .and_then(|()| required_claims::check(&rules.options.required_claims, raw))
            {
                Ok(()) => {
                    if let (Some(tenants), Some(iss)) = (route.tenant, claims.iss.as_str()) {
                        tenants.check_claim(iss, raw)?;
                    }
                    // With `verify_iss = false` the owner still names the token's own issuer
                    // (when it gives one), so that users of different real issuers stay apart.
                    let issuer = match claims.iss.as_str() {
                        Some(i) if route.fallback => Arc::from(i),
                        _ => route.group.issuer.clone(),
                    };
                    let prefix = rules.scope_prefix.as_deref();
                    return match known {
                        Known::Read(said) => Ok(ResourceOwner::of(
                            issuer,
                            Arc::clone(said),
                            prefix,
                            self.scopes.clone(),
                        )),
                        Known::Raw(_) => {
                            ResourceOwner::new(issuer, claims, prefix, self.scopes.clone())
                        }
                    };
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
        keys: &KeyStore,
        group: &IssuerGroup,
        kid: Option<&str>,
        alg: Algorithm,
        message: &[u8],
        signature: &str,
    ) -> Result<(), ValidationError> {
        let mut unavailable = None;
        let mut held = Vec::with_capacity(group.sources.len());
        for &id in &group.sources {
            match keys.current(id).await {
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
                match keys.refetch_for_unknown(*id, set, kid).await {
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
                    keys.unknown_kid(*id, kid, set, *was_refetched).await;
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

/// A token that is not a JWS, before it is introspected: within the cap, and a `b64token`
/// (RFC 6750 §2.1; the front door leaves a bearer token's alphabet to validation).
pub(crate) fn opaque_token(token: &str, max_token_bytes: usize) -> Result<(), ValidationError> {
    if token.len() > max_token_bytes {
        return Err(ValidationError::of(K::TooLarge));
    }
    if !crate::bearer::is_b64token(token.as_bytes()) {
        return Err(ValidationError::new(
            K::Malformed,
            "token is not a b64token",
        ));
    }
    Ok(())
}

/// What is known of a token's claims besides their reading: the JSON text alone (the owner is
/// built from the reading), or, for a token this thread remembers, what they say of their
/// owner (the JSON text with it).
#[derive(Clone, Copy)]
enum Known<'a> {
    Raw(&'a str),
    Read(&'a Arc<OwnerClaims>),
}

impl<'a> Known<'a> {
    fn raw_claims(self) -> &'a str {
        match self {
            Self::Raw(raw) => raw,
            Self::Read(said) => &said.raw_claims,
        }
    }
}

/// Where the issuer routes a token.
struct Route<'v> {
    group: &'v IssuerGroup,
    /// The key store holding the group's sources.
    keys: &'v KeyStore,
    /// For a concrete issuer of a pattern: its pattern entry (its tenant claim is checked).
    tenant: Option<&'v Tenants>,
    /// Routed to the `verify_iss = false` entries.
    fallback: bool,
    alg: Algorithm,
}

impl<'v> Route<'v> {
    fn tenant(tenant: &'v Tenant, tenants: &'v Tenants, alg: Algorithm) -> Self {
        Self {
            group: &tenant.group,
            keys: &tenant.keys,
            tenant: Some(tenants),
            fallback: false,
            alg,
        }
    }
}

/// What the token's `iss` picks: a group ready to use, or a concrete issuer of a pattern
/// (with the token's `iss` and `alg`) to look up first.
enum Routing<'v, 'c> {
    Ready(Route<'v>),
    Tenant(&'v Tenants, &'c str, Algorithm),
}
