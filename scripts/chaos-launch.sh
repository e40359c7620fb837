#!/usr/bin/env bash
# Chaos test of the launcher: TRIALS times, start a job of 2-4 workers (some with a grandchild,
# some that left the process group) and, at a random moment, send a random signal to a random
# worker or to the launcher. Each trial must end within its bound, with exit code 128 + the
# signal, and leave no process of the job behind.
#   scripts/chaos-launch.sh [--trials N] [--bin DIR] [--seed S]
# N defaults to 100 (the figure in docs/benchmarks.md); ctest runs a few. Needs the built
# accel-launch and sleep-forever (default DIR: build/bin). Prints one line per failed trial and
# a summary: trials, failures, worst time from the signal to the last process gone.
set -uo pipefail
cd "$(dirname "$0")/.."

trials=100
bin=build/bin
seed=$$
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) trials=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "chaos-launch: unknown argument $1 (expected --trials N, --bin DIR, --seed S)" >&2; exit 2 ;;
  esac
done
for tool in accel-launch sleep-forever; do
  [ -x "$bin/$tool" ] || { echo "chaos-launch: $bin/$tool is missing; build it first (or pass --bin DIR)" >&2; exit 2; }
done
RANDOM=$seed
ulimit -c 0  # SIGQUIT must not fill the disk with cores

grace_s=2
bound_ms=$(( (grace_s + 8) * 1000 ))  # grace period plus a generous margin for a loaded machine
signals=(TERM INT HUP QUIT KILL USR1 USR2 ALRM)
work=$(mktemp -d "${TMPDIR:-/tmp}/accel-chaos-XXXXXX")
trap 'rm -rf "$work"' EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
signal_number() { kill -l "$1"; }
# Alive and not a zombie.
running() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'; }

failures=0
worst_ms=0
worst=""
for trial in $(seq 1 "$trials"); do
  dir="$work/$trial"
  mkdir -p "$dir/tmp"
  workers=$(( 2 + RANDOM % 3 ))
  signal=${signals[$(( RANDOM % ${#signals[@]} ))]}
  target_launcher=$(( RANDOM % 2 ))
  delay_ms=$(( RANDOM % 500 ))
  # Rank 0 sometimes leaves the group, rank 1 sometimes starts a grandchild.
  flags0=$([ $(( RANDOM % 2 )) = 1 ] && echo --setsid)
  flags1=$([ $(( RANDOM % 2 )) = 1 ] && echo --child)
  job="case \$RANK in 0) exec $bin/sleep-forever $flags0 $dir;; 1) exec $bin/sleep-forever $flags1 $dir;; *) exec $bin/sleep-forever $dir;; esac"
  # Started as `cmd &` in a script is (SIGINT and SIGQUIT ignored); the subshell records the exit
  # code and keeps bash's "Killed" notices off the terminal.
  (
    TMPDIR="$dir/tmp" "$bin/accel-launch" -q --num_processes "$workers" --grace_period "$grace_s" sh -c "$job" \
      >"$dir/out" 2>"$dir/err" </dev/null &
    echo $! >"$dir/launcher"
    wait $!
    echo $? >"$dir/code"
  ) 2>/dev/null &
  until [ -s "$dir/launcher" ]; do sleep 0.01; done
  launcher=$(cat "$dir/launcher")

  if [ "$target_launcher" = 1 ]; then
    sleep "0.$(printf %03d "$delay_ms")"
    victim=$launcher
  else
    until [ "$(ls "$dir" | grep -c '\.pids$')" = "$workers" ]; do sleep 0.01; done
    sleep "0.$(printf %03d "$delay_ms")"
    victim=$(head -n 1 "$dir/$(( RANDOM % workers )).pids")
  fi
  # Everything of the job known now: workers, grandchildren, the guardian (the workers' group).
  job_pids=$(cat "$dir"/*.pids 2>/dev/null)
  for pid in $job_pids; do
    pgrp=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f3)
    [ -n "$pgrp" ] && [ "$pgrp" != "$pid" ] && job_pids="$job_pids $pgrp"
  done
  sent=$(now_ms)
  kill -s "$signal" "$victim" 2>/dev/null

  problem=""
  while running "$launcher"; do
    if [ $(( $(now_ms) - sent )) -gt "$bound_ms" ]; then
      problem="launcher still running after ${bound_ms} ms"
      kill -KILL "$launcher" 2>/dev/null
      break
    fi
    sleep 0.01
  done
  wait
  code=$(cat "$dir/code")
  # Workers started after the signal (it came before they existed) count too.
  job_pids="$job_pids $(cat "$dir"/*.pids 2>/dev/null)"
  for pid in $job_pids; do
    while running "$pid" && [ $(( $(now_ms) - sent )) -le "$bound_ms" ]; do sleep 0.01; done
  done
  elapsed=$(( $(now_ms) - sent ))
  [ "$elapsed" -gt "$worst_ms" ] && worst_ms=$elapsed && worst="SIG$signal to the $([ "$target_launcher" = 1 ] && echo launcher || echo worker) after ${delay_ms} ms, $workers workers $flags0 $flags1"
  expected=$(( 128 + $(signal_number "$signal") ))
  left=""
  for pid in $job_pids; do running "$pid" && left="$left $pid"; done
  if [ -z "$problem" ] && [ "$code" != "$expected" ]; then problem="exit code $code, expected $expected"; fi
  if [ -z "$problem" ] && [ -n "$left" ]; then problem="processes left:$left"; fi
  if [ -n "$problem" ]; then
    failures=$(( failures + 1 ))
    target=$([ "$target_launcher" = 1 ] && echo launcher || echo "worker $victim")
    echo "trial $trial FAILED: SIG$signal to the $target after ${delay_ms} ms, $workers workers ($flags0 $flags1): $problem"
    sed 's/^/    /' "$dir/err" | tail -n 5
    for pid in $left; do kill -KILL "$pid" 2>/dev/null; done
  fi
  rm -rf "$dir"
done
echo "chaos-launch: $trials trials, $failures failed, worst time from the signal to the last process gone: ${worst_ms} ms ($worst; seed $seed)"
[ "$failures" = 0 ]
