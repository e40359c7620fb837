#!/usr/bin/env bash
# The launchers' control plane at simulated scale: N launcher processes on this machine (machine 0
# at 127.0.0.1), one worker each (a small sh script), with --max_restarts 1. Measured from
# timestamps the workers write:
#   form       first launcher started -> last worker of attempt 0 running (joins + start)
#   propagate  the last machine's worker fails (once all are running) -> last other worker got SIGTERM
#   restart    that failure -> last worker of attempt 1 running (stop, report, decide, restart)
#   end        that failure -> last launcher exited (attempt 1 succeeds)
# Also the time the script itself needs to start N launchers (a floor under "form").
# Usage: scripts/bench-control-plane.sh [N...] (default 64 256). ACCEL_LAUNCH overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
launcher="$(realpath "${ACCEL_LAUNCH:-build/bin/accel-launch}")"
[ -x "$launcher" ] || { echo "bench-control-plane: $launcher not built; run scripts/build.sh" >&2; exit 2; }
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(64 256)
ulimit -n 4096 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }

# Seconds between two timestamps, as milliseconds.
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
latest() { cat "$@" | sort -n | tail -n 1; }

echo "| machines | start N launchers | form | propagate a failure | restart all | end |"
echo "|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  dir="$(mktemp -d /tmp/accel-bench-cp-XXXXXX)"
  last=$((n - 1))
  # Attempt 0: say "running"; the last machine's worker fails once every worker runs; the others
  # wait for SIGTERM and note when it came. Attempt 1: note the start and succeed.
  cat >"$dir/worker.sh" <<EOF
#!/bin/sh
d=$dir
if [ "\$TORCHELASTIC_RESTART_COUNT" -ge 1 ]; then date +%s.%N >\$d/restart.\$RANK; exit 0; fi
if [ "\$RANK" = $last ]; then
  date +%s.%N >\$d/running.\$RANK
  until [ \$(ls \$d | grep -c '^running') -ge $n ]; do sleep 0.02; done
  date +%s.%N >\$d/fail; exit 1
fi
trap 'date +%s.%N >\$d/stopped.\$RANK; exit 0' TERM
date +%s.%N >\$d/running.\$RANK
sleep 600 & wait
EOF
  chmod +x "$dir/worker.sh"
  port=$(free_port)
  pids=()
  started=$(date +%s.%N)
  for ((rank = 0; rank < n; rank++)); do
    "$launcher" -q --num_machines "$n" --machine_rank "$rank" --main_process_ip 127.0.0.1 --main_process_port "$port" \
      --num_processes "$n" --num_cpu_threads_per_process 1 --max_restarts 1 --join_timeout 300 "$dir/worker.sh" \
      >"$dir/out.$rank.log" 2>&1 &
    pids+=($!)
  done
  launched=$(date +%s.%N)
  status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  ended=$(date +%s.%N)
  if [ $status != 0 ] || [ ! -f "$dir/fail" ]; then
    echo "bench-control-plane: the run with $n machines failed; logs in $dir" >&2
    exit 1
  fi
  fail=$(cat "$dir/fail")
  echo "| $n | $(ms "$started" "$launched") ms | $(ms "$started" "$(latest "$dir"/running.*)") ms |" \
       "$(ms "$fail" "$(latest "$dir"/stopped.*)") ms | $(ms "$fail" "$(latest "$dir"/restart.*)") ms |" \
       "$(ms "$fail" "$ended") ms |"
  rm -rf "$dir"
done
