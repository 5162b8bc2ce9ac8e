//! What the key store and its fetch tasks share: the sources, their latest snapshots, the
//! fetch in flight per source, and the means to fetch.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::JwksOptions;
use crate::keys::fetch::HttpFetcher;
use crate::keys::snapshot::Snapshot;
use crate::keys::source::Source;

/// Shared by the store and the fetch tasks it spawns.
pub(crate) struct Shared {
    pub(crate) fetcher: HttpFetcher,
    pub(crate) opts: JwksOptions,
    pub(crate) sources: Vec<Source>,
    pub(crate) snapshots: Snapshots,
    /// Per source (same index): the attempt in flight and when the last one started.
    pub(crate) flights: Vec<Mutex<Flight>>,
    /// Closed when the store is dropped: fetch tasks stop.
    pub(crate) stop: watch::Receiver<()>,
}

/// The latest snapshot of each source, by source id: one slot per configured source, read
/// on every request (an uncontended read lock, no allocation), written after each fetch.
pub(crate) struct Snapshots(Vec<RwLock<Option<Arc<Snapshot>>>>);

impl Snapshots {
    pub(crate) fn new(sources: usize) -> Self {
        Self((0..sources).map(|_| RwLock::new(None)).collect())
    }

    /// The latest snapshot of source `id`, if it has one. A poisoned lock is still read:
    /// the slot is only ever replaced whole, so a panic elsewhere can not leave it torn.
    pub(crate) fn get(&self, id: &usize) -> Option<Arc<Snapshot>> {
        let slot = self.0.get(*id)?;
        slot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn insert(&self, id: usize, snapshot: Arc<Snapshot>) {
        if let Some(slot) = self.0.get(id) {
            *slot.write().unwrap_or_else(PoisonError::into_inner) = Some(snapshot);
        }
    }
}

/// The fetch attempt of one source that is running, if any. Locked only briefly, never
/// across an `.await`.
#[derive(Debug, Default)]
pub(crate) struct Flight {
    /// Receives the attempt's snapshot when it ends (`None` until then).
    pub(crate) running: Option<watch::Receiver<Option<Arc<Snapshot>>>>,
    /// When the latest attempt started: unknown-kid refetches count their cooldown from it.
    pub(crate) last_start: Option<Instant>,
}
