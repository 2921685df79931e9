# `make run` and `make test` do everything on a fresh machine (see README.md).
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
NATIVE := dist/native/baton_native.node

.PHONY: all install build run check test clean deb rpm stage e2e bench
VERSION = $(shell node -p "require('./package.json').version")
DEBDIR = build/deb/baton-$(VERSION)

all: build

install: $(NODE_MODULES)

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# the addon and the signal guard (a plain shared object baton preloads into what it starts)
$(NATIVE): $(NODE_MODULES) src/native/baton_native.c src/native/signal_guard.c src/native/binding.gyp
	npm run --silent build:native
	mkdir -p dist/native
	cp src/native/build/Release/baton_signal_guard.node dist/native/
	cp src/native/build/Release/baton_native.node $@

# baton.schema.json as standalone validation code (ajv's compiler runs here, not in the master)
SCHEMA_VALIDATOR := src/config/schema-validator.generated.ts
$(SCHEMA_VALIDATOR): src/config/baton.schema.json scripts/schema-validator.js $(NODE_MODULES)
	node scripts/schema-validator.js $@

# One file each, what bin/baton runs (the CLI and master) and what a worker requires: the
# packages ship these (packaging/stage.sh). A running master loads no code from disk after start.
# Comments and white space out (a smaller source to parse and keep), names kept for stack traces.
# Bundled from tsc's CommonJS output, not from src/: esbuild wraps each default import of a
# builtin (`import fs from 'node:fs'`, 42 of them) in __toESM, which copies every export; that
# loop got hot enough at start-up for TurboFan, ~3 MB of the master's RSS (tsc's
# __importDefault copies nothing).
ESBUILD := npx esbuild --bundle --platform=node --target=node18 --log-level=warning \
  --minify-whitespace --minify-syntax

# Each step only when its inputs changed: `make run` on a built tree starts at once.
TSC_OUT := dist/cli/main.js
BUNDLE := dist/bundle/baton.js
$(TSC_OUT): $(NATIVE) $(SCHEMA_VALIDATOR) tsconfig.json $(shell find src -name '*.ts' -o -name '*.json')
	npx tsc -p tsconfig.json
	@touch $@

$(BUNDLE): $(TSC_OUT) Makefile
	$(ESBUILD) dist/cli/main.js --outfile=dist/bundle/baton.js
	$(ESBUILD) dist/serve/index.js --outfile=dist/bundle/worker.js
	$(ESBUILD) dist/adapt/node-preload.js --outfile=dist/bundle/adapt.js

build: $(BUNDLE)
	@test -x bin/baton

run: build
	@echo "baton: serving examples/hello on http://127.0.0.1:8080/ (try: curl 127.0.0.1:8080); ^C stops"
	exec ./bin/baton run -c examples/hello/baton.json

# The edit-test loop (seconds): the build (incremental), the tests' type check (jest only
# transpiles), and the in-process tests (test/unit: fake clock, fake processes; no baton process).
check: build
	npx tsc -p test/tsconfig.json
	npx jest --ci test/unit

# Node 18 (Debian 12's own nodejs, the oldest baton supports) runs again what ships: the
# bundled master, worker library and adapter, driven as real processes (test/process). Not the
# in-process tests (test/unit: the source under ts-jest, not the bundles; the language level is
# esbuild's --target=node18 and @types/node 18), nor the ones whose subject is not Node's: the
# jest harness, the config's checks, exec limits. The e2e runs the deb on Debian 12's node too.
# The Node adapter's soak is 5 reloads and 5 upgrades per app there, not 20: the same paths.
NODE18_SKIP := /node_modules/ test/unit/ harness-safety-net cli-config check-hostile exec-limits

