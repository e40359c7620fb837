#!/bin/bash
# What reading and checking a config file adds to an accel-launch start: N runs of
# `config update` on an up-to-date file (read + parse + check + re-emit, nothing written)
# against N runs of `--version` (process start only). Prints the CPU time of each per run and
# the difference.
# Usage: scripts/bench-config-load.sh [BUILD_DIR] [N]
set -euo pipefail
build=${1:-build}
n=${2:-200}
exe=$build/bin/accel-launch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for format in yaml json; do
  HOME=$work ACCEL_FAKE_GPUS=4 "$exe" config default --config_file "$work/c.$format" >/dev/null
done
# CPU time (user + system) rather than wall time: the build machines are shared, and CPU
# time is what a start costs whatever else runs.
per_run_us() {  # command... -> CPU microseconds per run
  local me=$BASHPID before after
  before=$(cpu_us "$me")
  for ((i = 0; i < n; ++i)); do "$@" >/dev/null; done
  after=$(cpu_us "$me")
  echo $(((after - before) / n))
}
cpu_us() {  # PID -> CPU time of its finished children so far
  local ticks
  ticks=$(awk '{print $16 + $17}' "/proc/$1/stat")
  echo $((ticks * 1000000 / $(getconf CLK_TCK)))
}
base=$(per_run_us "$exe" --version)
yaml=$(per_run_us "$exe" config update --config_file "$work/c.yaml")
json=$(per_run_us "$exe" config update --config_file "$work/c.json")
echo "runs: $n"
echo "accel-launch --version:            ${base} us/run"
echo "config update (YAML, up to date):  ${yaml} us/run (+$((yaml - base)) us)"
echo "config update (JSON, up to date):  ${json} us/run (+$((json - base)) us)"
