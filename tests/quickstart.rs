//! The README's first command, run for real: on the embedded default, and
//! twice against a real Redis, where the second process hits what the first
//! one computed.

use std::process::Command;

use memocache_testkit::{shared, unique};

/// Runs the quickstart example with `env`, returning its output lines.
fn run_quickstart(env: &[(&str, &str)]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "-q", "--example", "quickstart"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MEMOCACHE_URL")
        .env_remove("MEMOCACHE_PREFIX");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run cargo");
    assert!(
        out.status.success(),
        "quickstart failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn outcome(lines: &[String], label: &str) -> &'static str {
    let line = lines
        .iter()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in {lines:#?}"));
    if line.contains(" hit ") {
        "hit"
    } else if line.contains(" miss ") {
        "miss"
    } else {
        panic!("neither hit nor miss: {line}")
    }
}

#[test]
fn quickstart_shows_miss_hit_flush_recompute_in_memory() {
    let lines = run_quickstart(&[]);
    assert!(lines[0].contains("memory://"), "{lines:#?}");
    assert_eq!(outcome(&lines, "first call"), "miss");
    assert_eq!(outcome(&lines, "second call"), "hit");
    assert!(lines.iter().any(|l| l.contains("flushed namespace")));
    assert_eq!(outcome(&lines, "after the flush"), "miss");
    assert_eq!(outcome(&lines, "and again"), "hit");
}

#[test]
fn quickstart_on_redis_stores_visible_keys_shared_by_processes() {
    let server = shared();
    let prefix = unique("quickstart");
    let env = [
        ("MEMOCACHE_URL", server.url()),
        ("MEMOCACHE_PREFIX", prefix.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let first = run_quickstart(&env);
    assert!(first[0].contains("redis://127.0.0.1"), "{first:#?}");
    assert_eq!(outcome(&first, "first call"), "miss");
    assert_eq!(outcome(&first, "second call"), "hit");
    assert_eq!(outcome(&first, "after the flush"), "miss");
    let keys = server.keys(&format!("{prefix}:quickstart:"));
    assert_eq!(keys.len(), 2, "the generation and one entry: {keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(":gen")));
    assert!(
        keys.iter().any(|k| k.contains(":quickstart::slow_square:")),
        "{keys:?}"
    );

    // Another OS process: its very first call is a hit on what the first
    // process computed.
    let second = run_quickstart(&env);
    assert_eq!(outcome(&second, "first call"), "hit");
}
