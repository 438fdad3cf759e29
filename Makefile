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
