#!/usr/bin/env bash
# Creates (or reuses) the virtual environment of the Hub cache tests: huggingface_hub from PyPI.
# Where it cannot (no python3-venv, no PyPI), it writes why into DIR/unavailable.txt and exits 0:
# the tests that need it then skip, saying so.
set -uo pipefail
dir="$1"
requirements="$(dirname "$0")/requirements.txt"
rm -f "$dir/unavailable.txt"
if [[ -x "$dir/bin/python" ]] && cmp -s "$requirements" "$dir/requirements.txt"; then
  exit 0
fi
if ! python3 -m venv "$dir" >"$dir.log" 2>&1; then
  mkdir -p "$dir"
  echo "python3 -m venv failed (is python3-venv installed?): $(tail -1 "$dir.log")" >"$dir/unavailable.txt"
  exit 0
fi
if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >>"$dir.log" 2>&1; then
  echo "pip could not install $(grep -v '^#' "$requirements") (no PyPI here?): $(tail -1 "$dir.log")" >"$dir/unavailable.txt"
  exit 0
fi
cp "$requirements" "$dir/requirements.txt"
