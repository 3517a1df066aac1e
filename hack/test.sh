#!/usr/bin/env bash
# The test command: set up the machine, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
exec python3 -m pytest -q -p no:cacheprovider "$@" tests
