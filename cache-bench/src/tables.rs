//! The tables printed at the end of a run, and the summary of the issue's
//! targets with PASS or MISS.

use crate::redis_hits::TASKS;
use crate::report::{ratio, us, Report};
use crate::sizes::Sizes;
use crate::stats::Latency;

/// One target of the issue, measured.
#[derive(Debug, Clone)]
pub struct Check {
    /// The target, as the issue states it.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// PASS (`Some(true)`), MISS (`Some(false)`), or not measured.
    pub pass: Option<bool>,
}

fn heading(title: &str) {
    println!("\n== {title}");
}

/// The Redis hit latencies.
pub fn redis_hits(r: &Report, sizes: &Sizes) {
    heading(&format!(
        "Redis hit: 100-byte String, one task on a 2-worker runtime, {} timed calls per row \
         (interleaved call by call, in a shuffled order), per-call timings in µs",
        sizes.redis_samples
    ));
    let Some(raw) = r.lat("redis.hit.raw") else {
        println!("(not measured)");
        return;
    };
    println!(
        "{:<50} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>12}",
        "", "p50", "p90", "p99", "p99.9", "max", "p50/raw", "p99 - raw"
    );
    for id in [
        "redis.hit.raw",
        "redis.hit.ours",
        "redis.hit.cached",
        "redis.hit.raw_other",
        "redis.hit.raw_mux",
        "redis.hit.raw_mget",
        "redis.hit.raw_decode",
        "redis.hit.raw_spawn",
    ] {
        if let (Some(row), Some(l)) = (r.get(id), r.lat(id)) {
            println!(
                "{:<50} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>12}",
                row.label,
                us(l.p50),
                us(l.p90),
                us(l.p99),
                us(l.p999),
                us(l.max),
                ratio(l.p50, raw.p50),
                format!("{:+.2}", (l.p99 - raw.p99) / 1e3)
            );
        }
    }
}

/// The Redis throughput table.
pub fn redis_throughput(r: &Report, sizes: &Sizes) {
    heading(&format!(
        "Redis hit throughput: N tasks on one 2-worker runtime, calls/s over {} window(s) of {:?}",
        sizes.windows, sizes.window
    ));
    print!("{:<50}", "");
    for t in TASKS {
        print!(" {:>10} {:>7}", format!("{t} tasks"), "vs raw");
    }
    println!();
    for op in crate::redis_hits::THROUGHPUT_ROWS {
        let Some(row) = r.get(&format!("redis.tp.{op}.1")) else {
            continue;
        };
        print!("{:<50}", row.label);
        for t in TASKS {
            let rate = r.rate_of(&format!("redis.tp.{op}.{t}")).unwrap_or(0.0);
            let raw = r.rate_of(&format!("redis.tp.raw.{t}")).unwrap_or(0.0);
            print!(" {:>10.0} {:>7}", rate, ratio(rate, raw));
        }
        println!();
    }
}

/// The in-process hit table.
pub fn in_process(r: &Report, sizes: &Sizes) {
    heading(&format!(
        "In-process hit: {} keys cycled, {} calls per row in batches of {} \
         (percentiles of per-batch means), ns per call; then 1 and 2 threads at once, \
         million calls/s",
        sizes.hit_keys,
        sizes.in_process_calls,
        crate::measure::BATCH
    ));
    for (ty, ty_label) in crate::in_process::TYPES {
        println!("-- {ty_label} result");
        println!(
            "{:<52} {:>7} {:>7} {:>7} {:>9} {:>8} {:>8} {:>9}",
            "", "p50", "p90", "p99", "p50/cached", "1 thr", "2 thr", "2t/cached"
        );
        for name in [
            "ours",
            "ours_async",
            "local",
            "local_redis",
            "local_redis_cached",
            "cached",
            "cached_ttl",
            "quick",
            "keyderive",
            "key_canonical",
            "key_blake3",
            "key_entry",
            "tier_get",
        ] {
            let id = format!("mem.{name}.{ty}");
            let (Some(row), Some(l)) = (r.get(&id), r.lat(&id)) else {
                continue;
            };
            let peer_of = peer_of(name);
            let peer = r.lat(&format!("mem.{peer_of}.{ty}"));
            let peer2 = r.rate_of(&format!("mem2.{peer_of}.{ty}"));
            let one = r.rate_of(&format!("mem1.{name}.{ty}"));
            let two = r.rate_of(&format!("mem2.{name}.{ty}"));
            let mcalls = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{:.1}", x / 1e6));
            println!(
                "{:<52} {:>7.1} {:>7.1} {:>7.1} {:>9} {:>8} {:>8} {:>9}",
                row.label,
                l.p50,
                l.p90,
                l.p99,
                peer.map_or("-".to_owned(), |p| ratio(l.p50, p.p50)),
                mcalls(one),
                mcalls(two),
                match (two, peer2) {
                    (Some(a), Some(b)) => ratio(a, b),
                    _ => "-".to_owned(),
                }
            );
        }
    }
}

