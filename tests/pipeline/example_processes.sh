#!/usr/bin/env bash
# Runs apps/examples/pipeline_inference as real processes (torchrun-style environment, TCP store).
#   example_processes.sh EXE match   2 ranks print the same logits as 1 process
#   example_processes.sh EXE stream  the same with --stream 3 (no --iterations), and the logits are
#                                    the last streamed batch's, not the plain batch's
#   example_processes.sh EXE killed  rank 1 is killed mid-stream; rank 0 fails naming it within the
#                                    timeout (Gloo fails a blocked send only then; receives at once)
#   example_processes.sh EXE killed-long-timeout   the same on 3 ranks with ACCEL_TIMEOUT_S=120:
#                                    ranks 0 and 2 fail and exit within seconds, not the timeout
set -euo pipefail
exe="$1"
mode="$2"
timeout=5
[ "$mode" = killed-long-timeout ] && timeout=120
model=(--layers 4 --embd 64 --heads 4 --batch 6 --seq 8 --threads 1 --split_points auto)
source "$(dirname "$0")/ranks.sh"

# logits FILE RANK: the "logits ..." part of that rank's line.
logits() { grep "^rank $2: logits" "$1" | sed "s/^rank $2: //"; }

# Runs ARGS in 1 process and in 2 ranks; both must print the same non-empty logits.
match_single_process() {
  "$exe" "${model[@]}" "$@" >"$work/single.out" 2>&1
  start_rank 0 2 "$@"
  start_rank 1 2 "$@"
  wait "${pids[0]}"
  wait "${pids[1]}"
  expected="$(logits "$work/single.out" 0)"
  got="$(logits "$work/rank1.out" 1)"
  echo "single process: $expected"
  echo "2 processes:    $got"
  [ -n "$expected" ] && [ "$expected" = "$got" ]
}

case "$mode" in
  match)
    match_single_process --num_chunks 4
    grep -q 'pipeline plan: 2 stage(s)' "$work/rank0.out"
    ! grep -q 'pipeline plan' "$work/rank1.out"
    ;;
  stream)
    "$exe" "${model[@]}" --num_chunks 2 >"$work/plain.out" 2>&1
    match_single_process --num_chunks 2 --stream 3
    plain="$(logits "$work/plain.out" 0)"
    echo "plain batch:    $plain"
    [ "$plain" != "$expected" ]
    ;;
  killed)
    # Many streamed batches keep both ranks busy long enough to kill rank 1 in the middle.
    start_rank 0 2 --num_chunks 2 --stream 100 --iterations 1000000
    start_rank 1 2 --num_chunks 2 --stream 100 --iterations 1000000
    wait_until_running
    kill_rank1_expect_failures $((timeout + 5)) 0
    ;;
  killed-long-timeout)
    # Started by hand as torchrun or mpirun would: nothing kills the survivors for us, so their
    # own shutdown after the peer failure must not wait out the 120 s timeout (issue 11, bug 3).
    for r in 0 1 2; do start_rank $r 3 --num_chunks 2 --stream 100 --iterations 1000000; done
    wait_until_running
    kill_rank1_expect_failures 20 0 2
    ;;
  *)
    echo "usage: $0 EXE match|stream|killed|killed-long-timeout" >&2
    exit 2
    ;;
esac
