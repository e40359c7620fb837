#!/usr/bin/env bash
# The main job as a batch engine, side by side in one run: a seeded workload of REQUESTS
# completions requests (prompts of 4-300 tokens, max_tokens from a long tail: most short, a few
# long) served by `accel-launch --num_processes 2 distributed_inference` at batch BATCH, one
# thread per process, with the continuous schedule (work pulled from the job's store, a finished
# row's slot refilled at the next step) and with --schedule static (a fixed contiguous share per
# rank, batches that wait for their longest row). Prints total tokens/s, each rank's idle share and
# slot occupancy per schedule, and checks that both wrote the same completions.
#
# usage: scripts/bench-batch.sh [BUILD_DIR]
#   env: REQUESTS=128 BATCH=8 PROCESSES=2 SEED=20 MODEL_DIR= (default: the embedded GPT-2)
#        WORK=dir (kept; default: a temporary directory)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
for exe in accel-launch distributed_inference; do
  [ -x "$build/bin/$exe" ] || { echo "bench-batch: $build/bin/$exe is missing; build first (scripts/build.sh)" >&2; exit 2; }
done
requests="${REQUESTS:-128}" batch="${BATCH:-8}" procs="${PROCESSES:-2}" seed="${SEED:-20}"
if [ -n "${WORK:-}" ]; then
  work="$WORK"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

# The workload: GPT-2's BPE gives each of these words (with its leading space) one token, so a
# prompt of n words is n tokens (+/- the first word's).
/usr/bin/python3 - "$work/batch.jsonl" "$requests" "$seed" <<'PY'
import json, random, sys
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
words = ("the of and to in is was for on that with as by at from his her an are which this be or "
         "had not but one all were they their has been have who its more new time would will two").split()
with open(path, "w") as out:
    for i in range(n):
        length = rng.randint(4, 300)
        tail = rng.random()
        max_tokens = rng.randint(4, 16) if tail < 0.7 else rng.randint(17, 64) if tail < 0.92 else rng.randint(65, 200)
        prompt = " ".join(rng.choice(words) for _ in range(length))
        body = {"model": "bench", "prompt": prompt, "max_tokens": max_tokens}
        out.write(json.dumps({"custom_id": "req-%d" % i, "method": "POST", "url": "/v1/completions", "body": body}) + "\n")
PY

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
model_args=()
[ -n "${MODEL_DIR:-}" ] && model_args=(--model_dir "$MODEL_DIR")
run() {
  local schedule=$1
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$build/bin/accel-launch" -q --num_processes "$procs" \
    --main_process_port "$(free_port)" "$build/bin/distributed_inference" "${model_args[@]}" \
    -i "$work/batch.jsonl" -o "$work/$schedule.jsonl" --overwrite --schedule "$schedule" --batch_size "$batch" \
    --threads 1 --progress_seconds 1000 >"$work/$schedule.out" 2>"$work/$schedule.err" ||
    { echo "bench-batch: the $schedule run failed:" >&2; tail -20 "$work/$schedule.err" >&2; exit 1; }
}

echo "bench-batch: $requests requests (prompts 4-300 tokens, max_tokens 4-200 long-tailed, seed $seed)," \
  "$procs processes x 1 thread, batch $batch; $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run continuous
run static
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
rows = {}
for schedule in ("continuous", "static"):
    out = open("%s/%s.out" % (work, schedule)).read()
    total = re.search(r"total: (\d+) tokens in ([\d.]+) s \(([\d.]+) tokens/s\)", out)
    ranks = re.findall(r"rank (\d+): (\d+) requests, (\d+) tokens, busy ([\d.]+) s, idle ([\d.]+) s "
                       r"\(([\d.]+)% idle\), ([\d.]+) tokens/s, in the model ([\d.]+) s, slot occupancy ([\d.]+)%", out)
    if not total or not ranks:
        sys.exit("bench-batch: no summary in %s/%s.out" % (work, schedule))
    rows[schedule] = (float(total.group(1)), float(total.group(2)), float(total.group(3)), ranks)
print("| schedule | tokens | wall s (first request to last result) | tokens/s | vs static | per rank: requests, idle share, slot occupancy |")
print("|---|---|---|---|---|---|")
for schedule, (tokens, seconds, rate, ranks) in rows.items():
    per_rank = "; ".join("rank %s: %s, idle %s%%, occupancy %s%%" % (r[0], r[1], r[5], r[8]) for r in ranks)
    print("| %s | %d | %.2f | %.1f | %.2fx | %s |" % (schedule, tokens, seconds, rate, rate / rows["static"][2], per_rank))

def texts(schedule):
    return {j["custom_id"]: j["response"]["body"]["choices"][0]["text"]
            for j in map(json.loads, open("%s/%s.jsonl" % (work, schedule)))}
a, b = texts("continuous"), texts("static")
same = sum(a[k] == b.get(k) for k in a)
print("- completions equal between the schedules: %d of %d" % (same, len(a)))
PY
echo "logs: $work"