/// The row `cached`'s default `#[cached]` that in-process row `name` is
/// compared with: the one measured in the same process and rounds (the
/// typed tier on Redis runs in the Redis part's process, which measures
/// its own).
fn peer_of(name: &str) -> &'static str {
    if name.starts_with("local_redis") {
        "local_redis_cached"
    } else {
        "cached"
    }
}

/// The miss cost table.
pub fn misses(r: &Report, sizes: &Sizes) {
    heading(&format!(
        "Miss: compute (a 100-byte String) plus store, against calling the function directly; \
         {} calls per row, per-call timings in µs",
        sizes.miss_samples
    ));
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>14}",
        "", "p50", "p99", "mean", "p50 - direct"
    );
    for (direct, rows) in [
        (
            "redis.miss.direct",
            [
                "redis.miss.direct",
                "redis.miss.ours",
                "redis.miss.cached",
                "",
            ],
        ),
        (
            "memmiss.direct",
            [
                "memmiss.direct",
                "memmiss.ours",
                "memmiss.local",
                "memmiss.cached",
            ],
        ),
    ] {
        let Some(base) = r.lat(direct) else {
            continue;
        };
        println!(
            "-- {}",
            if direct.starts_with("redis") {
                "Redis (async fn)"
            } else {
                "in process (sync fn)"
            }
        );
        for id in rows {
            if let (Some(row), Some(l)) = (r.get(id), r.lat(id)) {
                println!(
                    "{:<52} {:>8} {:>8} {:>8} {:>14}",
                    row.label,
                    us(l.p50),
                    us(l.p99),
                    us(l.mean),
                    format!("{:+.2}", (l.p50 - base.p50) / 1e3)
                );
            }
        }
    }
}

/// The flush table.
pub fn flush(r: &Report, sizes: &Sizes) {
    heading(&format!(
        "Flush: a {}-key namespace in a Redis holding {} keys",
        sizes.flush_keys,
        sizes.flush_keys + sizes.other_keys
    ));
    for id in [
        "flush.load",
        "flush.dbsize",
        "flush.call",
        "flush.invisible_after",
        "flush.invisible_before",
        "flush.left",
        "flush.reclaim",
        "flush.reclaimed",
    ] {
        if let (Some(row), Some(v)) = (r.get(id), r.value_of(id)) {
            println!("{:<66} {:>12.2}", row.label, v);
        }
    }
    if let Some(l) = r.lat("flush.repeat") {
        println!(
            "{:<66} {:>12}",
            format!(
                "flush_namespace call, small database, p50 / p99 of {} (µs)",
                l.n
            ),
            format!("{} / {}", us(l.p50), us(l.p99))
        );
    }
    println!("-- concurrent GETs, µs");
    println!(
        "{:<62} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "", "n", "p50", "p99", "p99.9", "max"
    );
    for who in ["raw", "ours"] {
        for phase in ["before", "flush", "reclaim"] {
            let id = format!("flush.get.{who}.{phase}");
            if let (Some(row), Some(l)) = (r.get(&id), r.lat(&id)) {
                println!(
                    "{:<62} {:>8} {:>8} {:>8} {:>8} {:>9}",
                    row.label,
                    l.n,
                    us(l.p50),
                    us(l.p99),
                    us(l.p999),
                    us(l.max)
                );
            }
        }
    }
}

