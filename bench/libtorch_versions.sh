#!/usr/bin/env bash
# ViTLab on LibTorch 1.13 (Debian, build/) against ViTLab on LibTorch 2.x (PyPI's wheel, build-pip/),
# and both against what a Python user runs: timm on the same PyTorch 2.x, eager and with
# torch.compile, and timm on Debian's PyTorch 1.13 (eager). Same run, same threads, in float32 and,
# where the CPU computes it natively, bfloat16 autocast (bench/precisions.sh): the training step of
# bench/train.sh's two workloads (vit_tiny_patch16_224 at batch 32; the Fashion-MNIST preset at
# batch 128) and vit_tiny_patch16_224 inference at batch 1 and 32. ROUNDS rounds (default 2)
# alternate the five; each one's best counts. Each round also times one product of the precision
# (bench_matmul's, 6304x192 by 192x768) in every library at hand: the best rate is the limit, and
# each training rate is printed as its share of it (the step's matrix FLOPs, three times the
# forward's, over that rate).
# timm goes into .venv-libtorch beside its torch (bench/peer-requirements.txt, torch kept at the pin)
# and into .venv-peer-debian, a venv over Debian's python3-torch (its system packages).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
old="${OLD_BUILD_DIR:-$root/build}"
new="${NEW_BUILD_DIR:-$root/build-pip}"
python="$root/.venv-libtorch/bin/python"
debian_venv="$root/.venv-peer-debian"
threads="$(nproc)"
rounds="${ROUNDS:-2}"
steps="${STEPS:-8}"
for binary in "$old/app/vitlab-cli" "$new/app/vitlab-cli" "$old/bench/bench_forward" "$new/bench/bench_forward"; do
  [[ -x "$binary" ]] || { echo "missing $binary: build with ./vitlab.sh build and VITLAB_LIBTORCH=pip ./vitlab.sh build" >&2; exit 1; }
done
BUILD_DIR="$old" source "$here/precisions.sh"
PRECISIONS="${ONLY_PRECISIONS:-$PRECISIONS}"
echo "CPU family $(lscpu | sed -n 's/^CPU family: *//p'), $threads threads; precisions: $PRECISIONS"
"$python" -m pip install -q -c "$root/cmake/libtorch-pip.txt" -r "$here/peer-requirements.txt"
[[ -x "$debian_venv/bin/python" ]] || /usr/bin/python3 -m venv --system-site-packages "$debian_venv"
# Debian's torch and torchvision satisfy timm's requirements, so pip leaves them in place.
"$debian_venv/bin/python" -m pip install -q "$(grep '^timm' "$here/peer-requirements.txt")"
python_debian="$debian_venv/bin/python"
export PYTHONWARNINGS=ignore

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ours_forward() { # BUILD BATCH PRECISION: median ms of bench_forward's case
  "$1/bench/bench_forward" --benchmark_min_time=2 --benchmark_repetitions=1 --benchmark_format=json \
      --benchmark_filter="BM_vit_tiny_forward_$3/$2/" 2>/dev/null \
    | "$python" -c 'import json,sys; print(json.dumps({"ms": json.load(sys.stdin)["benchmarks"][0]["real_time"]}))'
}
product_flops=$((2 * 32 * 197 * 192 * 768))
for round in $(seq "$rounds"); do
  for precision in $PRECISIONS; do
    for side in old new; do
      dir="$old"; [[ $side == new ]] && dir="$new"
      "$dir/bench/bench_matmul" --benchmark_min_time=1 --benchmark_format=json --benchmark_filter="$precision" 2>/dev/null \
        | "$python" -c 'import json,sys
for b in json.load(sys.stdin)["benchmarks"]:
    if "error_occurred" not in b: print(json.dumps({"name": b["name"], "ms": b["real_time"]}))' \
        | sed "s/\"name\": \"/&vitlab-$side /" >>"$work/products-$precision"
    done
    for peer in "$python torch-2.x" "$python_debian torch-1.13"; do
      read -r interpreter label <<<"$peer"
      "$interpreter" "$here/peer_matmul.py" "$threads" "$precision" \
        | "$python" -c 'import json,sys
