//! Counters of what the cache did, and rate-limited reporting of trouble.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use crate::error::Error;

/// Counts of cache outcomes since start. Read with [`Stats::snapshot`].
#[derive(Debug, Default)]
pub struct Stats {
    hits: AtomicU64,
    local_hits: AtomicU64,
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
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn local_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.local_hits.fetch_add(1, Ordering::Relaxed);
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
        StatsSnapshot {
            hits: self.hits.load(Ordering::Relaxed),
            local_hits: self.local_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stores: self.stores.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
        }
    }
}
