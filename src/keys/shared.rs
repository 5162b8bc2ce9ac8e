//! What the key store and its fetch tasks share: the sources, their latest snapshots, the
//! fetch in flight per source, and the means to fetch.

use std::sync::{Arc, Mutex};

use moka::sync::Cache;
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
    /// One entry per configured source, never evicted.
    pub(crate) snapshots: Cache<usize, Arc<Snapshot>>,
    /// Per source (same index): the attempt in flight and when the last one started.
    pub(crate) flights: Vec<Mutex<Flight>>,
    /// Closed when the store is dropped: fetch tasks stop.
    pub(crate) stop: watch::Receiver<()>,
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
