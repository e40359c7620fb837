#!/usr/bin/env bash
# Wall time of launching N = 1, 2, 4, 8 copies of a trivial job (/bin/true), median of REPS runs:
#   floor        /bin/sh starting N background copies and `wait`ing for them
#   accel-launch accel-launch -q --num_processes N /bin/true
#   mpirun       mpirun -np N --oversubscribe /bin/true
#   torchrun     torchrun --nproc_per_node N --no_python -r 1 -t 1 --monitor_interval 0.1 /bin/true
# The tools take turns within each repetition, so a change in machine load touches them alike.
# Prints a Markdown table with the ratios. Usage: scripts/bench-launch.sh [REPS] (default 21;
# torchrun runs in every 4th repetition, at least 3 times: each run takes seconds).
# First, process start alone: /bin/true against `accel-launch --version`, 10 x REPS runs in turns.
# ACCEL_LAUNCH overrides the launcher binary (default build/bin/accel-launch); BASELINE names a
# second accel-launch (another build) that takes its turn beside it in every measurement;
# TORCHRUN=0 leaves torchrun out (each of its runs takes seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${1:-21}"
launcher="${ACCEL_LAUNCH:-build/bin/accel-launch}"
baseline="${BASELINE:-}"
[ -x "$launcher" ] || { echo "bench-launch: $launcher not built; run scripts/build.sh or set ACCEL_LAUNCH" >&2; exit 2; }
job=/bin/true
mpi_root=()
[ "$(id -u)" -eq 0 ] && mpi_root=(--allow-run-as-root)
have_mpirun=$(command -v mpirun >/dev/null && echo 1 || echo 0)
have_torchrun=$([ "${TORCHRUN:-1}" != 0 ] && [ -x /usr/bin/torchrun ] && [ -x /usr/bin/python3 ] && echo 1 || echo 0)

# Appends the wall time in ms of one run of "$@" to the file $1 (bash's EPOCHREALTIME: no fork to time).
time_into() {
  local file=$1 start end; shift
  start=$EPOCHREALTIME
  "$@" >/dev/null 2>&1 || { echo "bench-launch: failed: $*" >&2; exit 1; }
  end=$EPOCHREALTIME
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }' >>"$file"
}

median() {
  [ -s "$1" ] || { echo n/a; return; }
  sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }

samples=$(mktemp -d)
trap 'rm -rf "$samples"' EXIT

echo "Process start: median of $((10 * reps)) runs in turns; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| command | wall, median | - /bin/true | CPU per run | - /bin/true |"
echo "|---|---|---|---|---|"
starts=(true version)
[ -z "$baseline" ] || starts+=(baseline)
for ((r = 0; r < 10 * reps; r++)); do
  time_into "$samples/start_true" /bin/true
  time_into "$samples/start_version" "$launcher" --version
  [ -z "$baseline" ] || time_into "$samples/start_baseline" "$baseline" --version
done
# CPU time (user + system) of the finished children of this shell, in clock ticks: steadier than
# wall time on a loaded machine, where waiting for a core dominates a process start.
children_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
for start in "${starts[@]}"; do
  case $start in true) cmd=(/bin/true) ;; version) cmd=("$launcher" --version) ;; baseline) cmd=("$baseline" --version) ;; esac
  before=$(children_ticks)
  for ((r = 0; r < 10 * reps; r++)); do "${cmd[@]}" >/dev/null; done
  echo $(( $(children_ticks) - before )) >"$samples/cpu_$start"
done
for start in "${starts[@]}"; do
  case $start in true) name=/bin/true ;; version) name="$launcher --version" ;; baseline) name="$baseline --version" ;; esac
  awk -v name="$name" -v t="$(median "$samples/start_$start")" -v f="$(median "$samples/start_true")" \
      -v c="$(cat "$samples/cpu_$start")" -v cf="$(cat "$samples/cpu_true")" -v runs=$((10 * reps)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { ms = 1000 / hz / runs
             printf "| `%s` | %.2f ms | %+.2f ms | %.2f ms | %+.2f ms |\n", name, t, t - f, c * ms, (c - cf) * ms }'
done
echo
echo "Launching N copies of $job; median of $reps runs (torchrun: every 4th); load $(cut -d' ' -f1-3 /proc/loadavg); $(uname -srm)"
[ -z "$baseline" ] || echo "(baseline $baseline: accel-launch column of the second table row per N)"
echo
echo "| N | floor (sh & wait) | accel-launch | mpirun | torchrun | accel-launch - floor | mpirun / accel-launch | torchrun / accel-launch |"
echo "|---|---|---|---|---|---|---|---|"
for n in 1 2 4 8; do
  floor=(/bin/sh -c "i=0; while [ \$i -lt $n ]; do $job & i=\$((i + 1)); done; wait")
  accel=("$launcher" -q --num_processes "$n" "$job")
  mpi=(mpirun -np "$n" --oversubscribe "${mpi_root[@]}" "$job")
  # Warm-up, untimed: page cache, dynamic loader, Python's bytecode cache.
  "${floor[@]}"; "${accel[@]}"; [ "$have_mpirun" = 0 ] || "${mpi[@]}" >/dev/null 2>&1
  for ((r = 0; r < reps; r++)); do
    time_into "$samples/floor$n" "${floor[@]}"
    time_into "$samples/accel$n" "${accel[@]}"
    [ -z "$baseline" ] || time_into "$samples/baseline$n" "$baseline" -q --num_processes "$n" "$job"
    [ "$have_mpirun" = 0 ] || time_into "$samples/mpi$n" "${mpi[@]}"
    if [ "$have_torchrun" = 1 ] && (( r % 4 == 0 || reps < 12 )); then
      time_into "$samples/torch$n" /usr/bin/torchrun --nproc_per_node "$n" --no_python -r 1 -t 1 \
        --monitor_interval 0.1 --master_port "$(free_port)" "$job"
    fi
  done
  awk -v n="$n" -v f="$(median "$samples/floor$n")" -v a="$(median "$samples/accel$n")" \
      -v m="$(median "$samples/mpi$n")" -v t="$(median "$samples/torch$n")" 'BEGIN {
    ratio_m = (m == "n/a") ? "n/a" : sprintf("%.1fx", m / a)
    ratio_t = (t == "n/a") ? "n/a" : sprintf("%.0fx", t / a)
    ms_m = (m == "n/a") ? "n/a" : sprintf("%.1f ms", m)
    ms_t = (t == "n/a") ? "n/a" : sprintf("%.0f ms", t)
    printf "| %d | %.2f ms | %.2f ms | %s | %s | %+.2f ms | %s | %s |\n", n, f, a, ms_m, ms_t, a - f, ratio_m, ratio_t
  }'
  [ -z "$baseline" ] || awk -v n="$n" -v f="$(median "$samples/floor$n")" -v a="$(median "$samples/baseline$n")" \
      -v m="$(median "$samples/mpi$n")" 'BEGIN {
    printf "| %d (baseline) | | %.2f ms | | | %+.2f ms | %s | |\n", n, a, a - f, (m == "n/a") ? "n/a" : sprintf("%.1fx", m / a)
  }'
done
