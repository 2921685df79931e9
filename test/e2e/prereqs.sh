#!/bin/sh
# Installs (as root, from Debian's packages) what `make rpm` and `make e2e` need, and the real
# Prometheus server and promtool the metrics tests scrape with (test/process/metrics.test.ts).
set -eu
need=""
for pair in systemd-nspawn:systemd-container debootstrap:debootstrap dpkg-buildpackage:dpkg-dev \
  dh:debhelper lintian:lintian rpmbuild:rpm rpmlint:rpmlint prometheus:prometheus promtool:prometheus; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need="$need ${pair#*:}"
done
[ -z "$need" ] && exit 0
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
