#!/usr/bin/env bash
# scripts/select-torch.sh against stand-in Pythons and LibTorch layouts.
#   select_torch_test.sh <repository root>
set -uo pipefail
root=$1
work=$(mktemp -d /tmp/accel-select-torch-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

# run NAME EXPECTED_RC EXPECTED_TEXT [VAR=value...]: runs the script with only those variables.
run() {
  local name=$1 want_rc=$2 want_text=$3
  shift 3
  local out rc
  out=$(env -u TORCH -u Torch_DIR -u PYTHON "$@" "$root/scripts/select-torch.sh" 2>&1)
  rc=$?
  if [ "$rc" != "$want_rc" ] || ! grep -qF -- "$want_text" <<<"$out"; then
    echo "FAIL $name: rc $rc (wanted $want_rc), output:"
    echo "$out" | sed 's/^/    /'
    echo "    wanted text: $want_text"
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

# A stand-in Python whose torch lives under $1 with the given ABI.
fake_python() {
  local path=$1 prefix=$2 abi=$3
  cat >"$path" <<SCRIPT
#!/bin/sh
printf '%s\n' "$prefix" "$abi" "2.8.0+cu128" "12.8"
SCRIPT
  chmod +x "$path"
}

mkdir -p "$work/wheel/torch/share/cmake/Torch" "$work/empty" "$work/archive/share/cmake/Torch"
touch "$work/wheel/torch/share/cmake/Torch/TorchConfig.cmake" "$work/archive/share/cmake/Torch/TorchConfig.cmake"
fake_python "$work/python-cxx11" "$work/wheel/torch/share/cmake" 1
fake_python "$work/python-old-abi" "$work/wheel/torch/share/cmake" 0
fake_python "$work/python-no-cmake" "$work/empty" 1
fake_python "$work/python-bad-abi" "$work/wheel/torch/share/cmake" yes
printf '#!/bin/sh\necho "ModuleNotFoundError: No module named torch" >&2\nexit 1\n' >"$work/python-no-torch"
chmod +x "$work/python-no-torch"

run "default: Debian's LibTorch, nothing to pass" 0 ""
run "TORCH=debian with a LibTorch archive in Torch_DIR" 0 "-DTorch_DIR=$work/archive/share/cmake/Torch" \
  Torch_DIR="$work/archive/share/cmake/Torch"
run "Torch_DIR without TorchConfig.cmake is refused" 2 "Torch_DIR=$work/empty has no TorchConfig.cmake" Torch_DIR="$work/empty"
run "TORCH=pip: the wheel's CMake files" 0 "-DTorch_DIR=$work/wheel/torch/share/cmake/Torch" \
  TORCH=pip PYTHON="$work/python-cxx11"
run "TORCH=pip: the C++11 ABI is passed for the cross-check" 0 "-DACCEL_EXPECTED_CXX11_ABI=1" \
  TORCH=pip PYTHON="$work/python-cxx11"
run "TORCH=pip: a pre-C++11 ABI torch is passed on as 0" 0 "-DACCEL_EXPECTED_CXX11_ABI=0" \
  TORCH=pip PYTHON="$work/python-old-abi"
run "TORCH=pip: the choice is announced with version and CUDA" 0 "torch 2.8.0+cu128 (CUDA 12.8)" \
  TORCH=pip PYTHON="$work/python-cxx11"
run "TORCH=pip: a Python without torch is named" 2 "$work/python-no-torch cannot import torch (ModuleNotFoundError" \
  TORCH=pip PYTHON="$work/python-no-torch"
run "TORCH=pip: a torch without CMake files is named" 2 "has no $work/empty/Torch/TorchConfig.cmake" \
  TORCH=pip PYTHON="$work/python-no-cmake"
run "TORCH=pip: a nonsense ABI answer is refused" 2 "reports _GLIBCXX_USE_CXX11_ABI 'yes'" \
  TORCH=pip PYTHON="$work/python-bad-abi"
run "TORCH=pip and Torch_DIR contradict" 2 "TORCH=pip and Torch_DIR=$work/archive both choose" \
  TORCH=pip PYTHON="$work/python-cxx11" Torch_DIR="$work/archive"
run "unknown TORCH value" 2 "TORCH=conda: expected 'debian'" TORCH=conda
# Debian's python3-torch ships no CMake files (they are in libtorch-dev): the real thing.
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  run "TORCH=pip with Debian's python3-torch points at libtorch-dev" 2 "Debian's python3-torch keeps its CMake files in libtorch-dev" \
    TORCH=pip PYTHON=/usr/bin/python3
fi
[ "$failures" = 0 ] || { echo "$failures case(s) failed"; exit 1; }
