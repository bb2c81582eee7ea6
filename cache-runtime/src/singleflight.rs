//! Single-flight: concurrent misses on one key share one computation.
//!
//! The first caller of a key leads: it computes and publishes the value;
//! the others wait on the flight's lock, then take the published value. If
//! the leader is cancelled or panics, its lock guard drops without a value
//! and the next waiter leads instead (the approach of moka's value
//! initialiser). An async mutex makes it work for async callers and, through
//! `blocking::block_on`, for sync ones.
//!
//! A flight is identified by the full key (generation included) and the
//! state the leader observed (absent, or the stamp of a tombstone): a caller
//! that arrives after a flush or a removal never joins a computation that
//! started before it.
//!
//! A finished flight whose value was stored stays joinable for a short grace
//! time: a caller whose read missed just before the value was stored then
//! takes the value instead of computing it again.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A value shared between the leader and the waiters of a flight.
pub type Shared = Arc<dyn Any + Send + Sync>;

/// `None` while the flight runs; then `Some` of the published outcome.
type Slot = Arc<AsyncMutex<Option<Option<Shared>>>>;

#[derive(Debug)]
struct Flight {
    slot: Slot,
    /// Set when the flight finished with a stored value: joinable until then.
    joinable_until: Option<Instant>,
}

const SHARDS: usize = 16;
/// A shard with more flights than this drops its expired finished ones.
const TIDY_ABOVE: usize = 64;

/// The flights in progress, by flight key.
#[derive(Debug)]
pub struct Flights {
    shards: [Mutex<HashMap<String, Flight>>; SHARDS],
    hasher: RandomState,
}

/// What joining a flight gives.
pub enum Joined<'a> {
    /// The flight ended: with a value to share, or with none (the outcome
    /// was not cacheable), in which case the caller computes on its own.
    Done(Option<Shared>),
    /// This caller computes; it must [`Leader::publish`] the value.
    Leader(Leader<'a>),
}

/// The right and duty to compute a flight's value.
pub struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    slot: Slot,
    guard: Option<OwnedMutexGuard<Option<Option<Shared>>>>,
}

impl Default for Flights {
    fn default() -> Self {
        Flights {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            hasher: RandomState::new(),
        }
    }
}

impl Flights {
    fn shard(&self, key: &str) -> &Mutex<HashMap<String, Flight>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// Joins the flight of `key`, starting it if there is none.
    pub async fn join(&self, key: String) -> Joined<'_> {
        let slot = {
            let mut shard = self.shard(&key).lock();
            let now = Instant::now();
            let flight = shard.entry(key.clone()).or_insert_with(|| Flight {
                slot: Slot::default(),
                joinable_until: None,
            });
            if flight.joinable_until.is_some_and(|t| t <= now) {
                *flight = Flight {
                    slot: Slot::default(),
                    joinable_until: None,
                };
            }
            flight.slot.clone()
        };
        let guard = slot.clone().lock_owned().await;
        match guard.as_ref() {
            Some(value) => Joined::Done(value.clone()),
            None => Joined::Leader(Leader {
                flights: self,
                key,
                slot,
                guard: Some(guard),
            }),
        }
    }

    /// Leads a new flight of `key`, unless one is in progress: for work that
    /// is optional (an early refresh), which nobody waits for.
    pub fn lead_if_idle(&self, key: String) -> Option<Leader<'_>> {
        let mut shard = self.shard(&key).lock();
        if shard.get(&key).is_some_and(|f| f.joinable_until.is_none()) {
            return None;
        }
        let slot = Slot::default();
        let guard = slot.clone().try_lock_owned().ok()?;
        shard.insert(
            key.clone(),
            Flight {
                slot: slot.clone(),
                joinable_until: None,
            },
        );
        Some(Leader {
            flights: self,
            key,
            slot,
            guard: Some(guard),
        })
    }

    /// How many flights are in progress.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Whether no flight is in progress.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends the flight of `key` if `slot` is still its flight: it is dropped,
    /// or kept joinable for `grace`.
    fn end(&self, key: &str, slot: &Slot, grace: Option<Duration>) {
        let mut shard = self.shard(key).lock();
        let now = Instant::now();
        match shard.get_mut(key) {
            Some(f) if Arc::ptr_eq(&f.slot, slot) => match grace {
                Some(grace) => f.joinable_until = Some(now + grace),
                None => {
                    shard.remove(key);
                }
            },
            _ => {}
        }
        if shard.len() > TIDY_ABOVE {
            shard.retain(|_, f| f.joinable_until.is_none_or(|t| t > now));
        }
    }
}

impl Leader<'_> {
    /// Hands `value` to every waiter and ends the flight (`None`: nothing to
    /// share; the waiters compute on their own, as they would uncached).
    /// With a `grace`, callers arriving within it take `value` too: give one
    /// only when the value was stored, and no longer than its TTL.
    pub fn publish(mut self, value: Option<Shared>, grace: Option<Duration>) {
        if let Some(mut guard) = self.guard.take() {
            *guard = Some(value);
            self.flights.end(&self.key, &self.slot, grace);
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            // Cancelled or panicked: new callers start a new flight; waiters
            // already queued lead in turn.
            self.flights.end(&self.key, &self.slot, None);
            drop(guard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// One caller; a leader computes for 20 ms, and also until `arrived`
    /// reaches `all` (when given), so that callers spawned late on a busy
    /// machine still find the flight under way.
    async fn run_until(
        flights: &Flights,
        runs: &AtomicUsize,
        arrived: Option<(&AtomicUsize, usize)>,
    ) -> u64 {
        if let Some((arrived, _)) = arrived {
            arrived.fetch_add(1, Ordering::SeqCst);
        }
        match flights.join("k".into()).await {
            Joined::Done(v) => *v.unwrap().downcast_ref::<u64>().unwrap(),
            Joined::Leader(leader) => {
                runs.fetch_add(1, Ordering::SeqCst);
                if let Some((arrived, all)) = arrived {
                    while arrived.load(Ordering::SeqCst) < all {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                leader.publish(Some(Arc::new(7u64)), None);
                7
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_computation_for_many_callers() {
        let flights = Arc::new(Flights::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let arrived = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (f, r, a) = (flights.clone(), runs.clone(), arrived.clone());
                tokio::spawn(async move { run_until(&f, &r, Some((&a, 200))).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flights.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(leader) = flights.join("k".into()).await else {
            panic!("first caller leads");
        };
        let f2 = flights.clone();
        let waiter = tokio::spawn(async move {
            match f2.join("k".into()).await {
                Joined::Leader(l) => {
                    l.publish(Some(Arc::new(1u8)), None);
                    "took over"
                }
                Joined::Done(_) => "got a value",
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(leader);
        assert_eq!(waiter.await.unwrap(), "took over");
    }
}
