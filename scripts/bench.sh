#!/usr/bin/env bash
# Every benchmark, side by side in one run (needs the test servers: scripts/setup-test-servers.sh).
# Output is Markdown tables, pasted into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup-test-servers.sh)"
cargo bench --features testkit --bench engine
cargo bench --features testkit --bench tui
cargo bench --features testkit --bench scan
cargo bench --features testkit --bench storage
cargo bench --features testkit --bench mongo -- --runs 1000000 --workspaces 100000 --revisions 50000
# First frame of the real binary in a real terminal (tmux, 80×24): time from exec to the
# first drawn border, 5 runs.
cargo build --release --quiet
for i in 1 2 3 4 5; do
  tmux kill-session -t rcbench 2>/dev/null || true
  start=$(date +%s%N)
  tmux new-session -d -s rcbench -x 80 -y 24 "target/release/registry-cleaner tui --demo"
  until tmux capture-pane -p -t rcbench 2>/dev/null | grep -q "Categories"; do sleep 0.002; done
  end=$(date +%s%N)
  echo "first frame (exec -> 'Categories' on screen): $(( (end - start) / 1000000 )) ms"
  tmux kill-session -t rcbench
done
