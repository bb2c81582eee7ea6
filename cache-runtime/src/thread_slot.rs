//! A small index per live thread, for per-thread data kept in arrays (the
//! fronts of local tiers, the local-hit counters): each live thread holds a
//! distinct index below [`MAX_THREADS`], taken from a free list when it
//! first asks and given back when it exits. Threads past that many get
//! none and use shared structures instead.

use std::cell::Cell;
use std::sync::Mutex;

/// How many threads at once can hold an index.
pub(crate) const MAX_THREADS: usize = 64;

/// The free indexes, and the next never used.
static FREE: Mutex<(Vec<usize>, usize)> = Mutex::new((Vec::new(), 0));

pub(crate) struct Held {
    pub(crate) index: Option<usize>,
    /// In a per-thread structure now (see `enter`).
    busy: Cell<bool>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(index) = self.index {
            if let Ok(mut free) = FREE.lock() {
                free.0.push(index);
            }
        }
    }
}

thread_local! {
    static HELD: Held = Held {
        index: {
            let mut free = FREE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match free.0.pop() {
                Some(index) => Some(index),
                None if free.1 < MAX_THREADS => {
                    free.1 += 1;
                    Some(free.1 - 1)
                }
                None => None,
            }
        },
        busy: Cell::new(false),
    };
}

/// This thread's index, if it has one (and its thread-locals are not being
/// torn down). Indexes pass from an exiting thread to a new one through a
/// mutex, which orders the two threads' accesses to what the index guards.
#[inline]
pub(crate) fn index() -> Option<usize> {
    HELD.try_with(|held| held.index).ok().flatten()
}

/// Runs `f` with this thread's index, unless it has none or is already in
/// `enter` (a `Clone` or `Drop` run inside `f` that calls back): the data
/// at the index is then borrowed by `f` alone.
#[inline]
pub(crate) fn enter<R>(f: impl FnOnce(usize) -> R) -> Option<R> {
    HELD.try_with(|held| {
        let index = held.index?;
        if held.busy.replace(true) {
            return None;
        }
        let _done = Done(&held.busy);
        Some(f(index))
    })
    .ok()
    .flatten()
}

/// Clears `busy` when `enter` ends, even by a panic.
struct Done<'a>(&'a Cell<bool>);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_threads_hold_distinct_indexes() {
        let barrier = std::sync::Barrier::new(8);
        let indexes: Vec<Option<usize>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let i = index();
                        barrier.wait();
                        i
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut held: Vec<usize> = indexes.into_iter().flatten().collect();
        let n = held.len();
        held.sort_unstable();
        held.dedup();
        assert_eq!(held.len(), n, "an index held twice");
        assert!(n >= 1);
    }

    #[test]
    fn enter_does_not_nest() {
        let outer = enter(|i| (i, enter(|_| ()).is_none()));
        if let Some((_, inner_refused)) = outer {
            assert!(inner_refused);
        }
        assert!(enter(|_| ()).is_some() || index().is_none());
    }
}
