#!/usr/bin/env bash
# The main job end to end, as a user runs it: `accel-launch --num_processes N distributed_inference`
# on a GPT-2-small-size checkpoint (random weights, written once by scripts/main-job-torch.py make)
# with PROMPTS prompts, greedy, BATCH prompts per forward, NEW_TOKENS new tokens at most. Each run's
# wall time is split per rank into: process start (launch -> the job's code runs), group formation,
# checkpoint load (the weights are mapped, not copied: the job prints the bytes it read() and its
# anonymous and file-backed resident memory), time to first token, generation; then tokens/s per
# rank and in total. Runs 1x1, 2x1 and 1x2 (processes x threads), and in the same run the same job
# in eager PyTorch (scripts/main-job-torch.py job) under torchrun, whose completions must equal
# ours. A timeline per run is written as Chrome traces (the pipeline's format) and drawn with
# scripts/plot-trace.
#
# usage: scripts/bench-main-job.sh [BUILD_DIR]
#   env: PROMPTS=64 NEW_TOKENS=32 BATCH=8 WORK=dir (kept; default: a temporary directory)
#        CONFIGS="1x1 2x1 1x2" IMPLS="accel torch"
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
for exe in accel-launch distributed_inference; do
  [ -x "$build/bin/$exe" ] || { echo "bench-main-job: $build/bin/$exe is missing; build first (scripts/build.sh)" >&2; exit 2; }
done
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import torch' 2>/dev/null || [ ! -x /usr/bin/torchrun ]; then
  echo "bench-main-job: /usr/bin/python3 with torch and /usr/bin/torchrun are needed (scripts/install-deps.sh)" >&2
  exit 2
fi
prompts_n="${PROMPTS:-64}" new_tokens="${NEW_TOKENS:-32}" batch="${BATCH:-8}"
configs="${CONFIGS:-1x1 2x1 1x2}" impls="${IMPLS:-accel torch}"
if [ -n "${WORK:-}" ]; then
  work="$WORK"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

checkpoint="$work/gpt2-small-random"
[ -f "$checkpoint/model.safetensors" ] || /usr/bin/python3 "$root/scripts/main-job-torch.py" make "$checkpoint" >&2
# Prompts of 2-12 words, so batches are left-padded.
words=(the quick brown fox jumps over a lazy dog while distributed inference runs on every rank today)
: >"$work/prompts.txt"
for ((i = 0; i < prompts_n; i++)); do
  n=$((2 + i % 11))
  line="prompt $i:"
  for ((w = 0; w < n; w++)); do line+=" ${words[(i * 7 + w * 3) % ${#words[@]}]}"; done
  echo "$line" >>"$work/prompts.txt"
done
cat "$checkpoint/model.safetensors" >/dev/null  # in the page cache: load measures mapping, not the disk

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run IMPL PROCESSES THREADS: writes $work/IMPL-PxT.{out,launch}. Each process's BLAS gets its
# THREADS too: a batch's matrix products are BLAS calls, and 1x2 would otherwise run them on one.
run() {
  local impl=$1 procs=$2 threads=$3 name="$1-$2x$3"
  local args=(--model_dir "$checkpoint" --prompts "$work/prompts.txt" --batch_size "$batch"
              --max_new_tokens "$new_tokens" --threads "$threads")
  date +%s.%N >"$work/$name.launch"
  if [ "$impl" = accel ]; then
    OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" "$build/bin/accel-launch" -q --num_processes "$procs" \
      --main_process_port "$(free_port)" "$build/bin/distributed_inference" "${args[@]}" --timeline \
      >"$work/$name.out" 2>"$work/$name.err"
  else
    OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" /usr/bin/torchrun --nproc_per_node "$procs" -r 1 -t 1 \
      --monitor_interval 0.1 --master_port "$(free_port)" "$root/scripts/main-job-torch.py" job "${args[@]}" \
      2>"$work/$name.err" | sed 's/^\[default[0-9]*\]://' >"$work/$name.out"
  fi
  date +%s.%N >>"$work/$name.launch"
}

echo "main job: GPT-2 small shapes (12 layers, d=768, vocab 50257, random fp32 weights, $(du -m "$checkpoint/model.safetensors" | cut -f1) MB)," \
  "$prompts_n prompts, batch $batch, up to $new_tokens new tokens (greedy, EOS stops a row); $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for config in $configs; do
  for impl in $impls; do
    run "$impl" "${config%x*}" "${config#*x}"
  done
