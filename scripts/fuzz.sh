#!/usr/bin/env bash
# Fuzzes the envelope decoder and the canonical key encoder for a bounded
# time each (default 60 s; first argument to change it), in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
export MEMOCACHE_FUZZ_SECONDS="${1:-60}"
cargo test --release -p memocache-runtime --test fuzz -- --nocapture --test-threads 1 2>&1 | grep -oE "fuzz [a-z ]+: [0-9]+ cases, [0-9]+ failures|test result.*|panicked.*"
