#!/bin/sh
# Lays out the installed files of baton under $1 (a DESTDIR), from a built checkout:
# the same tree for the deb and the rpm. The code is the two esbuild bundles `make build`
# made (dist/bundle/: the CLI/master, which bin/baton runs, and the worker module) next to
# the native addon: no node_modules.
set -eu
dest=$1
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
version=${BATON_VERSION:-$(node -p "require('./package.json').version")}
lib="$dest/usr/lib/baton"
rm -rf "$dest"
install -d "$lib/bin" "$lib/dist/bundle" "$lib/dist/native" \
  "$dest/usr/bin" "$dest/usr/lib/node" "$dest/usr/share/baton/examples/hello" \
  "$dest/usr/share/man/man8" "$dest/usr/share/doc/baton/examples" "$dest/etc/baton"
install -m 0644 dist/bundle/baton.js dist/bundle/worker.js dist/bundle/adapt.js "$lib/dist/bundle/"
for so in baton_native baton_signal_guard; do
  install -m 0644 "dist/native/$so.node" "$lib/dist/native/$so.node"
  strip --strip-unneeded "$lib/dist/native/$so.node"
done
# the system's node, not whichever `env` finds first; node's flags (bin/baton's first line) go
# to /usr/bin/baton, as a shebang can carry one argument only
flags=$(sed -n '1s|^#!/usr/bin/env -S node \(.*\)$|\1|p' bin/baton)
[ -n "$flags" ] || { echo "stage.sh: bin/baton's first line is not '#!/usr/bin/env -S node FLAGS'" >&2; exit 1; }
sed '1s|^.*$|#!/usr/bin/node|' bin/baton > "$lib/bin/baton"
chmod 0755 "$lib/bin/baton"
install -m 0755 packaging/instances "$lib/instances"
# journalctl -x explains baton's events (systemd's package trigger updates the catalog database)
install -D -m 0644 packaging/baton.catalog "$dest/usr/lib/systemd/catalog/baton.catalog"
cat > "$lib/package.json" <<JSON
{
  "name": "baton",
  "version": "$version",
  "description": "Zero-downtime process manager for network services under systemd",
  "license": "MIT",
  "type": "commonjs",
  "exports": { "./worker": "./dist/bundle/worker.js", "./package.json": "./package.json" }
}
JSON
sed "s|@NODE_FLAGS@|$flags|" packaging/baton-wrapper > "$dest/usr/bin/baton"
chmod 0755 "$dest/usr/bin/baton"
# `require('baton/worker')` from a worker: upstream node searches <prefix>/lib/node;
# Debian's and Fedora's node builds search other folders, so the unit sets NODE_PATH to it
ln -s ../baton "$dest/usr/lib/node/baton"
install -m 0644 src/config/baton.schema.json "$dest/usr/share/baton/baton.schema.json"
install -m 0644 examples/hello/server.js "$dest/usr/share/baton/examples/hello/server.js"
install -m 0644 packaging/example.json "$dest/usr/share/doc/baton/examples/demo.json"
# the operators' guide and the recipes' files (docs/recipes.md), without any node_modules
for doc in deploying operating recipes contract; do
  install -m 0644 "docs/$doc.md" "$dest/usr/share/doc/baton/$doc.md"
done
(cd examples && find recipes -name node_modules -prune -o -type f -print) | while read -r f; do
  install -D -m 0644 "examples/$f" "$dest/usr/share/doc/baton/examples/$f"
done
install -m 0644 packaging/baton.8 "$dest/usr/share/man/man8/baton.8"
install -m 0644 packaging/debian/copyright "$dest/usr/share/doc/baton/copyright"
