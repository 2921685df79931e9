#!/bin/bash
# jest-shards.sh N [JEST ARGS...]: the jest run of `make test` in N shards side by side (most of
# a real-process test is waiting), each under its own subreaper: a shard's safety net
# (leftovers.js) sees only what that shard started, so one shard's processes are never taken
# for the other's leftovers. Shards are balanced by time (sequencer.js). Each shard's output
# goes to build/jest-shard-K.log, shown whole once it ends; then one closing line for all.
# Each shard is a session of its own (setsid): a signal meant for a process group (the
# kernel's SIGHUP+SIGCONT to an orphaned group with a stopped member, a test's kill(-pgid))
# stays within its shard; a test that SIGSTOPs its master is not woken by the other shard.
set -uo pipefail
n=${1:?usage: jest-shards.sh N [jest args]}
shift
cd "$(dirname "$0")/../.."
mkdir -p build && rm -f build/jest-shard-*.log
pids=()
for i in $(seq 1 "$n"); do
  setsid -w python3 test/helpers/subreaper.py --kill-leftovers node node_modules/jest/bin/jest.js --ci --shard="$i/$n" "$@" \
    >"build/jest-shard-$i.log" 2>&1 &
  pids+=("$!")
done
# a stopped make test stops its shards: each session's group (jest, and the masters it started)
trap 'for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done; exit 130' INT TERM
rc=0
for i in $(seq 1 "$n"); do
  wait "${pids[$((i - 1))]}" || rc=1
  echo "==== jest shard $i/$n"
  cat "build/jest-shard-$i.log"
done
# the summary reporter's closing lines, added up
grep -h '^jest: skipped: ' build/jest-shard-*.log
awk '/^jest: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ {p += $2; f += $4; s += $6; k++}
  END {printf "jest (%d shards): %d passed, %d failed, %d skipped\n", k, p, f, s}' build/jest-shard-*.log
[ "$(grep -c '^jest: [0-9]* passed' build/jest-shard-*.log | awk -F: '{s += $2} END {print s}')" = "$n" ] ||
  { echo "jest-shards.sh: a shard did not finish (no closing line): see build/jest-shard-*.log"; rc=1; }
exit "$rc"
