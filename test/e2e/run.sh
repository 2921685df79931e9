#!/bin/bash
# make e2e: the package in a real systemd. Builds the deb as version N, N+1 and N+2, then
# for each suite (E2E_SUITES, default "trixie bookworm") boots a Debian container, installs
# N, runs checks.sh inside (socket activation, reload, USR2, kill -9, upgrade to N+1, a
# failed hot upgrade to N+2 with a broken config on disk and its completion, removal,
# sandbox score) and powers it off. Exit status: the number of failed checks.
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
cp "$here/checks.sh" "$top/test/helpers/load-client.js" "$work/"

# bookworm's nodejs is 18 and no other node repository is reachable here: the host's node
# 20 goes in as a package of its own named nodejs, so the dependency is met by a real node 20
host_node_deb() {
  local d=$work/equivs nv
  nv=$(node -p 'process.versions.node')
  mkdir -p "$d"
  cp "$(command -v node)" "$d/node"
  cat >"$d/nodejs.ctl" <<CTL
Section: javascript
Priority: optional
Standards-Version: 4.6.2
Package: nodejs
Version: $nv-0baton1
Maintainer: baton e2e <e2e@baton.invalid>
Architecture: amd64
Depends: libc6, libstdc++6
Files: node /usr/bin/
Description: Node.js $nv, the host's binary, for baton's end-to-end tests
CTL
  (cd "$d" && equivs-build nodejs.ctl >build.log 2>&1) || { tail -20 "$d/build.log"; return 1; }
  cp "$d"/nodejs_*.deb "$work/nodejs-host.deb"
}

passed=0
failed=0
for suite in $suites; do
  rm -f "$work/nodejs-host.deb"
  if [ "$suite" = bookworm ] && ! host_node_deb; then echo "FAIL: $suite: equivs nodejs"; failed=$((failed + 1)); continue; fi
  "$here/container.sh" rootfs "$suite" || { echo "FAIL: $suite: rootfs"; failed=$((failed + 1)); continue; }
  "$here/container.sh" stop "$suite" # one left running by an interrupted run has dirty state
  "$here/container.sh" boot "$suite" "$work" || { echo "FAIL: $suite: boot"; failed=$((failed + 1)); continue; }
  "$here/container.sh" sh "$suite" /e2e/checks.sh "$suite" 2>&1 | tee "$work/checks-$suite.log"
  "$here/container.sh" stop "$suite"
  passed=$((passed + $(grep -c '^PASS: ' "$work/checks-$suite.log")))
  failed=$((failed + $(grep -c '^FAIL: ' "$work/checks-$suite.log")))
  grep -q "^e2e $suite: " "$work/checks-$suite.log" || { echo "FAIL: $suite: checks.sh did not finish"; failed=$((failed + 1)); }
done
echo "e2e ($suites):"
echo "e2e: $passed passed, $failed failed"
[ "$failed" = 0 ]
