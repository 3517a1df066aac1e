#!/usr/bin/env bash
# The test command: set up the machine, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
# Two workers (pytest-xdist), a test file each at a time: much of a test is waiting on
# git, Docker, the registry or a canary window, and on this 2-core machine the suite
# took 1006 s against 1625 s in one process. Tests marked `serial` time the machine's
# own work (a model's latency) or check the Docker Engine as a whole (no test container
# left), so they run afterwards, alone.
# MLOPS_TEST_WORKERS=0: everything in one process.
# (no:benchmark: a pytest-benchmark installed here for something else warns under xdist)
pytest=(python3 -m pytest -q -p no:cacheprovider -p no:benchmark)
workers="${MLOPS_TEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
  exec "${pytest[@]}" "$@" tests
fi
parallel=0
"${pytest[@]}" -n "$workers" --dist loadfile -m "not serial" "$@" tests || parallel=$?
if [ "$parallel" = 2 ]; then exit 2; fi  # interrupted, or a usage error: stop here
alone=0
"${pytest[@]}" -m serial "$@" tests || alone=$?
# 5: no test selected (a -k that names only one part's tests), not a failure
for rc in "$parallel" "$alone"; do
  if [ "$rc" != 0 ] && [ "$rc" != 5 ]; then exit "$rc"; fi
done
if [ "$parallel" = 5 ] && [ "$alone" = 5 ]; then exit 5; fi
exit 0
