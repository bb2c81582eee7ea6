//! Timing loops.
//!
//! - Remote calls (tens of µs) are timed one by one: `Instant` around each
//!   `.await`, which costs ~25 ns, nothing next to a round trip.
//! - In-process hits (tens of ns) are timed in batches of [`BATCH`] calls:
//!   timing each call would add the clock's own cost to every sample. Their
//!   percentiles are those of the per-call means of the batches.
//! - Rows that are compared run interleaved: remote calls call by call, in
//!   an order shuffled for every cycle (see [`latencies`]); in-process
//!   batches in rounds, each round in a rotated order. On a machine shared
//!   with other work, a burst of load then spreads over every row instead
//!   of skewing one.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// A multi-thread tokio runtime with `workers` worker threads, I/O and
/// timers on: what every async measurement runs on.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Calls per timed batch of in-process hits.
pub const BATCH: usize = 64;

/// The future of one call, boxed so rows of different types share a list.
pub type BoxFut = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An async operation under test, called with a key index.
#[derive(Clone)]
pub struct AsyncOp {
    /// The row id (see [`crate::report::Row::id`]).
    pub id: String,
    /// What it is, for people.
    pub label: String,
    call: Arc<dyn Fn(u64) -> BoxFut + Send + Sync>,
}

impl AsyncOp {
    /// An operation running `f(key)`.
    pub fn new<F, Fut>(id: &str, label: &str, f: F) -> Self
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        AsyncOp {
            id: id.to_owned(),
            label: label.to_owned(),
            call: Arc::new(move |key| Box::pin(f(key))),
        }
    }

    /// One call.
    pub fn call(&self, key: u64) -> BoxFut {
        (self.call)(key)
    }
}

/// Per-call timings (ns) of each of `ops`, `samples` each, after `warmup`
/// untimed calls each, interleaved call by call: each cycle calls every op
/// once (with the same key), in an order shuffled anew for every cycle.
///
/// Why call by call: in blocks of thousands of calls per row, the machine's
/// drift between blocks (other load, frequency, which worker a connection's
/// task sits on) showed as differences between rows: two raw `GET` rows of
/// the same command on like connections differed by 11% in one run. Call by
/// call, every row sees the same moments, and each call runs after a random
/// other row (no row always follows the same one, whose code it would find
/// warm or cold).
pub async fn latencies(ops: &[AsyncOp], keys: u64, warmup: usize, samples: usize) -> Vec<Vec<u64>> {
    for op in ops {
        for i in 0..warmup {
            op.call(i as u64 % keys).await;
        }
    }
    let mut out: Vec<Vec<u64>> = ops.iter().map(|_| Vec::with_capacity(samples)).collect();
    let mut order: Vec<usize> = (0..ops.len()).collect();
    let mut shuffle = Shuffle::new();
    for i in 0..samples {
        shuffle.permute(&mut order);
        let key = i as u64 % keys;
        for &at in &order {
            let started = Instant::now();
            ops[at].call(key).await;
            out[at].push(started.elapsed().as_nanos() as u64);
        }
    }
    out
}

/// A small fixed-seed generator of permutations (xorshift64): the same
/// orders every run.
struct Shuffle(u64);

impl Shuffle {
    fn new() -> Self {
        Shuffle(0x9e37_79b9_7f4a_7c15)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Fisher-Yates.
    fn permute<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Calls per second of `op` run by `tasks` tasks on the current runtime for
/// `window`, each task calling in a loop.
pub async fn throughput(op: &AsyncOp, tasks: usize, keys: u64, window: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut calls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    op.call((t as u64 * 7 + calls) % keys).await;
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = 0;
    for handle in handles {
        calls += handle.await.expect("a throughput task panicked");
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

/// Runs one timed batch: from a start key, `len` calls; returns the time
/// the calls took.
pub type Batch<'a> = Box<dyn FnMut(u64, usize) -> Duration + 'a>;

/// A batch of calls of a sync function, cycling through `keys` keys.
pub fn sync_batch<'a, T>(keys: u64, f: impl Fn(u64) -> T + 'a) -> Batch<'a> {
    Box::new(move |first, len| {
        let started = Instant::now();
        for i in 0..len as u64 {
            black_box(f(black_box((first + i) % keys)));
        }
        started.elapsed()
    })
}

/// A batch of calls of an async function polled on `rt` (timed inside the
/// runtime, so entering it is not counted).
pub fn async_batch<'a, T, Fut>(
    rt: &'a tokio::runtime::Runtime,
    keys: u64,
    f: impl Fn(u64) -> Fut + 'a,
) -> Batch<'a>
where
    Fut: Future<Output = T>,
{
    Box::new(move |first, len| {
        rt.block_on(async {
            let started = Instant::now();
            for i in 0..len as u64 {
                black_box(f(black_box((first + i) % keys)).await);
            }
            started.elapsed()
        })
    })
}

/// Per-call means (ns) of batches of [`BATCH`] calls of each row, `calls`
/// calls per row, interleaved over `rounds` (a warm-up batch per row first).
pub fn batched(rows: &mut [Batch<'_>], calls: usize, rounds: usize) -> Vec<Vec<f64>> {
    for row in rows.iter_mut() {
        row(0, BATCH * 16);
    }
    let batches = calls.div_ceil(BATCH);
    let per_round = batches.div_ceil(rounds.max(1));
    let mut out: Vec<Vec<f64>> = rows.iter().map(|_| Vec::with_capacity(batches)).collect();
    for round in 0..rounds.max(1) {
        for j in 0..rows.len() {
            let at = (j + round) % rows.len();
            for b in 0..per_round {
                let took = rows[at]((b * BATCH) as u64, BATCH);
                out[at].push(took.as_nanos() as f64 / BATCH as f64);
            }
        }
    }
    out
}

/// Calls per second of `f` on `threads` OS threads at once for `window`,
/// each thread cycling through its share of `keys`.
pub fn threaded<T>(
    threads: usize,
    keys: u64,
    window: Duration,
    f: impl Fn(u64) -> T + Sync,
) -> f64 {
    let barrier = Barrier::new(threads);
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    let deadline = Instant::now() + window;
                    let mut calls = 0u64;
                    let offset = t as u64 * keys / threads as u64;
                    while Instant::now() < deadline {
                        for i in 0..256 {
                            black_box(f((offset + calls + i) % keys));
                        }
                        calls += 256;
                    }
                    calls
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread panicked"))
            .sum()
    });
    total as f64 / window.as_secs_f64()
}

/// Per-call timings (ns) of `n` calls of a sync function, call `i` getting `i`.
pub fn per_call_sync<T>(n: usize, mut f: impl FnMut(u64) -> T) -> Vec<u64> {
    (0..n as u64)
        .map(|i| {
            let started = Instant::now();
            black_box(f(i));
            started.elapsed().as_nanos() as u64
        })
        .collect()
}
