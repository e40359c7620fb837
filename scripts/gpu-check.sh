#!/usr/bin/env bash
# The GPU path in one run, for a machine with an NVIDIA GPU and a pip torch with CUDA, offline:
#   1. builds against that torch (scripts/build.sh TORCH=pip) into build-gpu; Debian .deb files
#      of the other dependencies (CLI11, yaml-cpp, nlohmann-json, Catch2, ...) placed in
#      .gpu-debs/ are unpacked into a local prefix first, for machines without them;
#   2. runs the test suites, where CUDA is now available to every worker;
#   3. benchmarks: data-parallel generation on 1 GPU process vs 1 CPU process; the GPT-2
#      pipeline with S=2 ranks sharing one GPU (GPipe, then streaming); process-group formation
#      (NCCL on GPU);
#   4. anchors, side by side in the same run: Hugging Face transformers' GPT-2 logits against
#      ours (fp32 and bf16, the same random weights as safetensors, the same input ids) and its
#      greedy generation; accelerate's prepare_pippy GPT-2 example (examples/inference/pippy/
#      gpt2.py: sequence classification, batch 2 x 1024 tokens, S = M = 2) against our pipeline
#      at the same S, M and batch. Our half always runs; the reference half needs the Python
#      packages (and, for prepare_pippy, one GPU per stage) and is otherwise reported as skipped.
# Writes one summary (Markdown) and exits 1 if any step failed. Every step has a time limit, so
# the whole run stays under 8 minutes.
#
#   scripts/gpu-check.sh [--cpu] [--summary FILE]
#   --cpu   dry run on any machine: Debian's LibTorch, the existing ./build (brought up to date,
#           not reconfigured), the GPU-relevant test cases, every step with device cpu and small
#           sizes (CI runs this through ctest)
#   env: PYTHON (python3; its torch is built against), JOBS (build jobs, default all cores)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

dry=0
summary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) dry=1 ;;
    --summary) summary=${2:?--summary needs a file}; shift ;;
    *) echo "gpu-check: unknown argument '$1'; usage: $0 [--cpu] [--summary FILE]" >&2; exit 2 ;;
  esac
  shift
done

if [ "$dry" = 1 ]; then
  build=${BUILD_DIR:-build}
  device="cpu (dry run)"
  gen_tokens=4 layers=2 embd=64 heads=2 batch=4 seq=16 iterations=1 stream=2
  anchor_layers=2 anchor_embd=64 anchor_heads=2 anchor_seq=16 pippy_layers=2 pippy_embd=64 pippy_heads=2 pippy_seq=64
  anchor_device=cpu gpus=0
else
  build=${BUILD_DIR:-build-gpu}
  listing=$(nvidia-smi -L 2>/dev/null) || listing=""
  grep -q '^GPU ' <<<"$listing" || { echo "gpu-check: no NVIDIA GPU (nvidia-smi -L lists none); run with --cpu for the dry run" >&2; exit 2; }
  device="$(head -n1 <<<"$listing")"
  gpus=$(grep -c '^GPU ' <<<"$listing")
  export TORCH=pip
  gen_tokens=32 layers=12 embd=768 heads=12 batch=32 seq=64 iterations=3 stream=8
  # GPT-2 small's shape (random weights: no network to fetch the trained ones).
  anchor_layers=12 anchor_embd=768 anchor_heads=12 anchor_seq=128 pippy_layers=12 pippy_embd=768 pippy_heads=12 pippy_seq=1024
  anchor_device=cuda:0
