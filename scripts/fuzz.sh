#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, no LibTorch) into build-fuzz and runs each
# for SECONDS seconds, starting from a corpus seeded from the project's fixtures (fuzz/seeds.py)
# and from what earlier runs found (build-fuzz/corpus/<target>, kept between runs).
# A crash, a sanitizer report, a leak, an exception other than ours, or one input running past
# 10 s stops that target: the input is saved as build-fuzz/findings/<target>/crash-* (or
# timeout-*, leak-*) and the script exits 1 after the other targets ran.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default 30; CI runs 20, docs/testing.md gives the longer runs)
#   TARGET   config_yaml config_json safetensors_header tokenizer tokenizer_json object_codec batch_file jinja
#            (default: all)
# Reproduce a finding: build-fuzz/bin/fuzz_<target> build-fuzz/findings/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(config_yaml config_json safetensors_header tokenizer tokenizer_json object_codec batch_file jinja)
seconds="${1:-30}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: SECONDS must be a positive whole number, got '$seconds'" >&2
  exit 2
fi
for t in "${targets[@]}"; do
  if [[ " ${all_targets[*]} " != *" $t "* ]]; then
    echo "fuzz.sh: unknown target '$t'; accepted: ${all_targets[*]}" >&2
    exit 2
  fi
done

build=build-fuzz
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DACCEL_FUZZ=ON -DACCEL_WITH_TORCH=OFF -DACCEL_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]/#/fuzz_}"
python3 fuzz/seeds.py "$build/seeds"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t" "$build/findings/$t"
  echo "fuzz.sh: $t for ${seconds}s"
  # The first directory receives new inputs; the seeds are only read.
  if ! "$build/bin/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/findings/$t/" "$build/corpus/$t" "$build/seeds/$t" >"$build/findings/$t.log" 2>&1; then
    failed+=("$t")
    tail -n 40 "$build/findings/$t.log" >&2
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$build/findings/$t.log" | tr '\n' ' '
  echo
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in ${failed[*]}: see $build/findings/" >&2
  exit 1
fi
