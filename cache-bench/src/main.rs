//! The benchmark table of memocache against raw redis-rs, the `cached`
//! crate and quick_cache.
//!
//! ```text
//! cargo run --release -p memocache-bench              # full run, a few minutes
//! cargo run --release -p memocache-bench -- --quick   # smoke run, tiny sizes
//! cargo run --release -p memocache-bench -- --only redis,memory
//! MEMOCACHE_REDIS_CALLER_RUNTIME=0 cargo run --release -p memocache-bench -- --only redis
//! ```
//!
//! The global cache of a process is set up once, so each part runs in a
//! process of its own: this binary re-runs itself with `--child MODE`, and
//! the child prints its rows as one JSON line. Each Redis part gets its own
//! `redis-server` on a free loopback port (memocache-testkit), stopped at the
//! end.

use std::process::{Command, Stdio};
use std::time::Instant;

use memocache_bench::report::Report;
use memocache_bench::sizes::Sizes;
use memocache_bench::{codecs, flush, in_process, peer_version, redis_hits, tables};
use memocache_testkit::RedisServer;

const PARTS: [&str; 4] = ["redis", "memory", "flush", "codecs"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: memocache-bench [--quick] [--only {}]",
            PARTS.join(",")
        );
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    if let Some(mode) = value_of(&args, "--child") {
        let url = value_of(&args, "--url").unwrap_or_default();
        let report = match mode.as_str() {
            "redis" => redis_hits::run(&url, sizes),
            "memory" => in_process::run(sizes),
            "flush" => flush::run(&url, sizes),
            other => panic!("unknown child mode {other}"),
        };
        println!("{}", report.to_line());
        return;
    }
    let only = value_of(&args, "--only");
    let parts: Vec<&str> = PARTS
        .into_iter()
        .filter(|p| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|x| x == *p))
        })
        .collect();
    run(sizes, &parts);
}

fn value_of(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn run(sizes: Sizes, parts: &[&str]) {
    let started = Instant::now();
    header(&sizes);
    let mut report = Report::default();
    for part in parts.iter().filter(|p| **p != "codecs") {
        let part_started = Instant::now();
        eprintln!("== {part}");
        match *part {
            "redis" | "flush" => {
                let server = RedisServer::start();
                report.merge(child(part, Some(&server.url()), sizes.quick));
            }
            _ => report.merge(child(part, None, sizes.quick)),
        }
        eprintln!("   {part} took {:.1?}", part_started.elapsed());
    }
    let codec_rows = parts.contains(&"codecs").then(|| {
        let part_started = Instant::now();
        eprintln!("== codecs");
        let rows = codecs::run(sizes.codec_time);
        eprintln!("   codecs took {:.1?}", part_started.elapsed());
        rows
    });

    tables::redis_hits(&report, &sizes);
    tables::redis_throughput(&report, &sizes);
    tables::in_process(&report, &sizes);
    tables::misses(&report, &sizes);
    tables::flush(&report, &sizes);
    if let Some(rows) = codec_rows {
        println!("\n== Codecs: envelope size and mean encode/decode time (one thread)");
        codecs::print(&rows);
    }
    tables::summary(&tables::checks(&report));
    if !report.notes.is_empty() {
        println!("\n== Notes");
        for note in &report.notes {
            println!("- {note}");
        }
    }
    println!(
        "\n{} run took {:.1?}; load average at the end: {}",
        if sizes.quick { "quick" } else { "full" },
        started.elapsed(),
        load_average()
    );
}

fn header(sizes: &Sizes) {
    println!(
        "memocache benchmark, {}",
        if sizes.quick {
            "quick run (smoke test: sizes too small for the numbers to mean much)"
        } else {
            "full run"
        }
    );
    println!(
        "peers: cached {}, redis-rs {}, quick_cache {}; tokio {}, serde_json {}, rmp-serde {}, lz4_flex {}",
        peer_version("cached"),
        peer_version("redis"),
        peer_version("quick_cache"),
        peer_version("tokio"),
        peer_version("serde_json"),
        peer_version("rmp-serde"),
        peer_version("lz4_flex"),
    );
    let server = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("redis-server not runnable: {e}"));
    println!(
        "memocache's Redis commands: {} (MEMOCACHE_REDIS_CALLER_RUNTIME={})",
        if redis_hits::caller_runtime() {
            "on connections of the callers' runtimes (the default)"
        } else {
            "on its own I/O runtime's connection"
        },
        redis_hits::caller_runtime()
    );
    println!(
        "memocache's Redis connections: TCP_NODELAY {} (MEMOCACHE_REDIS_TCP_NODELAY={}); \
         the raw baseline's likewise",
        if redis_hits::tcp_nodelay() {
            "on (the default)"
        } else {
            "off: Nagle's algorithm on"
        },
        redis_hits::tcp_nodelay()
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "server: {server}; loopback TCP; {cores} cores; load average at the start: {}",
        load_average()
    );
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews
/// every number, so the table says how busy it was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Runs one part in a child process and returns its rows (or a note that
/// it failed, and no rows).
fn child(mode: &str, url: Option<&str>, quick: bool) -> Report {
    let exe = std::env::current_exe().expect("the path of this binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--child", mode]);
    if quick {
        cmd.arg("--quick");
    }
    if let Some(url) = url {
        // `cached`'s `redis = true` reads its URL from this variable.
        cmd.args(["--url", url])
            .env("CACHED_REDIS_CONNECTION_STRING", url);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .output();
    let mut report = Report::default();
    match out {
        Ok(out) if out.status.success() => {
            match Report::from_output(&String::from_utf8_lossy(&out.stdout)) {
                Some(r) => report = r,
                None => report.note(format!("the {mode} part printed no report")),
            }
        }
        Ok(out) => report.note(format!("the {mode} part failed ({})", out.status)),
        Err(e) => report.note(format!("the {mode} part could not start: {e}")),
    }
    report
}
