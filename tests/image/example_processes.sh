#!/usr/bin/env bash
# Runs apps/examples/image_generation as real processes (torchrun-style environment, TCP store).
#   example_processes.sh EXE match     DENOISER SEQUENTIAL   3 prompts on 2 ranks (padded) give the
#                                      pictures 1 process gives, byte for byte; the padding is not written
#   example_processes.sh EXE pipeline  ...                   the nn.Sequential cut into 2 stages gives
#                                      the pictures it gives whole in 1 process
#   example_processes.sh EXE bad-input ...                   bad files and directories are refused by
#                                      name, the output directory before the model is read
set -euo pipefail
exe="$1"
mode="$2"
denoiser="$3"
sequential="$4"
timeout=60
model=(--threads 1 --seed 5 --batch_size 2)
source "$(dirname "$0")/../pipeline/ranks.sh"
printf 'a dog\na cat\na chicken\n' >"$work/prompts.txt"

# The pictures of one run, by prompt: "<prompt index> <sha256>" lines from the main process's listing.
by_prompt() {  # by_prompt LOG
  grep '^\[[0-9]*\] ' "$1" | while read -r index prompt; do
    file="${prompt##* -> }"
    echo "$index $(sha256sum <"$file" | cut -d' ' -f1)"
  done
}

two_ranks() {  # two_ranks OUT_DIR ARGS...
  local out="$1"
  shift
  start_rank 0 2 --prompts "$work/prompts.txt" --output_dir "$out" "$@"
  start_rank 1 2 --prompts "$work/prompts.txt" --output_dir "$out" "$@"
  wait "${pids[0]}"
  wait "${pids[1]}"
  cat "$work/rank0.out" "$work/rank1.out"
}

case "$mode" in
  match)
    "$exe" "${model[@]}" --model "$denoiser" --prompts "$work/prompts.txt" --output_dir "$work/one" >"$work/one.out" 2>&1
    cat "$work/one.out"
    two_ranks "$work/two" --model "$denoiser"
    # One process wrote result_0.png, result_0_1.png, result_0_2.png; two ranks result_0.png,
    # result_0_1.png and result_1.png (rank 1's padded repeat of "a chicken" dropped).
    diff <(ls "$work/one") <(printf 'result_0.png\nresult_0_1.png\nresult_0_2.png\n')
    diff <(ls "$work/two") <(printf 'result_0.png\nresult_0_1.png\nresult_1.png\n')
    grep -q "^\[2\] a chicken -> $work/two/result_1.png$" "$work/rank0.out"
    [ -z "$(grep '^\[[0-9]*\] ' "$work/rank1.out")" ]  # only the main process prints the listing
    [ "$(by_prompt "$work/one.out" | wc -l)" -eq 3 ]
    diff <(by_prompt "$work/one.out") <(by_prompt "$work/rank0.out")
    file "$work/two/result_1.png" | grep -q 'PNG image data, 64 x 64, 8-bit/color RGB'
    ;;
  pipeline)
    "$exe" "${model[@]}" --model "$sequential" --prompts "$work/prompts.txt" --output_dir "$work/whole" >"$work/whole.out" 2>&1
    two_ranks "$work/stages" --model "$sequential" --pipeline --num_chunks 2
    grep -q 'pipeline plan: 2 stage(s)' "$work/rank0.out"
    # The last stage holds and writes every picture.
    diff <(ls "$work/stages") <(printf 'result_1.png\nresult_1_1.png\nresult_1_2.png\n')
    [ "$(by_prompt "$work/whole.out" | wc -l)" -eq 3 ]
    diff <(by_prompt "$work/whole.out") <(by_prompt "$work/rank0.out")
    ;;
  bad-input)
    echo 'not torchscript' >"$work/bad.pt"
    status=0
    "$exe" --model "$work/bad.pt" --output_dir "$work/out" >"$work/bad.out" 2>&1 || status=$?
    cat "$work/bad.out"
    [ "$status" -ne 0 ]
    grep -q "$work/bad.pt: could not be loaded as TorchScript" "$work/bad.out"
    # The directory is checked first: a model that does not exist is not even looked at.
    touch "$work/in-the-way"
    status=0
    "$exe" --model "$work/absent.pt" --output_dir "$work/in-the-way/out" >"$work/dir.out" 2>&1 || status=$?
    cat "$work/dir.out"
    [ "$status" -ne 0 ]
    grep -q "$work/in-the-way: cannot create the directory" "$work/dir.out"
    status=0
    "$exe" --model "$denoiser" --pipeline --output_dir "$work/out" >"$work/route.out" 2>&1 || status=$?
    cat "$work/route.out"
    [ "$status" -eq 2 ]
    grep -q 'the pipeline route runs an nn.Sequential' "$work/route.out"
    # Nothing half-written anywhere.
    [ -z "$(find "$work" -name '*.tmp.*')" ]
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
