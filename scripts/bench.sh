#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md: criterion (mapping + serialization beside plain
# serde_json) and the export benchmark (10,000 events to a local sink, beside Segment's
# official Python library).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
cargo bench -p shared --features sample --bench mapping
cargo bench -p shared --features sample --bench ingest
# The sink runs in its own process, from beside the benchmark binary.
cargo build --release -p tests --bin segment-receiver
cargo run --release --quiet -p xtask -- export-bench "$@"
