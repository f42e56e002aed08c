#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md: criterion (mapping + serialization beside plain
# serde_json) and the export benchmark (10,000 events to a local sink, beside Segment's
# official Python library).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
cargo bench -p testkit --bench mapping
cargo build --release -p testkit --bin export-bench --bin segment-receiver
target/release/export-bench "$@"
