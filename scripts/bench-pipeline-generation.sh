#!/usr/bin/env bash
# Pipelined generation on CPU against one process (docs/benchmarks.md): GPT-2 small shapes (12
# blocks, d=768, 12 heads, vocab 50257), random float32 weights, 1 torch thread per process,
# greedy, every row generating NEW_TOKENS tokens (no EOS stop). Runs the single-process baseline
# (models::generate on the whole batch in one process), then pipeline_generation under
# accel-launch on 2 processes for each micro-batch count M in CHUNKS, and prints a Markdown table:
# decode tokens/s, speedup over one process, the bound min(M, S) x the single-process rate (with
# M >= S micro-batches in flight every stage can work at each step), achieved/bound, time to
# first token (prefill of every prompt and one token) and each rank's busy share (time in its
# blocks over the elapsed time). TRACE_SVG=path also records one short run under ACCEL_TRACE and
# draws its timeline with scripts/plot-trace.
#
# Usage: scripts/bench-pipeline-generation.sh [BUILD_DIR]
#   env: BATCH (8) NEW_TOKENS (32) CHUNKS ("1 2 4 8") REPEATS (3) TRACE_SVG ("")
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
gen="$build/bin/pipeline_generation"
launch="$build/bin/accel-launch"
for exe in "$gen" "$launch"; do
  [ -x "$exe" ] || { echo "bench-pipeline-generation: $exe not found; build it first" >&2; exit 2; }
done
batch="${BATCH:-8}"
tokens="${NEW_TOKENS:-32}"
chunks_list="${CHUNKS:-1 2 4 8}"
repeats="${REPEATS:-3}"
stages=2
common=(--layers 12 --embd 768 --heads 12 --batch_size "$batch" --threads 1 --prompt "The pipeline keeps every stage busy")

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }  # field NAME < line: that NAME=VALUE's value
calc() { awk "BEGIN { printf \"$1\", $2 }"; }    # calc FORMAT EXPRESSION

echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
single="$(OMP_NUM_THREADS=1 "$gen" "${common[@]}" --max_new_tokens "$tokens" --bench "$repeats" --reference | grep 'pipeline_generation rank=0')"
base="$(field decode_tokens_per_s <<<"$single")"
echo
echo "Batch $batch, $tokens new tokens per row, best of $repeats:"
echo
echo "| run | S | M | decode tokens/s | speedup vs 1 process | bound | achieved/bound | time to first token (s) | busy per rank |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| one process (models::generate) | 1 | 1 | $(calc %.1f "$base") | 1.00 | 1.00 | - | $(calc %.3f "$(field ttft_s <<<"$single")") | 100% |"
for m in $chunks_list; do
  out="$(OMP_NUM_THREADS=1 "$launch" --num_processes "$stages" "$gen" "${common[@]}" --max_new_tokens "$tokens" \
           --bench "$repeats" --num_chunks "$m" 2>&1 | grep 'pipeline_generation rank=')"
  rank0="$(grep 'rank=0' <<<"$out")"
  rank1="$(grep 'rank=1' <<<"$out")"
  rate="$(field decode_tokens_per_s <<<"$rank0")"
  bound=$((m < stages ? m : stages))
  echo "| pipe.generate | $stages | $m | $(calc %.1f "$rate") | $(calc %.2f "$rate / $base") | $bound.00 |" \
       "$(calc %.0f%% "100 * $rate / ($base * $bound)") | $(calc %.3f "$(field ttft_s <<<"$rank0")") |" \
       "$(calc %.0f%% "100 * $(field busy <<<"$rank0")") / $(calc %.0f%% "100 * $(field busy <<<"$rank1")") |"
done
if [ -n "${TRACE_SVG:-}" ]; then
  traces="$(mktemp -d)"
  trap 'rm -rf "$traces"' EXIT
  ACCEL_TRACE="$traces" OMP_NUM_THREADS=1 "$launch" --num_processes "$stages" "$gen" "${common[@]}" \
    --max_new_tokens 6 --num_chunks "$stages" >/dev/null
  scripts/plot-trace "$traces" -o "$TRACE_SVG"
  echo
  echo "timeline: $TRACE_SVG"
fi
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
