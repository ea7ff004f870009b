# Two commands do everything on a fresh Debian machine:
#   make demo   installs ZooKeeper if missing, builds, runs the failover demo
#   make test   installs ZooKeeper if missing, runs every test
# (`make soak` runs the soak-level tests at their full count, each benchmark once and the
# README's programs as a crate of their own; CI runs both.)
.PHONY: demo test soak setup build lint bench zookeeper fuzz screenshot

CARGO ?= cargo

setup:
	./scripts/install-zookeeper

build: setup
	$(CARGO) build --workspace --all-targets

demo: setup
	$(CARGO) run --example failover

# Libraries, programs, end-to-end tests and doc tests (the README's snippets among them), with
# the examples built (not run).
test: setup
	$(CARGO) test --workspace

# The soak-level tests at their full count (100 forced expiries, 100 election rounds, every flag
# with every garbage value; `make test` runs fewer of each), one pass of each benchmark, and the
# README's two programs as a crate of its own (outside the workspace, its own proto, `zoorpc` by
# path: its dependencies resolve with other features than the workspace's, so it compiles a
# second copy of most of them, about a minute).
soak: setup
	ZOORPC_SOAK=1 $(CARGO) test --test registry --test ha --test programs -- \
		expiry_rounds:: ha_rounds:: garbage_flags::
	$(CARGO) test --workspace --benches --features zoorpc/testing
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) test --manifest-path outside/Cargo.toml

# A ZooKeeper on 127.0.0.1:2181 for trying the programs by hand (Ctrl-C stops it).
zookeeper: setup
	$(CARGO) run --example zookeeper

# docs/console.png, by the console's browser test (installs Debian's chromium if missing), once
# its chart spans 40 s of traffic (the test alone, in make test, does not wait).
screenshot: setup
	./scripts/install-chromium
	ZOORPC_SCREENSHOT_TRAFFIC_S=40 $(CARGO) test --test programs console_browser::page
	cp target/tmp/console.png docs/console.png

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --manifest-path outside/Cargo.toml -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) clippy --manifest-path outside/Cargo.toml --all-targets -- -D warnings

# Every benchmark at a size that ends in a few minutes (BENCHMARKS.md has the figures and the
# full-size commands). The last line of each scenario is its JSON.
bench: setup
	$(CARGO) build --release --example bench --bin zoorpc-echo --bin zoorpc
	$(CARGO) run --release --example bench -- propagation --rounds 1000
	$(CARGO) run --release --example bench -- handover --rounds 200
	$(CARGO) run --release --example bench -- qps --secs 5
	$(CARGO) run --release --example bench -- slow --secs 3
	$(CARGO) run --release --example bench -- failover --secs 20 --plot target/failover.svg
	$(CARGO) run --release --example bench -- scale --providers 1000 --consumers 100 --churn 100
	./scripts/install-python-grpcio
	$(CARGO) run --release --example bench -- xds --rounds 50 --providers 1000 --clients 100 --changes 100
	$(CARGO) bench --bench picking --features testing

# Coverage-guided fuzzing of the parsers (fuzz/: provider URLs as read from znodes, connect
# strings, paths and addresses, credential files and job records) with cargo-fuzz, which needs
# the nightly toolchain: FUZZ_SECS per target (default 60). Installs cargo-fuzz if missing.
FUZZ_SECS ?= 60
FUZZ_TARGETS = provider_url connect_string paths_and_addresses records
fuzz:
	@if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then \
		echo "skipped: make fuzz needs the nightly toolchain (rustup toolchain install nightly)"; exit 0; fi; \
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz; \
	for t in $(FUZZ_TARGETS); do \
		(cd fuzz && $(CARGO) +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECS)) || exit 1; \
	done
