//! Issuers not known in advance: the concrete issuers of one pattern entry
//! ([`AuthorizationServerEntry::tenants`]), each looked up on its first token and kept in a
//! bounded cache, with key sets of its own (a [`KeyStore`] per concrete issuer: its keys
//! verify only its own tokens).
//!
//! When the pattern's `jwks_uri` has no placeholder, every concrete issuer shares that one
//! key set (declared so by the configuration, like Entra's common keys): a concrete issuer
//! then needs no lookup, and a made-up one costs nothing but its signature check.
//!
//! Otherwise a new concrete issuer is looked up (metadata, then keys) in a task no request
//! owns, at most one per key-set refetch cooldown per pattern entry: a flood of made-up
//! tenants costs the provider no more than a flood of made-up key ids. A token of another new
//! issuer meanwhile is answered 503 with `Retry-After` (so, with any tenant allowed, such a
//! flood also delays real new tenants: list them, or use a shared key set); an issuer whose
//! lookup failed is answered the same, without a new lookup, until the cooldown after the
//! failure ends.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use crate::algorithm::Algorithm;
use crate::config::pattern::IssuerPattern;
use crate::config::{AuthorizationServerEntry, JwksOptions};
use crate::error::{ConfigError, ConfigErrorKind, ValidationError, ValidationErrorKind as K};
use crate::issuer_group::IssuerGroup;
use crate::keys::KeyStore;

/// One concrete issuer of a pattern: its keys and its rules.
pub(crate) struct Tenant {
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) group: IssuerGroup,
}

/// The outcome of a lookup, shared by the requests waiting for it: the tenant, or the wait
/// before the next lookup.
type Lookup = Shared<BoxFuture<'static, Result<Arc<Tenant>, Duration>>>;

/// The concrete issuers of one pattern entry.
pub(crate) struct Tenants {
    inner: Arc<Inner>,
}

struct Inner {
    pattern: IssuerPattern,
    template: AuthorizationServerEntry,
    canonical: String,
    tenant_claim: Option<String>,
    opts: JwksOptions,
    roots: Vec<reqwest::Certificate>,
    known: moka::sync::Cache<String, Arc<Tenant>>,
    /// Issuers whose lookup failed, and when they may be looked up again.
    failed: moka::sync::Cache<String, Instant>,
    pending: Mutex<Pending>,
    /// When the pattern's `jwks_uri` names one key set for every concrete issuer (no
    /// placeholder): that key set. Concrete issuers then need no lookup at all.
    shared_keys: Option<Arc<KeyStore>>,
}

#[derive(Default)]
struct Pending {
    /// When the latest lookup started.
    last_start: Option<Instant>,
    /// The lookup running, and its issuer.
    running: Option<(String, Lookup)>,
}

