#!/usr/bin/env bash
# Sets up and runs every test: installs missing tools, builds once, then runs the
# suite. Tests start the servers they need (moto_server, the Segment receiver,
# cargo lambda watch) on 127.0.0.1 and stop them by PID.
#
# Work that mostly waits (the template linters, the chaos run's SQS timers) or needs no
# server (the library's own tests) runs beside the rest; its output follows.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
beside=()
# Starts "$@" in the background, its output to a file of its own under $logs (numbered:
# a name may hold a slash).
run_beside() {
  local name="$1" log="$logs/${#beside[@]}"
  shift
  "$@" > "$log" 2>&1 &
  beside+=("$!:$log:$name")
}
# Waits for everything started beside, prints its output, fails if any of it failed.
finish_beside() {
  local status=0 entry pid log
  for entry in "${beside[@]}"; do
    pid="${entry%%:*}"
    log="${entry#*:}"
    log="${log%%:*}"
    echo "==> ${entry#*:*:}"
    wait "$pid" || status=$?
    cat "$log"
  done
  beside=()
  return "$status"
}

lint_template() {
  "$DATA_EXPORT_SAM/bin/cfn-lint" template.yaml
  AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" "$DATA_EXPORT_SAM/bin/sam" validate --lint
}
run_beside "cfn-lint and sam validate --lint" lint_template
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> build"
cargo build --workspace --all-targets
# cargo lambda watch builds each function on its own (its own feature set): build those now.
for f in export destinations test-event ingest replay; do cargo build --quiet -p "$f"; done
finish_beside

echo "==> tests"
threads="--test-threads=${TEST_THREADS:-4}"
# Every cargo call selects --workspace, so that all of them resolve features alike and share
# one build: a cold machine builds each crate once.
run_beside "chaos" cargo test --quiet --workspace --test chaos -- --nocapture
run_beside "API fuzzing (schemathesis)" cargo test --quiet --workspace --test openapi -- --nocapture
run_beside "packing properties" cargo test --quiet --workspace --test packing
# The end-to-end suites mostly wait on the functions under cargo lambda watch: they run
# beside the rest, the shared-stack binary then the one whose suites start their own.
run_beside "end-to-end suites" cargo test --workspace --test end_to_end --test own_stacks -- "$threads"
# Everything else: unit tests and every other test target, found by name so none is missed.
others=()
for file in tests/tests/*.rs tests/tests/*/main.rs; do
  name="$(basename "$file" .rs)"
  [ "$name" = main ] && name="$(basename "$(dirname "$file")")"
  case " chaos openapi end_to_end own_stacks sam_local " in *" $name "*) ;; *) others+=(--test "$name") ;; esac
done
status=0
cargo test --workspace --lib --bins "${others[@]}" -- "$threads" || status=$?
finish_beside || status=$?
# The template under `sam local` in podman (invoke and start-api, x86_64 and arm64), last
# and alone: SAM enforces the template's timeouts, which the debug builds under qemu and a
# machine busy with the suites above did not meet (a 10 s DestinationsFunction timed out),
# and its `cargo build -p` of each function replaced binaries that cargo lambda watch was
# running. It prepares podman and runs `sam build` itself.
echo "==> sam local (scripts/sam-local.sh test)"
scripts/sam-local.sh test || status=$?
exit "$status"
