//! Key management: when key sets are fetched, how long they are trusted, and what happens when
//! an authorization server is slow, down, rotating keys or flooded with made-up key ids.
//!
//! One *key source* exists per configured `jwks_uri` (shared by every entry naming it), or per
//! issuer for entries that discover their `jwks_uri` (`discovery.rs`). Its latest
//! state is an immutable [`Snapshot`] held in a moka cache; readers take it without locks, and
//! every fetch runs under moka's per-key compute lock, so concurrent fetches of one source
//! coalesce into one (single flight) while readers never wait on it.
//!
//! The policy, for a request needing a source's keys at time `now`:
//!
//! | state | answer |
//! |---|---|
//! | fresh (`now` < fetched + lifetime) | the cached keys; past the refresh point a background refresh starts |
//! | expired, last refresh failed, within `stale_if_error` | the last good keys (stale), a background retry once the backoff allows |
//! | never fetched, or expired with no failure known | wait for one (shared) fetch |
//! | no usable keys and the backoff has not elapsed | fail at once (503 with `Retry-After`) |
//!
//! A key id missing from the cached set causes at most one refetch per source per cooldown;
//! kids still missing after a refetch are remembered (bounded, per key-set version) and refused
//! without any work until the key set changes.
//!
//! | file | holds |
//! |---|---|
//! | `store.rs` | the read path: current keys, unknown-kid refetches, remembered kids, warm-up |
//! | `shared.rs` | what the store and its fetch tasks share |
//! | `flight.rs` | single flight in tasks no request owns; the cooldown counts from a start |
//! | `attempt.rs` | one fetch attempt, from the previous snapshot to the next |
//! | `snapshot.rs` | a source's state at one moment, and the plan a request follows |
//! | `policy.rs` | pure timing rules: lifetimes, refresh lead, backoff |
//! | `source.rs` | key sources and their counters |
//! | `stats.rs` | statistics and the warm-up report |
//! | `fetch.rs`, `discovery.rs` | one HTTP GET; finding a `jwks_uri` from issuer metadata |
//! | `jwks.rs`, `verify.rs` | parsing a JWK set; verifying a signature with a parsed key |

mod attempt;
pub(crate) mod discovery;
pub(crate) mod fetch;
mod flight;
mod jwks;
mod policy;
mod shared;
mod snapshot;
mod source;
mod stats;
mod store;
pub(crate) mod verify;

pub(crate) use self::jwks::{KeySet, Lookup};
pub use self::stats::{KeySetStats, WarmUpError, WarmUpFailure};
pub(crate) use self::store::KeyStore;
