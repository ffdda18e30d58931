# Sourced by vitlab.sh and bench/gpu_check.sh: the CMake arguments that build against the LibTorch
# inside a Python's torch package (PyPI's wheel). Its own libc10 and libtorch are named outright:
# TorchConfig's find_library would otherwise take Debian's 1.13 where both are installed (the
# program then aborts at start). Its NVIDIA libraries come first at link time (the CUDA toolkit's
# older NCCL lacks symbols the wheel needs), and the C++ ABI is the wheel's own.
#
#   torch_wheel_cmake_arguments PYTHON   prints one argument per line
torch_wheel_cmake_arguments() {
  local python="$1" facts prefix lib abi nvidia
  facts="$("$python" - <<'PY'
import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
print(torch.utils.cmake_prefix_path)
print(os.path.join(os.path.dirname(torch.__file__), "lib"))
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(":".join(sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")))))
PY
)" || return 1
  { read -r prefix; read -r lib; read -r abi; read -r nvidia; } <<<"$facts"
  printf '%s\n' "-DCMAKE_PREFIX_PATH=$prefix" "-DVITLAB_TORCH_CXX11_ABI=$abi" \
    "-Dc10_LIBRARY=$lib/libc10.so" "-DTORCH_LIBRARY=$lib/libtorch.so"
  [[ -n "$nvidia" ]] && printf '%s\n' "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$nvidia" \
    "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath-link,$nvidia"
  return 0
}
