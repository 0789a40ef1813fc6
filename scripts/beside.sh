#!/usr/bin/env bash
# scripts/beside.sh LOG STEP... -- COMMAND...
#
# Runs COMMAND in the foreground and, meanwhile, each STEP (a shell command line) one after
# the other in the background, at a lower CPU priority, their output into LOG. `make test` runs
# the integration tests as COMMAND: they wait on the Docker engine about half of the time, and
# the steps that need no engine (unit tests, sanity, ansible-lint) use the idle core.
# Every step runs even when an earlier one failed. When COMMAND is done, the steps are waited
# for and LOG is printed, framed, each step's result on a line of its own. The exit code is
# COMMAND's if it failed, else 1 if a step failed, else 0.
set -uo pipefail

log=$1
shift
steps=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  steps+=("$1")
  shift
done
[ $# -gt 1 ] && [ ${#steps[@]} -gt 0 ] || { echo "usage: $0 LOG STEP... -- COMMAND..." >&2; exit 2; }
shift

mkdir -p "$(dirname "$log")"
: >"$log"
# A session of its own, so that an interrupted run takes every process of the steps with it.
setsid nice -n 10 bash -c '
  log=$1; shift; failed=0
  for step in "$@"; do
    started=$SECONDS
    echo "=== beside: $step" >>"$log"
    if bash -c "$step" </dev/null >>"$log" 2>&1; then
      echo "=== beside: passed in $((SECONDS - started)) s: $step" >>"$log"
    else
      echo "=== beside: FAILED (exit code $?) in $((SECONDS - started)) s: $step" >>"$log"
      failed=1
    fi
  done
  exit $failed' beside "$log" "${steps[@]}" &
lane=$!
trap 'kill -TERM -- -"$lane" 2>/dev/null; exit 130' INT TERM

"$@"
status=$?

wait "$lane"
steps_status=$?
trap - INT TERM
echo
echo "============================== beside the tests: ${log} =============================="
cat "$log"
grep '^=== beside: \(passed\|FAILED\)' "$log" | sed 's/^=== beside: /beside: /'
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
[ "$steps_status" -eq 0 ] || { echo "beside: a step failed (above)" >&2; exit 1; }
