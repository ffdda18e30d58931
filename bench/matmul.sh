#!/usr/bin/env bash
# Runs bench_matmul and its Python peer in the same run and prints peer time / our time.
set -euo pipefail
BUILD_DIR="${BUILD_DIR:-$(dirname "$0")/../build}"
threads="$(nproc)"
source "$(dirname "$0")/precisions.sh"
ours="$("$BUILD_DIR/bench/bench_matmul" --benchmark_format=json --benchmark_min_time=1 \
        --benchmark_filter="_(${PRECISIONS// /|})(/|\$)")"
peer="$(/usr/bin/python3 "$(dirname "$0")/peer_matmul.py" "$threads" $PRECISIONS)"
/usr/bin/python3 - "$ours" "$peer" $PRECISIONS <<'PY'
import json, sys
ours = {b["name"].split("/")[0]: b["real_time"] for b in json.loads(sys.argv[1])["benchmarks"]}
peer = json.loads(sys.argv[2])
for precision in sys.argv[3:]:
    us, them = ours[f"BM_linear_{precision}"], peer[f"{precision}_ms"]
    print(f"linear {precision}: ViTLab {us:.2f} ms, PyTorch {them:.2f} ms, ratio (peer/ours) {them/us:.2f}x")
PY
