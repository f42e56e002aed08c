#!/usr/bin/env bash
# Sets up and runs every test: installs missing tools, builds once, then runs the
# suite. Tests start the servers they need (moto_server, the Segment receiver,
# cargo lambda watch) on 127.0.0.1 and stop them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cfn-lint and sam validate --lint"
"$DATA_EXPORT_SAM/bin/cfn-lint" template.yaml
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" "$DATA_EXPORT_SAM/bin/sam" validate --lint
echo "==> build"
cargo build --workspace --all-targets
# cargo lambda watch builds each function on its own (its own feature set): build those now.
for f in export destinations test-event; do cargo build --quiet -p "$f"; done
echo "==> tests"
# The chaos run mostly waits on SQS timers: it runs beside the rest, and its output
# follows theirs.
chaos_log="$(mktemp)"
cargo test --quiet -p tests --test chaos -- --nocapture > "$chaos_log" 2>&1 &
chaos=$!
status=0
cargo test --workspace -- --test-threads="${TEST_THREADS:-4}" --skip chaos_ || status=$?
wait "$chaos" || status=$?
echo "==> chaos"
cat "$chaos_log"
rm -f "$chaos_log"
exit "$status"
