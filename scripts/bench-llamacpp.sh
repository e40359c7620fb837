#!/usr/bin/env bash
# Our models beside llama.cpp, the engine users pick for CPU inference, on the same weights, dtype
# and threads, in one run: a GPT-2 small checkpoint (12 layers, d=768, vocab 50257, models_bench's
# seeded weights) and a Llama-shaped one of the same size (12 layers, d=768, 12 query / 4 key-value
# heads, SwiGLU 2048, untied head; scripts/crosscheck-llama.py make ... llama-bench), each
# converted to GGUF by scripts/convert-to-gguf.py (f32 and bf16, GPT-2's tokenizer included).
#
# First a correctness check: llama.cpp's greedy tokens on the float32 GGUF (float32 KV cache) must
# equal ours on the checkpoint for at least MIN_AGREE tokens (exit 1 otherwise), which validates
# the converter (Conv1D transposes, the rotary row order of q/k). Then, for each model, dtype,
# thread count and batch, models_bench --model-dir and llama.cpp (scripts/llamacpp-bench.mjs, via
# npm's node-llama-cpp prebuilt CPU binaries) run back to back, each timing generate(1) and
# generate(NEW_TOKENS) best of REPEATS from the same PROMPT-token prompts; decode tokens/s =
# batch / ((generate - prefill) / (NEW_TOKENS - 1)); the table gives ours / llama.cpp and the load
# average (1 minute) when the pair ended.
# llama.cpp's KV cache has the run's dtype (F32 or BF16), as ours does.
#
# usage: scripts/bench-llamacpp.sh [BUILD_DIR]
#   env: MODELS="gpt2 llama" DTYPES="float32 bfloat16" THREADS="1 2" BATCHES="1 8"
#        PROMPT=16 NEW_TOKENS=32 REPEATS=3 MIN_AGREE=8
# Checkpoints and GGUF files are made once under BUILD_DIR/llamacpp-models; node-llama-cpp@3.21.1
# is npm-installed into BUILD_DIR/npm-llamacpp by scripts/fetch-llamacpp.sh (nothing is built or
# downloaded by the package itself). Exit 3 (with the reason) when node, npm or the package is
# unavailable; 2 when a tool of ours is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
bench="$build/bin/models_bench"
python=/usr/bin/python3
npm_dir="$build/npm-llamacpp"
models_dir="$build/llamacpp-models"
prompt_len="${PROMPT:-16}" new_tokens="${NEW_TOKENS:-32}" repeats="${REPEATS:-3}" min_agree="${MIN_AGREE:-8}"

skip() { echo "bench-llamacpp: SKIPPED: $*" >&2; exit 3; }
if [ ! -x "$bench" ]; then
  echo "bench-llamacpp: $bench not found; build it with: cmake --build $build --target models_bench" >&2
  exit 2
fi
if ! "$python" -c 'import numpy, torch' 2>/dev/null; then
  echo "bench-llamacpp: $python with numpy and torch is missing; run scripts/install-deps.sh" >&2
  exit 2
fi
command -v node >/dev/null || skip "node is not installed"
"$root/scripts/fetch-llamacpp.sh" "$npm_dir" || skip "node-llama-cpp is not in $npm_dir and npm could not install it"
modules="$npm_dir/node_modules"
llamacpp() { node "$root/scripts/llamacpp-bench.mjs" "$modules" "$@"; }
value() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print }'; }

# The checkpoints (float32, GPT-2's tokenizer beside them) and their GGUF files, made once.
make_model() {
  local name=$1 dir="$models_dir/$1"
  if [ ! -f "$dir/model.safetensors" ]; then
    mkdir -p "$models_dir"
    rm -rf "$dir.part"
    case "$name" in
      gpt2) "$bench" --save-checkpoint "$dir.part" >/dev/null ;;
      llama) "$python" "$root/scripts/crosscheck-llama.py" make "$dir.part" llama-bench --vocab_size 50257 ;;
      *) echo "bench-llamacpp: MODELS holds '$name'; accepted: gpt2 llama" >&2; exit 2 ;;
    esac
    cp "$root/data/gpt2/encoder.json" "$root/data/gpt2/vocab.bpe" "$dir.part/"
    mv "$dir.part" "$dir"
  fi
  for type in f32 bf16; do
    [ -f "$models_dir/$name-$type.gguf" ] ||
      "$python" "$root/scripts/convert-to-gguf.py" "$dir" "$models_dir/$name-$type.gguf" --dtype "$type" >&2
  done
}
models=(${MODELS:-gpt2 llama})
for name in "${models[@]}"; do make_model "$name"; done

