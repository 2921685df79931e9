#!/bin/bash
# A Debian container with a real systemd as PID 1, on a host whose PID 1 is not systemd:
# debootstrap + systemd-nspawn -b --register=no --keep-unit, driven with nsenter.
#
#   container.sh rootfs SUITE        build /var/lib/machines/baton-e2e-SUITE once (cached)
#   container.sh boot SUITE DIR      boot it with DIR bind-mounted read-only at /e2e
#   container.sh sh SUITE CMD...     run CMD inside (all namespaces of the container's PID 1)
#   container.sh stop SUITE          orderly poweroff
#
# Facts this relies on (see ../../../shared/reference/systemd-container/NOTES.md):
# without --keep-unit nspawn asks the (absent) host systemd for a scope and fails;
# --register=no because there is no machined; nspawn is put in a cgroup of its own since
# it creates payload/ and supervisor/ below its cgroup; systemd >= 256 needs a pure
# cgroup2 tree (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1). --private-network gives the container
# its own loopback, so its ports never meet the host's.
set -euo pipefail
cmd=${1:?usage: container.sh rootfs|boot|sh|stop SUITE ...}
suite=${2:?suite (bookworm or trixie)}
shift 2
# the cached root file system is named after what it holds: a new list builds a new one
include=systemd,systemd-sysv,dbus,procps,curl,man-db,libstdc++6
[ "$suite" = trixie ] && include=$include,nodejs
root=/var/lib/machines/baton-e2e-$suite-$(echo "$include" | md5sum | cut -c1-8)
state=/run/baton-e2e-$suite
cg=baton-e2e-$suite
mkdir -p "$state"

log() { printf '[e2e %s %s] %s\n' "$suite" "$(date +%T)" "$*" >&2; }

leader() { # host pid of the container's PID 1: the nspawn child whose NSpid ends in 1
  local np p
  np=$(cat "$state/nspawn.pid" 2>/dev/null) || return 1
  for p in $(pgrep -P "$np" || true); do
    if awk '/^NSpid:/{exit !($NF==1)}' "/proc/$p/status" 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

cg_cleanup() {
  local h
  for h in systemd unified; do
    [ -d "/sys/fs/cgroup/$h/$cg" ] && find "/sys/fs/cgroup/$h/$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  [ -d "/sys/fs/cgroup/$cg" ] && find "/sys/fs/cgroup/$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  return 0
}

case "$cmd" in
rootfs)
  if [ -x "$root/usr/lib/systemd/systemd" ] || [ -x "$root/lib/systemd/systemd" ]; then
    log "rootfs cached: $root"; exit 0
  fi
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  # trixie's own nodejs is 20; bookworm's is 18, so there the harness installs the host's
  # node as a package of its own (equivs), see run.sh. man-db: systemd-analyze verify
  # checks Documentation=man:baton(8).
  log "debootstrap $suite ($include) into $root"
  t0=$SECONDS
  rm -rf "$root.tmp"
  mkdir -p "$(dirname "$root")"
  debootstrap --variant=minbase --include="$include" "$suite" "$root.tmp" ${mirror:+"$mirror"} >"$state/debootstrap.log" 2>&1 ||
    { tail -20 "$state/debootstrap.log"; exit 1; }
  rm -f "$root.tmp"/var/cache/apt/archives/*.deb
  echo "baton-e2e" >"$root.tmp/etc/hostname"
  for u in console-getty.service apt-daily.timer apt-daily-upgrade.timer systemd-timesyncd.service; do
    ln -sf /dev/null "$root.tmp/etc/systemd/system/$u"
  done
  mv "$root.tmp" "$root"
  log "debootstrap took $((SECONDS - t0)) s"
  ;;
boot)
  dir=${1:?host folder to mount at /e2e}
  if [ -f "$state/nspawn.pid" ] && kill -0 "$(cat "$state/nspawn.pid")" 2>/dev/null; then log "already running"; exit 0; fi
  cg_cleanup
  (
    for h in systemd unified; do
      [ -d "/sys/fs/cgroup/$h" ] || continue
      mkdir -p "/sys/fs/cgroup/$h/$cg" && echo $BASHPID >"/sys/fs/cgroup/$h/$cg/cgroup.procs"
    done
    if [ ! -d /sys/fs/cgroup/unified ] && [ -f /sys/fs/cgroup/cgroup.procs ]; then
      mkdir -p "/sys/fs/cgroup/$cg" && echo $BASHPID >"/sys/fs/cgroup/$cg/cgroup.procs"
    fi
    export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
    exec setsid systemd-nspawn -D "$root" -M "baton-e2e-$suite" -b --register=no --keep-unit \
      --console=read-only --private-network --bind-ro="$dir":/e2e --volatile=overlay \
      </dev/null >"$state/console.log" 2>&1
  ) &
  echo $! >"$state/nspawn.pid"
  l=""
  for _ in $(seq 300); do l=$(leader) && break; sleep 0.1; done
  [ -n "$l" ] || { log "container did not start"; tail -30 "$state/console.log"; exit 1; }
  for _ in $(seq 300); do [ -S "/proc/$l/root/run/systemd/private" ] && break; sleep 0.1; done
  st=$(timeout 120 nsenter -t "$l" -a systemctl is-system-running --wait || true)
  log "booted: state $st, systemd $(nsenter -t "$l" -a systemctl --version | awk 'NR==1{print $2}')"
  ;;
sh)
  l=$(leader) || { echo "container $suite is not running" >&2; exit 1; }
  # a clean environment, as a login would give: the host's (e.g. NODE_EXTRA_CA_CERTS naming
  # a file the container lacks) would reach every node run inside
  exec nsenter -t "$l" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" "$@"
  ;;
stop)
  if [ -f "$state/nspawn.pid" ]; then
    p=$(cat "$state/nspawn.pid")
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" # nspawn -b turns it into SIGRTMIN+3: an orderly poweroff
      for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$p" 2>/dev/null && { log "poweroff took too long: SIGKILL"; kill -KILL "$p"; sleep 1; }
    fi
    rm -f "$state/nspawn.pid"
  fi
  cg_cleanup
  ;;
*)
  echo "usage: container.sh rootfs|boot|sh|stop SUITE ..." >&2
  exit 2
  ;;
esac
