//! Counters of what the cache did, and rate-limited reporting of trouble.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::error::Error;
use crate::thread_slot::{self, MAX_THREADS};

/// A counter with one cache line per thread: local hits are counted on the
/// hottest path, where threads incrementing one shared atomic would keep
/// stealing its cache line from each other, and where even an uncontended
/// atomic add costs more than the rest of the hit. Each thread with an
/// index (`thread_slot`) is the only writer of its own line, so it adds with
/// a plain load and store; threads without one share a last line, with
/// atomic adds.
pub(crate) struct PerThread {
    lines: [Padded; MAX_THREADS + 1],
}

#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

impl Default for PerThread {
    fn default() -> Self {
        PerThread {
            lines: std::array::from_fn(|_| Padded::default()),
        }
    }
}

impl std::fmt::Debug for PerThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.sum().fmt(f)
    }
}

/// Adds one to `line`, the [`own_line`](PerThread::own_line) of the
/// calling thread: its only writer (an index passes between threads
/// through a mutex, which orders their writes), so a load and a store.
#[inline]
pub(crate) fn add_to_own(line: &AtomicU64) {
    line.store(
        line.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

impl PerThread {
    #[inline]
    pub(crate) fn add(&self) {
        match thread_slot::index() {
            Some(i) => self.add_at(i),
            None => {
                self.lines[MAX_THREADS].0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The line of the thread holding index `i` (the caller), for
    /// [`add_to_own`]. (Not the shared last line: that one needs atomic
    /// adds.)
    pub(crate) fn own_line(&self, i: usize) -> Option<&AtomicU64> {
        self.lines[..MAX_THREADS].get(i).map(|line| &line.0)
    }

    /// Adds one for the thread holding index `i` (the caller).
    #[inline]
    pub(crate) fn add_at(&self, i: usize) {
        if let Some(line) = self.own_line(i) {
            add_to_own(line);
        }
    }

    fn sum(&self) -> u64 {
        self.lines
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// Counts of cache outcomes since start. Read with [`Stats::snapshot`].
#[derive(Debug, Default)]
pub struct Stats {
    /// Hits answered by the backend (per thread, as local hits are: every
    /// Redis hit counts one, and a shared counter's line would pass between
    /// the threads that call).
    hits: PerThread,
    local_hits: Arc<PerThread>,
    misses: AtomicU64,
    stores: AtomicU64,
    refreshes: AtomicU64,
    errors: AtomicU64,
    corrupt: AtomicU64,
    last_logged_ms: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Calls answered from the cache (local tiers included).
    pub hits: u64,
    /// Of those, calls answered by a local tier, without the backend.
    pub local_hits: u64,
    /// Calls that computed.
    pub misses: u64,
    /// Values written to the backend.
    pub stores: u64,
    /// Hits that recomputed early (XFetch).
    pub refreshes: u64,
    /// Backend calls that failed (the caller computed instead).
    pub errors: u64,
    /// Entries that did not decode and were dropped.
    pub corrupt: u64,
}

/// Backend trouble is logged at most once per this many milliseconds.
const LOG_EVERY_MS: u64 = 1000;

fn uptime_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + LOG_EVERY_MS
}

impl Stats {
    #[inline]
    pub(crate) fn hit(&self) {
        self.hits.add();
    }
    /// The counter of local hits, which local tiers add to directly.
    pub(crate) fn local_hits(&self) -> Arc<PerThread> {
        self.local_hits.clone()
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn refresh(&self) {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn store(&self) {
        self.stores.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a backend failure and logs it, at most once a second.
    pub(crate) fn error(&self, what: &str, e: &Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let now = uptime_ms();
        let last = self.last_logged_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOG_EVERY_MS
            && self
                .last_logged_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = %e,
                errors_so_far = self.errors.load(Ordering::Relaxed),
                "memocache: {what} failed; computing without the cache"
            );
        }
    }

    /// Counts an entry that did not decode.
    pub(crate) fn corrupt(&self, key: &str, e: &Error) {
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(key, error = %e, "memocache: dropping an entry that does not decode");
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let local_hits = self.local_hits.sum();
        StatsSnapshot {
            hits: self.hits.sum().wrapping_add(local_hits),
            local_hits,
            misses: self.misses.load(Ordering::Relaxed),
            stores: self.stores.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
        }
    }
}
