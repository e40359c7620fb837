#!/usr/bin/env bash
# Runs apps/examples/pipeline_generation as real processes (torchrun-style environment, TCP store).
#   generation_processes.sh EXE match    2 ranks print the completions one process prints
#   generation_processes.sh EXE killed   rank 1 of 3 is killed mid-generation with ACCEL_TIMEOUT_S=120;
#                                        ranks 0 and 2 fail within seconds, naming it
set -euo pipefail
exe="$1"
mode="$2"
timeout=120
model=(--layers 3 --embd 32 --heads 2 --threads 1)
source "$(dirname "$0")/ranks.sh"

case "$mode" in
  match)
    "$exe" "${model[@]}" --max_new_tokens 8 --batch 5 --reference >"$work/single.out" 2>&1
    start_rank 0 2 --max_new_tokens 8 --batch 5 --num_chunks 3
    start_rank 1 2 --max_new_tokens 8 --batch 5 --num_chunks 3
    wait "${pids[0]}"
    wait "${pids[1]}"
    cat "$work/single.out" "$work/rank0.out"
    [ "$(grep -c '^prompt ' "$work/single.out")" -eq 5 ]
    diff <(grep '^prompt ' "$work/single.out") <(grep '^prompt ' "$work/rank0.out")
    ! grep -q '^prompt ' "$work/rank1.out"
    ;;
  killed)
    # Measured runs keep every rank generating long enough to kill rank 1 in the middle.
    for r in 0 1 2; do start_rank $r 3 --max_new_tokens 400 --batch 6 --num_chunks 3 --bench 1000; done
    wait_until_running
    kill_rank1_expect_failures 20 0 2
    ;;
  *)
    echo "usage: $0 EXE match|killed" >&2
    exit 2
    ;;
esac
