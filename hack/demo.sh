#!/usr/bin/env bash
# The main job on local defaults, the whole loop: a local registry, a local
# bare git remote, the local Docker Engine; build (with signed provenance),
# promote to dev, run the training pipeline, promote to staging through the
# metric gates, refuse a tampered image, take prod's first release to 100%
# (no baseline to canary against), retrain, then a canary of the new release
# into prod on local serve containers judged by a real Prometheus, a signed
# approval, and 100%. Works in .demo/ and never touches your work tree.
#   MLOPS_DEMO_DIR    working directory (default .demo, relative to the repo root)
#   MLOPS_DEMO_PORT   registry port on 127.0.0.1 (default 5000)
#   MLOPS_DEMO_WINDOW_SECONDS  prod's canary analysis window in seconds (default 15):
#                     each canary step waits one window at its split, then measures 3
#                     times a window apart, so the two steps wait 6 windows (90 s by
#                     default). At least 3: the demo's Prometheus scrapes every second and
#                     a rate needs samples in the window. min_requests shrinks with it (20
#                     for 15 s). tests/test_demo.py sets 5 to keep the suite short: the
#                     same analysis on real metrics, over less traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
t0=$(date +%s)
demo=$(realpath -m "${MLOPS_DEMO_DIR:-.demo}")
show=${demo#"$top/"}            # for messages: .demo, or the full path elsewhere
port="${MLOPS_DEMO_PORT:-5000}"
window="${MLOPS_DEMO_WINDOW_SECONDS:-15}"
if [[ ! $window =~ ^[1-9][0-9]*$ ]] || ((window < 3)); then
  echo "MLOPS_DEMO_WINDOW_SECONDS must be a whole number of seconds, at least 3" >&2; exit 2
fi
# The load sends 30 predictions/s, 3/s to the canary at 10%: 20 requests is under half of
# what a 15 s window holds, and the same share of a shorter one (rounded up).
min_requests=$(((20 * window + 14) / 15))
work="$demo/work"
canary="$demo/canary"
principal=demo-release-manager@example.com
key="$demo/release-manager_ed25519"
builder=demo-ci-builder@example.com   # signs each image's provenance at build
builder_key="$demo/ci-builder_ed25519"
fleet_pid=
registry_pid=   # set only when this run started the registry: then it stops it on exit

log() { printf '\n==> %s\n' "$*" >&2; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: d=d[k]
print(d)' "$@"; }

cleanup() {
  local rc=$?
  if [[ -n $fleet_pid ]] && kill -0 "$fleet_pid" 2>/dev/null; then
    kill -TERM "$fleet_pid" 2>/dev/null || true
    wait "$fleet_pid" 2>/dev/null || true
  fi
  python3 hack/demo_canary.py down --dir "$canary" --label "$demo" || true
  stop_registry
  ((rc == 0)) || echo "demo failed (exit $rc); logs in $show/canary/, $show/registry/log" >&2
  exit "$rc"
}
stop_registry() {  # only the one this run started; a registry already on the port stays
  if [[ -n $registry_pid ]] && kill -0 "$registry_pid" 2>/dev/null; then
    kill -TERM "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  registry_pid=
  rm -f "$demo/registry/pid"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash hack/setup.sh
mkdir -p "$demo"

start_registry() {
  if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then return 0; fi
  log "starting a local registry on 127.0.0.1:$port (data in $show/registry)"
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
  nohup docker-registry serve "$demo/registry/config.yml" >"$demo/registry/log" 2>&1 </dev/null &
  registry_pid=$!
  echo "$registry_pid" >"$demo/registry/pid"
  for _ in $(seq 1 40); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "registry did not start; see $show/registry/log" >&2; exit 1
}

make_remote_and_clone() {
  log "local bare remote $show/remote.git <- $(git rev-parse --short HEAD) of this repo"
  python3 hack/demo_canary.py down --dir "$canary" --label "$demo"  # a killed run's leftovers
  rm -rf "$demo/remote.git" "$work" "$demo/run" "$demo/run2" "$canary" "$key" "$key.pub" \
    "$builder_key" "$builder_key.pub" "$demo/tampered.json" "$demo/tampered-build.json"
  git init -q --bare -b main "$demo/remote.git"
  git push -q "$demo/remote.git" HEAD:refs/heads/main
  git clone -q "$demo/remote.git" "$work"
}

build_to_staging() {
  log "mlops build (registry $MLOPS_REGISTRY), each image's provenance signed by $builder"
  ssh-keygen -q -t ed25519 -N '' -C "$builder" -f "$builder_key"
  mlops build --repo "$work" --output "$demo/build.json" --sign-key "$builder_key" \
    --builder "$builder"
  log "no-op rebuild: nothing changed, so nothing is built"
  mlops build --repo "$work" --dry-run

  log "mlops promote --to dev: pin the digests, compile the pipelines, one commit to the local remote"
  mlops promote --repo "$work" --to dev --build "$demo/build.json"
  git -C "$work" pull -q --ff-only

  log "mlops run training --env dev --local: the compiled pipeline on the pushed images"
  mlops run training --repo "$work" --env dev --local --output-dir "$demo/run" --json >"$demo/run.json"

  demo_only_commit  # before staging: it lets staging and prod take the demo's file:// model
  log "mlops promote --to staging --from dev: through the metric gates and the provenance check"
  mlops promote --repo "$work" --to staging --from dev --metrics "$demo/run/metrics.json" \
    --model-uri "$(json "$demo/run.json" model_uri)"
  git -C "$work" pull -q --ff-only
}

first_release_to_prod() {
  local release
  release=$(python3 -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["id"])' \
    "$work/environments/staging/release.yaml")
  log "prod runs nothing yet: its first release has no baseline to canary against"
  echo "  (KServe splits traffic only once a revision has rolled out), so it goes to 100% at"
  echo "  once, through the offline gates, the provenance check and a signed approval"
  log "mlops approve --env prod --release $release (signed with $show/release-manager_ed25519)"
  mlops approve --repo "$work" --env prod --release "$release" --key "$key" --principal "$principal"
  log "mlops rollout start --env prod: the first release, at 100%"
  mlops rollout start --repo "$work" --env prod
  git -C "$work" pull -q --ff-only
}

retrain_to_staging() {
  log "mlops run training --env dev --local again: a retrained model, so a new release"
  mlops run training --repo "$work" --env dev --local --output-dir "$demo/run2" --json \
    >"$demo/run2.json"
  log "mlops promote --to staging --from dev: the retrained release"
  mlops promote --repo "$work" --to staging --from dev --metrics "$demo/run2/metrics.json" \
    --model-uri "$(json "$demo/run2.json" model_uri)"
  git -C "$work" pull -q --ff-only
}

tampered_image() {
  log "a tampered image: other content pushed by hand under serve's ih- tag, then promoted"
  python3 hack/demo_tamper.py --repo "$work" --build "$demo/build.json" --component serve \
    --out "$demo"
}

start_fleet() {
  # The staging release's serve image (what the canary will pin) and model.
  local image model rows
  image=$(python3 -c 'import json,sys
b=next(b for b in json.load(open(sys.argv[1]))["builds"] if b["component"]=="serve")
print(b["image"]+"@"+b["digest"])' "$demo/build.json")
  model=$(json "$demo/run2.json" model_uri); model=${model#file://}
  stable_model=$(json "$demo/run.json" model_uri); stable_model=${stable_model#file://}
  rows=$(ls -t "$demo"/run2/artifacts/*/preprocess/test | head -n1)
  log "starting prod's stand-in: serve containers as the InferenceService's revisions, Prometheus, load"
  echo "  canary: the serve image this demo built, serving the retrained release's model"
  echo "  stable: the same image, serving the first release's model"
  mkdir -p "$canary"
  echo 0 >"$canary/split"
  python3 hack/demo_canary.py fleet --dir "$canary" --label "$demo" \
    --image "$image" --model "$model" --stable-model "$stable_model" --rows "$rows" &
  fleet_pid=$!
}

wait_fleet() {
  for _ in $(seq 1 360); do
    [[ -f $canary/fleet.json ]] && break
    kill -0 "$fleet_pid" 2>/dev/null || { echo "the serve containers did not start" >&2; exit 1; }
    sleep 0.5
  done
  [[ -f $canary/fleet.json ]] || { echo "the serve containers did not start in 3 minutes" >&2; exit 1; }
  export MLOPS_PROMETHEUS_URL; MLOPS_PROMETHEUS_URL=$(json "$canary/fleet.json" prometheus)
  stable=$(json "$canary/fleet.json" stable revision)
  canary_rev=$(json "$canary/fleet.json" canary revision)
  printf '  stable %s at %s, canary %s at %s (image %s)\n  Prometheus %s scrapes both; load: %s predictions/s\n' \
    "$stable" "$(json "$canary/fleet.json" stable url)" \
    "$canary_rev" "$(json "$canary/fleet.json" canary url)" \
    "$(json "$canary/fleet.json" canary image | cut -c1-60)..." \
    "$MLOPS_PROMETHEUS_URL" "$(json "$canary/fleet.json" rate)"
}

demo_only_commit() {
  log "demo-only commit in $show/work: a release manager's key, shorter canary windows"
  echo "  (the repo's prod analysis measures 5 times, 1m apart: 10+ minutes of waiting;"
  echo "   the demo clone measures 3 times, ${window}s apart; your mlops.yaml is untouched)"
  ssh-keygen -q -t ed25519 -N '' -C "$principal" -f "$key"
  python3 hack/demo_config.py --repo "$work" --principal "$principal" --public-key "$key.pub" \
    --builder "$builder" --builder-key "$builder_key.pub" \
    --env prod --interval "${window}s" --count 3 --min-requests "$min_requests" \
    --record "$demo/demo-config.json"
  # The demo's model is a file on this machine, which its local serve containers mount;
  # a cluster could not read it, so mlops refuses file:// by default (mlops/modeluri.py).
  python3 -c 'import sys; sys.path.insert(0, "hack"); from demo_config import yaml_rt
y, path = yaml_rt(), sys.argv[1]; doc = y.load(open(path))
for env in doc["environments"]:
    if env["name"] in ("staging", "prod"):
        env["model_uri_schemes"] = ["file", "gs", "s3", "pvc", "oci", "hf", "https"]
y.dump(doc, open(path, "w"))' "$work/mlops.yaml"
  echo "  mlops.yaml staging, prod model_uri_schemes: + file (the demo serves a local model)"
  git -C "$work" add -A
  git -C "$work" -c user.name="mlops demo" -c user.email=demo@example.com -c commit.gpgsign=false \
    commit -q -m "demo: release manager $principal, builder $builder; prod canary analysis 3 x ${window}s"
  git -C "$work" push -q origin HEAD:main
}

set_split() {
  echo "$1" >"$canary/split"
  echo "  load split: ${1}% to $canary_rev, $((100 - $1))% to $stable"
}

analyze_step() {  # PERCENT: let one window fill at the new split, then analyse
  set_split "$1"
  echo "  waiting ${window}s: the first measurement looks back one ${window}s window"
  sleep "$window"
  log "mlops rollout analyze --env prod --revision $canary_rev --baseline-revision $stable"
  mlops rollout analyze --repo "$work" --env prod --revision "$canary_rev" \
    --baseline-revision "$stable" --output "$canary/analysis-$1.json"
}

rollout_prod() {
  log "mlops rollout start --env prod: the retrained release as a canary at the first step"
  mlops rollout start --repo "$work" --env prod
  wait_fleet
  analyze_step 10
  log "mlops rollout promote --env prod: 10% -> 50%"
  mlops rollout promote --repo "$work" --env prod
  analyze_step 50

  log "mlops rollout promote --env prod: 50% -> 100% needs a release manager's approval"
  local rc=0
  mlops rollout promote --repo "$work" --env prod || rc=$?
  ((rc == 4)) || { echo "expected exit 4 (approval missing), got $rc" >&2; exit 1; }
  echo "  refused with exit 4, as it should be"

  local release
  release=$(python3 -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["id"])' \
    "$work/environments/staging/release.yaml")
  log "mlops approve --env prod --release $release (signed with $show/release-manager_ed25519)"
  mlops approve --repo "$work" --env prod --release "$release" --key "$key" --principal "$principal"

  log "mlops rollout promote --env prod: 50% -> 100%"
  mlops rollout promote --repo "$work" --env prod
  git -C "$work" pull -q --ff-only
}

stop_fleet() {  # the final request counts are written when the fleet stops
  kill -TERM "$fleet_pid" && wait "$fleet_pid" || true
  fleet_pid=
}

start_registry
make_remote_and_clone
export MLOPS_REGISTRY="127.0.0.1:$port/mlops"
build_to_staging
tampered_image
first_release_to_prod
retrain_to_staging
start_fleet
rollout_prod
stop_fleet

log "mlops history"
mlops history --repo "$work"

log "summary"
python3 hack/demo_summary.py --demo "$demo" --show "$show" --start "$t0"
