#!/usr/bin/env bash
# ViTLab on LibTorch 1.13 (Debian, build/) against ViTLab on LibTorch 2.x (PyPI's wheel, build-pip/),
# and both against what a Python user runs today: timm on the same PyTorch 2.x, eager and with
# torch.compile. Same run, same threads, float32: the training step of bench/train.sh's two workloads
# (vit_tiny_patch16_224 at batch 32; the Fashion-MNIST preset at batch 128) and vit_tiny_patch16_224
# inference at batch 1 and 32. ROUNDS rounds (default 2) alternate the four; each one's best counts.
# Each round also times one float32 product (bench_matmul's, 6304x192 by 192x768) in every library
# at hand: the best rate is the limit, and each training rate is printed as its share of it (the
# step's matrix FLOPs, three times the forward's, over that rate).
# timm goes into .venv-libtorch beside its torch (bench/peer-requirements.txt, torch kept at the pin).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
old="${OLD_BUILD_DIR:-$root/build}"
new="${NEW_BUILD_DIR:-$root/build-pip}"
python="$root/.venv-libtorch/bin/python"
threads="$(nproc)"
rounds="${ROUNDS:-2}"
steps="${STEPS:-8}"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p'), $threads threads"
for binary in "$old/app/vitlab-cli" "$new/app/vitlab-cli" "$old/bench/bench_forward" "$new/bench/bench_forward"; do
  [[ -x "$binary" ]] || { echo "missing $binary: build with ./vitlab.sh build and VITLAB_LIBTORCH=pip ./vitlab.sh build" >&2; exit 1; }
done
"$python" -m pip install -q -c "$root/cmake/libtorch-pip.txt" -r "$here/peer-requirements.txt"
export PYTHONWARNINGS=ignore

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ours_forward() { # BUILD BATCH: median ms of bench_forward's float32 case
  "$1/bench/bench_forward" --benchmark_min_time=2 --benchmark_repetitions=1 --benchmark_format=json \
      --benchmark_filter="BM_vit_tiny_forward_fp32/$2/" 2>/dev/null \
    | "$python" -c 'import json,sys; print(json.dumps({"ms": json.load(sys.stdin)["benchmarks"][0]["real_time"]}))'
}
product_flops=$((2 * 32 * 197 * 192 * 768))
for round in $(seq "$rounds"); do
  for side in old new; do
    dir="$old"; [[ $side == new ]] && dir="$new"
    "$dir/bench/bench_matmul" --benchmark_min_time=1 --benchmark_format=json --benchmark_filter='fp32' 2>/dev/null \
      | "$python" -c 'import json,sys
for b in json.load(sys.stdin)["benchmarks"]:
    if "error_occurred" not in b: print(json.dumps({"name": b["name"], "ms": b["real_time"]}))' \
      | sed "s/\"name\": \"/&vitlab-$side /" >>"$work/products"
  done
  "$python" "$here/peer_matmul.py" "$threads" fp32 \
    | "$python" -c 'import json,sys
r = json.load(sys.stdin)
for k in ("fp32_ms", "fp32_onednn_ms"):
    if k in r: print(json.dumps({"name": "torch " + k[:-3], "ms": r[k]}))' >>"$work/products"
  for workload in "vit_tiny_patch16_224 32" "vit_tiny_d6_patch4_28 128"; do
    read -r model batch <<<"$workload"
    key="train $model b$batch"
    for side in old new; do
      dir="$old"; [[ $side == new ]] && dir="$new"
      "$dir/app/vitlab-cli" bench train --model "$model" --batch "$batch" --precision fp32 --steps "$steps" --json \
        | "$python" -c 'import json,sys; print(json.dumps({"images_per_s": json.load(sys.stdin)["images_per_s"]}))' \
        >>"$work/$key|vitlab-$side"
    done
    for how in eager compile; do
      "$python" "$here/peer_timm.py" train "$threads" "$model" "$batch" fp32 "$steps" "$how" >>"$work/$key|timm-$how"
    done
  done
  for batch in 1 32; do
    key="forward vit_tiny_patch16_224 b$batch"
    ours_forward "$old" "$batch" >>"$work/$key|vitlab-old"
    ours_forward "$new" "$batch" >>"$work/$key|vitlab-new"
    for how in eager compile; do
      "$python" "$here/peer_timm.py" forward "$threads" vit_tiny_patch16_224 "$batch" fp32 20 "$how" >>"$work/$key|timm-$how"
    done
  done
