//! Hits and misses per namespace and handler.
//!
//! The manager counts for the whole cache (`Manager::stats`); each cached
//! handler counts its own outcomes in its static [`HandlerSpec`], which
//! registers itself here on its first call, so the admin router can report
//! them per namespace and function without a lock on the request path.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;
use serde::Serialize;

use super::handler::HandlerSpec;

/// One handler's counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stored: AtomicU64,
    not_modified: AtomicU64,
    revalidated: AtomicU64,
    bypassed: AtomicU64,
    not_stored: AtomicU64,
}

/// What one request did, for the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Hit,
    /// A miss; whether its response was handed to the cache to store.
    Miss {
        stored: bool,
    },
    /// A miss whose response could not be stored (streaming, too large,
    /// `Set-Cookie`, ...): it passed through.
    NotStored,
    Bypassed,
}

impl Counters {
    pub(crate) const fn new() -> Self {
        Counters {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            revalidated: AtomicU64::new(0),
            bypassed: AtomicU64::new(0),
            not_stored: AtomicU64::new(0),
        }
    }

    pub(crate) fn count(&self, outcome: Outcome) {
        match outcome {
            Outcome::Hit => self.hits.fetch_add(1, Relaxed),
            Outcome::Miss { stored } => {
                if stored {
                    self.stored.fetch_add(1, Relaxed);
                }
                self.misses.fetch_add(1, Relaxed)
            }
            Outcome::NotStored => {
                self.misses.fetch_add(1, Relaxed);
                self.not_stored.fetch_add(1, Relaxed)
            }
            Outcome::Bypassed => self.bypassed.fetch_add(1, Relaxed),
        };
    }

    pub(crate) fn not_modified(&self) {
        self.not_modified.fetch_add(1, Relaxed);
    }

    pub(crate) fn revalidated(&self) {
        self.revalidated.fetch_add(1, Relaxed);
    }
}

/// The counters of one cached handler, since the process started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HandlerStats {
    /// Its namespace.
    pub namespace: &'static str,
    /// Its module path and name, as in its keys.
    pub function: &'static str,
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests the handler ran for (revalidations included).
    pub misses: u64,
    /// Responses handed to the cache to store.
    pub stored: u64,
    /// Misses whose response could not be stored (status, `Set-Cookie`,
    /// `Cache-Control`, `Vary`, streaming or too large a body).
    pub not_stored: u64,
    /// `304 Not Modified` answers (hits or misses).
    pub not_modified: u64,
    /// Requests that asked for revalidation (`Cache-Control: no-cache`).
    pub revalidated: u64,
    /// Requests that could not use the cache (method, credentials).
    pub bypassed: u64,
}

static REGISTRY: Mutex<Vec<&'static HandlerSpec>> = Mutex::new(Vec::new());

/// Adds `handler` to the registry (once: the caller checks its flag).
pub(crate) fn register(handler: &'static HandlerSpec) {
    REGISTRY.lock().push(handler);
}

/// The counters of every cached handler that has run in this process,
/// sorted by namespace and function.
pub fn handler_stats() -> Vec<HandlerStats> {
    let mut out: Vec<HandlerStats> = REGISTRY
        .lock()
        .iter()
        .map(|h| snapshot(h.namespace(), h.function(), h.counters()))
        .collect();
    out.sort_by(|a, b| (a.namespace, a.function).cmp(&(b.namespace, b.function)));
    out
}

fn snapshot(namespace: &'static str, function: &'static str, c: &Counters) -> HandlerStats {
    HandlerStats {
        namespace,
        function,
        hits: c.hits.load(Relaxed),
        misses: c.misses.load(Relaxed),
        stored: c.stored.load(Relaxed),
        not_stored: c.not_stored.load(Relaxed),
        not_modified: c.not_modified.load(Relaxed),
        revalidated: c.revalidated.load(Relaxed),
        bypassed: c.bypassed.load(Relaxed),
    }
}
