//! How much each part measures: the full run (a few minutes) or `--quick`
//! (a smoke run of seconds, whose numbers are not meant to be read).

use std::time::Duration;

/// The sizes of one run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// `--quick`.
    pub quick: bool,
    /// Distinct keys the hit loops cycle through.
    pub hit_keys: u64,
    /// Untimed calls per row before measuring.
    pub warmup: usize,
    /// Timed calls per row for Redis latencies (per-call timings).
    pub redis_samples: usize,
    /// Rounds the in-process rows of one comparison are interleaved in, so
    /// that a neighbour's load spreads over every row instead of hitting
    /// one (remote rows are interleaved call by call).
    pub rounds: usize,
    /// Wall time of one throughput window (per row, task count and round).
    pub window: Duration,
    /// Throughput windows per row and task count.
    pub windows: usize,
    /// Timed calls per row for in-process hits (timed in batches).
    pub in_process_calls: usize,
    /// Misses timed per row.
    pub miss_samples: usize,
    /// Entries in the namespace that is flushed.
    pub flush_keys: usize,
    /// Other entries in the same Redis.
    pub other_keys: usize,
    /// How long concurrent GETs are timed before the flush.
    pub baseline: Duration,
    /// How long to wait for the background reclaim before giving up.
    pub reclaim_limit: Duration,
    /// Flushes of an empty namespace, timed for the flush call's percentiles.
    pub repeat_flushes: usize,
    /// Target time per codec measurement.
    pub codec_time: Duration,
}

impl Sizes {
    /// The full run.
    pub fn full() -> Self {
        Sizes {
            quick: false,
            hit_keys: 64,
            warmup: 2_000,
            redis_samples: 40_000,
            rounds: 8,
            window: Duration::from_millis(1_000),
            windows: 3,
            in_process_calls: 2_000_000,
            miss_samples: 10_000,
            flush_keys: 1_000_000,
            other_keys: 1_000_000,
            baseline: Duration::from_secs(2),
            reclaim_limit: Duration::from_secs(150),
            repeat_flushes: 500,
            codec_time: Duration::from_millis(200),
        }
    }

    /// The smoke run.
    pub fn quick() -> Self {
        Sizes {
            quick: true,
            hit_keys: 16,
            warmup: 100,
            redis_samples: 1_000,
            rounds: 2,
            window: Duration::from_millis(150),
            windows: 1,
            in_process_calls: 50_000,
            miss_samples: 300,
            flush_keys: 10_000,
            other_keys: 10_000,
            baseline: Duration::from_millis(200),
            reclaim_limit: Duration::from_secs(20),
            repeat_flushes: 20,
            codec_time: Duration::from_millis(10),
        }
    }
}