impl Tenants {
    /// The tenants of every pattern entry (two entries with one pattern are an error).
    pub(crate) fn for_entries(
        entries: &[AuthorizationServerEntry],
        canonical: &str,
        opts: &JwksOptions,
        roots: &[reqwest::Certificate],
    ) -> Result<Vec<Self>, ConfigError> {
        let mut all = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let at = format!("authorization_servers[{i}]");
            if e.is_pattern() && entries[..i].iter().any(|x| x.issuer == e.issuer) {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidValue,
                    "issuer",
                    "another entry has the same issuer pattern: give one entry per pattern",
                )
                .within(&at));
            }
            if let Some(t) = Self::new(e, canonical, opts, roots).map_err(|err| err.within(&at))? {
                all.push(t);
            }
        }
        Ok(all)
    }

    /// The tenants of `entry` when its issuer is a pattern, else `None`.
    pub(crate) fn new(
        entry: &AuthorizationServerEntry,
        canonical: &str,
        opts: &JwksOptions,
        roots: &[reqwest::Certificate],
    ) -> Result<Option<Self>, ConfigError> {
        let Some(pattern) = IssuerPattern::parse(&entry.issuer, "issuer")? else {
            return Ok(None);
        };
        let failed_for = opts.refetch_cooldown.max(Duration::from_secs(1));
        let shared_keys = match &entry.jwks_uri {
            Some(uri) if !uri.contains(&pattern.placeholder()) => {
                // Any concrete issuer stands for the pattern in the shared store.
                let mut one = entry.clone();
                one.issuer = pattern.fill(&entry.issuer, "shared");
                one.tenants.clear();
                Some(Arc::new(KeyStore::new(
                    opts.clone(),
                    std::slice::from_ref(&one),
                    roots,
                )?))
            }
            _ => None,
        };
        Ok(Some(Self {
            inner: Arc::new(Inner {
                pattern,
                tenant_claim: entry.get_tenant_claim().map(str::to_owned),
                template: entry.clone(),
                canonical: canonical.to_owned(),
                opts: opts.clone(),
                roots: roots.to_vec(),
                known: moka::sync::Cache::builder()
                    .max_capacity(entry.max_tenants as u64)
                    .build(),
                failed: moka::sync::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(failed_for)
                    .build(),
                pending: Mutex::new(Pending::default()),
                shared_keys,
            }),
        }))
    }

    /// The placeholder's value when `iss` fits this pattern and is an allowed tenant.
    pub(crate) fn matches<'a>(&self, iss: &'a str) -> Option<&'a str> {
        let value = self.inner.pattern.matches(iss)?;
        let allowed = &self.inner.template.tenants;
        (allowed.is_empty() || allowed.iter().any(|t| t == value)).then_some(value)
    }

    /// Whether the pattern entry allows `alg`.
    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.inner.template.algorithms.contains(&alg)
    }

    /// The concrete issuer `iss` when it is known (or needs no lookup), without waiting.
    pub(crate) fn cached(&self, iss: &str) -> Option<Arc<Tenant>> {
        let inner = &self.inner;
        if let Some(t) = inner.known.get(iss) {
            return Some(t);
        }
        let keys = inner.shared_keys.as_ref()?;
        let concrete = inner.concrete(iss);
        let group =
            IssuerGroup::from_entries(iss, std::iter::once(&concrete), &inner.canonical, keys);
        let tenant = Arc::new(Tenant {
            keys: keys.clone(),
            group,
        });
        inner.known.insert(iss.to_owned(), tenant.clone());
        Some(tenant)
    }

    /// The concrete issuer `iss` (which [`matches`](Self::matches)): known, or looked up now.
    pub(crate) async fn resolve(&self, iss: &str) -> Result<Arc<Tenant>, ValidationError> {
        if let Some(t) = self.cached(iss) {
            return Ok(t);
        }
        let lookup = self.join_or_start(iss)?;
        lookup.await.map_err(ValidationError::keys_unavailable)
    }

    fn join_or_start(&self, iss: &str) -> Result<Lookup, ValidationError> {
        let inner = &self.inner;
        let now = Instant::now();
        let mut pending = inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
        // Under the lock: a lookup failing meanwhile is seen.
        if let Some(at) = inner.failed.get(iss)
            && now < at
        {
            return Err(ValidationError::keys_unavailable(at - now));
        }
        // A lookup whose task ended without clearing it (never polled) is over.
        if pending
            .running
            .as_ref()
            .is_some_and(|(_, lookup)| lookup.peek().is_some())
        {
            pending.running = None;
        }
        if let Some((running, lookup)) = &pending.running {
            if running == iss {
                return Ok(lookup.clone());
            }
            // One lookup at a time.
            return Err(ValidationError::keys_unavailable(Duration::from_secs(1)));
        }
        if let Some(t) = inner.known.get(iss) {
            return Ok(futures_util::future::ready(Ok(t)).boxed().shared());
        }
        if let Some(last) = pending.last_start {
            let next = last + inner.opts.refetch_cooldown;
            if now < next {
                return Err(ValidationError::keys_unavailable(next - now));
            }
        }
        pending.last_start = Some(now);
        let task = tokio::spawn({
            let inner = inner.clone();
            let iss = iss.to_owned();
            async move {
                let _leave = Leave(inner.clone());
                inner.look_up(iss).await
            }
        });
        let lookup: Lookup = async move { task.await.unwrap_or(Err(Duration::from_secs(1))) }
            .boxed()
            .shared();
        pending.running = Some((iss.to_owned(), lookup.clone()));
        Ok(lookup)
    }

    /// Checks the tenant claim of a token of `iss` (which [`matches`](Self::matches)): it
    /// must be a string equal to the placeholder's value.
    pub(crate) fn check_claim(&self, iss: &str, raw_claims: &str) -> Result<(), ValidationError> {
        let Some(claim) = &self.inner.tenant_claim else {
            return Ok(());
        };
        let value = self.inner.pattern.matches(iss);
        let claims: serde_json::Value = serde_json::from_str(raw_claims)
            .map_err(|_| ValidationError::new(K::Malformed, "claims"))?;
        if value.is_some() && claims.get(claim).and_then(|v| v.as_str()) == value {
            Ok(())
        } else {
            Err(ValidationError::new(
                K::UnknownIssuer,
                "the tenant claim does not name the issuer's tenant",
            ))
        }
    }
}

/// Ends the running lookup when dropped, however its task ends.
struct Leave(Arc<Inner>);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .running = None;
    }
}

impl Inner {
    /// Builds the concrete issuer's key store and fetches its keys (discovering them when
    /// the pattern has no `jwks_uri`).
    /// The entry of the concrete issuer `iss` (which fits the pattern).
    fn concrete(&self, iss: &str) -> AuthorizationServerEntry {
        let value = self.pattern.matches(iss).unwrap_or_default();
        let mut concrete = self.template.clone();
        concrete.issuer = iss.to_owned();
        concrete.jwks_uri = self
            .template
            .jwks_uri
            .as_ref()
            .map(|u| self.pattern.fill(u, value));
        concrete.tenants.clear();
        concrete
    }

    async fn look_up(&self, iss: String) -> Result<Arc<Tenant>, Duration> {
        let concrete = self.concrete(&iss);
        let failed = |why: String| {
            tracing::warn!(issuer = %iss, error = %why, "looking up a concrete issuer of a pattern failed");
            let wait = self.opts.refetch_cooldown.max(Duration::from_secs(1));
            self.failed.insert(iss.clone(), Instant::now() + wait);
            Err(wait)
        };
        let keys = match KeyStore::new(
            self.opts.clone(),
            std::slice::from_ref(&concrete),
            &self.roots,
        ) {
            Ok(k) => Arc::new(k),
            Err(e) => return failed(e.to_string()),
        };
        if let Err(e) = keys.current(0).await {
            return failed(e.to_string());
        }
        let group =
            IssuerGroup::from_entries(&iss, std::iter::once(&concrete), &self.canonical, &keys);
        let tenant = Arc::new(Tenant { keys, group });
        tracing::info!(issuer = %iss, "a new concrete issuer of a pattern is trusted");
        self.known.insert(iss, tenant.clone());
        Ok(tenant)
    }
}
