#!/usr/bin/env bash
# The benchmarks: set up the machine, then run every benchmarks/*.py script in
# turn. Each prints its figures and rewrites its own section of
# benchmarks/README.md; then benchmarks/summary.py gathers every target row
# into the summary table at the top of the results. A missed target is a
# result, not a failure; this exits non-zero only if a script could not measure
# (after running the others). Set MLOPS_BENCH_ONLY="compile demo" to run some.
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/setup.sh

status=0
for script in benchmarks/*.py; do
  name=$(basename "$script" .py)
  [[ $name == common || $name == summary || $name == _* ]] && continue
  [[ -z ${MLOPS_BENCH_ONLY:-} || " $MLOPS_BENCH_ONLY " == *" $name "* ]] || continue
  printf '\n==> %s\n' "$script" >&2
  python3 "$script" || { status=1; printf '==> %s could not measure\n' "$script" >&2; }
done
printf '\n==> benchmarks/summary.py: the table of every target\n' >&2
python3 benchmarks/summary.py || status=1
exit "$status"
