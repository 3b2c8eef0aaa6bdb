#!/usr/bin/env bash
# The long race run (not in the test command): RC_RACE_TRIALS push trials and as many plain
# trials against a real registry; prints and writes the residual-window figures.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup-test-servers.sh)"
export RC_RACE_TRIALS="${RC_RACE_TRIALS:-200}"
export RC_RACE_REPORT="${RC_RACE_REPORT:-target/race-report.txt}"
cargo test --features testkit --test race -- --nocapture
cat "$RC_RACE_REPORT"
