//! Single flight that no request owns: each fetch attempt of a source runs in a task of its
//! own, started by the first request (or refresh) that needs it; every request needing the
//! same attempt waits for that task's result. A request that is cancelled (its client hung
//! up, its h2 stream was reset) stops waiting, but the attempt goes on, its outcome is
//! recorded, and the unknown-kid cooldown counts from the moment it *started*: no client
//! behaviour makes the store call an authorization server more often.

use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::{Either, select};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::keys::fetch::{FetchError, Validators};
use crate::keys::policy::later;
use crate::keys::shared::{Flight, Shared};
use crate::keys::snapshot::Snapshot;

/// A waiter's handle on an attempt: resolves to its snapshot.
pub(crate) type Ticket = watch::Receiver<Option<Arc<Snapshot>>>;

/// Clears the source's running attempt when the task ends, however it ends (done, stopped
/// with the store, or panicked), so a new attempt can start.
struct Landing {
    shared: Arc<Shared>,
    id: usize,
}

impl Drop for Landing {
    fn drop(&mut self) {
        if let Some(flight) = self.shared.flights.get(self.id) {
            lock(flight).running = None;
        }
    }
}

fn lock(flight: &Mutex<Flight>) -> MutexGuard<'_, Flight> {
    // The guarded data is two plain values: a panic elsewhere can not leave it torn.
    flight.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The outcome of the attempt that follows the snapshot numbered `seen`: the one running,
    /// else one that already finished after `seen`, else a new one.
    pub(crate) async fn attempt_once(
        self: &Arc<Self>,
        id: usize,
        seen: u64,
        reason: &'static str,
    ) -> Arc<Snapshot> {
        let ticket = self.join_or_start(id, seen, reason, |_| true);
        self.wait(ticket).await
    }

    /// Like [`attempt_once`](Self::attempt_once) for an unknown key id: joins a running
    /// attempt, but starts a new one only if the last one started at least `cooldown` ago.
    /// `None`: no attempt may start yet (the kid is refused without network).
    pub(crate) async fn refetch(
        self: &Arc<Self>,
        id: usize,
        seen: u64,
        cooldown: std::time::Duration,
    ) -> Option<Arc<Snapshot>> {
        let now = Instant::now();
        let ticket = self.join_or_start(id, seen, "unknown_kid", |last_start| {
            last_start.is_none_or(|t| now >= later(t, cooldown))
        })?;
        Some(self.wait(Some(ticket)).await)
    }

    /// Starts an attempt in the background unless one is running; does not wait.
    pub(crate) fn start_background(self: &Arc<Self>, id: usize, seen: u64) {
        drop(self.join_or_start(id, seen, "refresh", |_| true));
    }

    /// The ticket of the running attempt, or of a finished one newer than `seen`, or of a
    /// new attempt when `may_start(last_start)` allows one; `None` otherwise.
    fn join_or_start(
        self: &Arc<Self>,
        id: usize,
        seen: u64,
        reason: &'static str,
        may_start: impl FnOnce(Option<Instant>) -> bool,
    ) -> Option<Ticket> {
        let flight = self.flights.get(id)?;
        let mut slot = lock(flight);
        if let Some(running) = &slot.running {
            return Some(running.clone());
        }
        let latest = self.snapshots.get(&id);
        if latest.as_ref().map_or(0, |s| s.attempt) != seen {
            // An attempt after `seen` finished meanwhile: its outcome is the answer.
            return Some(watch::channel(latest).1);
        }
        if !may_start(slot.last_start) {
            return None;
        }
        let (done, ticket) = watch::channel(None);
        slot.running = Some(ticket.clone());
        slot.last_start = Some(Instant::now());
        drop(slot);

        let shared = self.clone();
        let landing = Landing {
            shared: self.clone(),
            id,
        };
        let mut stop = self.stop.clone();
        let task = async move {
            let _landing = landing;
            let attempt = async {
                let prev = shared.snapshots.get(&id);
                let snapshot = Arc::new(shared.attempt(id, prev.as_deref(), reason).await);
                shared.snapshots.insert(id, snapshot.clone());
                snapshot
            };
            let stopped = stop.changed();
            if let Either::Left((snapshot, _)) = select(pin!(attempt), pin!(stopped)).await {
                // Clear the slot before waking the waiters, so that what they do next sees
                // the attempt as finished.
                drop(_landing);
                let _ = done.send(Some(snapshot));
            }
        };
        // Without a tokio runtime nothing can fetch (reqwest needs one): the task is dropped
        // unstarted and the waiters get "no keys" (503).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(task));
        }
        Some(ticket)
    }

    /// Waits for the attempt behind `ticket`, at most twice the fetch timeout (discovery and
    /// key set) and a second; an attempt that ends without a result (the store was dropped,
    /// no runtime drives its task) answers "no keys".
    async fn wait(&self, ticket: Option<Ticket>) -> Arc<Snapshot> {
        let deadline = self
            .opts
            .fetch_timeout
            .saturating_mul(2)
            .saturating_add(std::time::Duration::from_secs(1));
        if let Some(mut ticket) = ticket
            && let Ok(Ok(snapshot)) =
                tokio::time::timeout(deadline, ticket.wait_for(Option::is_some)).await
            && let Some(snapshot) = snapshot.as_ref()
        {
            return snapshot.clone();
        }
        Arc::new(abandoned())
    }
}

/// The answer when an attempt ended without a snapshot.
fn abandoned() -> Snapshot {
    let now = Instant::now();
    Snapshot {
        attempt: 0,
        keys: None,
        jwks_uri: None,
        validators: Validators::default(),
        confirmed_at: None,
        fresh_until: now,
        refresh_at: now,
        consecutive_failures: 0,
        retry_at: now,
        last_error: Some(FetchError::Transport("the fetch was abandoned".into())),
        discovery: None,
    }
}
