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
t0=$(now)
OMP_NUM_THREADS=2 "$bin/distributed_inference" --prompts "$tmp/prompts.txt" --max_new_tokens "$tokens" --threads 2 \
  --output_dir "$tmp/one" >"$tmp/one.out"
t1=$(now)
"$bin/accel-launch" --num_processes 2 --num_cpu_threads_per_process 1 "$bin/distributed_inference" \
  --prompts "$tmp/prompts.txt" --max_new_tokens "$tokens" --threads 1 --output_dir "$tmp/two" >"$tmp/two.out" 2>&1
t2=$(now)
# Both runs must have produced the same outputs, in the same order.
diff <(grep -o '\] .*' "$tmp/one.out") <(grep -o '\] .*' "$tmp/two.out") >/dev/null ||
  { echo "bench-runtime: the two runs disagree" >&2; exit 1; }
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "| 1 process x 2 threads | 2 processes x 1 thread | speed-up |\n|---|---|---|\n| %.2f | %.2f | %.2fx |\n", b - a, c - b, (b - a) / (c - b) }'
