#!/usr/bin/env bash
# The test command: set up the machine, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
# Two workers (pytest-xdist), a test file each at a time: much of a test is waiting on
# git, Docker, the registry or a canary window, and on this 2-core machine the suite
# took 1006 s against 1625 s in one process. MLOPS_TEST_WORKERS=0: one process.
# (no:benchmark: a pytest-benchmark installed here for something else warns under xdist)
exec python3 -m pytest -q -p no:cacheprovider -p no:benchmark -n "${MLOPS_TEST_WORKERS:-2}" --dist loadfile \
  "$@" tests
