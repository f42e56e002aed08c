# The commands a newcomer needs. Each installs what is missing first.
.PHONY: dev test bench lint

## Run the service locally end to end (ONCE=1: exit after the walkthrough).
dev:
	scripts/dev.sh

## Set up and run all the tests.
test:
	scripts/test.sh

## Criterion bench of mapping + serialization, and the export benchmark.
bench:
	scripts/bench.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
