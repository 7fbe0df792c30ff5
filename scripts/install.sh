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
echo "mpm installed: $(command -v mpm)"
