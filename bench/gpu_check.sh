#!/usr/bin/env bash
# The prepared GPU check: on a machine with an NVIDIA GPU, PyTorch (and the LibTorch inside it),
# CMake, ninja and a C++ compiler, and nothing else (no Qt, OpenCV, network or package manager).
# It builds the engine alone against that LibTorch, then runs vitlab-gpu-check: every family's
# forward on the GPU against the CPU, bfloat16 and float16 training with the loss falling, a
# checkpoint from the GPU to the CPU and back, out-of-memory handling, a one-process training group
# on NCCL (a collective and a data-parallel step equal to a plain one), and training throughput of
# four standard models next to timm's on the same GPU, as ratios.
#
#   bench/gpu_check.sh [--device cuda|cpu] [--quick] [--binary FILE] [--build-dir DIR] [--out DIR]
#
# --device cpu --quick is what the suite runs (with --binary, the full build's program). The engine
# needs nlohmann/json.hpp: from the system, or from $VITLAB_JSON_INCLUDE_DIR, or from
# .gpu-check-deps/include in the checkout (copy /usr/include/nlohmann there to carry it along).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../cmake/torch-wheel.sh
source "$ROOT/cmake/torch-wheel.sh"

device=cuda
quick=()
binary=""
build_dir="$ROOT/build-gpu-check"
out_dir=""
python="${VITLAB_PYTHON:-python3}"
while (($#)); do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --binary) binary="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --out) out_dir="$2"; shift 2 ;;
    *) echo "usage: $0 [--device cuda|cpu] [--quick] [--binary FILE] [--build-dir DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
out_dir="${out_dir:-$build_dir/results}"
mkdir -p "$out_dir"
log() { printf '==> %s\n' "$*" >&2; }
start=$SECONDS

if [[ -z "$binary" ]]; then
  json_dir="${VITLAB_JSON_INCLUDE_DIR:-}"
  if [[ -z "$json_dir" && ! -f /usr/include/nlohmann/json.hpp && -f "$ROOT/.gpu-check-deps/include/nlohmann/json.hpp" ]]; then
    json_dir="$ROOT/.gpu-check-deps/include"
  fi
  mapfile -t torch_arguments < <(torch_wheel_cmake_arguments "$python")
  ((${#torch_arguments[@]})) || { echo "error: $python has no torch" >&2; exit 1; }
  log "configuring the engine alone in $build_dir"
  cmake -S "$ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVITLAB_ENGINE_ONLY=ON \
    ${json_dir:+"-DVITLAB_JSON_INCLUDE_DIR=$json_dir"} "${torch_arguments[@]}" >"$out_dir/configure.log" 2>&1 \
    || { cat "$out_dir/configure.log" >&2; exit 1; }
  log "building vitlab-gpu-check with $(nproc) jobs"
  cmake --build "$build_dir" --target vitlab-gpu-check --parallel "$(nproc)" >"$out_dir/build.log" 2>&1 \
    || { tail -50 "$out_dir/build.log" >&2; exit 1; }
  binary="$build_dir/bench/gpu_check/vitlab-gpu-check"
  log "built in $((SECONDS - start)) s"
fi

status=0
log "vitlab-gpu-check --device $device ${quick[*]}"
"$binary" --device "$device" "${quick[@]}" | tee "$out_dir/gpu_check.jsonl" || status=$?

# timm on the same device, same models and batch, the same step (soft-target cross-entropy,
# clipping, AdamW) in the same precision.
if grep -q '"check":"throughput"' "$out_dir/gpu_check.jsonl"; then
  log "timm on the same device"
  if "$python" "$ROOT/bench/gpu_check/peer_timm_train.py" --device "$device" --from "$out_dir/gpu_check.jsonl" \
      >"$out_dir/peer.jsonl"; then
    "$python" - "$out_dir/gpu_check.jsonl" "$out_dir/peer.jsonl" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if '"throughput"' in l]
peer = {p["model"]: p for p in map(json.loads, open(sys.argv[2]))}
print(f"{'model':32} {'batch':>5} {'prec':>5} {'ViTLab img/s':>13} {'timm img/s':>11} {'ratio':>6}")
for o in ours:
    p = peer.get(o["model"], {})
    rate = p.get("images_per_s")
    ratio = f"{o['images_per_s'] / rate:.2f}" if rate else p.get("error", "n/a")
    print(f"{o['model']:32} {o['batch']:>5} {o['precision']:>5} {o['images_per_s']:>13.1f} {rate or 0:>11.1f} {ratio:>6}")
PY
  else
    log "the timm peer failed (see $out_dir/peer.jsonl)"
    status=1
  fi
fi
failed="$(grep -c '"ok":false' "$out_dir/gpu_check.jsonl" || true)"
log "$((SECONDS - start)) s in all; failed checks: $failed"
((failed == 0)) || status=1
exit "$status"
