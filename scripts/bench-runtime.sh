#!/usr/bin/env bash
# Runtime benchmark (prints measured figures; not a test):
#   1. process-group formation for 2, 4, 8 local workers: ours (poll the port, then connect)
#      vs c10d's default client (connect, and retry after its built-in sleep);
#   2. gather_object throughput;
#   3. data-parallel scaling of distributed_inference: 1 process x 2 threads vs 2 processes x 1 thread.
# Usage: scripts/bench-runtime.sh [BUILD_DIR]   (default: build; REPEAT=5 runs per formation figure)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
bin="$build/bin"
repeat="${REPEAT:-5}"
for exe in runtime_worker distributed_inference accel-launch; do
  [ -x "$bin/$exe" ] || { echo "bench-runtime: $bin/$exe is missing; build first (scripts/build.sh)" >&2; exit 2; }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One formation run of N ranks; prints "from-last-arrival-ms total-ms": the time from the
# moment the last rank began forming the group until every rank had it, and from the first
# rank's start.
form_once() {
  local mode=$1 n=$2 port
  port=$(free_port)
  for ((r = 0; r < n; r++)); do
    RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$bin/runtime_worker" "$mode" >"$tmp/form.$r" 2>&1 &
  done
  wait
  cat "$tmp"/form.* | awk '/^formed/ { if (b == "" || $5 > b) b = $5; if (f == "" || $5 < f) f = $5; if ($7 > e) e = $7 }
    END { printf "%.1f %.1f\n", (e - b) / 1000, (e - f) / 1000 }'
  rm -f "$tmp"/form.*
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "## group formation (median of $repeat runs; ms from the last rank's arrival / from the first rank's start)"
printf "| workers | ours | c10d default client |\n|---|---|---|\n"
for n in 2 4 8; do
  row="| $n |"
  for mode in form form-c10d; do
    for ((i = 0; i < repeat; i++)); do form_once "$mode" "$n"; done >"$tmp/runs"
    row="$row $(cut -d' ' -f1 "$tmp/runs" | median) / $(cut -d' ' -f2 "$tmp/runs" | median) |"
  done
  echo "$row"
done

echo
echo "## gather_object throughput (rank 0's view; each rank receives every rank's items)"
for n in 2 4; do
  for shape in "1000 100 20" "8 1000000 5"; do
    port=$(free_port)
    for ((r = 0; r < n; r++)); do
      RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        "$bin/runtime_worker" gather-bench $shape >"$tmp/g.$r" 2>&1 &
    done
    wait
    cat "$tmp/g.0"
  done
done

echo
prompts="${PROMPTS:-48}"
tokens="${TOKENS:-16}"
for ((i = 0; i < prompts; i++)); do echo "benchmark prompt number $i"; done >"$tmp/prompts.txt"
now() { date +%s.%N; }
echo "## data-parallel scaling: distributed_inference, $prompts prompts x $tokens new tokens (wall seconds, startup included)"
# Prints the wall seconds of one run and keeps its printed results for the comparison below.
timed() {
  local name=$1 start
  shift
  start=$(now)
  "$@" >"$tmp/$name.out" 2>&1
  awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}
args=(--prompts "$tmp/prompts.txt" --max_new_tokens "$tokens")
one_by_one=$(OMP_NUM_THREADS=1 timed p1t1 "$bin/distributed_inference" "${args[@]}" --threads 1)
one_by_two=$(OMP_NUM_THREADS=2 timed p1t2 "$bin/distributed_inference" "${args[@]}" --threads 2)
two_by_one=$(timed p2t1 "$bin/accel-launch" --num_processes 2 --num_cpu_threads_per_process 1 \
  "$bin/distributed_inference" "${args[@]}" --threads 1)
# Every run must have printed the same outputs, in the same order.
for run in p1t2 p2t1; do
  diff <(grep -o '\] .*' "$tmp/p1t1.out") <(grep -o '\] .*' "$tmp/$run.out") >/dev/null ||
    { echo "bench-runtime: run $run printed other results than p1t1" >&2; exit 1; }
done
echo "| 1 process x 1 thread | 1 process x 2 threads | 2 processes x 1 thread | 2x1 vs 1x2 | 2x1 vs 1x1 |"
echo "|---|---|---|---|---|"
awk -v a="$one_by_one" -v b="$one_by_two" -v c="$two_by_one" \
  'BEGIN { printf "| %.2f | %.2f | %.2f | %.2fx | %.2fx |\n", a, b, c, b / c, a / c }'
