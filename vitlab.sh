#!/usr/bin/env bash
# ViTLab's one entry for a Debian 12 machine:
#   ./vitlab.sh run [app options]   install what is missing, build, start the app on the demo data
#   ./vitlab.sh test                install what is missing, build, run every test (headless)
#   ./vitlab.sh build               install what is missing and build
#   ./vitlab.sh fuzz [SECONDS]      build the libFuzzer targets (clang) and run each SECONDS (600)
#   ./vitlab.sh deps                only install the Debian packages
# VITLAB_LIBTORCH says where LibTorch comes from: debian (the default: Debian's 1.13, CPU only),
# pip (PyPI's torch wheel, 2.x with CUDA, pinned in cmake/libtorch-pip.txt, installed into
# .venv-libtorch/ here) or the path of an unpacked official LibTorch archive.
# BUILD_DIR (default: build, build-pip or build-libtorch by VITLAB_LIBTORCH), FUZZ_BUILD_DIR
# (default: build-fuzz) and JOBS (default: the core count) may be set in the environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cmake/torch-wheel.sh
source "$ROOT/cmake/torch-wheel.sh"
VITLAB_LIBTORCH="${VITLAB_LIBTORCH:-debian}"
case "$VITLAB_LIBTORCH" in
  debian) default_build_dir="$ROOT/build" ;;
  pip) default_build_dir="$ROOT/build-pip" ;;
  *) default_build_dir="$ROOT/build-libtorch" ;;
esac
BUILD_DIR="${BUILD_DIR:-$default_build_dir}"
TORCH_VENV="$ROOT/.venv-libtorch"
FUZZ_BUILD_DIR="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${JOBS:-$(nproc)}"

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  qt6-base-dev qt6-base-dev-tools libqt6svg6 qt6-qpa-plugins
  libqcustomplot-dev libqcustomplot2.1-qt6
  libtorch-dev libopenblas0-pthread libdnnl-dev libgloo-dev
  libopencv-dev zlib1g-dev nlohmann-json3-dev libcli11-dev libbenchmark-dev
  libcurl4-openssl-dev libssl-dev python3-venv
  dataset-fashion-mnist
  xvfb xauth
  python3-torch python3-torchvision
)
# The fuzzers need clang with its libFuzzer and sanitizer runtimes.
FUZZ_PACKAGES=(clang libclang-rt-14-dev)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_dependencies() {
  local missing=()
  for package in "${PACKAGES[@]}" "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return
  fi
  local sudo=()
  if ((EUID != 0)); then
    sudo=(sudo)
  fi
  log "installing ${missing[*]}"
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# PyPI's torch in a virtual environment of the project's own, installed or updated to the pin.
install_pip_libtorch() {
  if [[ ! -x "$TORCH_VENV/bin/python" ]]; then
    log "creating $TORCH_VENV"
    /usr/bin/python3 -m venv "$TORCH_VENV"
  fi
  local pin installed
  pin="$(grep -v '^#' "$ROOT/cmake/libtorch-pip.txt")"
  installed="$("$TORCH_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
  [[ "torch==$installed" == "$pin" || "torch==${installed%%+*}" == "$pin" ]] && return
  log "installing $pin into $TORCH_VENV (about 5 GB)"
  "$TORCH_VENV/bin/python" -m pip install -q -r "$ROOT/cmake/libtorch-pip.txt"
}

# CMake arguments for the LibTorch that VITLAB_LIBTORCH names (the wheel's: cmake/torch-wheel.sh).
torch_cmake_arguments() {
  local lib
  case "$VITLAB_LIBTORCH" in
    debian) return ;;
    pip)
      local arguments
      arguments="$(torch_wheel_cmake_arguments "$TORCH_VENV/bin/python")"
      if ! grep -q -- '-DVITLAB_TORCH_CXX11_ABI=1' <<<"$arguments"; then
        echo "error: this torch wheel uses the old C++ ABI; Debian's Qt and OpenCV need the new one" >&2
        exit 1
      fi
      printf '%s\n' "$arguments"
      ;;
    *)
      lib="$VITLAB_LIBTORCH/lib"
      if [[ ! -f "$lib/libtorch.so" ]]; then
        echo "error: VITLAB_LIBTORCH=$VITLAB_LIBTORCH: debian, pip, or a LibTorch folder (no $lib/libtorch.so)" >&2
        exit 2
      fi
      printf '%s\n' "-DCMAKE_PREFIX_PATH=$VITLAB_LIBTORCH" "-Dc10_LIBRARY=$lib/libc10.so" "-DTORCH_LIBRARY=$lib/libtorch.so"
      ;;
  esac
}

