#!/usr/bin/env bash
# Puts timm (bench/peer-requirements.txt, torch held at cmake/libtorch-pip.txt's pin) into the pip
# flavour's .venv-libtorch for the tests that compare with timm. Where pip cannot install it, the
# tests skip, saying why: this exits 0 either way.
set -uo pipefail
python="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
if "$python" -c "import timm" 2>/dev/null; then
  exit 0
fi
"$python" -m pip install -q --disable-pip-version-check -c "$root/cmake/libtorch-pip.txt" \
  -r "$root/bench/peer-requirements.txt" || echo "timm could not be installed (no PyPI here?): the tests that need it skip"
exit 0