/// The targets against what was measured.
pub fn checks(r: &Report) -> Vec<Check> {
    let mut out = Vec::new();
    let mut check = |target: &str, measured: Option<(String, bool)>| {
        out.push(match measured {
            Some((measured, pass)) => Check {
                target: target.to_owned(),
                measured,
                pass: Some(pass),
            },
            None => Check {
                target: target.to_owned(),
                measured: "not measured".to_owned(),
                pass: None,
            },
        });
    };
    let raw = r.lat("redis.hit.raw");
    let ours = r.lat("redis.hit.ours");
    let peer = r.lat("redis.hit.cached");
    check(
        "Redis hit p50 <= 1.05x raw GET p50",
        raw.zip(ours).map(|(raw, ours)| {
            let x = ours.p50 / raw.p50;
            (
                format!("{x:.3}x ({} vs {} µs)", us(ours.p50), us(raw.p50)),
                x <= 1.05,
            )
        }),
    );
    check(
        "Redis hit p50 ratio no worse than cached's",
        raw.zip(ours).zip(peer).map(|((raw, ours), peer)| {
            let (a, b) = (ours.p50 / raw.p50, peer.p50 / raw.p50);
            (format!("ours {a:.3}x, cached {b:.3}x"), a <= b)
        }),
    );
    check(
        "Redis hit p99 <= raw p99 + 10 µs",
        raw.zip(ours).map(|(raw, ours)| {
            let d = (ours.p99 - raw.p99) / 1e3;
            (
                format!("{d:+.2} µs ({} vs {} µs)", us(ours.p99), us(raw.p99)),
                d <= 10.0,
            )
        }),
    );
    for tasks in [16, 256] {
        let got = r
            .rate_of(&format!("redis.tp.ours.{tasks}"))
            .zip(r.rate_of(&format!("redis.tp.raw.{tasks}")));
        let others = [
            ("raw_other", "the other raw connection"),
            ("raw_mux", "one with Nagle on"),
        ];
        check(
            &format!("throughput >= 0.85x raw GET (same kind of connection), {tasks} tasks"),
            got.map(|(ours, raw)| {
                let x = ours / raw;
                let also: String = others
                    .iter()
                    .filter_map(|(id, what)| {
                        let other = r.rate_of(&format!("redis.tp.{id}.{tasks}"))?;
                        Some(format!("; {:.3}x {what}", ours / other))
                    })
                    .collect();
                (
                    format!("{x:.3}x ({ours:.0} vs {raw:.0} calls/s){also}"),
                    x >= 0.85,
                )
            }),
        );
    }
    for (name, what) in [
        ("ours", "#[cached] memory backend"),
        ("local", "#[cached(local_ttl)] memory"),
        ("local_redis", "#[cached(local_ttl)] on Redis"),
    ] {
        for (ty, ty_label) in crate::in_process::TYPES {
            let ours = r.lat(&format!("mem.{name}.{ty}"));
            check(
                &format!("memory-tier hit p50 <= 100 ns: {what}, {ty_label}"),
                ours.map(|l| (format!("{:.1} ns", l.p50), l.p50 <= 100.0)),
            );
            let peer = r.lat(&format!("mem.{}.{ty}", peer_of(name)));
            check(
                &format!("  no slower than cached #[cached], 1 thread: {what}, {ty_label}"),
                ours.zip(peer).map(|(o, p): (Latency, Latency)| {
                    (
                        format!("{:.1} vs {:.1} ns ({})", o.p50, p.p50, ratio(o.p50, p.p50)),
                        o.p50 <= p.p50,
                    )
                }),
            );
            let two = r
                .rate_of(&format!("mem2.{name}.{ty}"))
                .zip(r.rate_of(&format!("mem2.{}.{ty}", peer_of(name))));
            check(
                &format!("  faster than cached #[cached], 2 threads: {what}, {ty_label}"),
                two.map(|(o, p)| {
                    (
                        format!(
                            "{:.1} vs {:.1} M calls/s ({})",
                            o / 1e6,
                            p / 1e6,
                            ratio(o, p)
                        ),
                        o > p,
                    )
                }),
            );
        }
    }
    let rtt = r.lat("flush.get.raw.before").map(|l| l.p50);
    check(
        "flush: invisible within one round trip",
        rtt.zip(r.value_of("flush.invisible_after"))
            .zip(r.value_of("flush.invisible_before"))
            .map(|((rtt, after), before)| {
                let rtt = rtt / 1e3;
                (
                    format!(
                        "between {after:.1} and {before:.1} µs after the call started; \
                         RTT (raw GET p50) {rtt:.1} µs"
                    ),
                    after <= rtt,
                )
            }),
    );
    for (who, what) in [("raw", "raw GETs"), ("ours", "memocache reads")] {
        check(
            &format!("flush: concurrent GET p99 <= 2 ms during the reclaim ({what})"),
            r.lat(&format!("flush.get.{who}.reclaim"))
                .filter(|l| l.n > 0)
                .map(|l| {
                    (
                        format!("p99 {} µs, max {} µs, n = {}", us(l.p99), us(l.max), l.n),
                        l.p99 <= 2e6,
                    )
                }),
        );
    }
    out
}

/// Prints the summary of targets.
pub fn summary(checks: &[Check]) {
    heading("Targets (issue section 2)");
    for c in checks {
        let v = match c.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "-",
        };
        println!("{:<4}  {:<72} {}", v, c.target, c.measured);
    }
}
