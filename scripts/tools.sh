# Sourced by the other scripts: installs the tools the local run and the tests need
# (when missing or when scripts/requirements.txt changed) into a virtualenv outside the
# repository, and puts it first on PATH.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${DATA_EXPORT_TOOLS:-$HOME/.cache/data-export-segment/tools}"

if [ ! -x "$tools/bin/python" ]; then
  echo "==> creating the tools virtualenv in $tools"
  python3 -m venv "$tools"
fi
want="$(sha256sum "$root/scripts/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$tools/.installed" 2>/dev/null)" != "$want" ]; then
  echo "==> installing tools from PyPI (scripts/requirements.txt)"
  "$tools/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt"
  echo "$want" > "$tools/.installed"
fi
export PATH="$tools/bin:$PATH"
export DATA_EXPORT_TOOLS="$tools"
