#!/usr/bin/env bash
# Runs apps/examples/pipeline_generation as real processes (torchrun-style environment, TCP store).
#   generation_processes.sh EXE match    2 ranks print the completions one process prints
#   generation_processes.sh EXE killed   rank 1 of 3 is killed mid-generation with ACCEL_TIMEOUT_S=120;
#                                        ranks 0 and 2 fail within seconds, naming it
set -euo pipefail
exe="$1"
mode="$2"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
model=(--layers 3 --embd 32 --heads 2 --threads 1)
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

start_rank() {  # start_rank RANK WORLD ARGS...
  local rank="$1" world="$2"
  shift 2
  RANK=$rank LOCAL_RANK=$rank WORLD_SIZE=$world LOCAL_WORLD_SIZE=$world MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    ACCEL_TIMEOUT_S=120 "$exe" "${model[@]}" "$@" >"$work/rank$rank.out" 2>&1 &
  pids+=($!)
}

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
    for _ in $(seq 500); do
      grep -q 'pipeline plan' "$work/rank0.out" 2>/dev/null && break
      sleep 0.1
    done
    sleep 1
    kill -9 "${pids[1]}"
    begin=$SECONDS
    for r in 0 2; do
      status=0
      wait "${pids[$r]}" || status=$?
      elapsed=$((SECONDS - begin))
      cat "$work/rank$r.out"
      echo "rank $r exited with status $status, $elapsed s after rank 1 was killed"
      [ "$status" -ne 0 ]
      [ "$elapsed" -le 20 ]
      grep -q 'rank 1' "$work/rank$r.out"
    done
    ;;
  *)
    echo "usage: $0 EXE match|killed" >&2
    exit 2
    ;;
esac