echo "llama.cpp: node-llama-cpp $(node -p "require('$modules/node-llama-cpp/package.json').version") (prebuilt CPU" \
  "binaries); $(nproc) CPUs; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo "prompt $prompt_len tokens, $new_tokens greedy tokens, best of $repeats; GGUF converted by scripts/convert-to-gguf.py"

# Correctness: the same greedy tokens in float32.
for name in "${models[@]}"; do
  ours="$("$bench" --model-dir "$models_dir/$name" --dtype float32 --threads 1 --batch 1 \
    --prompt "$prompt_len" --tokens "$prompt_len" --new-tokens "$new_tokens" --repeats 1)"
  prompt_ids="$(value prompt_ids <<<"$ours")"
  theirs="$(llamacpp "$models_dir/$name-f32.gguf" --threads 1 --batch 1 --prompt-ids "$prompt_ids" \
    --new-tokens "$new_tokens" --repeats 1 --kv-type F32)"
  read -ra a <<<"$(value greedy_ids <<<"$ours")"
  read -ra b <<<"$(value greedy_ids <<<"$theirs")"
  agree=0
  while [ "$agree" -lt "${#a[@]}" ] && [ "$agree" -lt "${#b[@]}" ] && [ "${a[$agree]}" = "${b[$agree]}" ]; do
    agree=$((agree + 1))
  done
  echo "greedy tokens, $name float32: llama.cpp agrees with ours on the first $agree of ${#a[@]} (prompt: $prompt_ids)"
  if [ "$agree" -lt "$min_agree" ]; then
    echo "bench-llamacpp: $name: fewer than $min_agree equal greedy tokens; the conversion is wrong" >&2
    echo "  ours:      ${a[*]}" >&2
    echo "  llama.cpp: ${b[*]}" >&2
    exit 1
  fi
done

echo
printf '| %-5s | %-8s | %-7s | %-5s | %-17s | %-17s | %-12s | %-12s | %-14s | %-4s |\n' model dtype threads batch \
  "accel decode tok/s" "llama.cpp decode" "accel / l.cpp" "accel prefill" "llama.cpp prefill" load
printf '|-------|----------|---------|-------|-------------------|-------------------|--------------|--------------|----------------|------|\n'
for name in "${models[@]}"; do
  for dtype in ${DTYPES:-float32 bfloat16}; do
    case "$dtype" in
      float32) gguf="$models_dir/$name-f32.gguf" kv=F32 ;;
      bfloat16) gguf="$models_dir/$name-bf16.gguf" kv=BF16 ;;
      *) echo "bench-llamacpp: DTYPES holds '$dtype'; accepted: float32 bfloat16" >&2; exit 2 ;;
    esac
    for threads in ${THREADS:-1 2}; do
      export OPENBLAS_NUM_THREADS="$threads"
      for batch in ${BATCHES:-1 8}; do
        ours="$("$bench" --model-dir "$models_dir/$name" --dtype "$dtype" --threads "$threads" --batch "$batch" \
          --prompt "$prompt_len" --tokens "$prompt_len" --new-tokens "$new_tokens" --repeats "$repeats")"
        theirs="$(llamacpp "$gguf" --threads "$threads" --batch "$batch" --prompt-ids "$(value prompt_ids <<<"$ours")" \
          --new-tokens "$new_tokens" --repeats "$repeats" --kv-type "$kv")"
        a="$(value decode_tokens_per_s <<<"$ours")" b="$(value decode_tokens_per_s <<<"$theirs")"
        printf '| %-5s | %-8s | %-7s | %-5s | %17s | %17s | %12s | %9s ms | %11s ms | %4s |\n' "$name" "$dtype" "$threads" \
          "$batch" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')" \
          "$(value prefill_ms <<<"$ours")" "$(value prefill_ms <<<"$theirs")" "$(cut -d' ' -f1 /proc/loadavg)"
      done
    done
  done
done
echo "load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
