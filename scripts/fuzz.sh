#!/usr/bin/env bash
# Long fuzzing runs of tests/fuzz.rs (not part of scripts/test.sh, whose `cargo test` runs
# each target for 256 cases from a fixed seed).
#
# Runs every `fuzz_*` target (one after the other, or RC_FUZZ_JOBS at a time) in release mode for a wall-clock budget
# (RC_FUZZ_MINUTES per target, default 10) from a random seed (RC_FUZZ_SEED to fix it), and
# prints per target the cases executed, the seconds taken and the failures (a failure is a
# failed property, a panic, or a crash such as a stack overflow). Full output per target goes
# to target/fuzz-logs/<time>/<target>.log; a failing target's log ends with the minimal input
# and the command that reproduces it. Exit status 1 when any target failed.
#
#   scripts/fuzz.sh                      # every target, 10 minutes each
#   RC_FUZZ_MINUTES=1 scripts/fuzz.sh    # 1 minute each
#   RC_FUZZ_JOBS=2 scripts/fuzz.sh      # two targets at a time
#   scripts/fuzz.sh recheck              # only targets whose name contains "recheck"
set -uo pipefail
cd "$(dirname "$0")/.."
minutes="${RC_FUZZ_MINUTES:-10}"
jobs="${RC_FUZZ_JOBS:-1}"
# A case cap far beyond what the budget reaches: the clock ends each run.
cases="${RC_FUZZ_CASES:-4000000000}"
filter="${1:-}"
build=(cargo test --release --features testkit --test fuzz)

# The test binary is run directly, so parallel targets (and other cargo builds) do not wait
# on cargo's build-directory lock.
bin=$("${build[@]}" --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "fuzz test binary not built" >&2; exit 2; }
mapfile -t targets < <("$bin" --list 2>/dev/null | sed -n 's/^\(fuzz_[a-z0-9_]*\): test$/\1/p' | grep -- "$filter")
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz_* target matches '$filter'" >&2
  exit 2
fi
logs="${CARGO_TARGET_DIR:-target}/fuzz-logs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$logs"
echo "fuzzing ${#targets[@]} targets, ${minutes} min each, $jobs at a time, release build; logs in $logs"
# One target: its log, then a result line in <target>.result (read back in target order).
run_one() {
  local t="$1" seed log rc line n secs fails
  seed="${RC_FUZZ_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
  log="$logs/$t.log"
  RC_FUZZ_SECONDS=$((minutes * 60)) RC_FUZZ_CASES="$cases" RC_FUZZ_SEED="$seed" \
    "$bin" --exact "$t" --nocapture --test-threads 1 >"$log" 2>&1
  rc=$?
  line=$(grep -o "fuzz-result target=$t .*" "$log" | tail -n 1)
  if [ -n "$line" ]; then
    n=$(sed -n 's/.* cases=\([0-9]*\).*/\1/p' <<<"$line")
    secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$line")
    fails=$(sed -n 's/.* failures=\([0-9]*\).*/\1/p' <<<"$line")
  else
    # No result line: the process died (a stack overflow aborts it).
    n="?"
    secs="?"
    fails="crash"
  fi
  if [ "$rc" -ne 0 ] && [ "$fails" = 0 ]; then fails="exit $rc"; fi
  printf '%s %s %s %s\n' "$n" "$secs" "${fails// /_}" "$seed" >"$logs/$t.result"
}
# RC_FUZZ_JOBS targets at a time (default 1): each gets the whole budget in wall-clock time,
# so with more jobs than free cores each target executes fewer cases.
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait
printf '%-48s %12s %9s %9s  %s\n' target cases seconds failures seed
total_cases=0
failed=0
for t in "${targets[@]}"; do
  read -r n secs fails seed <"$logs/$t.result"
  fails="${fails//_/ }"
  [ "$fails" = 0 ] || failed=$((failed + 1))
  [ "$n" = "?" ] || total_cases=$((total_cases + n))
  printf '%-48s %12s %9s %9s  %s\n' "$t" "$n" "$secs" "$fails" "$seed"
done
echo "total: $total_cases cases, $failed of ${#targets[@]} targets failed"
[ "$failed" -eq 0 ]