r = json.load(sys.stdin)
for k, v in r.items():
    if k.endswith("_ms"): print(json.dumps({"name": sys.argv[1] + " " + k[:-3], "ms": v}))' "$label" \
        >>"$work/products-$precision"
    done
    for workload in "vit_tiny_patch16_224 32" "vit_tiny_d6_patch4_28 128"; do
      read -r model batch <<<"$workload"
      key="$precision train $model b$batch"
      for side in old new; do
        dir="$old"; [[ $side == new ]] && dir="$new"
        "$dir/app/vitlab-cli" bench train --model "$model" --batch "$batch" --precision "$precision" --steps "$steps" \
            --json | "$python" -c 'import json,sys; print(json.dumps({"images_per_s": json.load(sys.stdin)["images_per_s"]}))' \
          >>"$work/$key|vitlab-$side"
      done
      for how in eager compile; do
        "$python" "$here/peer_timm.py" train "$threads" "$model" "$batch" "$precision" "$steps" "$how" >>"$work/$key|timm-$how"
      done
      "$python_debian" "$here/peer_timm.py" train "$threads" "$model" "$batch" "$precision" "$steps" eager \
        >>"$work/$key|timm-1.13"
    done
    for batch in 1 32; do
      key="$precision forward vit_tiny_patch16_224 b$batch"
      ours_forward "$old" "$batch" "$precision" >>"$work/$key|vitlab-old"
      ours_forward "$new" "$batch" "$precision" >>"$work/$key|vitlab-new"
      for how in eager compile; do
        "$python" "$here/peer_timm.py" forward "$threads" vit_tiny_patch16_224 "$batch" "$precision" 20 "$how" \
          >>"$work/$key|timm-$how"
      done
      "$python_debian" "$here/peer_timm.py" forward "$threads" vit_tiny_patch16_224 "$batch" "$precision" 20 eager \
        >>"$work/$key|timm-1.13"
    done
  done
done
"$old/app/vitlab-cli" models --json >"$work/models.json"
"$python" - "$work" "$("$python" -c 'import torch; print(torch.__version__)')" "$product_flops" $PRECISIONS <<'PY'
import glob, json, os, sys
work, torch_version, product_flops, precisions = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
flops = {m["name"]: m["flops_per_image"] for m in json.load(open(os.path.join(work, "models.json")))}
columns = ["vitlab-old", "vitlab-new", "timm-1.13", "timm-eager", "timm-compile"]
for precision in precisions:
    rates = {}
    for line in open(os.path.join(work, f"products-{precision}")):
        entry = json.loads(line)
        rates[entry["name"]] = max(rates.get(entry["name"], 0.0), product_flops / entry["ms"] / 1e6)
    limit = max(rates.values())
    print(f"\n{precision} product 6304x192x768, GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(rates.items()))
          + f"; limit {limit:.0f}")
    print(f"ViTLab on LibTorch 1.13 and {torch_version}; timm on Debian's PyTorch 1.13 and on {torch_version}; "
          f"{precision}; best of rounds")
    print(f"{'':34} {'ViTLab 1.13':>12} {'ViTLab 2.x':>12} {'timm 1.13':>12} {'timm eager':>12} {'timm compile':>13}"
          "  best ViTLab/best timm  share of limit (ViTLab, timm)")
    rows = sorted({os.path.basename(p).split("|")[0] for p in glob.glob(os.path.join(work, f"{precision} *|*"))})
    for row in rows:
        best = {}
        for column in columns:
            path = os.path.join(work, f"{row}|{column}")
            values = [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
            good = [v for v in values if "error" not in v]
            best[column] = None
            if not good:
                if values:
                    print(f"  ({column}: {values[0]['error']})")
                continue
            key = "images_per_s" if "images_per_s" in good[0] else "ms"
            best[column] = (max if key == "images_per_s" else min)(v[key] for v in good)
        unit = "img/s" if " train " in row else "ms"
        def cell(v): return f"{v:10.1f}" + (" /s" if unit == "img/s" else " ms") if v else f"{'n/a':>13}"
        label = row[len(precision) + 1:]
        print(f"{label:34} " + " ".join(cell(best[c]) for c in columns), end="")
        ours = [best[c] for c in ("vitlab-old", "vitlab-new") if best.get(c)]
        peers = [best[c] for c in ("timm-1.13", "timm-eager", "timm-compile") if best.get(c)]
        if ours and peers:
            r = max(ours) / max(peers) if unit == "img/s" else min(peers) / min(ours)
            print(f"  {r:19.2f}x", end="")
            if unit == "img/s":
                model = label.split()[1]
                share = lambda rate: 3 * flops[model] * rate / (limit * 1e9)
                print(f"  {100 * share(max(ours)):5.0f}% {100 * share(max(peers)):5.0f}%", end="")
        print()
PY