done
/usr/bin/python3 - "$work" "$root/scripts/plot-trace" $configs -- $impls <<'PY'
import json, os, re, subprocess, sys

work, plot = sys.argv[1], sys.argv[2]
split = sys.argv.index("--")
configs, impls = sys.argv[3:split], sys.argv[split + 1:]
PHASES = [("start", "launch", "ready"), ("group", "ready", "group"), ("load", "group", "load"),
          ("first token", "load", "first_token"), ("generate", "first_token", "done")]

def read(name):
    launch, end = (float(x) for x in open(os.path.join(work, name + ".launch")).read().split())
    out = open(os.path.join(work, name + ".out"), encoding="utf-8", errors="replace").read()
    ranks = []
    for line in out.splitlines():
        if line.startswith("timeline "):
            fields = dict(f.split("=", 1) for f in line.split()[1:])
            ranks.append({k: float(v) for k, v in fields.items()})
    if not ranks:
        err = open(os.path.join(work, name + ".err"), encoding="utf-8", errors="replace").read()
        sys.exit("bench-main-job: %s printed no timeline; its stderr ends:\n%s" % (name, err[-2000:]))
    completions = [l for l in out.splitlines() if re.match(r"^\[\d+\] ", l)]
    return launch, end, sorted(ranks, key=lambda r: r["rank"]), completions

def trace(name, launch, ranks):
    paths = []
    for r in ranks:
        r = dict(r, launch=launch)
        events = [{"ph": "M", "name": "process_name", "pid": int(r["rank"]), "args": {"name": "rank %d" % r["rank"]}}]
        for phase, a, b in PHASES:
            events.append({"ph": "X", "cat": "phase", "name": phase, "pid": int(r["rank"]), "tid": 0,
                           "ts": int(r[a] * 1e6), "dur": max(int((r[b] - r[a]) * 1e6), 0)})
        path = os.path.join(work, "main-job-%s-rank%d.json" % (name, r["rank"]))
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)
        paths.append(path)
    svg = os.path.join(work, "timeline-%s.svg" % name)
    subprocess.run([plot, *paths, "-o", svg, "--force"], check=True, stdout=subprocess.DEVNULL)
    return svg

print("| job | processes x threads | wall s | start s | group s | load s | first token s | generate s | tokens/s per rank | tokens/s total | vs 1x1 |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
base, results, memory = {}, {}, []
for config in configs:
    for impl in impls:
        name = "%s-%s" % (impl, config)
        launch, end, ranks, completions = read(name)
        results[name] = completions
        phase = lambda a, b: max(r[b] - (launch if a == "launch" else r[a]) for r in ranks)
        per_rank = ["%.1f" % (r["tokens"] / (r["done"] - r["load"])) for r in ranks]
        # Total: every rank's tokens over the span from the first rank's load to the last one's end.
        total = sum(r["tokens"] for r in ranks) / (max(r["done"] for r in ranks) - min(r["load"] for r in ranks))
        base.setdefault(impl, total)
        print("| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.1f | %.2fx |" % (
            "accel (C++)" if impl == "accel" else "PyTorch eager + torchrun", config, end - launch,
            phase("launch", "ready"), phase("ready", "group"), phase("group", "load"),
            phase("load", "first_token"), phase("first_token", "done"), " / ".join(per_rank), total,
            total / base[impl]))
        memory += ["%s %s rank %d: read() %.2f MB during load; resident at the end: anonymous %.0f MB, file-backed %.0f MB"
                   % (impl, config, r["rank"], r.get("load_rchar", 0) / 1e6, r.get("rss_anon_kb", 0) / 1e3,
                      r.get("rss_file_kb", 0) / 1e3) for r in ranks]
        print("  timeline: " + trace(name, launch, ranks), file=sys.stderr)
print()
for line in memory:
    print("- " + line)
reference = results.get("accel-" + configs[0])
for name, completions in results.items():
    same = sum(a == b for a, b in zip(completions, reference or []))
    print("- %s: %d completions, %d equal to accel-%s's" % (name, len(completions), same, configs[0]))
PY
echo "timelines and logs: $work"
