#!/usr/bin/env bash
# Prints, one per line, the CMake arguments that choose the LibTorch to build against:
#   TORCH=debian (default)  Debian's libtorch-dev, found by CMake itself
#   TORCH=pip               the LibTorch inside the Python torch of $PYTHON (default python3),
#                           i.e. torch.utils.cmake_prefix_path, with its C++ ABI
#   Torch_DIR=DIR           a LibTorch archive (DIR holds TorchConfig.cmake); CMAKE_PREFIX_PATH
#                           in the environment works too, as CMake reads it itself
# Fails with a message naming the variable at fault. scripts/build.sh uses it; tests run it with
# a stand-in Python.
set -euo pipefail

fail() { echo "select-torch: $*" >&2; exit 2; }

torch=${TORCH:-debian}
case "$torch" in
  debian)
    if [ -n "${Torch_DIR:-}" ]; then
      [ -f "$Torch_DIR/TorchConfig.cmake" ] || [ -f "$Torch_DIR/torch-config.cmake" ] ||
        fail "Torch_DIR=$Torch_DIR has no TorchConfig.cmake; point it at <libtorch>/share/cmake/Torch"
      echo "-DTorch_DIR=$Torch_DIR"
    fi
    ;;
  pip)
    [ -z "${Torch_DIR:-}" ] ||
      fail "TORCH=pip and Torch_DIR=$Torch_DIR both choose a LibTorch; unset one of them"
    python=${PYTHON:-python3}
    # One line each: cmake prefix, C++11 ABI (0/1), version, CUDA version (None without CUDA).
    probe='import torch
print(torch.utils.cmake_prefix_path)
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(torch.__version__)
print(torch.version.cuda)'
    if ! answer=$("$python" -c "$probe" 2>&1); then
      fail "TORCH=pip: $python cannot import torch ($(tail -n1 <<<"$answer")); install torch for it or set PYTHON to a Python that has it"
    fi
    mapfile -t lines <<<"$answer"
    [ "${#lines[@]}" -ge 4 ] || fail "TORCH=pip: $python printed '$answer', expected four lines (prefix, ABI, version, CUDA)"
    prefix=${lines[-4]} abi=${lines[-3]} version=${lines[-2]} cuda=${lines[-1]}
    case "$abi" in 0|1) ;; *) fail "TORCH=pip: torch $version reports _GLIBCXX_USE_CXX11_ABI '$abi', expected 0 or 1" ;; esac
    [ -f "$prefix/Torch/TorchConfig.cmake" ] ||
      fail "TORCH=pip: torch $version of $python has no $prefix/Torch/TorchConfig.cmake (Debian's python3-torch keeps its CMake files in libtorch-dev: use TORCH=debian); install a pip torch or use Torch_DIR"
    echo "-DTorch_DIR=$prefix/Torch"
    echo "-DACCEL_EXPECTED_CXX11_ABI=$abi"
    echo "select-torch: torch $version (CUDA $cuda) from $python, _GLIBCXX_USE_CXX11_ABI=$abi" >&2
    ;;
  *) fail "TORCH=$torch: expected 'debian' (Debian's libtorch-dev, the default) or 'pip' (the torch of \$PYTHON)" ;;
esac
