#!/bin/sh
# The UI-stall probe (bench/ui_stall.cpp) under a virtual X server, or offscreen without one.
# Runs go to a temporary folder. Arguments pass through (--seconds, --model, --preload-points).
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
export VITLAB_RUNS_DIR="$runs"
if command -v xvfb-run >/dev/null 2>&1; then
  exec xvfb-run -a -s "-screen 0 1280x800x24" "$build/bench/ui_stall" "$@"
fi
QT_QPA_PLATFORM=offscreen exec "$build/bench/ui_stall" "$@"
