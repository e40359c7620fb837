#!/usr/bin/env bash
# Compiles (syntax only) every translation unit that uses LibTorch against another LibTorch's
# headers, to prove the code builds on a LibTorch this machine cannot link, e.g. 2.x headers
# unpacked from a .deb or a pip wheel:  scripts/check-torch-api.sh <root with include/torch>
# (Debian layout: <root>/usr; wheel: site-packages/torch). Prints one line per file; exits 1
# when any file fails, with its first errors.
#   scripts/check-torch-api.sh <root> [SOURCE...]      default: every torch source
#   CUDA_HOME=<CUDA toolkit>: as a CUDA LibTorch compiles us (USE_CUDA, USE_C10D_NCCL, the
#   toolkit's cuda_runtime.h and nccl.h), so the NCCL branches are checked on a machine without a
#   GPU; a CPU LibTorch's headers lack one generated CUDA header, supplied here.
set -uo pipefail
cd "$(dirname "$0")/.."
root=${1:?usage: $0 <LibTorch root holding include/torch and include/ATen> [SOURCE...]}
shift
include=$root/include
[ -f "$include/torch/csrc/api/include/torch/torch.h" ] || { echo "check-torch-api: no $include/torch/csrc/api/include/torch/torch.h" >&2; exit 2; }
flags=(-std=c++20 -fsyntax-only -Wall -Wextra -Wno-missing-field-initializers
       -DUSE_C10D_GLOO -DUSE_DISTRIBUTED -DUSE_RPC -DUSE_TENSORPIPE)
# The compiler's own /usr/include must stay last in its search order (libstdc++'s include_next).
[ "$include" = /usr/include ] || flags+=(-isystem "$include")
flags+=(-isystem "$include/torch/csrc/api/include")
if [ -n "${CUDA_HOME:-}" ]; then
  [ -f "$CUDA_HOME/include/nccl.h" ] || { echo "check-torch-api: CUDA_HOME=$CUDA_HOME has no include/nccl.h" >&2; exit 2; }
  generated=$(mktemp -d)
  trap 'rm -rf "$generated"' EXIT
  if [ ! -f "$include/c10/cuda/impl/cuda_cmake_macros.h" ]; then
    mkdir -p "$generated/c10/cuda/impl"
    printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$generated/c10/cuda/impl/cuda_cmake_macros.h"
  fi
  flags+=(-DUSE_CUDA -DUSE_C10D_NCCL -isystem "$generated" -isystem "$CUDA_HOME/include")
fi
for dir in lib/*/include; do flags+=(-I "$dir"); done
sources=("$@")
[ ${#sources[@]} -gt 0 ] || sources=(lib/runtime/src/*.cpp lib/models/src/*.cpp lib/pipeline/src/*.cpp apps/examples/*/*.cpp)
failed=0
for source in "${sources[@]}"; do
  if errors=$(g++ "${flags[@]}" -DACCEL_GPT2_DATA_DIR='""' -DACCEL_GPT2_DATA_FROM_BINDIR='""' "$source" 2>&1) && ! grep -q "warning:" <<<"$errors"; then
    echo "ok   $source"
  else
    echo "FAIL $source"
    grep -E "error|warning" <<<"$errors" | head -n 5 | sed 's/^/     /'
    failed=1
  fi
done
exit $failed
