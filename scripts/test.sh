#!/usr/bin/env bash
# Runs every test of the workspace against real servers, then the lints.
# Installs redis-server first when it is missing (with apt-get, as root);
# otherwise says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests start real servers: redis-server, and openssl to make TLS certificates.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing ${missing[*]} (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "Missing: ${missing[*]}. Install (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run again." >&2
        exit 1
    fi
fi
echo "== $(redis-server --version)"

echo "== cargo test"
cargo test --workspace --all-features

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
