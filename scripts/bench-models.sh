#!/usr/bin/env bash
# GPT-2 small shapes (12 layers, d=768, vocab 50257, random weights): tokens/s of one forward
# pass and of greedy generation with a KV cache, on 1 and 2 threads, for the C++ model
# (build/bin/models_bench) and for the same math in PyTorch eager (scripts/crosscheck-gpt2.py
# run by Debian's /usr/bin/python3), one after the other in the same run.
#
# usage: scripts/bench-models.sh [BUILD_DIR] [extra flags for both, e.g. --dtype bfloat16]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
shift || true
bench="$build/bin/models_bench"
if [ ! -x "$bench" ]; then
  echo "bench-models: $bench not found; build it with: cmake --build $build --target models_bench" >&2
  exit 2
fi
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "bench-models: /usr/bin/python3 with torch is missing; run scripts/install-deps.sh (python3-torch)" >&2
  exit 2
fi

shape=(--batch 1 --tokens 128 --prompt 16 --new-tokens 32 --repeats 3)
value() { awk -v k="$1" '$1 == k { print $2 }'; }

echo "GPT-2 small shapes, random weights; forward: batch 1 x 128 tokens; generation: 16-token prompt + 32 greedy tokens (KV cache)"
echo "$(nproc) CPUs; $(/usr/bin/python3 -c 'import torch; print("python torch", torch.__version__)')"
printf '| %-7s | %-22s | %14s | %16s |\n' threads implementation "forward tok/s" "generate tok/s"
printf '|---------|------------------------|----------------|------------------|\n'
for threads in 1 2; do
  export OPENBLAS_NUM_THREADS="$threads"  # an OpenBLAS libblas would otherwise add its own threads
  cpp="$("$bench" --threads "$threads" "${shape[@]}" "$@")"
  py="$(/usr/bin/python3 "$root/scripts/crosscheck-gpt2.py" bench --threads "$threads" "${shape[@]}" "$@")"
  printf '| %-7s | %-22s | %14s | %16s |\n' "$threads" "accel C++ (LibTorch)" \
    "$(value forward_tokens_per_s <<<"$cpp")" "$(value generate_tokens_per_s <<<"$cpp")"
  printf '| %-7s | %-22s | %14s | %16s |\n' "$threads" "PyTorch eager (python)" \
    "$(value forward_tokens_per_s <<<"$py")" "$(value generate_tokens_per_s <<<"$py")"
done