fi
# accelerate's example: S = num_processes = 2 stages, num_chunks M = S, batch 2.
pippy_stages=2 pippy_chunks=2 pippy_batch=2 pippy_iterations=5
case "$build" in /*) ;; *) build=$root/$build ;; esac
summary=${summary:-$build/gpu-check-summary.md}
mkdir -p "$build" "$(dirname "$summary")"
work=$(mktemp -d /tmp/accel-gpu-check-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

{
  echo "# gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- device: $device"
  echo "- host: $(nproc) CPUs, $(uname -srm)"
  echo "- CUDA toolkit: $(nvcc --version 2>/dev/null | tail -n 1 || echo "no nvcc on PATH (a CUDA torch's TorchConfig.cmake may need one)")"
  echo "- command: scripts/gpu-check.sh $([ "$dry" = 1 ] && echo --cpu)"
  echo
  echo "| step | result | seconds | detail |"
  echo "| --- | --- | --- | --- |"
} >"$summary"

# step NAME LIMIT_S COMMAND...: runs it (a program or one of the functions below, exported to
# the bash that `timeout` starts) with a time limit, output in $work/NAME.log; one summary row.
step() {
  local name=$1 limit=$2
  shift 2
  local log="$work/${name// /_}.log" start rc
  start=$(date +%s.%N)
  timeout --kill-after=10 "$limit" bash -c '"$@"' step "$@" >"$log" 2>&1
  rc=$?
  local seconds detail
  seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  detail=$(grep -v '^\s*$' "$log" | tail -n 1 | tr '|' '/' | cut -c1-160)
  if [ "$rc" = 0 ]; then
    echo "| $name | ok | $seconds | $detail |" >>"$summary"
  else
    [ "$rc" = 124 ] && detail="timed out after ${limit}s; $detail"
    echo "| $name | FAILED ($rc) | $seconds | $detail |" >>"$summary"
    failures=$((failures + 1))
    # The work directory goes at exit; a failed step's whole log stays beside the summary.
    mkdir -p "$(dirname "$summary")/gpu-check-logs"
    cp "$log" "$(dirname "$summary")/gpu-check-logs/"
    echo "gpu-check: step '$name' failed; last lines of its output (all of it in $(dirname "$summary")/gpu-check-logs):" >&2
    tail -n 15 "$log" >&2
  fi
  return "$rc"
}

# Dependencies shipped as .deb files: unpacked, never installed (no root needed, no network).
if compgen -G ".gpu-debs/*.deb" >/dev/null; then
  mkdir -p .gpu-debs/root
  for deb in .gpu-debs/*.deb; do dpkg-deb -x "$deb" .gpu-debs/root; done
  export CMAKE_PREFIX_PATH="$root/.gpu-debs/root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$root/.gpu-debs/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

bin=$build/bin
if [ "$dry" = 1 ]; then
  # Under ctest: reconfiguring the build directory would pull it from under the running suite.
  step "build" 300 cmake --build "$build" -j "${JOBS:-2}" || { echo "gpu-check: build failed; summary in $summary" >&2; exit 1; }
  step "tests: hardware discovery" 60 "$bin/core_tests" "[hardware]"
  step "tests: runtime state and device" 120 "$bin/runtime_tests" "[state]"
else
  step "build" 300 env BUILD_DIR="$build" JOBS="${JOBS:-$(nproc)}" ./scripts/build.sh || { echo "gpu-check: build failed; summary in $summary" >&2; exit 1; }
  # The consumer and package entries rebuild accel elsewhere; gpu-check would start itself.
  step "test suites" 240 ctest --test-dir "$build" -j "$(nproc)" --timeout 120 -E "gpu-check|consumer project|package:"
fi

# The jobs below (not the test suites, which set their own): ranks left behind by a step that
# timed out give up on their peers within a minute; the dry run keeps every job on the CPU.
export ACCEL_TIMEOUT_S=60
[ "$dry" = 1 ] && export ACCEL_USE_CPU=true

# 1. Data-parallel generation, 1 process: the default device (cuda:0 on a GPU machine), then CPU.
printf '%s\n' "The capital of France is" "Once upon a time" "In distributed inference," "def fibonacci(n):" >"$work/prompts.txt"
generate() {  # generate OUT_DIR [launcher flags]: OUT_DIR/results.jsonl, OpenAI batch output
  local out=$1
  shift
  mkdir -p "$out"
  "$bin/accel-launch" --num_processes 1 "$@" "$bin/distributed_inference" --prompts "$work/prompts.txt" \
    --max_new_tokens "$gen_tokens" -o "$out/results.jsonl" --overwrite ${model_dir:+--model_dir "$model_dir"}
}
model_dir=""
export -f generate
export bin work root gen_tokens layers embd heads batch seq iterations model_dir
step "generation, 1 process, default device" 120 generate "$work/gen-default"
step "generation, 1 process, --cpu" 120 generate "$work/gen-cpu" --cpu

# 2. Pipeline with S=2 ranks on one device: both ranks see only GPU 0 (torchrun-style variables,
#    as accel-launch gives each rank its own GPU). Two ranks on one GPU cannot share an NCCL
#    communicator, so the runtime joins them over Gloo, staging through pinned host memory.
pipeline() {  # pipeline NAME [pipeline_inference flags]
  local port pids=() failed=0
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  for r in 0 1; do
    CUDA_VISIBLE_DEVICES=0 RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$bin/pipeline_inference" --layers "$layers" --embd "$embd" --heads "$heads" --batch_size "$batch" --seq "$seq" \
      --iterations "$iterations" "$@" >"$work/pipe.$r" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  cat "$work/pipe.0" "$work/pipe.1"
  return $failed
}
export -f pipeline
step "pipeline S=2 on one device, GPipe M=4" 120 pipeline --num_chunks 4
step "pipeline S=2 on one device, streaming" 120 pipeline --num_chunks 4 --stream "$stream"

# 3. Process-group formation, 2 ranks (NCCL when CUDA is present, else Gloo).
form() {
  local port pids=() failed=0
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  for r in 0 1; do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$bin/runtime_worker" form >"$work/form.$r" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  cat "$work/form.0" "$work/form.1"
  [ "$failed" = 0 ] && awk '/^formed/ { if (!b || $5 < b) b = $5; if ($7 > e) e = $7 } END { printf "group formed in %.1f ms (first start to last rank formed)\n", (e - b) / 1000 }' "$work/form.0" "$work/form.1"
  return $failed
}
export -f form
step "group formation, 2 ranks" 60 form

# 4. Anchors. Our half always runs; a reference half that cannot run says why, in the summary
#    and on the terminal.
python=${PYTHON:-python3}
anchors="$root/scripts/gpu-anchors.py"
skipped() {  # skipped NAME REASON
  echo "| $1 | skipped: $2 | 0 | |" >>"$summary"
  echo "gpu-check: $1: skipped: $2"
}
have_transformers=0
"$python" -c 'import transformers, safetensors' 2>/dev/null && have_transformers=1
export python anchors anchor_device anchor_layers anchor_embd anchor_heads anchor_seq have_transformers

# 4a. GPT-2 logits, fp32 and bf16, on the same random weights (transformers makes them when it
#     is there, else our own writer) and the same input ids.
logits_anchor() {
  local model=$work/hf dtype
  if [ "$have_transformers" = 1 ]; then
    "$python" "$anchors" checkpoint "$model" "$root/data/gpt2" "$anchor_layers" "$anchor_embd" "$anchor_heads" || return 1
  else
    "$bin/gpt2_logits" random "$model" "$anchor_layers" "$anchor_embd" "$anchor_heads" || return 1
  fi
  for dtype in float32 bfloat16; do
    "$bin/gpt2_logits" run "$model" "$work/ours-$dtype.safetensors" "$anchor_device" "$dtype" 2 "$anchor_seq" || return 1
  done
  [ "$have_transformers" = 1 ] || return 0
  "$python" "$anchors" logits "$model" "$anchor_device" "$work/ours-float32.safetensors" "$work/ours-bfloat16.safetensors"
}
export -f logits_anchor
step "anchor: GPT-2 logits fp32 + bf16, ours on $anchor_device" 240 logits_anchor
[ "$have_transformers" = 1 ] || skipped "anchor: transformers GPT-2 logits" "transformers not installed ($python)"

# 4b. Greedy generation on the same weights: the same continuations, token for token.
greedy_anchor() {
  "$python" "$anchors" greedy "$work/hf" "$anchor_device" "$work/prompts.txt" "$gen_tokens" "$work/expected.txt" || return 1
  model_dir="$work/hf" generate "$work/gen-hf" || return 1
  "$python" -c 'import json, sys
for line in open(sys.argv[1]):
    print(json.loads(line)["response"]["body"]["choices"][0]["text"])' \
    "$work/gen-hf/results.jsonl" >"$work/ours.txt"
  local total same
  total=$(wc -l <"$work/expected.txt")
  same=$(paste -d'\001' "$work/expected.txt" "$work/ours.txt" | awk -F'\001' '$1 == $2' | wc -l)
  echo "transformers: $same of $total greedy continuations identical (fp32)"
  [ "$same" = "$total" ]
}
export -f greedy_anchor
if [ "$have_transformers" = 1 ]; then
  step "anchor: transformers GPT-2 greedy generation vs ours" 180 greedy_anchor
else
  skipped "anchor: transformers GPT-2 greedy generation" "transformers not installed ($python)"
fi

# 4c. accelerate's prepare_pippy GPT-2 example against our pipeline: S ranks, M micro-batches,
#     the same batch of the same shape; each side reports its average seconds per batch.
ours_pippy_shape() {
  local launch_flags=() line
  [ "$dry" = 1 ] && launch_flags=(--cpu)
  "$bin/accel-launch" --num_processes "$pippy_stages" "${launch_flags[@]}" "$bin/pipeline_inference" \
    --layers "$pippy_layers" --embd "$pippy_embd" --heads "$pippy_heads" --batch_size "$pippy_batch" --seq "$pippy_seq" \
    --num_chunks "$pippy_chunks" --iterations "$pippy_iterations" >"$work/ours-pippy.log" 2>&1 || { cat "$work/ours-pippy.log"; return 1; }
  line=$(grep -o "pipeline_inference rank=$((pippy_stages - 1)) .*" "$work/ours-pippy.log")
  awk -v S="$pippy_stages" -v M="$pippy_chunks" -v shape="${pippy_batch}x$pippy_seq" '{
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "ours S=%s M=%s batch=%s: average of %d %.4f s\n", S, M, shape, v["batches"], v["seconds"] / v["batches"] }' <<<"$line"
}
theirs_pippy_shape() {
  "$python" -m torch.distributed.run --standalone --nproc-per-node "$pippy_stages" "$anchors" pippy \
    "$pippy_layers" "$pippy_embd" "$pippy_heads" "$pippy_batch" "$pippy_seq" "$pippy_iterations"
}
export -f ours_pippy_shape theirs_pippy_shape
export dry pippy_stages pippy_chunks pippy_batch pippy_seq pippy_iterations pippy_layers pippy_embd pippy_heads
if [ "$dry" = 0 ] && [ "$gpus" -lt "$pippy_stages" ]; then
  # NCCL refuses two ranks of one communicator on the same GPU, for accelerate as for us.
  skipped "anchor: prepare_pippy's shape, both sides" "needs $pippy_stages GPUs (one per stage under NCCL), found $gpus"
else
  step "anchor: our pipeline at prepare_pippy's S, M and batch" 240 ours_pippy_shape
  if ! "$python" -c 'import accelerate, transformers, torch.distributed.pipelining' 2>/dev/null; then
    skipped "anchor: accelerate prepare_pippy GPT-2" "accelerate or transformers not installed ($python)"
  else
    step "anchor: accelerate prepare_pippy GPT-2" 240 theirs_pippy_shape
  fi
fi

echo >>"$summary"
echo "$failures step(s) failed." >>"$summary"
cat "$summary"
[ "$failures" = 0 ]
