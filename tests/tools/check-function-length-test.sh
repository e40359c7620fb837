#!/usr/bin/env bash
# check-function-length-test.sh CHECKER: the checker must list exactly the fixture's functions that
# are over 80 lines (and exit 1), and none at a limit they all fit (exit 0).
set -euo pipefail
checker=$1
cd "$(dirname "$0")/function-length"
expected='functions.cpp:92: eighty_one_lines: 81 lines
functions.cpp:176: Holder: 81 lines
functions.cpp:260: long_member: 81 lines
functions.cpp:347: lambda: 81 lines'
status=0
actual=$("$checker" functions.cpp 2>/dev/null) || status=$?
if [ "$status" -ne 1 ] || [ "$actual" != "$expected" ]; then
  printf 'check-function-length-test: expected exit 1 and\n%s\ngot exit %s and\n%s\n' "$expected" "$status" "$actual" >&2
  exit 1
fi
if ! actual=$("$checker" --max 81 functions.cpp 2>/dev/null) || [ -n "$actual" ]; then
  printf 'check-function-length-test: --max 81 should list nothing and exit 0; got\n%s\n' "$actual" >&2
  exit 1
fi
echo "check-function-length-test: the fixture's four long functions found, the 80-line one passed"
