#!/usr/bin/env bash
# ViTLab's one entry for a Debian 12 machine:
#   ./vitlab.sh run [app options]   install what is missing, build, start the app on the demo data
#   ./vitlab.sh test                install what is missing, build, run every test (headless)
#   ./vitlab.sh build               install what is missing and build
#   ./vitlab.sh deps                only install the Debian packages
# BUILD_DIR (default: build) and JOBS (default: the core count) may be set in the environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  qt6-base-dev qt6-base-dev-tools libqt6svg6 qt6-qpa-plugins
  libqcustomplot-dev libqcustomplot2.1-qt6
  libtorch-dev libopenblas0-pthread
  libopencv-dev zlib1g-dev nlohmann-json3-dev libcli11-dev libbenchmark-dev
  dataset-fashion-mnist
  xvfb xauth
  python3-torch python3-torchvision
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_dependencies() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
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

build() {
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    log "configuring in $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
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
  *)
    echo "usage: $0 run [app options] | test | build | deps" >&2
    exit 2
    ;;
esac
