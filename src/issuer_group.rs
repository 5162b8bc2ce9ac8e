//! [`IssuerGroup`]: everything trusted about one issuer (its key sources and the rules of
//! the entries naming it), shared by token validation (`jwt.rs`) and the concrete issuers of
//! patterns (`tenants.rs`).

use std::sync::Arc;

use crate::algorithm::Algorithm;
use crate::claim_rules::EntryRules;
use crate::config::AuthorizationServerEntry;
use crate::keys::KeyStore;

/// Everything trusted about one issuer: its key sources and the entries that name it.
pub(crate) struct IssuerGroup {
    pub(crate) issuer: Arc<str>,
    pub(crate) sources: Vec<usize>,
    pub(crate) entries: Vec<EntryRules>,
}

impl IssuerGroup {
    pub(crate) fn from_entries<'a>(
        issuer: &str,
        entries: impl Iterator<Item = &'a AuthorizationServerEntry>,
        canonical: &str,
        keys: &KeyStore,
    ) -> Self {
        let mut group = Self {
            issuer: issuer.into(),
            sources: Vec::new(),
            entries: Vec::new(),
        };
        // An introspection-only entry's rules never admit a JWT (unless no entry of the issuer
        // verifies JWTs: then none has keys, and every JWT is refused anyway).
        let entries: Vec<_> = entries.collect();
        let any_jwt = entries.iter().any(|e| e.verifies_jwts());
        for e in entries
            .into_iter()
            .filter(|e| e.verifies_jwts() || !any_jwt)
        {
            if let Some(id) = keys.source_of(e)
                && !group.sources.contains(&id)
            {
                group.sources.push(id);
            }
            group.entries.push(EntryRules::of(e, canonical));
        }
        group
    }

    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.entries.iter().any(|e| e.algorithms.contains(&alg))
    }
}
