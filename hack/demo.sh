#!/usr/bin/env bash
# The main job on local defaults: a local registry, a local bare git remote,
# the local Docker Engine. Works in .demo/ and never touches your work tree.
#   MLOPS_DEMO_PORT   registry port on 127.0.0.1 (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
demo="$top/.demo"
port="${MLOPS_DEMO_PORT:-5000}"

log() { printf '\n==> %s\n' "$*" >&2; }

bash hack/setup.sh
mkdir -p "$demo"

start_registry() {
  if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then return 0; fi
  log "starting a local registry on 127.0.0.1:$port (data in .demo/registry)"
  mkdir -p "$demo/registry"
  cat >"$demo/registry/config.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $demo/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
  nohup docker-registry serve "$demo/registry/config.yml" >"$demo/registry/log" 2>&1 &
  for _ in $(seq 1 40); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "registry did not start; see .demo/registry/log" >&2; exit 1
}

make_remote_and_clone() {
  log "local bare remote .demo/remote.git <- $(git rev-parse --short HEAD) of this repo"
  rm -rf "$demo/remote.git" "$demo/work"
  git init -q --bare -b main "$demo/remote.git"
  git push -q "$demo/remote.git" HEAD:refs/heads/main
  git clone -q "$demo/remote.git" "$demo/work"
}

start_registry
make_remote_and_clone
export MLOPS_REGISTRY="127.0.0.1:$port/mlops"

log "mlops build (registry $MLOPS_REGISTRY)"
start=$(date +%s)
mlops build --repo "$demo/work" --output "$demo/build.json"
log "no-op rebuild: nothing changed, so nothing is built"
mlops build --repo "$demo/work" --dry-run

log "mlops promote --to dev: pin the digests, compile the pipelines, one commit to the local remote"
mlops promote --repo "$demo/work" --to dev --build "$demo/build.json"
git -C "$demo/work" pull -q --ff-only

log "mlops run training --env dev --local: the compiled pipeline on the pushed images"
mlops run training --repo "$demo/work" --env dev --local --output-dir "$demo/run" --json >"$demo/run.json"

log "mlops promote --to staging --from dev: through the metric gates"
mlops promote --repo "$demo/work" --to staging --from dev --metrics "$demo/run/metrics.json" \
  --model-uri "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model_uri"])' "$demo/run.json")"
git -C "$demo/work" pull -q --ff-only

log "mlops history"
mlops history --repo "$demo/work"

log "summary"
python3 - "$demo" "$start" <<'PY'
import json, sys, time
demo, start = sys.argv[1], int(sys.argv[2])
record = json.load(open(f"{demo}/build.json"))
run = json.load(open(f"{demo}/run.json"))
print(f"source commit {record['source_commit'][:12]}, registry {record['registry']}")
for b in record["builds"]:
    print(f"  {b['component']:<11} {b['status']:<7} {b['image']}@{b['digest'][:19]}...")
print(f"pipeline {run['pipeline']} compiled as {run['version']} (environments/dev/pipelines/)")
staging = open(f"{demo}/work/environments/staging/release.yaml").read()
rid = next(line.split(": ")[1] for line in staging.splitlines() if line.startswith("id: "))
print(f"release {rid} is in staging (environments/staging/release.yaml, remote .demo/remote.git)")
print("metrics: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(run["metrics"].items())))
print(f"model: {run['model_uri']}")
print(f"build record .demo/build.json, run record .demo/run.json ({time.time() - start:.0f}s)")
PY
