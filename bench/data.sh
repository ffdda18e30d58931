#!/usr/bin/env bash
# The training input pipeline: `vitlab-cli bench data` against torchvision's ImageFolder +
# DataLoader(num_workers=2) on the same folder of JPEGs, same run. Prints images/s and ratios.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD_DIR="${BUILD_DIR:-$here/../build}"
folder="${1:-${TMPDIR:-/tmp}/vitlab-bench-jpegs}"
if [[ ! -d "$folder" ]]; then
  echo "writing 3000 JPEGs of about 300 px to $folder" >&2
  /usr/bin/python3 "$here/make_jpeg_folder.py" "$folder" 10 300
fi
ours="$("$BUILD_DIR/app/vitlab-cli" bench data --data "$folder" --img-size 224 --batch 64 --epochs 3 --json)"
peer="$(/usr/bin/python3 "$here/peer_data.py" "$folder" 224 64 3)"
/usr/bin/python3 - "$ours" "$peer" <<'PY'
import json, sys
ours, peer = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for a, b in zip(ours["epochs"], peer["epochs"]):
    print(f"epoch {a['epoch']}: ViTLab {a['images_per_s']:.0f} images/s, torchvision {b['images_per_s']:.0f} images/s, "
          f"ratio {a['images_per_s'] / b['images_per_s']:.2f}x")
print(f"cache {ours['cache_mb_per_1000_images']:.0f} MB per 1000 images at {ours['cache_side']} px, "
      f"peak resident memory {ours['peak_rss_mb']:.0f} MB")
PY
