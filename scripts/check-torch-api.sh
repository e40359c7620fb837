#!/usr/bin/env bash
# Compiles (syntax only) every translation unit that uses LibTorch against another LibTorch's
# headers, to prove the code builds on a LibTorch this machine cannot link, e.g. 2.x headers
# unpacked from a .deb or a pip wheel:  scripts/check-torch-api.sh <root with include/torch>
# (Debian layout: <root>/usr; wheel: site-packages/torch). Prints one line per file; exits 1
# when any file fails, with its first errors.
set -uo pipefail
cd "$(dirname "$0")/.."
root=${1:?usage: $0 <LibTorch root holding include/torch and include/ATen>}
include=$root/include
[ -f "$include/torch/csrc/api/include/torch/torch.h" ] || { echo "check-torch-api: no $include/torch/csrc/api/include/torch/torch.h" >&2; exit 2; }
flags=(-std=c++20 -fsyntax-only -Wall -Wextra -Wno-missing-field-initializers
       -DUSE_C10D_GLOO -DUSE_DISTRIBUTED -DUSE_RPC -DUSE_TENSORPIPE
       -isystem "$include" -isystem "$include/torch/csrc/api/include")
for dir in lib/*/include; do flags+=(-I "$dir"); done
failed=0
for source in lib/runtime/src/*.cpp lib/models/src/*.cpp lib/pipeline/src/*.cpp apps/examples/*/*.cpp; do
  if errors=$(g++ "${flags[@]}" -DACCEL_GPT2_DATA_DIR='""' "$source" 2>&1) && ! grep -q "warning:" <<<"$errors"; then
    echo "ok   $source"
  else
    echo "FAIL $source"
    grep -E "error|warning" <<<"$errors" | head -n 5 | sed 's/^/     /'
    failed=1
  fi
done
exit $failed
