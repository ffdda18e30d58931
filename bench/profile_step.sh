#!/usr/bin/env bash
# Where a training step's time goes: perf samples `vitlab-cli bench train` on both threads and
# sorts the samples by library, so the share of the matrix products (oneDNN's generated kernels,
# a BLAS) stands beside what is not products (ATen's element-wise passes, the engine's own
# kernels, OpenMP's waiting, the kernel's page faults). LibTorch's own profiler is not used: with
# it on, ATen's element-wise passes ran up to 9x slower here, and the shares with them.
#   bench/profile_step.sh MODEL BATCH PRECISION [STEPS]     (BUILD_DIR as the other scripts)
# The samples also cover building the model and two warm-up steps: STEPS (default 20) keeps
# those small. Needs perf (linux-perf) and kernel.perf_event_paranoid <= 2.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD_DIR="${BUILD_DIR:-$here/../build}"
model="${1:?model}" batch="${2:?batch}" precision="${3:?precision}" steps="${4:-20}"
command -v perf >/dev/null || { echo "perf is missing: sudo apt-get install linux-perf" >&2; exit 1; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p'), $(nproc) threads"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
perf record -q -F 999 -o "$work/perf.data" -- "$BUILD_DIR/app/vitlab-cli" bench train --model "$model" \
  --batch "$batch" --precision "$precision" --steps "$steps" 2>&1 | grep -v '^\[ perf'
perf report -i "$work/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep '%' >"$work/dso"
/usr/bin/python3 - "$work/dso" <<'PY'
import re, sys
kinds = [  # (what, whether it is matrix products, how its library is named)
    ("oneDNN's generated kernels (products, convolutions)", True, r"^\[JIT\]"),
    ("BLAS products (OpenBLAS, MKL)", True, r"openblas|libblas|mkl"),
    ("oneDNN, outside its kernels", False, r"dnnl"),
    ("ATen (element-wise, norms, softmax, autograd)", False, r"libtorch|libc10"),
    ("ATen's vector math (Sleef)", False, r"sleef"),
    ("the engine's own kernels and code", False, r"vitlab"),
    ("OpenMP (threads waiting, hand-offs)", False, r"gomp|iomp"),
    ("the kernel (page faults, scheduling)", False, r"kernel"),
    ("the C library (allocation, copies)", False, r"^libc|ld-linux"),
]
shares = {}
for line in open(sys.argv[1]):
    match = re.match(r"\s*([\d.]+)%\s+(.+?)\s*$", line)
    if not match:
        continue
    share, library = float(match.group(1)), match.group(2)
    kind = next((k for k, _, pattern in kinds if re.search(pattern, library)), "other")
    shares[kind] = shares.get(kind, 0.0) + share
products = sum(v for k, v in shares.items() if any(k == name and is_product for name, is_product, _ in kinds))
print(f"matrix products: {products:.1f}% of the samples")
for kind, share in sorted(shares.items(), key=lambda item: -item[1]):
    print(f"  {share:5.1f}%  {kind}")
PY