done
"$old/app/vitlab-cli" models --json >"$work/models.json"
"$python" - "$work" "$("$python" -c 'import torch; print(torch.__version__)')" "$product_flops" <<'PY'
import glob, json, os, sys
work, torch_version, product_flops = sys.argv[1], sys.argv[2], float(sys.argv[3])
flops = {m["name"]: m["flops_per_image"] for m in json.load(open(os.path.join(work, "models.json")))}
rates = {}
for line in open(os.path.join(work, "products")):
    entry = json.loads(line)
    rates[entry["name"]] = max(rates.get(entry["name"], 0.0), product_flops / entry["ms"] / 1e6)
limit = max(rates.values())
print("float32 product 6304x192x768, GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(rates.items()))
      + f"; limit {limit:.0f}")
columns = ["vitlab-old", "vitlab-new", "timm-eager", "timm-compile"]
rows = sorted({os.path.basename(p).split("|")[0] for p in glob.glob(os.path.join(work, "*|*"))})
print(f"ViTLab on LibTorch 1.13 and {torch_version}; timm on PyTorch {torch_version}; float32; best of rounds")
print(f"{'':38} {'ViTLab 1.13':>12} {'ViTLab 2.x':>12} {'timm eager':>12} {'timm compile':>13}  2.x/1.13  2.x/eager  2.x/compile"
      "  best ViTLab/best timm  share of limit (ViTLab, timm)")
for row in rows:
    best = {}
    for column in columns:
        path = os.path.join(work, f"{row}|{column}")
        values = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
        good = [v for v in values if "error" not in v]
        if not good:
            best[column] = None
            if values:
                print(f"  ({column}: {values[0]['error']})")
            continue
        key = "images_per_s" if "images_per_s" in good[0] else "ms"
        best[column] = (max if key == "images_per_s" else min)(v[key] for v in good)
    unit = "img/s" if row.startswith("train") else "ms"
    def cell(v): return f"{v:10.1f}" + (" /s" if unit == "img/s" else " ms") if v else f"{'n/a':>13}"
    def ratio(a, b):  # how many times faster the first is
        if not best.get(a) or not best.get(b): return "     n/a"
        r = best[a] / best[b] if unit == "img/s" else best[b] / best[a]
        return f"{r:8.2f}x"
    print(f"{row:38} {cell(best['vitlab-old'])} {cell(best['vitlab-new'])} {cell(best['timm-eager'])} "
          f"{cell(best['timm-compile'])} {ratio('vitlab-new', 'vitlab-old')} {ratio('vitlab-new', 'timm-eager')} "
          f"{ratio('vitlab-new', 'timm-compile')}", end="")
    ours = [best[c] for c in ("vitlab-old", "vitlab-new") if best.get(c)]
    peers = [best[c] for c in ("timm-eager", "timm-compile") if best.get(c)]
    if ours and peers:
        better = max if unit == "img/s" else min
        r = better(ours) / better(peers) if unit == "img/s" else better(peers) / better(ours)
        print(f"  {r:19.2f}x", end="")
        if unit == "img/s":
            model = row.split()[1]
            share = lambda rate: 3 * flops[model] * rate / (limit * 1e9)
            print(f"  {100 * share(max(ours)):5.0f}% {100 * share(max(peers)):5.0f}%", end="")
    print()
PY
