//! Key sources: one per configured `jwks_uri` (shared by the entries naming it), or per
//! issuer whose `jwks_uri` is discovered; what each counts for its statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::AuthorizationServerEntry;
use crate::keys::jwks::KeySet;

/// Where a source's keys come from.
#[derive(Debug)]
pub(crate) enum Location {
    Fixed(Arc<str>),
    Discover(String),
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) fetches: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) not_modified: AtomicU64,
    pub(crate) hits: AtomicU64,
    pub(crate) stale_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) unknown_kid_refetches: AtomicU64,
    pub(crate) unknown_kid_rejections: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) location: Location,
    pub(crate) issuers: Vec<String>,
    pub(crate) counters: Counters,
    /// Keys from the configuration, used until the first successful fetch.
    pub(crate) seed: Option<Arc<KeySet>>,
}

/// The identity of the source serving `entry`, and where its keys come from.
pub(crate) fn location_key(entry: &AuthorizationServerEntry) -> (String, Location) {
    match &entry.jwks_uri {
        Some(uri) => (uri.clone(), Location::Fixed(Arc::from(uri.as_str()))),
        None => (
            format!("discover:{}", entry.issuer),
            Location::Discover(entry.issuer.clone()),
        ),
    }
}
