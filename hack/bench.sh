#!/usr/bin/env bash
# The benchmarks: set up the machine, then run every benchmarks/*.py script in
# turn. Each prints its figures and rewrites its own section of
# benchmarks/README.md. A missed target is a result, not a failure; this exits
# non-zero only if a script could not measure (after running the others).
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/setup.sh

status=0
for script in benchmarks/*.py; do
  name=$(basename "$script" .py)
  [[ $name == common || $name == _* ]] && continue
  printf '\n==> %s\n' "$script" >&2
  python3 "$script" || { status=1; printf '==> %s could not measure\n' "$script" >&2; }
done
exit "$status"
