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

test: build
	npx jest --ci

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
	test/e2e/run.sh

clean:
	rm -rf dist src/native/build .run build
