#!/bin/bash
# make e2e: the package in a real systemd. Builds the deb as version N, N+1 and N+2, then
# for each suite (E2E_SUITES, default "trixie bookworm") boots a Debian container, installs
# N, runs checks.sh inside (socket activation, reload, USR2, kill -9, upgrade to N+1, the
# rpm's %posttrans, a failed hot upgrade to N+2 with a broken config on disk and its
# completion, removal, sandbox score) and powers it off. Exit status: the number of failed
# checks.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=$top/build/e2e
suites=${E2E_SUITES:-trixie bookworm}
cd "$top"
v=$(node -p "require('./package.json').version")
rm -rf "$work" && mkdir -p "$work"
make --no-print-directory deb VERSION="$v" >"$work/deb-N.log" 2>&1 || { tail -20 "$work/deb-N.log"; exit 1; }
cp "build/baton_${v}_amd64.deb" "$work/baton-N.deb"
make --no-print-directory deb VERSION="$v.1" >"$work/deb-N1.log" 2>&1 || { tail -20 "$work/deb-N1.log"; exit 1; }
cp "build/baton_${v}.1_amd64.deb" "$work/baton-N1.deb"
make --no-print-directory deb VERSION="$v.2" >"$work/deb-N2.log" 2>&1 || { tail -20 "$work/deb-N2.log"; exit 1; }
cp "build/baton_${v}.2_amd64.deb" "$work/baton-N2.deb"
# the rpm's %posttrans as built (rpm -qp --scripts): checks.sh runs it against a running
# instance, as rpm does after an upgrade transaction (the containers are Debian: the rpm itself
# is not installed there). Without rpmbuild that check is skipped, and says so.
if command -v rpmbuild >/dev/null && command -v rpmlint >/dev/null; then
  make --no-print-directory rpm VERSION="$v" >"$work/rpm.log" 2>&1 || { tail -20 "$work/rpm.log"; exit 1; }
  rpm -qp --scripts build/baton-"$v"-1.*.rpm >"$work/rpm-scripts.txt" || exit 1
  grep -qx 'posttrans scriptlet (using /bin/sh):' "$work/rpm-scripts.txt" ||
    { echo "run.sh: no /bin/sh %posttrans in the rpm:"; cat "$work/rpm-scripts.txt"; exit 1; }
  awk '/^[a-z]+ scriptlet \(using /{on = ($1 == "posttrans"); next} on' "$work/rpm-scripts.txt" >"$work/rpm-posttrans.sh"
  [ -s "$work/rpm-posttrans.sh" ] || { echo "run.sh: the rpm's %posttrans is empty:"; cat "$work/rpm-scripts.txt"; exit 1; }
else
  echo "rpmbuild or rpmlint is not installed (test/e2e/prereqs.sh installs them)" >"$work/rpm-posttrans.skip"
fi
cp "$here/checks.sh" "$top/test/helpers/load-client.js" "$top/test/fixtures/unmodified/leaking-app.js" "$top/test/fixtures/unmodified/first-use-crash-app.js" "$work/"
# the recipes (docs/recipes.md) as an operator ships them: the Express app with its
# node_modules installed where it is built (the containers have no network)
cp -a examples/recipes "$work/recipes"
(cd "$work/recipes/express" && npm ci --omit=dev --no-audit --no-fund >"$work/npm-express.log" 2>&1) ||
  { tail -20 "$work/npm-express.log"; exit 1; }

# this run's containers are named after it (container.sh); an interrupted run stops its own,
# and one that was killed outright is swept by the next
export BATON_E2E_RUN=$$-$(date +%s) BATON_E2E_RUN_PID=$$
"$here/container.sh" sweep
running=""
stop_all() { for s in $running; do "$here/container.sh" stop "$s"; done; running=""; }
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

# The suites run side by side (E2E_SERIAL=1: one after the other): each container has its own
# network, machine name and state folder, and a check waits on what it checks, not on time.
# Each suite's output goes to its log and is shown whole when the suite ends.
one_suite() {
  local suite=$1 log=$work/checks-$suite.log
  trap '"$here/container.sh" stop "$suite"' EXIT
  "$here/container.sh" rootfs "$suite" >"$log" 2>&1 || { echo "FAIL: $suite: rootfs" >>"$log"; return; }
  "$here/container.sh" boot "$suite" "$work" >>"$log" 2>&1 || { echo "FAIL: $suite: boot" >>"$log"; return; }
  "$here/container.sh" sh "$suite" /e2e/checks.sh "$suite" >>"$log" 2>&1
}
pids=""
for suite in $suites; do
  if [ -n "${E2E_SERIAL:-}" ]; then (one_suite "$suite"); cat "$work/checks-$suite.log"
  else (one_suite "$suite") & pids="$pids $!"; running="$running $suite"; fi
done
[ -z "$pids" ] || wait $pids
running=""
passed=0
failed=0
for suite in $suites; do
  [ -n "${E2E_SERIAL:-}" ] || cat "$work/checks-$suite.log"
  passed=$((passed + $(grep -c '^PASS: ' "$work/checks-$suite.log")))
  failed=$((failed + $(grep -c '^FAIL: ' "$work/checks-$suite.log")))
  grep -q "^e2e $suite: " "$work/checks-$suite.log" || { echo "FAIL: $suite: checks.sh did not finish"; failed=$((failed + 1)); }
done
echo "e2e ($suites):"
echo "e2e: $passed passed, $failed failed"
[ "$failed" = 0 ]
