# `make run` and `make test` do everything on a fresh machine (see README.md).
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
NATIVE := dist/native/baton_native.node

.PHONY: all install build run test clean deb rpm stage e2e
VERSION = $(shell node -p "require('./package.json').version")
DEBDIR = build/deb/baton-$(VERSION)

all: build

install: $(NODE_MODULES)

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(NATIVE): $(NODE_MODULES) src/native/baton_native.c src/native/binding.gyp
	npm run --silent build:native
	mkdir -p dist/native
	cp src/native/build/Release/baton_native.node $@

build: $(NATIVE)
	npx tsc -p tsconfig.json
	@test -x bin/baton

run: build
	@echo "baton: serving examples/hello on http://127.0.0.1:8080/ (try: curl 127.0.0.1:8080); ^C stops"
	exec ./bin/baton run -c examples/hello/baton.json

# jest (everything that runs as any user), then, as root, the packages and the end-to-end
# suite in real systemd containers; without root those are skipped, and it says so.
test: build
	npx jest --ci
	@if [ "$$(id -u)" = 0 ]; then \
	  set -e; test/e2e/prereqs.sh; mkdir -p build; \
	  $(MAKE) --no-print-directory rpm >build/rpm.log 2>&1 || { tail -30 build/rpm.log; exit 1; }; \
	  echo "make rpm: built, rpmlint reports 0 errors"; \
	  test/e2e/run.sh; \
	else echo "make test: SKIPPED make rpm and make e2e (packages, real systemd in containers): they need root"; fi

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

clean:
	rm -rf dist src/native/build .run build
