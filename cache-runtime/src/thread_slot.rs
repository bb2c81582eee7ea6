//! A small index per live thread, for per-thread data kept in arrays (the
//! hit counters) and to bound how many threads keep a front of a local tier: each live thread holds a
//! distinct index below [`MAX_THREADS`], taken from a free list when it
//! first asks and given back when it exits. Threads past that many get
//! none and use shared structures instead.

use std::sync::Mutex;

/// How many threads at once can hold an index.
pub(crate) const MAX_THREADS: usize = 64;

/// The free indexes, and the next never used.
static FREE: Mutex<(Vec<usize>, usize)> = Mutex::new((Vec::new(), 0));

pub(crate) struct Held {
    pub(crate) index: Option<usize>,
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
    };
}

/// This thread's index, if it has one (and its thread-locals are not being
/// torn down). Indexes pass from an exiting thread to a new one through a
/// mutex, which orders the two threads' accesses to what the index guards.
#[inline]
pub(crate) fn index() -> Option<usize> {
    HELD.try_with(|held| held.index).ok().flatten()
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
}
