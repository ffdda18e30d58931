#!/usr/bin/env bash
# Training throughput (forward, backward, clipping, AdamW): `vitlab-cli bench train` against the
# same step on torchvision's VisionTransformer from Python, same threads, same run. Two models:
# vit_tiny_patch16_224 at batch 32, and the Fashion-MNIST preset (width 192, depth 6, 3 heads,
# patch 4, 28x28 grey) at batch 128; float32 and bfloat16 autocast.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD_DIR="${BUILD_DIR:-$here/../build}"
threads="$(nproc)"
steps="${STEPS:-8}"
#        registry name          size patch depth heads width channels classes batch
cases=("vit_tiny_patch16_224   224  16    12    3     192   3        1000    32"
       "vit_tiny_d6_patch4_28  28   4     6     3     192   1        1000    128")
for case in "${cases[@]}"; do
  read -r name size patch depth heads width channels classes batch <<<"$case"
  for precision in fp32 bf16; do
    ours="$("$BUILD_DIR/app/vitlab-cli" bench train --model "$name" --batch "$batch" --precision "$precision" \
            --steps "$steps" --json)"
    peer="$(/usr/bin/python3 "$here/peer_train.py" "$threads" "$size" "$patch" "$depth" "$heads" "$width" \
            "$channels" "$classes" "$batch" "$precision" "$steps")"
    /usr/bin/python3 - "$name" "$batch" "$precision" "$ours" "$peer" <<'PY'
import json, sys
name, batch, precision = sys.argv[1:4]
ours, peer = json.loads(sys.argv[4])["images_per_s"], json.loads(sys.argv[5])["images_per_s"]
print(f"{name} batch {batch} {precision}: ViTLab {ours:.1f} images/s, PyTorch {peer:.1f} images/s, "
      f"ratio {ours / peer:.2f}x")
PY
  done
done
