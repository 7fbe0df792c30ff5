#!/usr/bin/env bash
# Install MPM with every plugin and language pack in this repository.
#   bash scripts/install.sh          # the framework, plugins and packs
#   bash scripts/install.sh --dev    # + test and lint tools
# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
extras="distributed"
[[ "${1:-}" == "--dev" ]] && extras="distributed,dev"

"$PY" -m pip install --quiet "torch==2.13.0" "setuptools>=68" wheel
targets=(-e ".[${extras}]")
for dir in plugins/*/ languages/*/; do
  [[ -f "$dir/pyproject.toml" ]] && targets+=(-e "$dir")
done
DS_BUILD_OPS=0 "$PY" -m pip install --quiet --no-build-isolation \
  -c requirements/constraints.txt "${targets[@]}"
# the browser test of `mpm serve --ui` drives Debian's chromium (playwright cannot download its own here)
if [[ "${1:-}" == "--dev" ]] && ! command -v chromium >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "note: chromium is missing (the web-demo browser test skips; as root: apt-get install -y chromium)" >&2
  fi
fi
echo "mpm installed: $(command -v mpm)"