# As root, what the tests need from Debian first (test/e2e/prereqs.sh: prometheus and promtool for
# the metrics tests, rpmbuild, the container tools). The tests' type check; jest (everything that runs as any user, in three shards side by side:
# most of a real-process test is waiting); as root jest again on Node 18 (above); the rpm and rpmlint (any
# user, once rpmbuild and rpmlint are installed); then, as root, the end-to-end suite in real
# systemd containers (which builds the deb). What it cannot run it skips, and says so.
test: build
	@if [ "$$(id -u)" = 0 ]; then test/e2e/prereqs.sh; fi
	npx tsc -p test/tsconfig.json
	test/helpers/jest-shards.sh 3
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "make test: jest again, on Debian 12's own nodejs 18 (test/helpers/debian-node18.sh): test/process"; \
	  BATON_TEST_SOAK=5 test/helpers/debian-node18.sh test/helpers/jest-shards.sh 3 --testPathIgnorePatterns $(NODE18_SKIP); rc=$$?; \
	  if [ $$rc = 77 ]; then echo "make test: SKIPPED jest on nodejs 18: no Debian 12 nodejs here"; elif [ $$rc != 0 ]; then exit $$rc; fi; \
	else echo "make test: SKIPPED jest on Debian 12's nodejs 18: it needs root (overlay mounts)"; fi
	@if command -v rpmbuild >/dev/null && command -v rpmlint >/dev/null; then \
	  mkdir -p build; \
	  $(MAKE) --no-print-directory rpm >build/rpm.log 2>&1 || { tail -30 build/rpm.log; exit 1; }; \
	  echo "make rpm: built, rpmlint reports 0 errors"; \
	else echo "make test: SKIPPED make rpm: rpmbuild or rpmlint is not installed (test/e2e/prereqs.sh installs them, as root)"; fi
	@if [ "$$(id -u)" = 0 ]; then test/e2e/run.sh; \
	else echo "make test: SKIPPED make e2e (real systemd in containers): it needs root"; fi

# The installed tree (bundled code, wrapper, man page, example) for both packages.
stage: build
	packaging/stage.sh build/stage

deb: build
	rm -rf build/deb && mkdir -p $(DEBDIR)
	cp -a packaging/debian $(DEBDIR)/debian
	cp units/baton@.service units/baton@.socket $(DEBDIR)/debian/
	sed -i "1s/^baton ([^)]*)/baton ($(VERSION))/" $(DEBDIR)/debian/changelog
	BATON_VERSION=$(VERSION) packaging/stage.sh $(DEBDIR)/stage
	cd $(DEBDIR) && dpkg-buildpackage -b -us -uc
	cp build/deb/baton_$(VERSION)_*.deb build/
	lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs build/baton_$(VERSION)_*.deb

rpm: build
	rm -rf build/rpm && mkdir -p build/rpm/units
	cp units/baton@.service units/baton@.socket build/rpm/units/
	BATON_VERSION=$(VERSION) packaging/stage.sh build/rpm/stage
	rpmbuild -bb --define "_topdir $(CURDIR)/build/rpm/top" --define "stagedir $(CURDIR)/build/rpm/stage" \
	  --define "version_from_make $(VERSION)" packaging/rpm/baton.spec
	cp build/rpm/top/RPMS/*/baton-$(VERSION)-1.*.rpm build/
	rpmlint -r packaging/rpm/rpmlintrc build/baton-$(VERSION)-1.*.rpm

# the deb in real systemd 257 (trixie) and 252 (bookworm) containers; needs root
e2e: build
	test/e2e/prereqs.sh
	test/e2e/run.sh

# baton beside bare workers, Node cluster and PM2; writes bench/results.md and the README's
# benchmark section (about 25 min; BENCH_QUICK=1: a 2-minute pass into build/bench-quick/).
# PM2 goes into bench/node_modules only. The harness and wrk run on CPU 1, the servers on
# CPU 0; the subreaper re-parents a successor master here, as systemd would.
BENCH_MODULES := bench/node_modules/.package-lock.json
$(BENCH_MODULES): bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund
	@touch $@

bench: build $(BENCH_MODULES)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y wrk; } || \
	  { echo "make bench: wrk is missing (apt-get install wrk, as root)"; exit 1; }
	taskset -c $${BENCH_LOAD_CPU:-1} python3 test/helpers/subreaper.py node bench/run.js

clean:
	rm -rf dist src/native/build .run build $(SCHEMA_VALIDATOR)
