#!/usr/bin/env bash
# The whole test suite: installs the real test servers (cached under ~/.cache), then runs
# every test. Integration tests start their own servers on free loopback ports and FAIL when
# a server is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup-test-servers.sh)"
cargo fmt --all -- --check
cargo clippy --all-targets --features testkit --quiet -- -D warnings
# The shipped build (no test kit) must compile and lint clean too.
cargo clippy --quiet -- -D warnings
# Benches are compiled by clippy above; `cargo test` runs lib, bin and integration tests.
cargo test --features testkit "$@"
