#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md: criterion (mapping + serialization beside plain
# serde_json) and the export benchmark (10,000 events to a local sink, beside Segment's
# official Python library). `--ingest [SECONDS] [CONCURRENCY]`: only ingest's (§3): its
# criterion bench, the peak memory of its handler at the size limit, and a load run under
# cargo lambda watch with oha.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
if [ "${1:-}" = "--ingest" ]; then
  shift
  # oha, the HTTP load generator, from crates.io (its own build, outside our target dir).
  if ! command -v oha >/dev/null; then
    echo "==> installing oha (cargo install) into $DATA_EXPORT_TOOLS"
    env -u CARGO_TARGET_DIR cargo install oha --version 1.16.0 --locked --root "$DATA_EXPORT_TOOLS"
  fi
  cargo bench -p shared --features sample --bench ingest
  rss="$(mktemp -d)"
  trap 'rm -rf "$rss"' EXIT
  run_rss() { cargo run --release --quiet -p shared --features sample --example ingest_rss -- "$@"; }
  run_rss write "$rss"
  run_rss measure "$rss/plain.json" | grep VmHWM
  run_rss measure "$rss/gzip.json" | grep VmHWM
  cargo run --release --quiet -p xtask -- ingest-bench "$@"
  exit
fi
cargo bench -p shared --features sample --bench mapping
cargo bench -p shared --features sample --bench ingest
# The sink runs in its own process, from beside the benchmark binary.
cargo build --release -p tests --bin segment-receiver
cargo run --release --quiet -p xtask -- export-bench "$@"
