#!/usr/bin/env bash
# Training throughput (forward, backward, clipping, AdamW): `vitlab-cli bench train` against the
# same step on torchvision's VisionTransformer from Python, same threads, same run. Two models:
# vit_tiny_patch16_224 at batch 32, and the Fashion-MNIST preset (width 192, depth 6, 3 heads,
# patch 4, 28x28 grey) at batch 128; float32 and bfloat16 autocast. ROUNDS rounds (default 3)
# alternate ours and the peer; each side's best round is compared, the per-round spread printed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD_DIR="${BUILD_DIR:-$here/../build}"
threads="$(nproc)"
steps="${STEPS:-8}"
rounds="${ROUNDS:-3}"
source "$here/precisions.sh"
#        registry name          size patch depth heads width channels classes batch
cases=("vit_tiny_patch16_224   224  16    12    3     192   3        1000    32"
       "vit_tiny_d6_patch4_28  28   4     6     3     192   1        1000    128")
for case in "${cases[@]}"; do
  read -r name size patch depth heads width channels classes batch <<<"$case"
  for precision in $PRECISIONS; do
    results=()
    for round in $(seq "$rounds"); do
      ours="$("$BUILD_DIR/app/vitlab-cli" bench train --model "$name" --batch "$batch" --precision "$precision" \
              --steps "$steps" --json)"
      peer="$(/usr/bin/python3 "$here/peer_train.py" "$threads" "$size" "$patch" "$depth" "$heads" "$width" \
              "$channels" "$classes" "$batch" "$precision" "$steps")"
      results+=("$ours" "$peer")
    done
    /usr/bin/python3 - "$name" "$batch" "$precision" "${results[@]}" <<'PY'
import json, sys
name, batch, precision, results = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
ours = [json.loads(r)["images_per_s"] for r in results[0::2]]
peer = [json.loads(r)["images_per_s"] for r in results[1::2]]
line = (f"{name} batch {batch} {precision}: ViTLab {max(ours):.1f} images/s, PyTorch {max(peer):.1f} images/s, "
        f"ratio {max(ours) / max(peer):.2f}x")
if len(ours) > 1:
    ratios = [o / p for o, p in zip(ours, peer)]
    line += f" (rounds: {min(ratios):.2f}-{max(ratios):.2f}x)"
print(line)
PY
  done
done
