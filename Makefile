# The commands a newcomer needs. Each installs what is missing first.
.PHONY: dev test sam-local bench bench-ingest bench-replay lint chaos fleet fuzz paging screenshot

## Run the service locally end to end (ONCE=1: exit after the walkthrough).
dev:
	scripts/dev.sh

## Set up and run all the tests.
test:
	scripts/test.sh

## The template under `sam local` in podman: sam build, invoke and start-api, x86_64 and
## arm64 (also part of `make test`).
sam-local:
	scripts/sam-local.sh test

## A bigger chaos run than the one in `make test` (CHAOS_EVENTS events, default 5000).
chaos:
	bash -c 'source scripts/tools.sh && for f in export destinations test-event ingest replay; do cargo build -q -p $$f; done && \
	  CHAOS_EVENTS=$${CHAOS_EVENTS:-5000} cargo test -p tests --test chaos -- --nocapture'

## A bigger SDK fleet than the one in `make test` (FLEET_EVENTS contexts per client, default 100;
## FLEET_CLIENTS server SDK clients, default 20, FLEET_CLIENTS_PER_PROCESS, default 5).
fleet:
	bash -c 'source scripts/tools.sh && for f in export destinations test-event ingest replay; do cargo build -q -p $$f; done && \
	  FLEET_EVENTS=$${FLEET_EVENTS:-100} cargo test -p tests --test own_stacks -- --nocapture fleet::'

## A bigger API fuzzing run than the one in `make test` (SCHEMATHESIS_EXAMPLES per operation, default 300).
fuzz:
	bash -c 'source scripts/tools.sh && for f in export destinations test-event ingest replay; do cargo build -q -p $$f; done && \
	  SCHEMATHESIS_EXAMPLES=$${SCHEMATHESIS_EXAMPLES:-300} cargo test -p tests --test openapi -- --nocapture'

## The list of every destination over a big table on moto, paged (PAGING_DESTINATIONS, default 15000;
## `make test` runs 1,500): every destination once, every page under 1 MB, with the figures.
paging:
	bash -c 'source scripts/tools.sh && \
	  PAGING_DESTINATIONS=$${PAGING_DESTINATIONS:-15000} cargo test -p tests --test own_stacks -- --nocapture paging::'

## A replay of REPLAY_BENCH_EVENTS archived events (default 100000) beside live traffic:
## live batches' time to Segment alone and beside it (BENCHMARKS.md).
bench-replay:
	bash -c 'source scripts/tools.sh && for f in export destinations test-event ingest replay; do cargo build -q -p $$f; done && \
	  REPLAY_BENCH_EVENTS=$${REPLAY_BENCH_EVENTS:-100000} cargo test --workspace --test own_stacks -- --nocapture replay_bench::'

## Criterion bench of mapping + serialization, and the export benchmark.
bench:
	scripts/bench.sh

## Ingest's benchmarks only (BENCHMARKS.md §3): criterion, peak memory, a load run with oha.
bench-ingest:
	scripts/bench.sh --ingest

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## Re-take the console screenshot of README.md (docs/console.png) with the browser test.
screenshot:
	bash -c 'source scripts/tools.sh && UPDATE_SCREENSHOT=1 cargo test --workspace --test own_stacks -- console::'
