# The two commands of the README, and a few conveniences.
.PHONY: demo test build release setup

demo:                ## build, then authenticate through libpam with a software key
	scripts/demo.sh

test:                ## the whole suite, as CI runs it (installs what it needs)
	scripts/test.sh

setup:               ## install the Debian packages the build and tests need
	scripts/setup.sh

build:
	cargo build --workspace

release:
	cargo build --release --workspace

# Install, uninstall and package (see scripts/install.sh for the layout).
#   make install [DESTDIR=/staging] [PREFIX=/usr] [PAMDIR=...]
#   make uninstall   (same DESTDIR/PREFIX; keeps keys, state, edited config)
#   make deb         (libpam-yubiotp: debian/ built with dpkg-buildpackage,
#                    in target/deb/; scripts/deb.sh)
# `sudo make install` builds as root if the build is not up to date: run
# `make release` as yourself first. NOBUILD=1 installs what is built as is
# (for a root without cargo, or packaging).
.PHONY: install uninstall deb install-build

PREFIX ?= /usr
DESTDIR ?=
export PREFIX DESTDIR
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
export TARGET_DIR

# The module, and ykmap when its crate is in the workspace.
install-build:
ifeq ($(NOBUILD),1)
	@echo "install: NOBUILD=1: installing the existing build from $(TARGET_DIR)/release" >&2
else
	@# One cargo run for both: built apart, their different dependency
	@# features would make each build redo the other.
	@if cargo metadata --format-version 1 --no-deps 2>/dev/null | grep -q '"name":"ykmap-tool"'; then \
		echo "cargo build --release --locked -p pam_yubiotp -p ykmap-tool -p yubiotp-ssh"; \
		cargo build --release --locked -p pam_yubiotp -p ykmap-tool -p yubiotp-ssh; \
	else \
		echo "install: ykmap-tool is not in the workspace yet; ykmap will be skipped" >&2; \
		echo "cargo build --release --locked -p pam_yubiotp"; \
		cargo build --release --locked -p pam_yubiotp; \
	fi
endif

install: install-build
	scripts/install.sh

uninstall:
	scripts/uninstall.sh

deb:
	scripts/deb.sh
