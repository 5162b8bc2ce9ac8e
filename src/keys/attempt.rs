//! One fetch attempt of a key source: locate its key set (configured, or discovered), fetch it
//! (conditionally when validators are known), and make the next [`Snapshot`], keeping the last
//! good keys when the attempt fails at the transport or parsing level. Attempts run in tasks
//! of their own, one at a time per source (`flight.rs`).

use std::sync::Arc;

use tokio::time::Instant;
use tracing::Instrument;

use crate::keys::discovery;
use crate::keys::fetch::{FetchError, Fetched};
use crate::keys::jwks::KeySet;
use crate::keys::policy::later;
use crate::keys::shared::Shared;
use crate::keys::snapshot::Snapshot;
use crate::keys::source::{Location, Source, bump};

impl Shared {
    pub(crate) async fn attempt(
        &self,
        id: usize,
        prev: Option<&Snapshot>,
        reason: &'static str,
    ) -> Snapshot {
        let Some(source) = self.sources.get(id) else {
            // Not reachable: ids come from `new`.
            return self.failed(
                prev,
                None,
                FetchError::Discovery("no such source".into()),
                Instant::now(),
            );
        };
        let span = tracing::info_span!(
            "jwks_fetch",
            issuer = %source.issuers.join(" "),
            jwks_uri = tracing::field::Empty,
            reason,
        );
        async {
            let started = Instant::now();
            let (location, discovery) = self.locate(source, prev, started).await;
            let uri = match location {
                Ok(uri) => uri,
                Err(e) => {
                    bump(&source.counters.failures);
                    return self.failed(prev, discovery, e, started);
                }
            };
            tracing::Span::current().record("jwks_uri", &*uri);
            bump(&source.counters.fetches);
            if reason == "unknown_kid" {
                bump(&source.counters.unknown_kid_refetches);
            }
            // Validators only make sense for the same URI and when we still hold its keys.
            let validators = prev
                .filter(|p| p.keys.is_some() && p.jwks_uri.as_deref() == Some(&*uri))
                .map(|p| &p.validators);
            let outcome = self
                .fetcher
                .get(
                    &uri,
                    "application/jwk-set+json, application/json",
                    validators,
                )
                .await;
            let duration_ms = started.elapsed().as_millis() as u64;
            let now = Instant::now();
            let attempt = prev.map_or(0, |p| p.attempt) + 1;
            let (keys, validators, lifetime) = match outcome {
                Ok(Fetched::Body {
                    bytes,
                    validators,
                    lifetime,
                }) => match KeySet::parse(&bytes, &uri) {
                    // A JWK Set without a usable key is an answer too (an emergency
                    // revocation empties the set): the old keys stop verifying now.
                    Ok(set) => {
                        if set.keys.is_empty() {
                            tracing::warn!(
                                "the key set holds no usable key: every token is refused"
                            );
                        }
                        (Arc::new(set), validators, lifetime)
                    }
                    Err(e) => {
                        bump(&source.counters.failures);
                        return self.failed(prev, discovery, e, started);
                    }
                },
                Ok(Fetched::NotModified { lifetime }) => {
                    bump(&source.counters.not_modified);
                    match prev.and_then(|p| p.keys.clone().map(|k| (k, p.validators.clone()))) {
                        Some((keys, validators)) => (keys, validators, lifetime),
                        None => {
                            bump(&source.counters.failures);
                            return self.failed(prev, discovery, FetchError::Status(304), started);
                        }
                    }
                }
                Err(e) => {
                    bump(&source.counters.failures);
                    return self.failed(prev, discovery, e, started);
                }
            };
            let lifetime = self.opts.lifetime(lifetime);
            let fresh_until = later(now, lifetime);
            tracing::debug!(
                outcome = "ok",
                keys = keys.keys.len(),
                duration_ms,
                lifetime_s = lifetime.as_secs(),
                "key set fetched"
            );
            Snapshot {
                attempt,
                keys: Some(keys),
                jwks_uri: Some(uri),
                validators,
                confirmed_at: Some(now),
                fresh_until,
                refresh_at: fresh_until
                    .checked_sub(self.opts.refresh_lead(lifetime))
                    .unwrap_or(now),
                consecutive_failures: 0,
                retry_at: now,
                last_error: None,
                discovery,
            }
        }
        .instrument(span)
        .await
    }

    /// Where the keys are: the configured URI, or the discovered one (rediscovered when its
    /// metadata is no longer fresh; the previous one is kept while rediscovery fails).
    async fn locate(
        &self,
        source: &Source,
        prev: Option<&Snapshot>,
        now: Instant,
    ) -> (Result<Arc<str>, FetchError>, Option<(Arc<str>, Instant)>) {
        let issuer = match &source.location {
            Location::Fixed(uri) => return (Ok(uri.clone()), None),
            Location::Discover(issuer) => issuer,
        };
        let known = prev.and_then(|p| p.discovery.clone());
        if let Some((uri, until)) = &known
            && now < *until
        {
            return (Ok(uri.clone()), known);
        }
        match discovery::discover(
            &self.fetcher,
            issuer,
            self.opts.allow_insecure_http,
            discovery::Wanted::JwksUri,
        )
        .await
        {
            Ok(found) => {
                let until = later(Instant::now(), self.opts.lifetime(found.lifetime));
                tracing::debug!(jwks_uri = %found.url, "discovered the key set location");
                (Ok(found.url.clone()), Some((found.url, until)))
            }
            Err(e) => match known {
                Some((uri, until)) => {
                    tracing::warn!(error = %e, "rediscovery failed; keeping the known jwks_uri");
                    (Ok(uri.clone()), Some((uri, until)))
                }
                None => (Err(e), None),
            },
        }
    }

    /// The snapshot after a failed attempt: the last good keys are kept.
    fn failed(
        &self,
        prev: Option<&Snapshot>,
        discovery: Option<(Arc<str>, Instant)>,
        error: FetchError,
        started: Instant,
    ) -> Snapshot {
        let now = Instant::now();
        let failures = prev.map_or(0, |p| p.consecutive_failures).saturating_add(1);
        let wait = self.opts.backoff(failures);
        let serving_stale = prev.is_some_and(|p| {
            p.keys.is_some() && now < later(p.fresh_until, self.opts.stale_if_error)
        });
        tracing::warn!(
            outcome = "error",
            error = %error,
            duration_ms = now.saturating_duration_since(started).as_millis() as u64,
            consecutive_failures = failures,
            retry_in_ms = wait.as_millis() as u64,
            serving_stale,
            "key set fetch failed"
        );
        Snapshot {
            attempt: prev.map_or(0, |p| p.attempt) + 1,
            keys: prev.and_then(|p| p.keys.clone()),
            jwks_uri: prev.and_then(|p| p.jwks_uri.clone()),
            validators: prev.map(|p| p.validators.clone()).unwrap_or_default(),
            confirmed_at: prev.and_then(|p| p.confirmed_at),
            fresh_until: prev.map_or(now, |p| p.fresh_until),
            refresh_at: prev.map_or(now, |p| p.refresh_at),
            consecutive_failures: failures,
            retry_at: later(now, wait),
            last_error: Some(error),
            discovery: discovery.or_else(|| prev.and_then(|p| p.discovery.clone())),
        }
    }
}
