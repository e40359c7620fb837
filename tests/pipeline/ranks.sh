# Sourced by the example tests: ranks of "$exe" as real processes with the torchrun-style
# environment over a TCP store, output in $work/rank<k>.out. The sourcing script sets exe, model
# (the example's arguments) and timeout (ACCEL_TIMEOUT_S) before calling these.
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

start_rank() {  # start_rank RANK WORLD ARGS...
  local rank="$1" world="$2"
  shift 2
  RANK=$rank LOCAL_RANK=$rank WORLD_SIZE=$world LOCAL_WORLD_SIZE=$world MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    ACCEL_TIMEOUT_S=$timeout "$exe" "${model[@]}" "$@" >"$work/rank$rank.out" 2>&1 &
  pids+=($!)
}

# Waits (at most 50 s) until rank 0 has printed the plan: every rank has then formed the group
# and prepared its stage, whatever the machine's load, and the work is under way.
wait_until_running() {
  for _ in $(seq 500); do
    grep -q 'pipeline plan' "$work/rank0.out" 2>/dev/null && { sleep 1; return 0; }
    sleep 0.1
  done
  echo "rank 0 never printed its plan" >&2
  cat "$work"/rank*.out >&2
  return 1
}

# kill_rank1_expect_failures WITHIN RANK...: kills rank 1; each RANK must then exit non-zero
# within WITHIN seconds, naming rank 1.
kill_rank1_expect_failures() {
  local within="$1" status elapsed begin
  shift
  kill -9 "${pids[1]}"
  begin=$SECONDS
  for r in "$@"; do
    status=0
    wait "${pids[$r]}" || status=$?
    elapsed=$((SECONDS - begin))
    cat "$work/rank$r.out"
    echo "rank $r exited with status $status, $elapsed s after rank 1 was killed"
    [ "$status" -ne 0 ]
    [ "$elapsed" -le "$within" ]
    grep -q 'rank 1' "$work/rank$r.out"
  done
}
