#!/usr/bin/env bash
# check-discovery.sh CTEST BUILD_DIR EXE...: fails unless every Catch2 case of every EXE is a ctest
# entry under its exact name, and no test name holds a character ctest splits on.
set -euo pipefail
ctest=$1 build=$2; shift 2
cases=$(mktemp) entries=$(mktemp)
trap 'rm -f "$cases" "$entries"' EXIT
for exe in "$@"; do
  # Catch2 2.x exits with the number of cases when listing them, so the exit code says nothing.
  names=$("$exe" --list-test-names-only || true)
  if [ -z "$names" ]; then
    echo "check-discovery: $exe lists no test cases" >&2
    exit 1
  fi
  sed '/^$/d' <<<"$names" >>"$cases"
done
"$ctest" --test-dir "$build" -N | sed -n 's/^ *Test *#[0-9]*: //p' >"$entries"
status=0
if grep -n ';' "$cases"; then
  echo "check-discovery: the test names above contain ';', which ctest splits: rename them" >&2
  status=1
fi
missing=$(sort "$cases" | comm -23 - <(sort "$entries"))
if [ -n "$missing" ]; then
  printf 'check-discovery: Catch2 cases with no ctest entry (they would never run):\n%s\n' "$missing" >&2
  status=1
fi
echo "check-discovery: $(wc -l <"$cases") Catch2 cases, $(wc -l <"$entries") ctest entries"
exit $status
