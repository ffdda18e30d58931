#!/usr/bin/env bash
# vit_tiny_patch16_224 forward latency: ViTLab against torchvision from Python, same threads, same run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD_DIR="${BUILD_DIR:-$here/../build}"
threads="$(nproc)"
ours="$(mktemp)"
trap 'rm -f "$ours"' EXIT
"$BUILD_DIR/bench/bench_forward" --benchmark_min_time=2 --benchmark_out="$ours" --benchmark_out_format=json >&2
peer="$(/usr/bin/python3 "$here/peer_forward.py" "$threads")"
/usr/bin/python3 "$here/compare.py" "$ours" "$peer" BM_vit_tiny_forward
