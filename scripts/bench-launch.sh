#!/usr/bin/env bash
# Wall time of launching N = 1, 2, 4, 8 copies of a trivial job (/bin/true), median of REPS runs:
#   floor        /bin/sh starting N background copies and `wait`ing for them
#   accel-launch accel-launch -q --num_processes N /bin/true
#   mpirun       mpirun -np N --oversubscribe /bin/true
#   torchrun     torchrun --nproc_per_node N --no_python -r 1 -t 1 --monitor_interval 0.1 /bin/true
# Prints a Markdown table with the ratios. Usage: scripts/bench-launch.sh [REPS] (default 21;
# torchrun gets REPS/4 runs, at least 3: each takes seconds). ACCEL_LAUNCH overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${1:-21}"
torch_reps=$(( reps / 4 > 3 ? reps / 4 : 3 ))
launcher="${ACCEL_LAUNCH:-build/bin/accel-launch}"
[ -x "$launcher" ] || { echo "bench-launch: $launcher not built; run scripts/build.sh or set ACCEL_LAUNCH" >&2; exit 2; }
job=/bin/true
mpi_root=()
[ "$(id -u)" -eq 0 ] && mpi_root=(--allow-run-as-root)
have_mpirun=$(command -v mpirun >/dev/null && echo 1 || echo 0)
have_torchrun=$([ -x /usr/bin/torchrun ] && echo 1 || echo 0)

# Median wall time in ms of running "$@" $count times (bash's EPOCHREALTIME: no fork to time).
median_ms() {
  local count=$1; shift
  local samples=() start end
  "$@" >/dev/null 2>&1 || true  # warm-up: page cache, dynamic loader, Python's bytecode cache
  for ((r = 0; r < count; r++)); do
    start=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || { echo "bench-launch: failed: $*" >&2; exit 1; }
    end=$EPOCHREALTIME
    samples+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
  done
  printf '%s\n' "${samples[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }

echo "Launching N copies of $job; median of $reps runs ($torch_reps for torchrun); $(nproc) CPUs; $(uname -srm)"
echo
echo "| N | floor (sh & wait) | accel-launch | mpirun | torchrun | accel-launch - floor | mpirun / accel-launch | torchrun / accel-launch |"
echo "|---|---|---|---|---|---|---|---|"
for n in 1 2 4 8; do
  floor=$(median_ms "$reps" /bin/sh -c "i=0; while [ \$i -lt $n ]; do $job & i=\$((i + 1)); done; wait")
  accel=$(median_ms "$reps" "$launcher" -q --num_processes "$n" "$job")
  mpi=n/a torch=n/a
  if [ "$have_mpirun" = 1 ]; then
    mpi=$(median_ms "$reps" mpirun -np "$n" --oversubscribe "${mpi_root[@]}" "$job")
  fi
  if [ "$have_torchrun" = 1 ]; then
    torch=$(median_ms "$torch_reps" /usr/bin/torchrun --nproc_per_node "$n" --no_python -r 1 -t 1 \
      --monitor_interval 0.1 --master_port "$(free_port)" "$job")
  fi
  awk -v n="$n" -v f="$floor" -v a="$accel" -v m="$mpi" -v t="$torch" 'BEGIN {
    ratio_m = (m == "n/a") ? "n/a" : sprintf("%.1fx", m / a)
    ratio_t = (t == "n/a") ? "n/a" : sprintf("%.0fx", t / a)
    ms_m = (m == "n/a") ? "n/a" : sprintf("%.1f ms", m)
    ms_t = (t == "n/a") ? "n/a" : sprintf("%.0f ms", t)
    printf "| %d | %.2f ms | %.2f ms | %s | %s | %+.2f ms | %s | %s |\n", n, f, a, ms_m, ms_t, a - f, ratio_m, ratio_t
  }'
done