build() {
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    [[ "$VITLAB_LIBTORCH" == pip ]] && install_pip_libtorch
    local torch_output torch_arguments=()
    torch_output="$(torch_cmake_arguments)"
    [[ -n "$torch_output" ]] && mapfile -t torch_arguments <<<"$torch_output"
    log "configuring in $BUILD_DIR (LibTorch: $VITLAB_LIBTORCH)"
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${torch_arguments[@]}" "$@"
  fi
  log "building with $JOBS jobs"
  cmake --build "$BUILD_DIR" --parallel "$JOBS"
}

run_app() {
  local args=("$@")
  if ((${#args[@]} == 0)); then
    args=(--data fashion-mnist)
  fi
  if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" && -z "${QT_QPA_PLATFORM:-}" ]]; then
    log "no display found: starting the app in a virtual X server (xvfb-run)"
    exec xvfb-run -a -s "-screen 0 1280x800x24" "$BUILD_DIR/app/vitlab" "${args[@]}"
  fi
  exec "$BUILD_DIR/app/vitlab" "${args[@]}"
}

# Each target runs on a scratch copy of its seeds, so findings and grown corpora stay in the
# build tree; a crash, sanitizer report, leak or out-of-memory ends the run with an error.
run_fuzzers() {
  local seconds="${1:-600}"
  if [[ ! -f "$FUZZ_BUILD_DIR/build.ninja" ]]; then
    log "configuring the fuzzers in $FUZZ_BUILD_DIR"
    CC=clang CXX=clang++ cmake -S "$ROOT" -B "$FUZZ_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DVITLAB_BUILD_FUZZERS=ON -DVITLAB_BUILD_GUI=OFF -DVITLAB_BUILD_TESTS=OFF -DVITLAB_BUILD_BENCH=OFF
  fi
  local targets=(safetensors idx image)
  cmake --build "$FUZZ_BUILD_DIR" --parallel "$JOBS" --target "${targets[@]/#/fuzz_}"
  for target in "${targets[@]}"; do
    local work="$FUZZ_BUILD_DIR/fuzz-runs/$target"
    mkdir -p "$work/corpus"
    # A fixed seed: the same run finds the same things.
    local options=(-max_total_time="$seconds" -seed=1 -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1
                   -artifact_prefix="$work/")
    [[ -f "$ROOT/fuzz/$target.dict" ]] && options+=(-dict="$ROOT/fuzz/$target.dict")
    log "fuzzing $target for $seconds s"
    "$FUZZ_BUILD_DIR/fuzz/fuzz_$target" "${options[@]}" "$work/corpus" "$ROOT/fuzz/corpus/$target" \
      > "$work/log.txt" 2>&1 || { tail -n 60 "$work/log.txt" >&2; log "fuzz_$target found a problem: see $work"; return 1; }
    grep -E "^stat::(number_of_executed_units|peak_rss_mb)|cov: " "$work/log.txt" | tail -n 3 >&2
  done
}

run_tests() {
  log "running the tests"
  cd "$BUILD_DIR"
  QT_QPA_PLATFORM=offscreen ctest --output-on-failure --timeout 600 -j "$JOBS"
}

command="${1:-}"
shift || true
case "$command" in
  deps) install_dependencies ;;
  build) install_dependencies; build "$@" ;;
  run) install_dependencies; build; run_app "$@" ;;
  test) install_dependencies; build; run_tests ;;
  fuzz) install_dependencies "${FUZZ_PACKAGES[@]}"; run_fuzzers "$@" ;;
  *)
    echo "usage: $0 run [app options] | test | build | fuzz [seconds] | deps" >&2
    exit 2
    ;;
esac
