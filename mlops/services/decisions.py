"""The analysis decision record on disk: kept in the git dir between `rollout analyze` and
the commit that follows (`mlops.core.decision` is the type and how it reads)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops import safejson
from mlops.adapters import gitops
from mlops.atomicfile import write_json_atomic
from mlops.core.decision import Decision
from mlops.errors import ConfigError

MAX_DECISION_BYTES = 1 << 20  # one step's measurements are a few kB


def decision_path(root: Path, env: str) -> Path:
    return gitops.git_dir(root) / "mlops" / "rollout" / f"{env}.json"


def save_decision(root: Path, env: str, decision: Mapping[str, Any]) -> Path:
    path = decision_path(root, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, dict(decision))
    return path


def load_decision(root: Path, env: str, path: Path | None = None) -> Decision | None:
    """The kept decision record (or the one in `path`); None when there is none."""
    source = path or decision_path(root, env)
    try:  # `--analysis FILE` may come from another job: read with safejson's limits
        data = safejson.read(source, max_bytes=MAX_DECISION_BYTES)
    except safejson.NotFound:
        if path is not None:
            raise ConfigError(f"analysis record {path} not found") from None
        return None
    except safejson.JsonProblem as exc:
        raise ConfigError(f"analysis record {source} is unreadable: {exc}") from None
    return Decision.parse(data, source, env)


def forget_decision(root: Path, env: str) -> None:
    """A decision is used by one commit only; the next step needs a new analysis."""
    decision_path(root, env).unlink(missing_ok=True)


