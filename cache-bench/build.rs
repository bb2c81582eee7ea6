//! Reads the versions of the peers out of the workspace's `Cargo.lock`, so
//! the table always names the versions it was built with.

use std::path::Path;

/// The packages whose versions the table prints.
const PEERS: &[&str] = &[
    "cached",
    "redis",
    "quick_cache",
    "tokio",
    "serde_json",
    "rmp-serde",
    "lz4_flex",
];

fn main() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let versions: Vec<String> = PEERS
        .iter()
        .map(|peer| format!("{peer}={}", versions_of(&text, peer)))
        .collect();
    println!(
        "cargo:rustc-env=MEMOCACHE_BENCH_PEERS={}",
        versions.join(";")
    );
}

/// Every locked version of `name`, joined with `/` ("?" when not locked).
fn versions_of(lock: &str, name: &str) -> String {
    let wanted = format!("name = \"{name}\"");
    let mut found = Vec::new();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                found.push(version.to_owned());
            }
        }
    }
    if found.is_empty() {
        "?".to_owned()
    } else {
        found.join("/")
    }
}
