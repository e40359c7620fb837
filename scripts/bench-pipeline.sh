#!/usr/bin/env bash
# Pipeline-parallel inference benchmark on CPU: GPT-2 small shapes (12 blocks, d=768, 12 heads,
# vocab 50257, sequence classification), random weights, 1 torch thread per process.
# Runs, in one go: the single-process baseline, naive model parallelism (num_chunks 1), GPipe
# with M = 2, 4, 8, and streaming (STREAM batches per pipe.stream() call), for each S in STAGES.
# Prints a Markdown table: throughput and speedup over one process; the ideal bound S*M/(M+S-1)
# (S*K*M/(K*M+S-1) -> S for streaming); achieved/ideal; each rank's busy fraction (time in its
# blocks / elapsed) against the schedule's ideal M/(M+S-1), which does not depend on how much CPU
# other programs leave us (speedup does); peak RSS and weights per rank.
#
# Usage: scripts/bench-pipeline.sh [BUILD_DIR]
#   env: BATCH (32) SEQ (64) ITERATIONS (2) STREAM (8) STAGES ("2"; "2 4" oversubscribes a 2-core machine)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
bin="$build/bin/pipeline_inference"
[ -x "$bin" ] || { echo "bench-pipeline: $bin not found; build the pipeline_inference target first" >&2; exit 2; }
batch="${BATCH:-32}"
seq="${SEQ:-64}"
iterations="${ITERATIONS:-2}"
stream="${STREAM:-8}"
stages_list="${STAGES:-2}"
common=(--batch_size "$batch" --seq "$seq" --iterations "$iterations" --threads 1 --layers 12 --embd 768 --heads 12)

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# run_job NAME WORLD ARGS... : starts WORLD ranks with the torchrun-style environment and waits
# for all of them; the measurement lines land in $work/NAME.out.
run_job() {
  local name="$1" world="$2"
  shift 2
  local port
  port="$(free_port)"
  pids=()
  for ((r = 0; r < world; r++)); do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=$world LOCAL_WORLD_SIZE=$world MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      OMP_NUM_THREADS=1 "$bin" "${common[@]}" "$@" >"$work/$name.rank$r" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  pids=()
  if [ "$failed" = 1 ]; then
    echo "bench-pipeline: job '$name' failed; its output:" >&2
    cat "$work/$name".rank* >&2
    exit 1
  fi
  cat "$work/$name".rank* | grep '^pipeline_inference ' >"$work/$name.out"
}

# field FILE KEY RANK
field() { awk -v key="$2" -v rank="rank=$3" '$2 == rank { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) print kv[2] } }' "$1"; }

# Throughput of a job: samples over the slowest rank's time (the last rank finishes last).
throughput() {
  awk '{ for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } if (v["seconds"] > t) t = v["seconds"]; n = v["batches"] * v["batch"] } END { printf "%.3f", n / t }' "$1"
}

rss_per_rank() {
  awk '{ for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } printf "%s%.0f", (NR > 1 ? " / " : ""), v["peak_rss_mib"] }' \
    <(sort -t= -k2 -n "$1")
}

busy_per_rank() {
  awk '{ for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } printf "%s%.0f%%", (NR > 1 ? " / " : ""), 100 * v["compute_seconds"] / v["seconds"] }' \
    <(sort -t= -k2 -n "$1")
}

weights_per_rank() {
  awk '{ for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } printf "%s%.0f", (NR > 1 ? " / " : ""), v["stage_parameters"] * 4 / 1048576 }' \
    <(sort -t= -k2 -n "$1")
}

echo "bench-pipeline: GPT-2 small shapes, batch $batch x seq $seq, $iterations timed calls, $(nproc) CPUs, 1 thread per process; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
run_job single 1 --num_chunks 1
base="$(throughput "$work/single.out")"

printf '| mode | S | M | samples/s | speedup vs 1 process | ideal | achieved/ideal | busy per rank | busy/ideal busy | peak RSS per rank (MiB) | weights per rank (MiB) |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
printf '| single process | 1 | 1 | %s | 1.00 | 1.00 | - | %s | - | %s | %s |\n' "$base" "$(busy_per_rank "$work/single.out")" \
  "$(rss_per_rank "$work/single.out")" "$(weights_per_rank "$work/single.out")"

row() {  # row LABEL S M NAME IDEAL IDEAL_BUSY
  local tp speedup ratio busy
  tp="$(throughput "$work/$4.out")"
  speedup="$(awk -v a="$tp" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
  ratio="$(awk -v s="$speedup" -v i="$5" 'BEGIN { printf "%.0f%%", 100 * s / i }')"
  busy="$(awk -v ideal="$6" '{ for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } sum += v["compute_seconds"] / v["seconds"] } END { printf "%.0f%%", 100 * sum / NR / ideal }' "$work/$4.out")"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$tp" "$speedup" "$5" "$ratio" \
    "$(busy_per_rank "$work/$4.out")" "$busy" "$(rss_per_rank "$work/$4.out")" "$(weights_per_rank "$work/$4.out")"
}

for s in $stages_list; do
  for m in 1 2 4 8; do
    run_job "s${s}m${m}" "$s" --num_chunks "$m" --split_points auto
    ideal="$(awk -v s="$s" -v m="$m" 'BEGIN { printf "%.2f", s * m / (m + s - 1) }')"
    label="GPipe"
    [ "$m" = 1 ] && label="naive (M=1)"
    row "$label" "$s" "$m" "s${s}m${m}" "$ideal" "$(awk -v s="$s" -v m="$m" 'BEGIN { print m / (m + s - 1) }')"
  done
  run_job "s${s}stream" "$s" --num_chunks 4 --split_points auto --stream "$stream"
  ideal="$(awk -v s="$s" -v k="$stream" 'BEGIN { printf "%.2f", s * k * 4 / (k * 4 + s - 1) }')"
  row "streaming ($stream batches/call)" "$s" 4 "s${s}stream" "$ideal" \
    "$(awk -v s="$s" -v k="$stream" 'BEGIN { print k * 4 / (k * 4 + s - 1) }')"
done
echo "bench-pipeline: load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
