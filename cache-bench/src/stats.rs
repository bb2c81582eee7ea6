//! Percentiles of timings.

use serde::{Deserialize, Serialize};

/// A summary of timings, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// How many timings.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The slowest.
    pub max: f64,
}

impl Latency {
    /// The summary of `samples` (nanoseconds); all zero when empty.
    pub fn of(mut samples: Vec<f64>) -> Self {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        Latency {
            n,
            mean: samples.iter().sum::<f64>() / n as f64,
            p50: percentile(&samples, 0.50),
            p90: percentile(&samples, 0.90),
            p99: percentile(&samples, 0.99),
            p999: percentile(&samples, 0.999),
            max: samples[n - 1],
        }
    }

    /// The summary of integer nanosecond timings.
    pub fn of_ns(samples: &[u64]) -> Self {
        Latency::of(samples.iter().map(|&ns| ns as f64).collect())
    }
}

/// The nearest-rank percentile `q` (0..=1) of sorted, non-empty `sorted`.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 0.999), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        let l = Latency::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((l.n, l.p50, l.max, l.mean), (3, 2.0, 3.0, 2.0));
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }
}
