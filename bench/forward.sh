#!/usr/bin/env bash
# vit_tiny_patch16_224 forward latency: ViTLab against torchvision from Python, same threads, same run.
# ROUNDS rounds (default 3) alternate ours and the peer, so that a burst of background load hits
# both; each side's best round is compared, and the spread of the per-round ratios is printed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD_DIR="${BUILD_DIR:-$here/../build}"
threads="$(nproc)"
rounds="${ROUNDS:-3}"
source "$here/precisions.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
files=()
for round in $(seq "$rounds"); do
  "$BUILD_DIR/bench/bench_forward" --benchmark_min_time=2 --benchmark_out="$work/ours$round.json" \
      --benchmark_out_format=json --benchmark_filter="_(${PRECISIONS// /|})/" >&2
  /usr/bin/python3 "$here/peer_forward.py" "$threads" $PRECISIONS >"$work/peer$round.json"
  files+=("$work/ours$round.json" "$work/peer$round.json")
done
/usr/bin/python3 "$here/compare.py" BM_vit_tiny_forward "${files[@]}"
