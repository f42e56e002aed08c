# Sourced by the other scripts: installs the tools the local run and the tests need
# (when missing or when scripts/requirements.txt changed) into a virtualenv outside the
# repository, and puts it first on PATH.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${DATA_EXPORT_TOOLS:-$HOME/.cache/data-export-segment/tools}"
sam="${DATA_EXPORT_SAM:-$HOME/.cache/data-export-segment/sam}"

# DATA_EXPORT_TOOLS_FOR=dev (`make dev`): only what the local run runs, moto's server and
# cargo-lambda (scripts/requirements-dev.txt); the tests' SDKs, clients, Chromium and the
# SAM CLI are left to `make test`.
for_dev=""
[ "${DATA_EXPORT_TOOLS_FOR:-}" = dev ] && for_dev=1

if [ ! -x "$tools/bin/python" ]; then
  echo "==> creating the tools virtualenv in $tools"
  python3 -m venv "$tools"
fi
want="$(sha256sum "$root/scripts/requirements.txt" | cut -d' ' -f1)"
want_dev="$(sha256sum "$root/scripts/requirements-dev.txt" | cut -d' ' -f1)"
if [ -n "$for_dev" ]; then
  # The full set holds the dev set: either marker will do.
  if [ "$(cat "$tools/.installed" 2>/dev/null)" != "$want" ] && [ "$(cat "$tools/.installed-dev" 2>/dev/null)" != "$want_dev" ]; then
    echo "==> installing the local run's tools from PyPI (scripts/requirements-dev.txt)"
    "$tools/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements-dev.txt"
    echo "$want_dev" > "$tools/.installed-dev"
  fi
elif [ "$(cat "$tools/.installed" 2>/dev/null)" != "$want" ]; then
  echo "==> installing tools from PyPI (scripts/requirements.txt)"
  "$tools/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt"
  echo "$want" > "$tools/.installed"
fi
if [ -z "$for_dev" ]; then
# LaunchDarkly's TypeScript API client, from npm, for the client test.
node_dir="$tools/node"
want="$(sha256sum "$root/tests/node/package.json" | cut -d' ' -f1)"
if [ "$(cat "$node_dir/.installed" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Node.js packages from npm (tests/node/package.json)"
  mkdir -p "$node_dir"
  cp "$root/tests/node/package.json" "$node_dir/package.json"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund)
  echo "$want" > "$node_dir/.installed"
fi
export NODE_PATH="$node_dir/node_modules"

# Debian's Chromium and its WebDriver, for the browser tests (as root, through apt-get).
if ! command -v chromedriver >/dev/null || ! [ -x /usr/bin/chromium ]; then
  echo "==> installing Debian's chromium and chromium-driver (apt-get)"
  sudo_if_needed=""
  [ "$(id -u)" -eq 0 ] || sudo_if_needed="sudo"
  $sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_if_needed apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if [ ! -x "$sam/bin/python" ]; then
  echo "==> creating the AWS SAM CLI virtualenv in $sam"
  python3 -m venv "$sam"
fi
want="$(sha256sum "$root/scripts/requirements-sam.txt" | cut -d' ' -f1)"
if [ "$(cat "$sam/.installed" 2>/dev/null)" != "$want" ]; then
  echo "==> installing the AWS SAM CLI and cfn-lint from PyPI (scripts/requirements-sam.txt)"
  "$sam/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements-sam.txt"
  echo "$want" > "$sam/.installed"
fi

fi

# The tools first (their python3 has ziglang, which cargo lambda needs to build for
# arm64); sam and cfn-lint last, so that their own python does not shadow it.
export PATH="$tools/bin:$PATH:$sam/bin"
export DATA_EXPORT_TOOLS="$tools"
export DATA_EXPORT_SAM="$sam"
export SAM_CLI_TELEMETRY=0
