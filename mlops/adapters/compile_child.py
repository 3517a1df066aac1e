"""Importing and compiling one pipeline file in a child process, bounded in time.

A pipeline file is user code: importing it runs it. In-process, `os._exit(0)`
at import ended mlops with exit 0 and no output, and an import that never
returns hung `compile` and `promote`. So each file is imported and compiled
by `python -m mlops.adapters.compile_child REQUEST RESULT` under a timeout
(`MLOPS_COMPILE_TIMEOUT`, default 120 s); the parent checks that the child
wrote its result, and turns anything else into one located line.

The child side (`main`) is the only part that imports kfp (through `kfpc`);
the parent side (`compile_file`) only runs the process and reads JSON.

In `promote`, the file comes from the branch, and anyone who can push runs it
with the promoter's rights. So the child gets only what Python and kfp need
from the environment (`child_env`: no tokens, passwords, `MLOPS_*` or `GIT_*`
settings, no trust root path) and runs in its own temp dir, not in the clone.
What keeps it from swaying the approval check is in `Workspace.verify_commit`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops.errors import ConfigError, MlopsError, UsageError

TIMEOUT_ENV = "MLOPS_COMPILE_TIMEOUT"
DEFAULT_TIMEOUT = 120.0
# What the child does not inherit: mlops' and its tools' settings and anything that looks
# like a credential. A secret a pipeline needs at import is not one mlops should hand it.
_DROPPED_PREFIXES = ("MLOPS_", "MLFLOW_", "GIT_", "DOCKER_", "REGISTRY", "AWS_", "SSH_")
_DROPPED_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL", "AUTH", "KEY")


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """What of `environ` the child sees: all but `_DROPPED_*`; and this mlops first on
    its path (it no longer runs where the parent does)."""
    env = {k: v for k, v in environ.items()
           if not k.upper().startswith(_DROPPED_PREFIXES)
           and not any(word in k.upper() for word in _DROPPED_WORDS)}
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def timeout_from(environ: Mapping[str, str]) -> float:
    text = environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"${TIMEOUT_ENV} must be a number of seconds above 0, got {text!r}")
    return value


# How many times this process ran pipeline code from a branch: a workspace that was
# open while it ran may have been rewritten by it (services/changes.py re-clones).
runs = 0


def compile_file(path: Path, display: str, name: str, version_name: str,
                 images: Mapping[str, str], known: Sequence[str], env: str,
                 timeout: float) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """(compiled documents, components the pipeline asked for), from a child process."""
    request = {"path": str(path), "display": display, "name": name,
               "version_name": version_name, "images": dict(images), "known": sorted(known),
               "env": env}
    global runs
    runs += 1
    with tempfile.TemporaryDirectory(prefix="mlops-compile-") as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(json.dumps(request))
        proc = _run([sys.executable, "-m", "mlops.adapters.compile_child", str(req), str(res)],
                    display, timeout, Path(tmp))
        result = _read_result(res, display, proc)
    if not result.get("ok"):
        raise ConfigError(str(result.get("error")))
    return list(result["docs"]), tuple(result["components"])


def _run(argv: list[str], display: str, timeout: float,
         cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False, cwd=cwd,
                              env=child_env(os.environ))
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{display}: importing and compiling it took longer than "
                          f"{timeout:g}s (${TIMEOUT_ENV}); does it wait on something at "
                          "import?") from None


def _read_result(res: Path, display: str, proc: subprocess.CompletedProcess) -> dict:
    try:
        result = json.loads(res.read_text())
    except (OSError, ValueError):
        result = None
    if not isinstance(result, dict):
        said = (proc.stderr or "").strip().splitlines()
        tail = f": {said[-1][:200]}" if said else ""
        raise ConfigError(f"{display}: the compiler process ended (exit {proc.returncode}) "
                          f"before it compiled the pipeline; does the file exit or kill its "
                          f"process at import?{tail}")
    return result


# -- the child ------------------------------------------------------------------------------


def _resolver(images: Mapping[str, str], known: Sequence[str], env: str, display: str):
    from mlops.dsl import UnknownComponentError

    def resolve(component: str) -> str:
        if component not in known:
            raise UnknownComponentError(
                f"references unknown component {component!r} "
                f"(components/: {', '.join(sorted(known)) or 'none'})")
        if component not in images:
            raise ConfigError(
                f"{display}: environment {env} has no pinned image for component "
                f"{component!r}; promote a release into {env} or pass --build FILE")
        return images[component]
    return resolve


def _compile(request: Mapping[str, Any]) -> dict[str, Any]:
    from mlops.adapters import kfpc

    display = request["display"]
    loaded = kfpc.load_pipeline(Path(request["path"]), display, request["name"],
                                _resolver(request["images"], request["known"],
                                          request["env"], display))
    docs = kfpc.compile_manifests(loaded, request["version_name"])
    return {"ok": True, "docs": docs, "components": list(loaded.components)}


def main(argv: Sequence[str]) -> int:
    req, res = Path(argv[0]), Path(argv[1])
    try:
        result = _compile(json.loads(req.read_text()))
    except MlopsError as exc:
        result = {"ok": False, "error": exc.message}
    res.write_text(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # the pipeline's threads or atexit hooks must not hold the parent up


if __name__ == "__main__":
    main(sys.argv[1:])
