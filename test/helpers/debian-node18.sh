#!/bin/bash
# debian-node18.sh CMD...: runs CMD where `node` is Debian 12's own nodejs 18, the oldest
# Node baton supports (Debian 12's and Ubuntu 24.04's). `make test` runs the jest suite a
# second time through it, as root.
#
# The binary and its libraries come from Debian's packages (apt-get download, extracted
# into build/node18, no dpkg -i: the host keeps its own node) and are laid over /usr by
# read-only overlays in a private mount namespace, so every `node` CMD starts (jest, the
# bin/baton shebang, workers) is 18. Debian's node is a small binary over libnode.so.108,
# which loads acorn, cjs-module-lexer and undici from /usr/share/nodejs by absolute path:
# hence the overlays rather than a PATH entry. Needs root (mounts) and a Debian 12 host
# (libnode108 is built against bookworm's libicu72, libssl3, libuv1). Exit 77: not possible
# here, and why on stderr.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$top/build/node18
[ "$(id -u)" = 0 ] || { echo "debian-node18.sh: needs root (overlay mounts)" >&2; exit 77; }

fetch() {
  local v
  v=$(apt-cache madison nodejs 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2)} $2 ~ /^18\./ {print $2; exit}')
  if [ -z "$v" ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    v=$(apt-cache madison nodejs 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2)} $2 ~ /^18\./ {print $2; exit}')
  fi
  [ -n "$v" ] || { echo "debian-node18.sh: no nodejs 18 in this machine's apt sources (a Debian 12 host has it)" >&2; exit 77; }
  rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/x"
  (cd "$dir/debs" && apt-get download -q -o APT::Sandbox::User=root "nodejs=$v" "libnode108=$v" \
    libc-ares2 node-acorn node-cjs-module-lexer node-undici >"$dir/download.log" 2>&1) ||
    { tail -5 "$dir/download.log" >&2; exit 77; }
  for f in "$dir"/debs/*.deb; do dpkg-deb -x "$f" "$dir/x"; done
  mkdir -p "$dir/usr/bin" "$dir/usr/lib/x86_64-linux-gnu" "$dir/usr/share"
  cp -a "$dir/x/usr/bin/node" "$dir/usr/bin/"
  cp -a "$dir"/x/usr/lib/x86_64-linux-gnu/{libnode.so.108,libcares.so.2*} "$dir/usr/lib/x86_64-linux-gnu/"
  cp -a "$dir/x/usr/share/nodejs" "$dir/usr/share/"
  rm -rf "$dir/x" "$dir/debs"
}
[ -x "$dir/usr/bin/node" ] || fetch

exec unshare --mount --propagation private /bin/sh -ec '
  d=$1; shift
  for p in usr/share usr/lib/x86_64-linux-gnu usr/bin; do
    mount -t overlay overlay -o "lowerdir=$d/$p:/$p" "/$p"
  done
  case "$(node --version)" in v18.*) ;; *) echo "debian-node18.sh: node is $(node --version), not 18" >&2; exit 77 ;; esac
  exec "$@"' sh "$dir" "$@"
