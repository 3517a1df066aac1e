#!/usr/bin/env bash
# Everything a fresh machine needs for the demo and the tests, idempotently:
# Debian packages, the mlops package itself, a running Docker Engine, the
# local base image, and an MLflow tracking server in a virtualenv of its own.
# Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

# The tracking server the MLflow tests start (tests/support/mlflowserver.py). Its own
# virtualenv: the full mlflow package pins what kfp pins too (protobuf, ...), and mlops
# itself needs only the client (the `mlflow` extra, mlflow-skinny).
MLFLOW_VERSION=3.17.2
MLFLOW_VENV=${MLOPS_MLFLOW_VENV:-/opt/mlops-mlflow-venv}

install_debian_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  command -v curl >/dev/null || missing+=(curl)
  command -v shellcheck >/dev/null || missing+=(shellcheck)  # actionlint checks run: blocks with it
  ((${#missing[@]})) || return 0
  if [[ $(id -u) != 0 ]]; then
    log "missing ${missing[*]}; run this script as root or install them" && exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_package() {
  # Every requirement of pyproject.toml (and its test extra) at an allowed version, and
  # mlops installed from this checkout: else install.
  if python3 hack/deps_ok.py 2>/dev/null; then
    return 0
  fi
  log "pip install -e .[test]"
  python3 -m pip install -q -e '.[test]' 2>&1 | grep -v -e 'Running pip as' -e 'pip.pypa.io/warnings' >&2 || true
  python3 -c 'import mlops' # fail loudly if the install did not work
}

start_docker_engine() {
  if docker info >/dev/null 2>&1; then return 0; fi
  [[ $(id -u) == 0 ]] || { log "no Docker Engine running, and not root to start one"; exit 1; }
  log "starting dockerd (no bridge, no iptables; builds use the host network)"
  # Containers use --network host: dockerd must not create bridges or iptables rules.
  nohup dockerd --bridge=none --iptables=false --ip6tables=false \
    >/var/log/mlops-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "dockerd did not come up; see /var/log/mlops-dockerd.log" && exit 1
}

install_mlflow_server() {
  local py="$MLFLOW_VENV/bin/python"
  if [[ -x "$MLFLOW_VENV/bin/mlflow" ]] && "$py" -c "import importlib.metadata as m, sys
sys.exit(m.version('mlflow') != '$MLFLOW_VERSION')" 2>/dev/null; then
    return 0
  fi
  log "creating $MLFLOW_VENV: mlflow==$MLFLOW_VERSION, the tracking server the tests start"
  rm -rf "$MLFLOW_VENV"
  python3 -m venv "$MLFLOW_VENV"
  "$py" -m pip install -q "mlflow==$MLFLOW_VERSION" 2>&1 \
    | grep -v -e 'Running pip as' -e 'pip.pypa.io/warnings' -e 'is ignored: it is neither' >&2 || true
  "$MLFLOW_VENV/bin/mlflow" --version >/dev/null # fail loudly if the install did not work
}

compile_bytecode() {
  # With PYTHONDONTWRITEBYTECODE set (as on CI machines) an editable install is
  # recompiled at every start; compiling once keeps `mlops` start-up fast.
  python3 -m compileall -q mlops >/dev/null
}

install_debian_packages
install_python_package
install_mlflow_server
compile_bytecode
start_docker_engine
bash hack/base-image.sh
