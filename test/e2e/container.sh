#!/bin/bash
# A Debian container with a real systemd as PID 1, on a host whose PID 1 is not systemd:
# debootstrap + systemd-nspawn -b --register=no --keep-unit, driven with nsenter.
#
#   container.sh rootfs SUITE        build /var/lib/machines/baton-e2e-SUITE-* once (cached)
#   container.sh boot SUITE DIR      boot it with DIR bind-mounted read-only at /e2e
#   container.sh sh SUITE CMD...     run CMD inside (all namespaces of the container's PID 1)
#   container.sh stop SUITE          orderly poweroff
#   container.sh sweep               stop the containers of runs that are gone (killed)
#
# Each run's containers are its own: BATON_E2E_RUN (run.sh sets it, unique per run) names
# the machine, its cgroup and its state folder /run/baton-e2e/RUN-SUITE, which records the
# run's pid; two runs at once (two checkouts) never stop each other's containers. They
# share only the cached, read-only root file system (--volatile=overlay).
#
# Facts this relies on (see ../../../shared/reference/systemd-container/NOTES.md):
# without --keep-unit nspawn asks the (absent) host systemd for a scope and fails;
# --register=no because there is no machined; nspawn is put in a cgroup of its own since
# it creates payload/ and supervisor/ below its cgroup; systemd >= 256 needs a pure
# cgroup2 tree (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1). --private-network gives the container
# its own loopback, so its ports never meet the host's.
set -euo pipefail
cmd=${1:?usage: container.sh rootfs|boot|sh|stop SUITE ... | sweep}

# a clean environment for whatever runs inside, as a login would give: the host's (e.g.
# NODE_EXTRA_CA_CERTS naming a file the container lacks) would reach every node run there
inside() {
  nsenter -t "$1" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" "${@:2}"
}

if [ "$cmd" = sweep ]; then
  for st in /run/baton-e2e/*/; do
    [ -f "$st/run.pid" ] || continue
    kill -0 "$(cat "$st/run.pid")" 2>/dev/null && continue
    r=$(basename "$st")
    BATON_E2E_RUN=${r%-*} "$0" stop "${r##*-}" || true
  done
  exit 0
fi

suite=${2:?suite (bookworm or trixie)}
shift 2
# Debian's own nodejs in both: 20 in trixie, 18 in bookworm (what the deb depends on is
# what Debian 12 ships); gunicorn and lighttpd for the recipes (docs/recipes.md). The
# cached root file system is named after what it holds: a new list builds a new one.
include=systemd,systemd-sysv,dbus,procps,curl,man-db,libstdc++6,nodejs,gunicorn,lighttpd
root=/var/lib/machines/baton-e2e-$suite-$(echo "$include" | md5sum | cut -c1-8)
run=${BATON_E2E_RUN:?BATON_E2E_RUN: set by run.sh, unique per run}
name=baton-e2e-$run-$suite
state=/run/baton-e2e/$run-$suite
cg=$name

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
  # one build at a time: a second run waits for the first's and then finds it cached
  mkdir -p "$(dirname "$root")"
  exec 9>"$root.lock"
  flock 9
  if [ -x "$root/usr/lib/systemd/systemd" ] || [ -x "$root/lib/systemd/systemd" ]; then
    log "rootfs cached: $root"; exit 0
  fi
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  # man-db: systemd-analyze verify checks Documentation=man:baton(8)
  log "debootstrap $suite ($include) into $root"
  t0=$SECONDS
  rm -rf "$root.tmp"
  debootstrap --variant=minbase --include="$include" "$suite" "$root.tmp" ${mirror:+"$mirror"} >"$root.log" 2>&1 ||
    { tail -20 "$root.log"; exit 1; }
  rm -f "$root.tmp"/var/cache/apt/archives/*.deb
  echo "baton-e2e" >"$root.tmp/etc/hostname"
  for u in console-getty.service apt-daily.timer apt-daily-upgrade.timer systemd-timesyncd.service lighttpd.service; do
    ln -sf /dev/null "$root.tmp/etc/systemd/system/$u"
  done
  mv "$root.tmp" "$root"
  log "debootstrap took $((SECONDS - t0)) s"
  ;;
boot)
  dir=${1:?host folder to mount at /e2e}
  if [ -f "$state/nspawn.pid" ] && kill -0 "$(cat "$state/nspawn.pid")" 2>/dev/null; then log "already running"; exit 0; fi
  mkdir -p "$state"
  echo "${BATON_E2E_RUN_PID:-$PPID}" >"$state/run.pid"
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
    exec setsid systemd-nspawn -D "$root" -M "$name" -b --register=no --keep-unit \
      --console=read-only --private-network --bind-ro="$dir":/e2e --volatile=overlay \
      </dev/null >"$state/console.log" 2>&1
  ) &
  echo $! >"$state/nspawn.pid"
  l=""
  for _ in $(seq 300); do l=$(leader) && break; sleep 0.1; done
  [ -n "$l" ] || { log "container did not start"; tail -30 "$state/console.log"; exit 1; }
  for _ in $(seq 300); do [ -S "/proc/$l/root/run/systemd/private" ] && break; sleep 0.1; done
  st=$(timeout 120 nsenter -t "$l" -a -- env -i systemctl is-system-running --wait || true)
  log "booted $name: state $st, systemd $(inside "$l" systemctl --version | awk 'NR==1{print $2}')"
  ;;
sh)
  l=$(leader) || { echo "container $suite is not running" >&2; exit 1; }
  inside "$l" "$@"
  ;;
stop)
  if [ -f "$state/nspawn.pid" ]; then
    p=$(cat "$state/nspawn.pid")
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" # nspawn -b turns it into SIGRTMIN+3: an orderly poweroff
      for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$p" 2>/dev/null && { log "poweroff took too long: SIGKILL"; kill -KILL "$p"; sleep 1; }
    fi
  fi
  cg_cleanup
  rm -rf "$state"
  ;;
*)
  echo "usage: container.sh rootfs|boot|sh|stop SUITE ... | sweep" >&2
  exit 2
  ;;
esac
