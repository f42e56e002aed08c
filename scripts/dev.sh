#!/usr/bin/env bash
# Sets up and runs the service locally, end to end (see xtask/src/dev.rs).
# ONCE=1: stop after the walkthrough.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_EXPORT_TOOLS_FOR=dev source scripts/tools.sh
for f in export destinations test-event ingest replay; do cargo build --quiet -p "$f"; done
exec cargo xtask dev ${ONCE:+--once}
